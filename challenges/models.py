"""Challenges, phases, hidden evaluation sets, teams and the rules that bind them.

Invariants that races could break live in database constraints: one team per user per
challenge, unique team names per challenge, unique phase slugs, phase windows that close
after they open. Services (challenges.services) do the writes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from heldout_kernel.stats.metrics import (
    DETECTION_METRICS,
    METRICS,
    higher_is_better,
    is_detection_metric,
)
from heldout_kernel.stats.release import POLICIES as RELEASE_POLICIES
from heldout_kernel.stats.release import Policy

METRIC_CHOICES = [(name, metric.title) for name, metric in METRICS.items()] + [
    (name, metric.title) for name, metric in DETECTION_METRICS.items()
]


def validate_metric_list(value: Any) -> None:
    """Secondary metrics: a list of known metric names, each once."""
    known = dict(METRIC_CHOICES)
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError("Give a list of metric names.")
    unknown = [name for name in value if name not in known]
    if unknown:
        raise ValidationError(f"Unknown metric(s): {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}.")
    if len(set(value)) != len(value):
        raise ValidationError("Name each metric once.")


def task_problems(task: str, metrics: list[str]) -> list[str]:
    """What is wrong with a phase's metrics for its task: detection phases rank by a
    detection metric (film-level metrics may follow); classification phases cannot compute
    detection metrics (they have no lesions)."""
    if not metrics:
        return []
    if task == Challenge.Task.DETECTION and not is_detection_metric(metrics[0]):
        return [f"A detection phase's primary metric must be a detection metric "
                f"({', '.join(DETECTION_METRICS)}), not {metrics[0]!r}."]
    detection = [name for name in metrics if is_detection_metric(name)]
    if task != Challenge.Task.DETECTION and detection:
        return [f"{', '.join(detection)} need lesions: only detection phases can use them."]
    return []


DETECTION_RELEASE = ("Detection phases release scores exact, rounded or by the ladder; "
                     "boot-ladder-boot is for classification phases.")

STATION_RELEASE = ("Phases at data stations release scores exact, rounded or by the ladder; "
                   "boot-ladder-boot needs per-case scores, which stay at the stations.")

PREDICTIONS_NEED_PUBLIC_INPUTS = (
    "Predictions files can only be accepted where the evaluation inputs are published "
    "(public_inputs: true); on hidden inputs they would let teams probe the hidden labels.")


class SubmissionKind(models.TextChoices):
    PREDICTIONS = "predictions", "Predictions CSV"
    BUNDLE = "bundle", "Code bundle (zip)"
    IMAGE = "image", "Docker image archive"


def validate_kinds(value: Any) -> None:
    """Submission kinds: a non-empty list of SubmissionKind values, each once."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one submission kind.")
    unknown = [kind for kind in value if kind not in SubmissionKind.values]
    if unknown or len(set(value)) != len(value):
        raise ValidationError(
            f"Submission kinds are {', '.join(SubmissionKind.values)}, each at most once.")


class Challenge(models.Model):
    class Task(models.TextChoices):
        BINARY = "binary", "Binary classification"
        DETECTION = "detection", "Lesion detection"

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public"
        INVITE_ONLY = "invite-only", "Invite only"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft (organisers only)"
        PUBLISHED = "published", "Published"

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True, help_text="Markdown; rendered safely.")
    task = models.CharField(max_length=20, choices=Task.choices, default=Task.BINARY)
    terms = models.TextField(blank=True, help_text="Data-use terms (Markdown).")
    terms_version = models.PositiveIntegerField(default=1)
    visibility = models.CharField(
        max_length=20, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    max_team_size = models.PositiveIntegerField(default=5)
    # Published by default so that challenges built in code (tests, the import command) stay
    # visible; the admin (add and bundle import) creates drafts, which only organisers see.
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PUBLISHED)
    published_at = models.DateTimeField(null=True, blank=True)
    organisers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="organised_challenges"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_team_size__gte=1), name="challenge_team_size_positive"
            )
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("challenges:detail", kwargs={"slug": self.slug})

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT


