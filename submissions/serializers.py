"""API representations of submissions, runs, quotas and resumable uploads.

What a viewer may see is decided once by challenges.visibility (scores, hidden-lane logs, the
private board) and handed to these serializers in their context as `rights`; the serializers
only apply it.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from challenges.models import Phase
from challenges.visibility import PhaseRights
from submissions.models import NOTE_MAX_LENGTH, Submission, UploadSession
from submissions.services import max_upload_bytes

SANITY_LANE = "sanity"  # scoring.models.Run.Lane.SANITY: its logs are always the team's

IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,100}$")  # visible ASCII; the model column holds 100

Metrics = serializers.DictField(
    child=serializers.DictField(child=serializers.FloatField(allow_null=True)),
    allow_null=True,
    help_text="Scores by part ('all', or 'public' and 'private' where the phase has a split); "
    "null while hidden or not scored.",
)


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
    score_note = serializers.SerializerMethodField(
        help_text="Under a ladder release policy, for a result that released nothing new: "
        "\"No improvement on your best (0.87)\" (its metrics are that best); else null.")
    url = serializers.SerializerMethodField(help_text="The submission's page in the browser.")
    started_at = serializers.SerializerMethodField(
        help_text="When the evaluation started (to the minute for teams).")
    finished_at = serializers.SerializerMethodField(
        help_text="When it ended (to the minute for teams: the total time would otherwise time "
        "the run on hidden data).")

    class Meta:
        model = Submission
        fields = [
            "id", "number", "challenge", "phase", "team", "kind", "filename", "sha256", "size",
            "status", "error_class", "error_message", "selected", "note", "is_baseline",
            "created_by",
            "created_at", "started_at", "finished_at", "scores_visible", "metrics",
            "score_note", "url",
        ]
        read_only_fields = fields

    @extend_schema_field(
        serializers.ChoiceField(choices=Submission.ErrorClass.choices, allow_null=True)
    )
    def get_error_class(self, submission: Submission) -> str | None:
        return submission.error_class or None

    def to_representation(self, submission: Submission) -> Any:
        # As the viewer may see it now: an outcome on hidden data is told to the team at
        # the end of the period it ended in (Submission.as_told).
        return super().to_representation(self.rights.shown(submission))

    @property
    def rights(self) -> PhaseRights:
        return self.context["rights"]  # type: ignore[no-any-return]

    def get_scores_visible(self, submission: Submission) -> bool:
        return self.rights.scores_visible

    @extend_schema_field(Metrics)
    def get_metrics(self, submission: Submission) -> Any:
        return self.rights.shown_metrics(getattr(submission, "result", None))

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_score_note(self, submission: Submission) -> str | None:
        return self.rights.score_note(submission, getattr(submission, "result", None)) or None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_started_at(self, submission: Submission) -> Any:
        started = self.rights.submission_times(submission)[0]
        return serializers.DateTimeField().to_representation(started) if started else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_finished_at(self, submission: Submission) -> Any:
        finished = self.rights.submission_times(submission)[1]
        return serializers.DateTimeField().to_representation(finished) if finished else None

    def get_url(self, submission: Submission) -> str:
        path = submission.get_absolute_url()
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


HIDDEN_RUN_DETAILS = {"exit_code": None, "timed_out": None, "oom_killed": None,
                      "duration_s": None, "started_at": None, "finished_at": None}


class RunSerializer(serializers.Serializer):
    """One run of the current attempt (scoring's Run rows, read through `submission.runs`)."""

    lane = serializers.ChoiceField(choices=[("sanity", "Sanity run"), ("hidden", "Hidden data")])
    attempt = serializers.IntegerField()
    exit_code = serializers.IntegerField(allow_null=True)
    timed_out = serializers.BooleanField(allow_null=True)
    oom_killed = serializers.BooleanField(allow_null=True)
    error_class = serializers.SerializerMethodField()
    duration_s = serializers.FloatField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    log_visible = serializers.SerializerMethodField(
        help_text="Sanity-run logs are always shown; hidden-data logs only where the phase "
        "allows it (organisers always)."
    )
    log = serializers.SerializerMethodField(help_text="The last part of the run's output.")

    @extend_schema_field(
        serializers.ChoiceField(choices=Submission.ErrorClass.choices, allow_null=True)
    )
    def get_error_class(self, run: Any) -> str | None:
        return run.error_class or None

    def get_log_visible(self, run: Any) -> bool:
        return run.lane == SANITY_LANE or self.context["rights"].hidden_logs_visible

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_log(self, run: Any) -> str | None:
        return run.log_tail if self.get_log_visible(run) else None

    def to_representation(self, run: Any) -> Any:
        body = super().to_representation(run)
        if not self.context["rights"].run_details_visible(run):
            # A run on hidden data tells a team its error class only.
            body.update(HIDDEN_RUN_DETAILS)
        return body


class SubmissionDetailSerializer(SubmissionSerializer):
    runs = serializers.SerializerMethodField()

    class Meta(SubmissionSerializer.Meta):
        fields = [*SubmissionSerializer.Meta.fields, "runs"]
        read_only_fields = fields

    @extend_schema_field(RunSerializer(many=True))
    def get_runs(self, submission: Submission) -> Any:
        # The current attempt only, as on the submission page.
        runs = submission.runs.filter(attempt=submission.attempts).order_by("started_at")
        shown = self.rights.shown_runs(submission, list(runs))
        return RunSerializer(shown, many=True, context=self.context).data


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


class SubmissionNoteSerializer(serializers.Serializer):
    note = serializers.CharField(
        max_length=NOTE_MAX_LENGTH, allow_blank=True, trim_whitespace=True,
        help_text=f"The team's note on this submission (at most {NOTE_MAX_LENGTH} characters); "
        "an empty string clears it.",
    )


def size_limits() -> str:
    return ", ".join(f"{kind}: {max_upload_bytes(kind) // 1024**2} MB"
                     for kind in Phase.Kind.values)


class UploadStartSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Phase.Kind.choices)
    filename = serializers.CharField(max_length=255)
    size = serializers.IntegerField(
        min_value=1, help_text=f"Total size of the file in bytes; at most {size_limits()}. "
        "A person and a team may hold only a few unfinished uploads at once (upload_limit).")


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
