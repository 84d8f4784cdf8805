"""A submission: one uploaded model (or predictions file) of one team in one phase."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from challenges.models import Phase, Team


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
    error_message = models.TextField(blank=True, help_text="Shown to the team.")
    attempts = models.PositiveIntegerField(default=0)
    image_id = models.CharField(max_length=100, blank=True, help_text="Pinned image digest.")
    is_baseline = models.BooleanField(default=False)
    selected = models.BooleanField(default=False, help_text="Chosen as a final entry.")
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

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