class Station(models.Model):
    """A data station: a program at a hospital that runs models next to data that never
    leave it and sends back aggregates only. It authenticates with a token shown once at
    registration (`manage.py station_add`) and stored here as its sha256."""

    name = models.SlugField(unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_contact_at = models.DateTimeField(null=True, blank=True)
    allowed_challenges = models.JSONField(
        default=list, blank=True, help_text="The challenges the station says it serves "
        "(its --allow list, reported at each contact): the hospital's consent. Jobs of "
        "other challenges are never offered to it.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StationDataset(models.Model):
    """A hidden data set at a station, known by the fingerprint the station reports (sha256
    of its files, numbers of cases and positives, its parts), never by its content."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    fingerprint = models.JSONField(default=dict, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the station last reported a fingerprint that "
        "differs from the one before (flagged and audited).")

    class Meta:
        ordering = ["station", "name"]
        constraints = [models.UniqueConstraint(fields=["station", "name"],
                                               name="station_dataset_unique")]

    def __str__(self) -> str:
        return f"{self.station.name}/{self.name}"


class EvaluationSet(models.Model):
    """Hidden data: inputs mounted into containers, labels read only by the scorer.

    Paths are relative to settings.PRIVATE_ROOT, which no URL serves.
    """

    challenge = models.ForeignKey(
        Challenge, on_delete=models.CASCADE, related_name="evaluation_sets"
    )
    name = models.CharField(max_length=100)
    is_public = models.BooleanField(
        default=False, help_text="Sanity sets are public slices; their run logs are shown."
    )
    inputs_public = models.BooleanField(
        default=False, help_text="The inputs are published to participants (public files), "
        "so phases on this set may accept predictions files.")
    inputs_dir = models.CharField(max_length=500)
    labels_file = models.CharField(max_length=500)
    lesions_file = models.CharField(
        max_length=500, blank=True, help_text="Detection sets: the true lesions (id,x,y,radius "
        "in pixels, origin top-left), read only by the scorer.")
    n_lesions = models.PositiveIntegerField(default=0)
    lesion_subgroup_columns = models.JSONField(default=list, blank=True)
    checksums = models.JSONField(default=dict, help_text="relative path -> sha256")
    n_cases = models.PositiveIntegerField(default=0)
    n_positive = models.PositiveIntegerField(default=0)
    has_split = models.BooleanField(default=False)
    subgroup_columns = models.JSONField(default=list, blank=True)
    data_card = models.JSONField(
        default=dict, blank=True, help_text="Computed when files are imported or replaced: "
        "cases, positives, missing values, duplicate rows, label balance per subgroup, outliers.")
    provenance = models.JSONField(
        default=list, blank=True,
        help_text="Who imported which file with which sha256, when (newest last).")
    sources = models.JSONField(
        default=list, blank=True, help_text="Hidden data at data stations: "
        '[{"station": NAME, "dataset": NAME}, ...]; empty: the data are here.')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["challenge", "name"], name="evaluation_set_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.challenge.slug}/{self.name}"

    @property
    def is_remote(self) -> bool:
        """The hidden cases live at data stations, not here."""
        return bool(self.sources)


class Phase(models.Model):
    Kind = SubmissionKind

    class ScoreVisibility(models.TextChoices):
        LIVE = "live", "Live"
        AFTER_CLOSE = "after-close", "After the phase closes"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="phases")
    slug = models.SlugField()
    title = models.CharField(max_length=200)
    order = models.PositiveIntegerField(default=0)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    submission_kinds = models.JSONField(
        default=list, validators=[validate_kinds],
        help_text="Which kinds of upload the phase accepts (one or more).",
    )
    quota_per_day = models.PositiveIntegerField(default=5)
    quota_total = models.PositiveIntegerField(default=100)
    quota_concurrent = models.PositiveIntegerField(default=2)
    count_failed = models.BooleanField(
        default=True, help_text="Whether failures before the hidden data (an unusable upload, "
        "the public sanity run) count against the quotas. Failures on hidden data always "
        "count; internal errors never do.",
    )
    task = models.CharField(
        max_length=20, blank=True, choices=Challenge.Task.choices,
        help_text="This phase's task when it differs from the challenge's (e.g. a detection "
        "track beside a classification round); blank: the challenge's task.")
    primary_metric = models.CharField(max_length=40, default="auroc", choices=METRIC_CHOICES)
    secondary_metrics = models.JSONField(
        default=list, blank=True, validators=[validate_metric_list],
        help_text="Shown beside the primary metric; they also break ties.",
    )
    # RESTRICT, not PROTECT: a set in use cannot be deleted alone, yet deleting the challenge
    # (which cascades to both the phase and the set) is allowed.
    evaluation_set = models.ForeignKey(
        EvaluationSet, on_delete=models.RESTRICT, related_name="phases", null=True, blank=True
    )
    sanity_set = models.ForeignKey(
        EvaluationSet, on_delete=models.RESTRICT, related_name="sanity_phases", null=True,
        blank=True,
    )
    limit_cpus = models.FloatField(default=1.0)
    limit_memory_mb = models.PositiveIntegerField(default=2048)
    limit_seconds = models.PositiveIntegerField(default=600)
    score_visibility = models.CharField(
        max_length=20, choices=ScoreVisibility.choices, default=ScoreVisibility.LIVE
    )
    show_logs = models.BooleanField(
        default=False, help_text="Show participants the logs of runs on hidden data."
    )
    private_published = models.BooleanField(
        default=False, help_text="Publish the private leaderboard before the phase closes."
    )
    score_release = models.CharField(
        max_length=20, choices=[(name, name) for name in RELEASE_POLICIES], default="exact",
        help_text="What teams are shown of their scores while the phase runs: exact, rounded "
        "(release_decimals places), ladder (changes only past release_eta) or boot-ladder-boot "
        "(DREAM). Organisers always see exact scores; the final boards use exact scores.",
    )
    release_decimals = models.PositiveSmallIntegerField(default=3)
    release_eta = models.FloatField(default=0.01, help_text="The ladder's step.")
    selection_limit = models.PositiveIntegerField(
        default=0, help_text="0: rank each team's best entry; N: rank up to N selected entries."
    )
    bootstrap_resamples = models.PositiveIntegerField(default=1000)

    class Meta:
        ordering = ["challenge", "order", "opens_at"]
        constraints = [
            models.UniqueConstraint(fields=["challenge", "slug"], name="phase_slug_unique"),
            models.CheckConstraint(
                condition=models.Q(closes_at__gt=models.F("opens_at")), name="phase_window_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(limit_cpus__gt=0), name="phase_cpus_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(release_eta__gt=0), name="phase_release_eta_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.challenge.slug}/{self.slug}"

    def get_absolute_url(self) -> str:
        return reverse(
            "submissions:phase", kwargs={"slug": self.challenge.slug, "phase": self.slug}
        )

    def clean(self) -> None:
        if self.Kind.PREDICTIONS in (self.submission_kinds or []) and not self.inputs_published:
            raise ValidationError({"submission_kinds": PREDICTIONS_NEED_PUBLIC_INPUTS})
        problems = task_problems(self.task_name, [self.primary_metric,
                                                  *(self.secondary_metrics or [])])
        if self.is_detection and self.Kind.PREDICTIONS in (self.submission_kinds or []):
            problems.append("Detection phases score models (bundle or image), not files.")
        if self.is_detection and self.score_release == "boot-ladder-boot":
            problems.append(DETECTION_RELEASE)
        remote = self.evaluation_set is not None and self.evaluation_set.is_remote
        if remote and self.score_release == "boot-ladder-boot":
            problems.append(STATION_RELEASE)
        for data in (self.evaluation_set, self.sanity_set):
            if self.is_detection and data is not None and not (data.lesions_file or data.is_remote):
                problems.append(f"Detection phases need lesions on their data: {data.name} "
                                "has none.")
        if problems:
            raise ValidationError(problems)

    @property
    def task_name(self) -> str:
        if self.task:
            return str(self.task)
        try:
            return str(self.challenge.task)
        except Challenge.DoesNotExist:  # an admin inline's phase before its challenge exists
            return str(Challenge.Task.BINARY)

    @property
    def is_detection(self) -> bool:
        return self.task_name == Challenge.Task.DETECTION

    def release_policy(self) -> Policy:
        return Policy(name=self.score_release, decimals=self.release_decimals,
                      eta=self.release_eta)

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.primary_metric)

    @property
    def inputs_published(self) -> bool:
        """Whether participants have the evaluation inputs, so that a predictions file
        (rather than a model) may be scored: never for hidden inputs, whose per-id scores
        and validation messages would reveal hidden labels and ids."""
        return self.evaluation_set is not None and self.evaluation_set.inputs_public

    def is_open(self, at: timezone.datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.opens_at <= at < self.closes_at

    def has_closed(self, at: timezone.datetime | None = None) -> bool:
        return (at or timezone.now()) >= self.closes_at


class PublicFile(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="public_files")
    name = models.CharField(max_length=300, help_text="Name shown and used for download.")
    path = models.CharField(max_length=500, help_text="Relative to the private root.")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["challenge", "name"], name="public_file_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class TermsAcceptance(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="acceptances")
    version = models.PositiveIntegerField()
    accepted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "challenge", "version"], name="terms_acceptance_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} accepted {self.challenge.slug} v{self.version}"


class Team(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=80)
    captain = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="captained_teams"
    )
    is_organiser_team = models.BooleanField(
        default=False, help_text="Organisers' team: submits baselines, takes no rank."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"), "challenge", name="team_name_unique_per_challenge"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("challenges:team", kwargs={"slug": self.challenge.slug, "pk": self.pk})


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    # Denormalised from team so the database itself can forbid a second team per challenge.
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="+")
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "challenge"], name="one_team_per_challenge")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class Invitation(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True, help_text="Blank for a shareable link.")
    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Invitation to {self.team} ({self.email or 'link'})"

    def get_absolute_url(self) -> str:
        return reverse("challenges:invitation", kwargs={"token": self.token})


class JoinRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="join_requests")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "user"],
                condition=models.Q(status="pending"),
                name="one_pending_request_per_team",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} asks to join {self.team} ({self.status})"


class Announcement(models.Model):
    """An organiser's message to a challenge's participants (members of its teams and
    everyone who accepted its terms): e-mailed once to each, and shown as a banner on the
    challenge's pages to them until `shown_until`. Posted through
    challenges.announcements.announcement_post (audited); its text is fixed once posted."""

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE,
                                  related_name="announcements")
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown, rendered safely (as the description).")
    shown_until = models.DateTimeField(
        help_text="The banner shows on the challenge's pages until then; set it to now to "
        "take the banner down.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    mailed_to = models.JSONField(
        default=list, blank=True, help_text="Ids of the people it was e-mailed to, so that a "
        "repeated or resumed mailing reaches nobody twice.")
    mailed_at = models.DateTimeField(null=True, blank=True,
                                     help_text="When the last e-mail of it was sent.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(
            condition=models.Q(shown_until__gte=models.F("created_at")),
            name="announcement_shown_after_posting")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return self.challenge.get_absolute_url()

    def is_shown(self, at: timezone.datetime | None = None) -> bool:
        return (at or timezone.now()) < self.shown_until
