from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import path
from django.utils import timezone

from challenges import admin_views, announcements, lifecycle, selectors, stations
from challenges.admin_scoping import (
    OrganiserScopedAdmin,
    OrganiserScopedInline,
    ScopedActions,
    may_accept,
    organised,
    stations_of,
)
from challenges.exceptions import BundleError
from challenges.models import (
    METRIC_CHOICES,
    Announcement,
    Challenge,
    EvaluationSet,
    Invitation,
    JoinRequest,
    Membership,
    Phase,
    PublicFile,
    Station,
    StationDataset,
    Team,
    TermsAcceptance,
)
from challenges.services import challenge_save, normalised_text, terms_change_pending
from challenges.templatetags.heldout import markdown
from core import dispatch
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
        ("Scoring", {"fields": ["task", ("primary_metric", "secondary_metrics"),
                                ("evaluation_set", "sanity_set"),
                                ("selection_limit", "bootstrap_resamples")]}),
        ("Sandbox", {"fields": [("limit_cpus", "limit_memory_mb", "limit_seconds")]}),
        ("Visibility", {"fields": [("score_visibility", "show_logs", "private_published"),
                                   ("score_release", "release_decimals", "release_eta")]}),
    ]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self._parent_allows(request, obj)  # organisers add and remove phases

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self._parent_allows(request, obj)

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
        return False  # added with a checksum through the public file admin (upload)

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self._parent_allows(request, obj)


