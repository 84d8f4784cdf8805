from __future__ import annotations

from django.contrib import admin, messages

from challenges.admin_scoping import OrganiserScopedAdmin, OrganiserScopedInline
from scoring.models import CollusionFlag, Result, Run, StationJob
from scoring.services import submission_rescore
from scoring.staleness import is_stale, stale_result_ids
from submissions.models import Submission


class StaleFilter(admin.SimpleListFilter):
    """Rows whose result was computed against replaced hidden data or changed metrics
    (Result.is_stale), among the rows the list already shows (scoped to the user)."""

    title = "stale result"
    parameter_name = "stale"
    to_result = "pk"  # from a listed row to its result's id
    from_result = "pk"  # from a result to the listed row's id

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [("yes", "Stale (re-score)"), ("no", "Up to date")]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        if self.value() not in ("yes", "no"):
            return queryset
        results = Result.objects.filter(**{f"{self.from_result}__in": queryset.values("pk")})
        stale = {f"{self.to_result}__in": stale_result_ids(results)}
        return queryset.filter(**stale) if self.value() == "yes" else queryset.exclude(**stale)


class SubmissionStaleFilter(StaleFilter):
    to_result = "result__pk"
    from_result = "submission"


@admin.register(Result)
class ResultAdmin(OrganiserScopedAdmin):
    challenge_path = "submission__phase__challenge"
    list_display = ["submission", "evaluation_set", "stale", "computed_at"]
    list_filter = [StaleFilter, ("submission__phase__challenge", admin.RelatedOnlyFieldListFilter),
                   ("submission__phase", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["submission__phase__challenge", "submission__team", "evaluation_set"]
    fields = ["submission", "evaluation_set", "stale", "metrics", "subgroups", "computed_at"]
    readonly_fields = fields

    @admin.display(boolean=True, description="Stale")
    def stale(self, obj: Result) -> bool:
        """Computed against hidden data or metrics that have changed since: re-score its
        submission (Submissions, filter “stale result”, action Re-score)."""
        return is_stale(obj)


class RunInline(OrganiserScopedInline, admin.TabularInline):
    model = Run
    extra = 0
    can_delete = False
    fields = ["lane", "attempt", "container_name", "exit_code", "timed_out", "oom_killed",
              "error_class", "duration_s", "log_tail"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class StationJobInline(OrganiserScopedInline, admin.TabularInline):
    """Hidden-data runs at data stations (organisers only): status and error class; the
    run's details stay at the station."""

    model = StationJob
    extra = 0
    can_delete = False
    fields = ["attempt", "station", "dataset", "status", "claim", "lease_until", "error_class",
              "message"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Submission)
class SubmissionAdmin(OrganiserScopedAdmin):
    challenge_path = "phase__challenge"
    list_display = ["__str__", "kind", "status", "error_class", "is_baseline", "selected",
                    "attempts", "created_at"]
    # RelatedOnly: the filter must not list other organisers' challenges and phases.
    list_filter = ["status", "error_class", "kind", "is_baseline", SubmissionStaleFilter,
                   ("phase__challenge", admin.RelatedOnlyFieldListFilter),
                   ("phase", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["team__name", "created_by__username", "sha256", "uid"]
    readonly_fields = [f.name for f in Submission._meta.fields if f.name not in ("is_baseline",)]
    actions = ["rescore"]
    inlines = [RunInline, StationJobInline]

    @admin.action(description="Re-score the selected submissions", permissions=["change"])
    def rescore(self, request, queryset):  # type: ignore[no-untyped-def]
        queued = sum(submission_rescore(submission=s, actor=request.user) for s in queryset)
        skipped = queryset.count() - queued
        messages.info(request, f"{queued} submission(s) queued again"
                      + (f"; {skipped} still being evaluated were skipped." if skipped else "."))


@admin.register(CollusionFlag)
class CollusionFlagAdmin(OrganiserScopedAdmin):
    """Same uploads and near-identical predictions across teams, for organisers to judge."""

    challenge_path = "submission__phase__challenge"
    list_display = ["submission", "other", "kind", "value", "created_at"]
    list_filter = ["kind", ("submission__phase__challenge", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["submission", "other", "kind", "value", "created_at"]
