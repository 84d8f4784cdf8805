"""A submission: one uploaded model (or predictions file) of one team in one phase."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from challenges.models import Phase, Team
from core.text import StorableTextField

# A note is a reminder for the team, not documentation: short enough for a table cell.
NOTE_MAX_LENGTH = 500
# Lanes whose failure depends on public data only (the upload, the public sanity run): teams
# learn such an outcome at once. Any other outcome followed a run on hidden data.
PUBLIC_LANES = ("upload", "sanity")


def outcomes_untold_since(now: datetime | None = None) -> datetime:
    """Outcomes on hidden data that ended at or after this moment are not told to teams yet:
    the start of the current release period (HELDOUT_RELEASE_SECONDS, a minute by default).

    A team learns when its run on hidden data ended only to the period it ended in, through
    every channel (status, scores, board, e-mail, quota): knowing it to the second would
    time the run, and a model can encode a hidden value in how long it runs."""
    moment = (now or timezone.now()).timestamp()
    return datetime.fromtimestamp(moment - moment % settings.HELDOUT_RELEASE_SECONDS, tz=UTC)


def untold_outcomes(now: datetime | None = None) -> models.Q:
    """The submissions whose outcome on hidden data teams do not know yet (see above)."""
    ended_lately = (models.Q(status__in=("succeeded", "failed"),
                             finished_at__gte=outcomes_untold_since(now))
                    & ~models.Q(failed_lane__in=PUBLIC_LANES))
    return models.Q(status="scoring") | ended_lately


class Submission(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SCORING = "scoring", "Scoring"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class ErrorClass(models.TextChoices):
        INVALID_UPLOAD = "invalid_upload", "The upload cannot be used"
        TIMEOUT = "timeout", "The model ran out of time"
        OUT_OF_MEMORY = "out_of_memory", "The model ran out of memory"
        NONZERO_EXIT = "nonzero_exit", "The model exited with an error"
        MISSING_OUTPUT = "missing_output", "The model wrote no predictions"
        INVALID_OUTPUT = "invalid_output", "The predictions do not follow the contract"
        INTERNAL_ERROR = "internal_error", "Internal error (not your fault)"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.SCORING)
    FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    untold = False  # True on the unsaved copy `as_told` makes while the outcome is untold

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase = models.ForeignKey(Phase, on_delete=models.PROTECT, related_name="submissions")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="submissions")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions"
    )
    number = models.PositiveIntegerField(help_text="1, 2, 3... per team and phase.")
    kind = models.CharField(max_length=20, choices=Phase.Kind.choices)
    filename = models.CharField(max_length=255)
    file_path = models.CharField(max_length=500, help_text="Relative to the private root.")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    error_class = models.CharField(max_length=30, choices=ErrorClass.choices, blank=True)
    error_message = StorableTextField(blank=True, help_text="Shown to the team.")
    failed_lane = models.CharField(
        max_length=10, blank=True, choices=[("upload", "Upload"), ("sanity", "Sanity run"),
                                            ("hidden", "Hidden data")],
        help_text="Where a failed submission failed: hidden-data failures always use quota.",
    )
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="The running attempt renews this; past it the sweeper takes over.")
    image_id = models.CharField(max_length=100, blank=True, help_text="Pinned image digest.")
    is_baseline = models.BooleanField(default=False)
    selected = models.BooleanField(default=False, help_text="Chosen as a final entry.")
    note = models.CharField(
        max_length=NOTE_MAX_LENGTH, blank=True,
        help_text="The team's own short note on what this model is "
        "(the team and organisers see it).")
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The outbox: when the evaluation task was last handed to the broker for this queued
    # submission; empty until a hand-over succeeds (the sweeper retries those).
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["phase", "team", "number"], name="submission_number_unique"
            ),
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="submission_idempotency_unique",
            ),
        ]
        indexes = [models.Index(fields=["phase", "team", "created_at"])]

    def __str__(self) -> str:
        return f"{self.team} #{self.number} ({self.phase})"

    def get_absolute_url(self) -> str:
        return reverse("submissions:detail", kwargs={"uid": self.uid})

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    def _ended_on_hidden_data(self) -> bool:
        return (self.status in (self.Status.SUCCEEDED, self.Status.FAILED)
                and self.failed_lane not in PUBLIC_LANES and self.finished_at is not None)

    def outcome_told(self, now: datetime | None = None) -> bool:
        """Whether its team may know how the submission ended (see `untold_outcomes`)."""
        if self.untold or self.status == self.Status.SCORING:
            return False
        if not self._ended_on_hidden_data():
            return True
        assert self.finished_at is not None
        return self.finished_at < outcomes_untold_since(now)

    def told_at(self) -> datetime | None:
        """When its team learns how the submission ended: at once for an outcome on public
        data, else at the end of the release period its run on hidden data ended in."""
        if self.finished_at is None or not self._ended_on_hidden_data():
            return self.finished_at
        return outcomes_untold_since(self.finished_at) + timedelta(
            seconds=settings.HELDOUT_RELEASE_SECONDS)

    def as_told(self, now: datetime | None = None) -> Submission:
        """The submission as its team may see it now: until its outcome on hidden data is
        told, still running, with no error, end time or result. A copy: never saved."""
        if self.outcome_told(now):
            return self
        shown = copy.copy(self)  # Django copies the related-object cache with the instance
        shown.status, shown.error_class, shown.error_message = self.Status.RUNNING, "", ""
        shown.failed_lane, shown.finished_at, shown.untold = "", None, True
        shown._state.fields_cache["result"] = None  # reads as "no result", without a query
        shown.save = _never_saved  # type: ignore[method-assign]
        return shown

    @classmethod
    def update_status(
        cls, pk: int, *, to: str, from_: Iterable[str] | None = None,
        attempt: int | None = None, **fields: Any,
    ) -> bool:
        """The one way a submission's status is written: a single conditional UPDATE that
        moves submission `pk` to `to` from a status allowed to reach it (TRANSITIONS), or only
        from `from_` where given; with `attempt`, only while that attempt is the current one,
        so a stale attempt cannot write over a newer one. Other columns may be set in the
        same UPDATE. Returns whether the row moved (False: someone else got there first)."""
        sources = {source for source, targets in TRANSITIONS.items() if to in targets}
        if from_ is not None:
            sources &= set(from_)
        rows = cls.objects.filter(pk=pk, status__in=sources)
        if attempt is not None:
            rows = rows.filter(attempts=attempt)
        return bool(rows.update(status=to, **fields))


def _never_saved(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("a submission as shown to its team is a view, not a row to save")


_S = Submission.Status
# Which statuses each status may move to: claimed, scored, finished, re-queued by the sweeper
# or an organiser's re-score, cancelled while waiting.
TRANSITIONS: dict[str, frozenset[str]] = {
    _S.QUEUED: frozenset({_S.RUNNING, _S.CANCELLED}),
    _S.RUNNING: frozenset({_S.SCORING, _S.FAILED, _S.QUEUED}),
    _S.SCORING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.QUEUED}),
    _S.SUCCEEDED: frozenset({_S.QUEUED}),
    _S.FAILED: frozenset({_S.QUEUED}),
    _S.CANCELLED: frozenset({_S.QUEUED}),
}


class UploadSession(models.Model):
    """A resumable chunked upload. Bytes land in a staging file; `received` is the offset
    the client resumes from after a dropped connection."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Phase.Kind.choices)
    filename = models.CharField(max_length=255)
    total_size = models.PositiveBigIntegerField()
    received = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Last time bytes arrived: an unfinished upload idle for HELDOUT_UPLOAD_EXPIRY_HOURS
    # is removed, with its staged bytes, by the `expire_uploads` beat task.
    touched_at = models.DateTimeField(default=timezone.now, db_index=True)
    submission = models.OneToOneField(
        Submission, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(received__lte=models.F("total_size")),
                name="upload_received_within_total",
            )
        ]

    def __str__(self) -> str:
        return f"upload {self.uid} ({self.received}/{self.total_size})"
