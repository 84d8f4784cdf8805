from __future__ import annotations

from django import forms
from django.contrib import admin

from challenges.admin_scoping import OrganiserScopedAdmin, OrganiserScopedInline
from challenges.models import (
    METRIC_CHOICES,
    Challenge,
    EvaluationSet,
    Invitation,
    JoinRequest,
    Membership,
    Phase,
    PublicFile,
    Team,
    TermsAcceptance,
)
from challenges.services import challenge_save
from core.models import AuditEvent
from core.services import audit_record

# Challenge filters are RelatedOnlyFieldListFilter: a plain related filter lists every
# challenge, naming other organisers' (even invite-only) challenges to an organiser.


class PhaseForm(forms.ModelForm):
    """Kinds and secondary metrics as checkboxes of the known values, not JSON text."""

    submission_kinds = forms.MultipleChoiceField(
        choices=Phase.Kind.choices, widget=forms.CheckboxSelectMultiple)
    secondary_metrics = forms.MultipleChoiceField(
        choices=METRIC_CHOICES, widget=forms.CheckboxSelectMultiple, required=False)

    class Meta:
        model = Phase
        fields = ["submission_kinds", "secondary_metrics"]  # the inline's fieldsets add the rest


class PhaseInline(OrganiserScopedInline, admin.StackedInline):
    model = Phase
    form = PhaseForm
    extra = 0
    fk_name = "challenge"
    fieldsets = [
        (None, {"fields": [("slug", "title", "order"), ("opens_at", "closes_at")]}),
        ("Submissions", {"fields": ["submission_kinds", ("quota_per_day", "quota_total",
                                                         "quota_concurrent", "count_failed")]}),
        ("Scoring", {"fields": [("primary_metric", "secondary_metrics"),
                                ("evaluation_set", "sanity_set"),
                                ("selection_limit", "bootstrap_resamples")]}),
        ("Sandbox", {"fields": [("limit_cpus", "limit_memory_mb", "limit_seconds")]}),
        ("Visibility", {"fields": [("score_visibility", "show_logs", "private_published"),
                                   ("score_release", "release_decimals", "release_eta")]}),
    ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        if db_field.name in ("evaluation_set", "sanity_set"):
            challenge_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = EvaluationSet.objects.filter(challenge_id=challenge_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PublicFileInline(OrganiserScopedInline, admin.TabularInline):
    model = PublicFile
    extra = 0
    readonly_fields = ["name", "path", "sha256", "size"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # files arrive through import_challenge, with checksums


@admin.register(Challenge)
class ChallengeAdmin(OrganiserScopedAdmin):
    challenge_path = ""
    list_display = ["title", "slug", "task", "visibility", "max_team_size", "created_at"]
    list_filter = ["task", "visibility"]
    search_fields = ["title", "slug"]
    filter_horizontal = ["organisers"]
    readonly_fields = ["terms_version"]
    inlines = [PhaseInline, PublicFileInline]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else [*fields, "slug", "organisers"]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        # Through the service: edited terms get a new version, and the edit is audited.
        challenge_save(challenge=obj, actor=request.user, changed=form.changed_data)

    def save_formset(self, request, form, formset, change):  # type: ignore[no-untyped-def]
        super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            if inline_form.has_changed() and inline_form.instance.pk:
                audit_record(verb=f"{formset.model._meta.model_name}.edited",
                             actor=request.user, challenge=form.instance,
                             target=f"{formset.model._meta.model_name}:{inline_form.instance.pk}",
                             data={"fields": sorted(inline_form.changed_data)})


@admin.register(EvaluationSet)
class EvaluationSetAdmin(OrganiserScopedAdmin):
    list_display = ["name", "challenge", "is_public", "n_cases", "n_positive", "has_split"]
    list_filter = ["is_public", ("challenge", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "challenge__slug"]
    readonly_fields = ["inputs_dir", "labels_file", "checksums", "n_cases", "n_positive",
                       "has_split", "subgroup_columns"]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        audit_record(verb="evaluationset.edited", actor=request.user, challenge=obj.challenge,
                     target=f"evaluationset:{obj.pk}", data={"fields": sorted(form.changed_data)})


class MembershipInline(OrganiserScopedInline, admin.TabularInline):
    model = Membership
    extra = 0
    readonly_fields = ["user", "joined_at"]
    exclude = ["challenge"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # members join through invitations and requests (services)


@admin.register(Team)
class TeamAdmin(OrganiserScopedAdmin):
    list_display = ["name", "challenge", "captain", "is_organiser_team", "created_at"]
    list_filter = [("challenge", admin.RelatedOnlyFieldListFilter), "is_organiser_team"]
    search_fields = ["name", "captain__username", "memberships__user__username"]
    readonly_fields = ["challenge", "captain", "created_at"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(OrganiserScopedAdmin):
    list_display = ["user", "team", "challenge", "joined_at"]
    list_filter = [("challenge", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "user__email", "team__name"]
    readonly_fields = ["user", "team", "challenge", "joined_at"]


@admin.register(TermsAcceptance)
class TermsAcceptanceAdmin(OrganiserScopedAdmin):
    list_display = ["user", "challenge", "version", "accepted_at"]
    list_filter = [("challenge", admin.RelatedOnlyFieldListFilter), "version"]
    search_fields = ["user__username", "user__email"]
    readonly_fields = ["user", "challenge", "version", "accepted_at"]


@admin.register(Invitation)
class InvitationAdmin(OrganiserScopedAdmin):
    challenge_path = "team__challenge"
    list_display = ["team", "email", "created_at", "expires_at", "used_at"]
    list_filter = [("team__challenge", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["email", "team__name"]
    readonly_fields = ["team", "email", "token", "created_by", "created_at", "used_at", "used_by"]


@admin.register(JoinRequest)
class JoinRequestAdmin(OrganiserScopedAdmin):
    challenge_path = "team__challenge"
    list_display = ["team", "user", "status", "created_at"]
    list_filter = ["status", ("team__challenge", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["team", "user", "status", "created_at", "decided_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(OrganiserScopedAdmin):
    challenge_path = "challenge_id"
    list_display = ["at", "verb", "actor_name", "challenge_id", "target"]
    list_filter = ["verb"]
    search_fields = ["verb", "target", "actor_name"]
    readonly_fields = ["at", "verb", "actor_id", "actor_name", "challenge_id", "target", "data"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # append-only

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
