"""REST API for leaderboards, with the visibility rules of the phase page
(leaderboards.selectors.leaderboard_for)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from challenges.selectors import visible_phase
from challenges.visibility import phase_rights
from leaderboards.selectors import leaderboard_for
from leaderboards.serializers import BoardQuerySerializer, LeaderboardSerializer


class Leaderboard(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["leaderboards"], parameters=[BoardQuerySerializer],
                   responses=LeaderboardSerializer, summary="A phase's leaderboard")
    def get(self, request: Request, slug: str, phase: str) -> Response:
        item = visible_phase(user=request.user, slug=slug, phase=phase)
        query = BoardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        board = query.validated_data["board"]
        view = leaderboard_for(rights=phase_rights(phase=item, user=request.user), board=board)
        payload: dict[str, Any] = view.payload or {}
        body = {
            "board": board, "visible": view.visible, "reason": view.reason,
            "primary": payload.get("primary", item.primary_metric),
            "secondary": payload.get("secondary", item.secondary_metrics),
            "n_cases": payload.get("n_cases"), "n_resamples": payload.get("n_resamples"),
            "final": bool(payload.get("final")), "entries": payload.get("entries", []),
        }
        return Response(LeaderboardSerializer(body).data)


urlpatterns = [
    path("challenges/<slug:slug>/phases/<slug:phase>/leaderboard/", Leaderboard.as_view(),
         name="leaderboard"),
]