class OrganiserText(forms.CharField):
    """Markdown as the organiser wrote it. A plain CharField strips the text, so a stored
    text ending in a newline (every imported file does) came back "changed" from a form that
    changed nothing, and a browser posts textareas with CRLF line endings: both read as new
    terms. Here the text is kept (CRLF, the form encoding's, becomes LF) and compared as the
    service compares it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "strip": False})

    def to_python(self, value: Any) -> str:
        return str(super().to_python(value)).replace("\r\n", "\n")

    def has_changed(self, initial: Any, data: Any) -> bool:
        if self.disabled:
            return False
        return normalised_text(initial or "") != normalised_text(self.to_python(data))


class ChallengeForm(forms.ModelForm):
    """Changed terms ask every participant to accept them again, so a save that changes
    them is held once: the form comes back with a warning and a box to tick (no script)."""

    confirm_terms = forms.BooleanField(
        required=False, widget=forms.HiddenInput, initial=False,
        label="Yes, ask everyone to accept the terms again")

    class Meta:
        model = Challenge
        fields = ["slug", "title", "summary", "description", "task", "terms", "visibility",
                  "max_team_size", "organisers"]
        field_classes = {"description": OrganiserText, "terms": OrganiserText}
        help_texts = {"terms": "Data-use terms (Markdown). Changing the text (not its line "
                      "endings or surrounding spaces) bumps the version: you are asked to "
                      "confirm, then everyone accepts the new version before taking part "
                      "again."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._terms_edited(self.data.get(self.add_prefix("terms"))):
            self.fields["confirm_terms"].widget = forms.CheckboxInput()

    def _terms_edited(self, terms: Any) -> bool:
        return (self.is_bound and "terms" in self.fields and isinstance(terms, str)
                and terms_change_pending(challenge=self.instance, terms=terms))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self._terms_edited(data.get("terms")) and not data.get("confirm_terms"):
            self.add_error("confirm_terms", self._terms_warning())
        return data

    def _terms_warning(self) -> str:
        version = self.instance.terms_version
        accepted = TermsAcceptance.objects.filter(challenge=self.instance,
                                                  version=version).count()
        people = f"{accepted} person" if accepted == 1 else f"{accepted} people"
        return (f"You changed the data-use terms. Saving will ask every participant to "
                f"accept the terms again: {people} accepted version {version}, and nobody "
                f"downloads data, submits or joins a team until they accept version "
                f"{version + 1}. Tick the box to save the new terms, or undo your change.")


@admin.register(Challenge)
class ChallengeAdmin(OrganiserScopedAdmin):
    challenge_path = ""
    form = ChallengeForm
    change_list_template = "admin/challenges/challenge/change_list.html"
    change_form_template = "admin/challenges/challenge/change_form.html"
    list_display = ["title", "slug", "status", "task", "visibility", "created_at"]
    list_filter = ["status", "task", "visibility"]
    search_fields = ["title", "slug"]
    filter_horizontal = ["organisers"]
    readonly_fields = ["terms_version", "status", "published_at"]
    inlines = [PhaseInline, PublicFileInline]

    def get_urls(self):  # type: ignore[no-untyped-def]
        def view(function):  # type: ignore[no-untyped-def]
            return self.admin_site.admin_view(partial(function, self))

        return [
            path("import/", view(admin_views.import_view), name="challenges_challenge_import"),
            path("<str:object_id>/publish/", view(admin_views.publish_view),
                 name="challenges_challenge_publish"),
            path("<str:object_id>/unpublish/", view(admin_views.unpublish_view),
                 name="challenges_challenge_unpublish"),
            path("<str:object_id>/dashboard/", view(admin_views.dashboard_view),
                 name="challenges_challenge_dashboard"),
            path("<str:object_id>/dashboard/live/", view(admin_views.dashboard_live_view),
                 name="challenges_challenge_dashboard_live"),
            path("<str:object_id>/export/", view(admin_views.export_view),
                 name="challenges_challenge_export"),
            *super().get_urls(),
        ]

    def has_add_permission(self, request, *args):  # type: ignore[no-untyped-def]
        return selectors.may_create_challenges(user=request.user)

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        fields = list(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return [*fields, "organisers"] + (["slug"] if obj is not None else [])

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # The confirmation box right under the terms it confirms.
        fields = [f for f in super().get_fields(request, obj) if f != "confirm_terms"]
        return fields[:fields.index("terms") + 1] + ["confirm_terms"] + fields[
            fields.index("terms") + 1:] if "terms" in fields else fields

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        challenge = Challenge.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        extra = {**(extra_context or {})}
        if challenge is not None and self.has_view_permission(request, challenge):
            extra["publish_problems"] = lifecycle.publish_problems(challenge=challenge)
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        # Through the service: edited terms get a new version, a new challenge is a draft
        # organised by its creator, and the edit is audited.
        version = obj.terms_version
        challenge_save(challenge=obj, actor=request.user, changed=form.changed_data)
        if change and obj.terms_version != version:
            messages.warning(request, f"The terms are now version {obj.terms_version}: "
                             "every participant accepts them again before taking part.")

    def save_formset(self, request, form, formset, change):  # type: ignore[no-untyped-def]
        super().save_formset(request, form, formset, change)
        name = formset.model._meta.model_name
        for inline_form in formset.forms:
            if inline_form.has_changed() and inline_form.instance.pk:
                audit_record(verb=f"{name}.edited", actor=request.user, challenge=form.instance,
                             target=f"{name}:{inline_form.instance.pk}",
                             data={"fields": sorted(inline_form.changed_data)})
                if name == "phase" and METRIC_FIELDS & set(inline_form.changed_data):
                    # its results are stale now: the boards say so once recomputed
                    pk = inline_form.instance.pk
                    transaction.on_commit(lambda pk=pk: dispatch.refresh_leaderboard(pk))
        for obj in formset.deleted_objects:
            audit_record(verb=f"{name}.deleted", actor=request.user, challenge=form.instance,
                         data={"name": str(obj)})


METRIC_FIELDS = {"primary_metric", "secondary_metrics", "evaluation_set"}


class EvaluationSetForm(forms.ModelForm):
    """Files arrive here as uploads (an inputs folder as a zip, a labels CSV) and are checked
    and stored as import does; paths, checksums and counts are the service's to write."""

    inputs_zip = forms.FileField(required=False, label="Inputs (zip)", help_text=(
        "A zip of the inputs folder: features.csv (tabular) or manifest.csv with images/, "
        "each with an id column. Replaces the current inputs."))
    labels_csv = forms.FileField(required=False, label="Labels (CSV)", help_text=(
        "id,label (0/1), optional split (public/private) and subgroup columns. Replaces the "
        "current labels."))
    lesions_csv = forms.FileField(required=False, label="Lesions (CSV, detection)", help_text=(
        "id,x,y,radius in pixels of images/&lt;id&gt;.png, origin top-left; several rows per film; "
        "further columns are lesion subgroups. Replaces the current lesions."))

    class Meta:
        model = EvaluationSet
        fields = ["challenge", "name", "is_public", "inputs_public"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.instance.pk is None and not (data.get("inputs_zip") and data.get("labels_csv")):
            raise ValidationError("A new evaluation set needs both its inputs zip and labels.")
        return data


def _stage(upload: Any, folder: Path) -> Path | None:
    return admin_views.stage_upload(upload, folder) if upload else None


@admin.register(EvaluationSet)
class EvaluationSetAdmin(OrganiserScopedAdmin):
    form = EvaluationSetForm
    list_display = ["name", "challenge", "is_public", "n_cases", "n_positive", "has_split"]
    list_filter = ["is_public", ("challenge", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "challenge__slug"]
    readonly_fields = ["data_card_table", "provenance_table", "inputs_dir", "labels_file",
                       "lesions_file", "n_cases", "n_positive", "n_lesions", "has_split",
                       "subgroup_columns", "lesion_subgroup_columns", "checksums"]
    fieldsets = [
        (None, {"fields": ["challenge", "name", ("is_public", "inputs_public")]}),
        ("Files", {"fields": ["inputs_zip", "labels_csv", "lesions_csv"]}),
        ("Data card", {"fields": ["data_card_table", "provenance_table"]}),
        ("Stored", {"classes": ["collapse"], "fields": [
            "inputs_dir", "labels_file", "lesions_file",
            ("n_cases", "n_positive", "n_lesions", "has_split"),
            "subgroup_columns", "lesion_subgroup_columns", "checksums"]}),
    ]

    def has_add_permission(self, request, *args):  # type: ignore[no-untyped-def]
        return request.user.is_superuser or organised(request).exists()

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "challenge"] if obj is not None else fields

    @admin.display(description="Data card")
    def data_card_table(self, obj: EvaluationSet) -> str:
        from django.template.loader import render_to_string

        return render_to_string("admin/challenges/_data_card.html", {"card": obj.data_card})

    @admin.display(description="Provenance")
    def provenance_table(self, obj: EvaluationSet) -> str:
        from django.template.loader import render_to_string

        return render_to_string("admin/challenges/_provenance.html",
                                {"entries": list(reversed(obj.provenance or []))})

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        data = form.cleaned_data
        with tempfile.TemporaryDirectory(prefix="heldout-set-") as scratch:
            inputs = _stage(data.get("inputs_zip"), Path(scratch) / "zip")
            labels = _stage(data.get("labels_csv"), Path(scratch) / "labels")
            lesions = _stage(data.get("lesions_csv"), Path(scratch) / "lesions")
            if not change:
                obj.inputs_dir = obj.labels_file = ""
            try:
                _save_set(request, obj, form, inputs, labels, lesions)
            except BundleError as error:
                raise _Refused(error.problems) from None

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        from django.db import transaction
        from django.http import HttpResponseRedirect

        try:
            with transaction.atomic():
                return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused as refused:
            for problem in refused.problems:
                messages.error(request, problem)
            messages.error(request, "Nothing was changed: the files above were refused.")
            return HttpResponseRedirect(request.get_full_path())


class _Refused(Exception):
    """Uploaded files failed the import's checks: roll the whole admin save back."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _save_set(request: Any, obj: EvaluationSet, form: Any, inputs: Path | None,
              labels: Path | None, lesions: Path | None) -> None:
    created = obj.pk is None
    if created:
        obj.save()
    elif form.changed_data:
        obj.save()
        fields = sorted(set(form.changed_data) - {"inputs_zip", "labels_csv", "lesions_csv"})
        if fields:
            audit_record(verb="evaluationset.edited", actor=request.user, challenge=obj.challenge,
                         target=f"evaluationset:{obj.pk}", data={"fields": fields})
    if inputs is None and created:
        return
    lifecycle.evaluation_set_store(evaluation_set=obj, actor=request.user, inputs_zip=inputs,
                                   labels=labels, lesions=lesions)
    if created:
        audit_record(verb="evaluationset.created", actor=request.user, challenge=obj.challenge,
                     target=f"evaluationset:{obj.pk}", data={"name": obj.name})


class PublicFileForm(forms.ModelForm):
    upload = forms.FileField(help_text="The file participants download after accepting the "
                             "terms. Stored with its sha256; replaces a file of the same name.")

    class Meta:
        model = PublicFile
        fields = ["challenge", "name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = "Shown and used for download; blank: the file's name."

    def validate_unique(self) -> None:
        pass  # a file of the same name is replaced, not refused


@admin.register(PublicFile)
class PublicFileAdmin(OrganiserScopedAdmin):
    form = PublicFileForm
    list_display = ["name", "challenge", "size", "sha256"]
    list_filter = [("challenge", admin.RelatedOnlyFieldListFilter)]

    def has_add_permission(self, request, *args):  # type: ignore[no-untyped-def]
        return request.user.is_superuser or organised(request).exists()

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self._owns(request, obj)

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        upload = form.cleaned_data["upload"]
        name = form.cleaned_data.get("name") or Path(upload.name).name
        with tempfile.TemporaryDirectory(prefix="heldout-public-") as scratch:
            source = admin_views.stage_upload(upload, Path(scratch))
            stored = lifecycle.public_file_store(challenge=obj.challenge, name=name,
                                                 source=source, actor=request.user)
        obj.pk, obj.path, obj.sha256, obj.size = stored.pk, stored.path, stored.sha256, stored.size

    def delete_model(self, request, obj):  # type: ignore[no-untyped-def]
        audit_record(verb="publicfile.deleted", actor=request.user, challenge=obj.challenge,
                     target=f"publicfile:{obj.pk}", data={"name": obj.name})
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        # The "delete selected" action: audited file by file, as the delete page is.
        with transaction.atomic():
            for obj in queryset.select_related("challenge"):
                self.delete_model(request, obj)


class AnnouncementForm(forms.ModelForm):
    class Meta:
        model = Announcement
        fields = ["challenge", "title", "body", "shown_until"]
        help_texts = {"body": "Markdown, rendered safely as the description is. E-mailed to "
                      "every participant (team members and everyone who accepted the terms) "
                      "when you save, and shown as a banner on the challenge's pages."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "shown_until" in self.fields and self.instance.pk is None:
            self.fields["shown_until"].initial = timezone.now() + announcements.SHOWN_FOR

    def clean_shown_until(self) -> Any:
        value = self.cleaned_data["shown_until"]
        if self.instance.pk is None and value <= timezone.now():
            raise ValidationError("Show the banner until a time in the future.")
        if self.instance.pk is not None:
            # Any time up to its posting takes the banner down (the widget has no
            # sub-second precision: "now" typed in the minute it was posted is "before").
            return max(value, self.instance.created_at)
        return value


@admin.register(Announcement)
class AnnouncementAdmin(OrganiserScopedAdmin):
    """Organisers post to their challenge's participants: e-mailed once to each and shown
    as a banner until `shown_until`. The text is fixed once posted (it was mailed); the
    banner's end may change (set it to now to take it down)."""

    form = AnnouncementForm
    list_display = ["title", "challenge", "created_at", "shown_until", "showing", "mailed"]
    list_filter = [("challenge", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["title", "body"]

    def has_add_permission(self, request, *args):  # type: ignore[no-untyped-def]
        return request.user.is_superuser or organised(request).exists()

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        if obj is None:
            return []
        return ["challenge", "title", "preview", "created_by", "created_at", "mailed"]

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        if obj is None:
            return ["challenge", "title", "body", "shown_until"]
        return ["challenge", "title", "preview", "shown_until", "created_by", "created_at",
                "mailed"]

    @admin.display(description="Message")
    def preview(self, obj: Announcement) -> str:
        return markdown(obj.body)

    @admin.display(boolean=True, description="Banner shown")
    def showing(self, obj: Announcement) -> bool:
        return obj.is_shown()

    @admin.display(description="E-mailed to")
    def mailed(self, obj: Announcement) -> str:
        count = len(obj.mailed_to or [])
        return f"{count} participant{'s' if count != 1 else ''}" + (
            f" (last {obj.mailed_at:%Y-%m-%d %H:%M} UTC)" if obj.mailed_at else "")

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        data = form.cleaned_data
        if change:
            announcements.announcement_show_until(announcement=obj, actor=request.user,
                                                  shown_until=data["shown_until"])
            return
        posted = announcements.announcement_post(
            challenge=data["challenge"], actor=request.user, title=data["title"],
            body=data["body"], shown_until=data["shown_until"])
        obj.pk, obj.created_at, obj.created_by = posted.pk, posted.created_at, posted.created_by

    def response_add(self, request, obj, post_url_continue=None):  # type: ignore[no-untyped-def]
        messages.info(request, "The announcement is being e-mailed to the participants and "
                      "shows as a banner on the challenge's pages.")
        return super().response_add(request, obj, post_url_continue)


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


def _sees_stations(request: Any) -> bool:
    """Superusers, and staff who organise a challenge (the list then shows the stations
    their challenges use or that serve them: `stations_of`)."""
    return bool(request.user.is_superuser or (request.user.is_staff and
                                              organised(request).exists()))


class StationDatasetInline(admin.TabularInline):
    model = StationDataset
    extra = 0
    can_delete = False
    fields = ["name", "fingerprint_summary", "reported_at", "changed_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_view_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self.admin_site.get_model_admin(Station).has_view_permission(request, obj)

    @admin.display(description="Fingerprint")
    def fingerprint_summary(self, obj: StationDataset) -> str:
        found = obj.fingerprint or {}
        if not found:
            return "not reported yet"
        return (f"{found.get('n_cases')} cases, {found.get('n_positive')} positives, "
                f"parts {found.get('parts')}, sha256 {str(found.get('sha256', ''))[:16]}…")


@admin.register(Station)
class StationAdmin(ScopedActions, admin.ModelAdmin):
    """Stations are registered with `manage.py station_add NAME` (the token is shown once,
    on the server's console); here organisers see the stations of their challenges, their
    datasets and last contact. A dataset whose fingerprint changed is flagged (`changed_at`)
    and audited; who may accept it: admin_scoping.may_accept."""

    list_display = ["name", "last_contact_at", "created_at", "n_datasets", "changed",
                    "allowed_challenges"]
    readonly_fields = ["name", "created_at", "last_contact_at", "allowed_challenges"]
    fields = readonly_fields
    inlines = [StationDatasetInline]
    actions = ["accept_changes"]

    @admin.action(description="Accept the changed fingerprints of these stations' datasets "
                  "(their jobs run again)", permissions=["accept"])
    def accept_changes(self, request, queryset):  # type: ignore[no-untyped-def]
        changed = list(StationDataset.objects.filter(
            station__in=queryset, changed_at__isnull=False).select_related("station"))
        mine = [d for d in changed if may_accept(request, d)]
        for dataset in mine:
            stations.dataset_accept(dataset=dataset, actor=request.user)
        messages.info(request, f"{len(mine)} dataset(s) accepted.")
        refused = [str(d) for d in changed if d not in mine]
        if refused:  # a shared station: the others' datasets stay flagged for them
            messages.error(request, "Not accepted: " + ", ".join(refused) + ". Only a "
                           "superuser, or the organisers of every challenge that uses a "
                           "dataset (one of them served by the station), accept its new "
                           "fingerprint.")

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).filter(pk__in=stations_of(request).values("pk"))

    def has_accept_permission(self, request):  # type: ignore[no-untyped-def]
        return _sees_stations(request)  # each dataset is checked in the action

    def has_module_permission(self, request):  # type: ignore[no-untyped-def]
        return _sees_stations(request)

    def has_view_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        if not _sees_stations(request):
            return False
        return obj is None or stations_of(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return request.user.is_superuser

    @admin.display(description="Datasets")
    def n_datasets(self, obj: Station) -> int:
        return obj.datasets.count()

    @admin.display(description="Changed fingerprints", boolean=True)
    def changed(self, obj: Station) -> bool:
        return obj.datasets.filter(changed_at__isnull=False).exists()
