"""URL configuration of /api/: the schema, the reference page and version 1's endpoints.
The shared API machinery (error handler, schema hooks, reference page) is in core.api."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from accounts.api import AuthTokenView
from challenges import api as challenges_api
from core.api import Unmatched, api_docs
from leaderboards import api as leaderboards_api
from scoring import station_api
from submissions import api as submissions_api

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", api_docs, name="docs"),
    path("v1/auth/token/", AuthTokenView.as_view(), name="auth-token"),
    path("v1/", include(challenges_api.urlpatterns)),
    path("v1/", include(submissions_api.urlpatterns)),
    path("v1/", include(leaderboards_api.urlpatterns)),
    path("v1/", include(station_api.urlpatterns)),
    re_path(r"", Unmatched.as_view()),  # last
]
