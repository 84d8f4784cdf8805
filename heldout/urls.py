from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from challenges.admin_views import view_on_site
from core.docs_site import docs_page
from core.health import healthz

admin.site.site_header = "Heldout administration"
admin.site.site_title = "Heldout admin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # The documentation site as `make docs` built it (core.docs_site).
    path("docs/", docs_page, name="docs"),
    path("docs/<path:path>", docs_page, name="docs_page"),
    # Before the admin's own: its "view on site" redirect is not scoped to the user's rows.
    path("admin/r/<int:content_type_id>/<path:object_id>/", admin.site.admin_view(view_on_site)),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/", include("heldout.api")),
    path("", include("submissions.urls")),
    path("", include("leaderboards.urls")),
    path("", include("challenges.urls")),
]

# RequestDataTooBig is 413, and bad requests under /api/ answer in the API's JSON shape.
handler400 = "core.middleware.bad_request"
