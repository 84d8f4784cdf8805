"""API representations of challenges, phases, files and teams. Output only, except the small
input serializers at the end; rules stay in services and selectors."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from challenges.models import Challenge, Invitation, Membership, Phase, PublicFile, Team


class PhaseQuotaSerializer(serializers.Serializer):
    per_day = serializers.IntegerField(source="quota_per_day")
    total = serializers.IntegerField(source="quota_total")
    concurrent = serializers.IntegerField(source="quota_concurrent")
    count_failed = serializers.BooleanField(
        help_text="Whether failures before the hidden data (unusable upload, sanity run) use "
        "quota. Failures on hidden data always do; internal errors never do.")


class PhaseLimitsSerializer(serializers.Serializer):
    cpus = serializers.FloatField(source="limit_cpus")
    memory_mb = serializers.IntegerField(source="limit_memory_mb")
    seconds = serializers.IntegerField(source="limit_seconds")


class PhaseSerializer(serializers.ModelSerializer):
    is_open = serializers.SerializerMethodField()
    has_closed = serializers.SerializerMethodField()
    submission_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=Phase.Kind.choices)
    )
    secondary_metrics = serializers.ListField(child=serializers.CharField())
    quota = PhaseQuotaSerializer(source="*")
    limits = PhaseLimitsSerializer(source="*")
    sanity_run = serializers.SerializerMethodField(
        help_text="Whether a passing run on a small public set is required first; its logs "
        "are always shown to the team."
    )

    class Meta:
        model = Phase
        fields = [
            "slug", "title", "order", "opens_at", "closes_at", "is_open", "has_closed",
            "submission_kinds", "quota", "primary_metric", "secondary_metrics", "limits",
            "score_visibility", "show_logs", "private_published", "selection_limit",
            "sanity_run", "score_release",
        ]
        read_only_fields = fields

    def get_is_open(self, phase: Phase) -> bool:
        return phase.is_open()

    def get_has_closed(self, phase: Phase) -> bool:
        return phase.has_closed()

    def get_sanity_run(self, phase: Phase) -> bool:
        return phase.sanity_set_id is not None


class ChallengeSummarySerializer(serializers.ModelSerializer):
    phases = PhaseSerializer(many=True)

    class Meta:
        model = Challenge
        fields = ["slug", "title", "summary", "task", "visibility", "phases"]
        read_only_fields = fields


class TeamRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name"]
        read_only_fields = fields


class ViewerSerializer(serializers.Serializer):
    """What the requesting user has done in this challenge (all false for anonymous users)."""

    terms_accepted = serializers.BooleanField()
    is_organiser = serializers.BooleanField()
    team = TeamRefSerializer(allow_null=True)


class ChallengeDetailSerializer(serializers.ModelSerializer):
    phases = PhaseSerializer(many=True)
    viewer = serializers.SerializerMethodField()

    class Meta:
        model = Challenge
        fields = [
            "slug", "title", "summary", "description", "task", "visibility", "terms",
            "terms_version", "max_team_size", "phases", "viewer",
        ]
        read_only_fields = fields

    @extend_schema_field(ViewerSerializer)
    def get_viewer(self, challenge: Challenge) -> dict[str, object]:
        return ViewerSerializer(self.context["viewer"]).data


class TermsAcceptanceSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    accepted_at = serializers.DateTimeField()


class PublicFileSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = PublicFile
        fields = ["name", "size", "sha256", "download_url"]
        read_only_fields = fields

    def get_download_url(self, item: PublicFile) -> str:
        kwargs = {"slug": self.context["slug"], "name": item.name}
        path = reverse("api:file-download", kwargs=kwargs)
        return self.context["request"].build_absolute_uri(path)  # type: ignore[no-any-return]


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    is_captain = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["username", "joined_at", "is_captain"]
        read_only_fields = fields

    def get_is_captain(self, membership: Membership) -> bool:
        return membership.user_id == membership.team.captain_id


class TeamSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    captain = serializers.CharField(source="captain.username")
    members = MemberSerializer(source="memberships", many=True)

    class Meta:
        model = Team
        fields = ["id", "name", "challenge", "captain", "members", "created_at"]
        read_only_fields = fields


class InvitationSerializer(serializers.ModelSerializer):
    email = serializers.SerializerMethodField(
        help_text="Only this address may accept; null for a shareable link."
    )
    url = serializers.SerializerMethodField(help_text="The page where the invitee accepts.")

    class Meta:
        model = Invitation
        fields = ["token", "email", "url", "created_at", "expires_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.EmailField(allow_null=True))
    def get_email(self, invitation: Invitation) -> str | None:
        return invitation.email or None

    def get_url(self, invitation: Invitation) -> str:
        return self.context["request"].build_absolute_uri(  # type: ignore[no-any-return]
            invitation.get_absolute_url()
        )


# --- input -------------------------------------------------------------------------------


class TeamCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(
        required=False, allow_blank=True, default="",
        help_text="Only this address may use the invitation; blank for a shareable link.",
    )


def team_queryset() -> QuerySet[Team]:
    members = Membership.objects.select_related("user").order_by("joined_at")
    return Team.objects.select_related("challenge", "captain").prefetch_related(
        Prefetch("memberships", queryset=members)
    )
