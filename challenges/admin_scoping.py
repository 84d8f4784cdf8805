"""Admin scoping: an organiser (staff, listed on a challenge) sees and edits only rows of
the challenges they organise; superusers see everything. Organisers need no Django model
permissions: being listed as organiser is the permission."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseRedirect

from challenges.models import Challenge
from challenges.selectors import may_create_challenges


def organised(request: HttpRequest) -> QuerySet[Challenge]:
    return Challenge.objects.filter(organisers=request.user)


class OrganiserScopedAdmin(admin.ModelAdmin):
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

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        """An action posted with ids that are not ids (a tampered form) gets a message, not a
        server error from the database."""
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        try:
            for value in selected:
                self.model._meta.pk.to_python(value)
        except ValidationError:
            messages.error(request, "Those are not rows of this list; nothing was done.")
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

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
