"""Admin scoping: an organiser (staff, listed on a challenge) sees and edits only rows of
the challenges they organise; superusers see everything. Organisers need no Django model
permissions: being listed as organiser is the permission.

Actions act only on rows the acting user may see: Django filters the selection by the list's
queryset, and ScopedActions refuses a selection naming any other row outright (nothing done,
nothing audited). Stations belong to no one challenge: see `stations_of` and `may_accept`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect

from challenges.models import Challenge, EvaluationSet, Station, StationDataset
from challenges.selectors import may_create_challenges


def organised(request: HttpRequest) -> QuerySet[Challenge]:
    return Challenge.objects.filter(organisers=request.user)


class ScopedActions:
    """For ModelAdmins whose get_queryset is scoped to the user: an action posted with rows
    outside it (another challenge's, a tampered form, rows gone meanwhile) is refused whole,
    instead of Django's silent filtering that would act on the rest."""

    model: type[Model]

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        try:
            wanted = {self.model._meta.pk.to_python(value) for value in selected}
        except ValidationError:  # ids that are not ids: a message, not a database error
            return _refuse(request, "Those are not rows of this list; nothing was done.")
        if queryset.filter(pk__in=wanted).count() != len(wanted):
            return _refuse(request, "Some selected rows are not yours to act on (they belong "
                           "to challenges you do not organise, or are gone); nothing was done.")
        return super().response_action(request, queryset)  # type: ignore[misc]


def _refuse(request: HttpRequest, message: str) -> HttpResponseRedirect:
    messages.error(request, message)
    return HttpResponseRedirect(request.get_full_path())


class OrganiserScopedAdmin(ScopedActions, admin.ModelAdmin):
    challenge_path = "challenge"  # lookup from this model to its Challenge

    def _is_organiser(self, request: HttpRequest) -> bool:
        """Staff listed on a challenge, or in the `Organisers` group (who may create one)."""
        user = request.user
        return bool(user.is_active and user.is_staff and (
            organised(request).exists() or may_create_challenges(user=user)))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        if self.challenge_path == "":
            return queryset.filter(pk__in=organised(request))
        # values("pk"): the path may end in a foreign key or a plain id column (audit events).
        within = {f"{self.challenge_path}__in": organised(request).values("pk")}
        return queryset.filter(**within).distinct()

    def _owns(self, request: HttpRequest, obj: Model | None) -> bool:
        if request.user.is_superuser:
            return True
        if not self._is_organiser(request):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or self._is_organiser(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._owns(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._owns(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser and db_field.related_model is Challenge:
            kwargs["queryset"] = organised(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class OrganiserScopedInline:
    """Mixin for inlines: their rows follow the parent row, so whoever may change the parent
    (its challenge's organiser) sees and edits them. Without it an inline asks for Django
    model permissions, which organisers do not have, and disappears for them."""

    admin_site: admin.AdminSite
    parent_model: type[Model]

    def _parent_allows(self, request: HttpRequest, obj: Model | None) -> bool:
        parent = self.admin_site.get_model_admin(self.parent_model)
        return bool(parent.has_change_permission(request, obj))

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._parent_allows(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._parent_allows(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser


# --- stations ----------------------------------------------------------------------------
# A station serves the challenges its hospital allows (`allowed_challenges`, slugs); a
# challenge uses a station's dataset when one of its evaluation sets names it in `sources`.
# JSON is filtered in Python: SQLite (the demo's default) has no JSON `contains`.


def _remote_sets() -> list[EvaluationSet]:
    return list(EvaluationSet.objects.exclude(sources=[]).select_related("challenge"))


def stations_of(request: HttpRequest) -> QuerySet[Station]:
    """The stations an organiser has business with: those their challenges' sets use, and
    those that serve one of their challenges. Superusers: all."""
    if request.user.is_superuser:
        return Station.objects.all()
    mine = set(organised(request).values_list("pk", flat=True))
    slugs = set(Challenge.objects.filter(pk__in=mine).values_list("slug", flat=True))
    names = {source["station"] for item in _remote_sets() if item.challenge_id in mine
             for source in item.sources}
    serving = {s.pk for s in Station.objects.all() if slugs & set(s.allowed_challenges)}
    return Station.objects.filter(Q(name__in=names) | Q(pk__in=serving))


def dataset_users(dataset: StationDataset) -> set[Challenge]:
    """The challenges whose evaluation sets name this station dataset."""
    where = (dataset.station.name, dataset.name)
    return {item.challenge for item in _remote_sets()
            if where in {(s.get("station"), s.get("dataset")) for s in item.sources}}


def may_accept(request: HttpRequest, dataset: StationDataset) -> bool:
    """Accepting a changed fingerprint lets every challenge that uses the dataset run on the
    new data again, so it is for a superuser, or for an organiser of every one of those
    challenges, provided the station serves at least one of them (an organiser whose
    challenge the station does not serve has no say over its data)."""
    if request.user.is_superuser:
        return True
    users = dataset_users(dataset)
    served = {c for c in users if c.slug in dataset.station.allowed_challenges}
    return bool(served) and set(organised(request)) >= users
