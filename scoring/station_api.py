"""The data-station protocol under /api/v1/station/ (`Authorization: Station <token>`).

Stations only ever call out: they report their datasets, claim jobs, download the artefact
of a claimed job, renew the job's lease and post aggregates or an error class. Every answer
about a job names its claim; a claim that is no longer current gets 409 `stale_job` and is
dropped. An answer holds the claim, an error class and (for a success) the parts'
aggregates, nothing else: other fields are refused with 400 `unexpected_fields`, aggregates
that do not check out with 400 `invalid_aggregates`, and nothing of a refused answer is
stored. These endpoints are not part of the teams' API (left out of its schema).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import FileResponse
from django.urls import path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from challenges.models import Station
from challenges.stations import station_for_token, station_hello
from core.storage import private_path
from scoring import station_jobs
from scoring.station_jobs import StaleJob, UnexpectedFields

logger = logging.getLogger(__name__)
KEYWORD = b"station"


class StationAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Station] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        station = station_for_token(parts[1].decode("ascii", "replace") if len(parts) == 2
                                    else "")
        if station is None:
            raise exceptions.AuthenticationFailed("Unknown station token.")
        return AnonymousUser(), station

    def authenticate_header(self, request: Request) -> str:
        return "Station"


class IsStation(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Station)


def _stale() -> Response:
    return Response({"code": "stale_job", "detail": "This claim is no longer current."},
                    status=status.HTTP_409_CONFLICT)


def _claim_number(request: Request) -> int:
    raw = request.data.get("claim") if request.method == "POST" else request.query_params.get(
        "claim")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise exceptions.ValidationError({"claim": "the job's claim number"}) from None


@extend_schema(exclude=True)
class StationView(APIView):
    authentication_classes = [StationAuthentication]
    permission_classes = [IsStation]
    throttle_classes: list[Any] = []  # stations poll; they are few and known

    @property
    def station(self) -> Station:
        return self.request.auth  # type: ignore[return-value]


class Hello(StationView):
    def post(self, request: Request) -> Response:
        datasets = request.data.get("datasets")
        if not isinstance(datasets, list):
            raise exceptions.ValidationError({"datasets": "a list of {name, fingerprint}"})
        challenges = request.data.get("challenges") or []
        if not isinstance(challenges, list):
            raise exceptions.ValidationError({"challenges": "a list of challenge slugs"})
        try:
            changed = station_hello(station=self.station, datasets=datasets,
                                    challenges=challenges)
        except (KeyError, TypeError, ValueError) as error:
            raise exceptions.ValidationError({"datasets": str(error)}) from None
        return Response({"station": self.station.name, "poll_seconds": 5, "changed": changed})


class Claim(StationView):
    def post(self, request: Request) -> Response:
        job = station_jobs.claim(station=self.station)
        if job is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        url = reverse("api:station-artefact", args=[job.pk]) + f"?claim={job.claim}"
        return Response(station_jobs.job_spec(job, url))


class Artefact(StationView):
    def get(self, request: Request, pk: int) -> Any:
        try:
            job = station_jobs.current(pk, station=self.station,
                                       claim_number=_claim_number(request))
        except StaleJob:
            return _stale()
        return FileResponse(private_path(job.submission.file_path).open("rb"),
                            content_type="application/octet-stream")


class Heartbeat(StationView):
    def post(self, request: Request, pk: int) -> Response:
        try:
            station_jobs.heartbeat(job_pk=pk, station=self.station,
                                   claim_number=_claim_number(request))
        except StaleJob:
            return _stale()
        return Response({"lease_seconds": settings.HELDOUT_STATION_LEASE_SECONDS})


class Result(StationView):
    def post(self, request: Request, pk: int) -> Response:
        _claim_number(request)
        try:
            station_jobs.record(job_pk=pk, station=self.station, body=dict(request.data))
        except StaleJob:
            return _stale()
        except (KeyError, TypeError, ValueError) as error:
            code = ("unexpected_fields" if isinstance(error, UnexpectedFields)
                    else "invalid_aggregates")
            logger.warning("station %s sent an unusable answer for job %s: %s: %s",
                           self.station.name, pk, code, error)
            return Response({"code": code, "detail": str(error)},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response({"accepted": True})


urlpatterns = [
    path("station/hello", Hello.as_view(), name="station-hello"),
    path("station/jobs/claim", Claim.as_view(), name="station-claim"),
    path("station/jobs/<int:pk>/artefact", Artefact.as_view(), name="station-artefact"),
    path("station/jobs/<int:pk>/heartbeat", Heartbeat.as_view(), name="station-heartbeat"),
    path("station/jobs/<int:pk>/result", Result.as_view(), name="station-result"),
]
