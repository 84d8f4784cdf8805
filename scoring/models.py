"""Runs of submitted models and their scored results."""

from __future__ import annotations

from django.db import models

from challenges.models import EvaluationSet, Station
from core.text import StorableTextField
from scoring.vectors import scored_key
from submissions.models import Submission


class Run(models.Model):
    """One container run of a submission on one data set (the sanity or the hidden lane).

    `log_tail` of a hidden run is shown to participants only where the phase allows it.
    """

    class Lane(models.TextChoices):
        SANITY = "sanity", "Sanity run (public data)"
        HIDDEN = "hidden", "Hidden data"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="runs")
    lane = models.CharField(max_length=10, choices=Lane.choices)
    attempt = models.PositiveIntegerField()
    container_name = models.CharField(max_length=120)
    exit_code = models.IntegerField(null=True, blank=True)
    timed_out = models.BooleanField(default=False)
    oom_killed = models.BooleanField(default=False)
    error_class = models.CharField(max_length=30, blank=True)
    # what the model chose (its log, messages quoting its output): stored whatever it holds
    error_message = StorableTextField(blank=True)
    log_tail = StorableTextField(blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    detections = models.JSONField(
        default=dict, blank=True, help_text="Sanity runs of detection phases: the model's "
        "detections per public film ({id: [[x, y, score], ...]}, best first), for overlays.")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["submission", "lane", "attempt"], name="run_unique_per_attempt"
            )
        ]

    def __str__(self) -> str:
        return f"{self.container_name} ({self.lane})"

    @property
    def passed(self) -> bool:
        return self.finished_at is not None and not self.error_class


class Result(models.Model):
    """Scores of a succeeded submission. Per-case scores are kept so that leaderboard
    statistics (bootstrap, subgroups) can be recomputed without re-running the model.

    `case_scores` is a float64 array aligned with the evaluation set's labels in sorted-id
    order; `case_labels` the model's hard labels (int8) when it provided them.
    """

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="result")
    evaluation_set = models.ForeignKey(EvaluationSet, on_delete=models.PROTECT, related_name="+")
    metrics = models.JSONField(
        default=dict, help_text="{'all'|'public'|'private': {metric: value}}"
    )
    subgroups = models.JSONField(default=dict, blank=True)
    released = models.JSONField(
        default=dict, blank=True,
        help_text="What the team is shown while the phase runs (the phase's score release "
        "policy): {part: {metric: value}} for the part teams see.")
    resamples = models.BinaryField(
        null=True, blank=True,
        help_text="Metric values on the phase's paired resamples, per board part (npz).")
    part_subgroups = models.JSONField(default=dict, blank=True)
    resample_key = models.CharField(max_length=200, blank=True,
                                    help_text="What `resamples` were computed for.")
    released_from = models.UUIDField(
        null=True, blank=True, help_text="The submission whose scores `released` repeats.")
    case_scores = models.BinaryField()
    case_labels = models.BinaryField(null=True, blank=True)
    site_metrics = models.JSONField(
        default=dict, blank=True, help_text="Phases at data stations: each site's scores "
        "({station/dataset: {part: {metric: value}}}) and coarsened ROC points.")
    case_detections = models.BinaryField(
        null=True, blank=True, help_text="Detection phases: the detections matched against "
        "the true lesions (heldout_kernel.stats.detection.Evidence: each lesion's best hit "
        "score, the false positives' scores, by film index); no coordinates.")
    computed_at = models.DateTimeField(auto_now=True)
    scored_with = models.CharField(
        max_length=64, blank=True,
        help_text="What it was scored against (scoring.vectors.scored_key): another key "
        "now means the labels were replaced or the metrics changed since (stale).")

    def __str__(self) -> str:
        return f"result of {self.submission}"

    @property
    def is_stale(self) -> bool:
        """Scored against labels or metrics the phase no longer has: re-score it."""
        return bool(self.scored_with) and self.scored_with != scored_key(self.submission.phase)


class CollusionFlag(models.Model):
    """Two teams' submissions that look like one model: the same uploaded file, or nearly the
    same predictions on the hidden set (the classic way around daily quotas with several
    accounts). Shown to organisers, who decide; nothing happens to the teams automatically."""

    class Kind(models.TextChoices):
        SAME_UPLOAD = "same_upload", "Same uploaded file (sha256)"
        NEAR_IDENTICAL = "near_identical", "Near-identical hidden-set predictions"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="flags")
    other = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    value = models.FloatField(null=True, blank=True, help_text="Rank correlation, if any.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "other", "kind"],
                                    name="collusion_flag_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.submission} ~ {self.other}"


class StationJob(models.Model):
    """One submission attempt's hidden-data run at one station dataset. A station claims it
    (the claim number fences everything it sends afterwards), renews its lease by heartbeats,
    and posts aggregates or an error class; a job whose lease runs out is offered again."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for the station"
        RUNNING = "running", "Running at the station"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    OPEN = (Status.QUEUED, Status.RUNNING)

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE,
                                   related_name="station_jobs")
    attempt = models.PositiveIntegerField()
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="jobs")
    dataset = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    claim = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_class = models.CharField(max_length=30, blank=True)
    # The platform's own notes ("superseded by a newer attempt"); never a station's text: a
    # station sends its error class only (its messages and log quote what a model wrote).
    message = models.TextField(blank=True, help_text="The platform's note on this job.")
    parts = models.JSONField(default=dict, blank=True,
                             help_text="The station's aggregates per part (no per-case data).")

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(
            fields=["submission", "attempt", "station", "dataset"],
            name="station_job_unique_per_attempt")]

    def __str__(self) -> str:
        return f"{self.submission} at {self.station.name}/{self.dataset} ({self.status})"
