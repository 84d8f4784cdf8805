from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from core.health import healthz

admin.site.site_header = "Heldout administration"
admin.site.site_title = "Heldout admin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/", include("heldout.api")),
    path("", include("submissions.urls")),
    path("", include("leaderboards.urls")),
    path("", include("challenges.urls")),
]
