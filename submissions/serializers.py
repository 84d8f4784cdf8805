"""API representations of submissions, runs, quotas and resumable uploads.

What a viewer may see is decided by selectors (scores, hidden-lane logs, the private board)
and handed to these serializers in their context as plain flags; the serializers only apply
them.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from challenges.models import Phase
from scoring.models import Run
from submissions.models import Submission, UploadSession

IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,100}$")  # visible ASCII; the model column holds 100

Metrics = serializers.DictField(
    child=serializers.DictField(child=serializers.FloatField(allow_null=True)),
    allow_null=True,
    help_text="Scores by part ('all', or 'public' and 'private' where the phase has a split); "
    "null while hidden or not scored.",
)


def visible_metrics(submission: Submission, *, scores: bool, private: bool) -> Any:
    """The stored metrics the viewer may see.

    While the private board is hidden a team sees only the public part of a split evaluation
    set: 'all' and 'private' both carry information about the private cases.
    """
    result = getattr(submission, "result", None)
    if not scores or result is None:
        return None
    metrics = result.metrics or {}
    if private or "public" not in metrics:
        return metrics
    return {"public": metrics["public"]}


class SubmissionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uid")
    challenge = serializers.CharField(source="phase.challenge.slug")
    phase = serializers.CharField(source="phase.slug")
    team = serializers.CharField(source="team.name")
    created_by = serializers.CharField(source="created_by.username")
    error_class = serializers.SerializerMethodField(
        help_text="Why the submission failed (the container contract's error classes); "
        "null unless it failed."
    )
    scores_visible = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "id", "number", "challenge", "phase", "team", "kind", "filename", "sha256", "size",
            "status", "error_class", "error_message", "selected", "is_baseline", "created_by",
            "created_at", "started_at", "finished_at", "scores_visible", "metrics",
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.ChoiceField(choices=Submission.ErrorClass.choices, allow_null=True)
    )
    def get_error_class(self, submission: Submission) -> str | None:
        return submission.error_class or None

    def get_scores_visible(self, submission: Submission) -> bool:
        return bool(self.context["scores_visible"])

    @extend_schema_field(Metrics)
    def get_metrics(self, submission: Submission) -> Any:
        return visible_metrics(submission, scores=self.context["scores_visible"],
                               private=self.context["private_visible"])


class RunSerializer(serializers.ModelSerializer):
    log_visible = serializers.SerializerMethodField(
        help_text="Sanity-run logs are always shown; hidden-data logs only where the phase "
        "allows it (organisers always)."
    )
    log = serializers.SerializerMethodField(help_text="The last part of the run's output.")

    error_class = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "lane", "attempt", "exit_code", "timed_out", "oom_killed", "error_class",
            "duration_s", "started_at", "finished_at", "log_visible", "log",
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.ChoiceField(choices=Submission.ErrorClass.choices, allow_null=True)
    )
    def get_error_class(self, run: Run) -> str | None:
        return run.error_class or None

    def get_log_visible(self, run: Run) -> bool:
        return run.lane == Run.Lane.SANITY or bool(self.context["hidden_logs_visible"])

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_log(self, run: Run) -> str | None:
        return run.log_tail if self.get_log_visible(run) else None


class SubmissionDetailSerializer(SubmissionSerializer):
    runs = serializers.SerializerMethodField()

    class Meta(SubmissionSerializer.Meta):
        fields = [*SubmissionSerializer.Meta.fields, "runs"]
        read_only_fields = fields

    @extend_schema_field(RunSerializer(many=True))
    def get_runs(self, submission: Submission) -> Any:
        # The current attempt only, as on the submission page.
        runs = submission.runs.filter(attempt=submission.attempts).order_by("started_at")
        return RunSerializer(runs, many=True, context=self.context).data


class QuotaSerializer(serializers.Serializer):
    per_day = serializers.IntegerField()
    used_today = serializers.IntegerField()
    left_today = serializers.IntegerField()
    total = serializers.IntegerField()
    used_total = serializers.IntegerField()
    left_total = serializers.IntegerField()
    concurrent = serializers.IntegerField(help_text="Submissions evaluated at the same time.")
    running = serializers.IntegerField()
    resets_at = serializers.DateTimeField(help_text="When the daily quota resets (UTC).")


class UploadSessionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uid")
    size = serializers.IntegerField(source="total_size")
    submission = serializers.SerializerMethodField()

    class Meta:
        model = UploadSession
        fields = ["id", "kind", "filename", "size", "received", "created_at", "submission"]
        read_only_fields = fields

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_submission(self, session: UploadSession) -> str | None:
        return str(session.submission.uid) if session.submission_id else None


# --- input -------------------------------------------------------------------------------


class SubmissionCreateSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    kind = serializers.ChoiceField(choices=Phase.Kind.choices)


class SubmissionSelectSerializer(serializers.Serializer):
    selected = serializers.BooleanField(
        default=True, help_text="true to mark a final entry, false to unmark it."
    )


class UploadStartSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Phase.Kind.choices)
    filename = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=1, help_text="Total size of the file in bytes.")


class ChunkOffsetSerializer(serializers.Serializer):
    offset = serializers.IntegerField(
        min_value=0, help_text="Where this chunk starts: the `received` count of the session."
    )


def idempotency_key(request: Any) -> str | None:
    """The Idempotency-Key header, validated; None when absent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise serializers.ValidationError(
            {"Idempotency-Key": ["Use 1 to 100 visible ASCII characters (e.g. a UUID)."]}
        )
    return key  # type: ignore[no-any-return]
