"""REST API for submissions, final-entry selection, notes, quotas and resumable uploads.

Every write goes through submissions.services (window, kind, membership, terms and quota
checks under the team's row lock); every read is scoped by submissions.selectors, exactly as
on the pages. Large archives use the resumable upload: start a session, PUT chunks at the
offset the server reports, then finish it into a submission.
"""

from __future__ import annotations

from typing import Any

from django.http.request import UnreadablePostError
from django.urls import path
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound
from rest_framework.generics import ListAPIView
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import TokenAuthentication
from challenges import selectors as challenge_selectors
from challenges.models import Phase
from challenges.visibility import PhaseRights, phase_rights
from core.middleware import declared_length
from submissions import selectors, services
from submissions.exceptions import InvalidUpload, SubmissionError
from submissions.models import Submission, UploadSession
from submissions.serializers import (
    ChunkOffsetSerializer,
    QuotaSerializer,
    SubmissionCreateSerializer,
    SubmissionDetailSerializer,
    SubmissionNoteSerializer,
    SubmissionSelectSerializer,
    SubmissionSerializer,
    UploadSessionSerializer,
    UploadStartSerializer,
    idempotency_key,
)
from submissions.uploads import read_chunks, stage_chunks

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    pattern=r"^[!-~]{1,100}$",
    description="Retrying with the same key returns the submission the first request created "
    "(per user), so a dropped connection never costs quota twice.",
)


class UploadConflict(APIException):
    """A chunk at the wrong offset (or for a finished upload): the body says where to resume."""

    status_code = status.HTTP_409_CONFLICT

    def __init__(self, error: SubmissionError, session: UploadSession) -> None:
        super().__init__(detail=error.message, code=error.code)
        self.extra = {"received": session.received, "size": session.total_size}


def get_phase(request: Request, slug: str, phase: str) -> Phase:
    return challenge_selectors.visible_phase(user=request.user, slug=slug, phase=phase)


def submission_queryset() -> Any:
    return Submission.objects.select_related(
        "phase__challenge", "team", "created_by", "result"
    ).defer("result__case_scores", "result__case_labels", "result__subgroups")


def submission_body(
    request: Request, submission: Submission, *, detail: bool = False,
    rights: PhaseRights | None = None,
) -> Any:
    submission = submission_queryset().get(pk=submission.pk)
    rights = rights or phase_rights(phase=submission.phase, user=request.user)
    serializer = SubmissionDetailSerializer if detail else SubmissionSerializer
    return serializer(submission, context={"rights": rights, "request": request}).data


def viewable_submission(request: Request, uid: Any) -> tuple[Submission, PhaseRights]:
    """selectors.viewable_submission; its Http404 becomes the API's JSON not_found."""
    return selectors.viewable_submission(user=request.user, uid=uid)


class SessionCsrfAfterChecks(SessionAuthentication):
    """Session authentication whose CSRF check the view makes itself, once the checks that
    need no body have passed: DRF's own check reads the whole multipart body (Django looks
    for the token among the form's fields first), so a signed-in stranger's gigabyte would
    be written to disk before the refusal."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        user = getattr(request._request, "user", None)
        if not user or not user.is_active:
            return None
        request._request.csrf_after_checks = True
        return user, None


class SessionCsrfAfterChecksScheme(SessionScheme):
    """The schema documents it as the session cookie it is (a name of its own: the schema
    keys a security component by its authentication class)."""

    target_class = SessionCsrfAfterChecks
    name = "cookieAuthChecksFirst"


def enforce_deferred_csrf(request: Request) -> None:
    if getattr(request._request, "csrf_after_checks", False):
        SessionAuthentication().enforce_csrf(request)


@extend_schema(tags=["submissions"])
class PhaseSubmissions(ListAPIView):
    serializer_class = SubmissionSerializer
    authentication_classes = [TokenAuthentication, SessionCsrfAfterChecks]

    def get_parsers(self):  # type: ignore[no-untyped-def]
        return [MultiPartParser()]

    def get_phase(self) -> Phase:
        if not hasattr(self, "_phase"):
            self._phase = get_phase(self.request, self.kwargs["slug"], self.kwargs["phase"])
        return self._phase

    def get_rights(self) -> PhaseRights:
        if not hasattr(self, "_rights"):
            self._rights = phase_rights(phase=self.get_phase(), user=self.request.user)
        return self._rights

    def get_queryset(self):  # type: ignore[no-untyped-def]
        rights = self.get_rights()
        if rights.team_id is None:
            return Submission.objects.none()
        return selectors.team_submissions(phase=self.get_phase(), team=rights.team_id)

    def get_serializer_context(self) -> dict[str, Any]:
        return {"rights": self.get_rights(), "request": self.request}

    @extend_schema(summary="Your team's submissions in a phase, newest first")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Submit a file (multipart: file, kind)", request=SubmissionCreateSerializer,
        responses={202: SubmissionSerializer}, parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request: Request, slug: str, phase: str) -> Response:
        item = self.get_phase()
        key = idempotency_key(request)
        if (done := services.submission_by_key(user=request.user, idempotency_key=key)):
            return Response(submission_body(request, done), status=status.HTTP_202_ACCEPTED)
        # Before the body is read (request.data parses it): who, when, quota, size, disk.
        team = services.submission_precheck(phase=item, user=request.user,
                                            size=declared_length(request._request))
        enforce_deferred_csrf(request)
        data = SubmissionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload, kind = data.validated_data["file"], data.validated_data["kind"]
        staged = stage_chunks(upload.chunks(), filename=upload.name or "upload",
                              max_bytes=services.max_upload_bytes(kind))
        submission = services.submission_create(
            phase=item, team=team, user=request.user, kind=kind, staged=staged,
            idempotency_key=key,
        )
        # 202: stored and queued; its evaluation reaches a worker even when the broker is
        # down right now (the outbox: submissions.services.evaluation_dispatch)
        return Response(submission_body(request, submission), status=status.HTTP_202_ACCEPTED)


class SubmissionDetail(APIView):
    @extend_schema(tags=["submissions"], responses=SubmissionDetailSerializer,
                   summary="A submission: status, error, scores and logs you may see")
    def get(self, request: Request, id: Any) -> Response:  # noqa: A002 (the URL's name)
        submission, rights = viewable_submission(request, id)
        return Response(submission_body(request, submission, detail=True, rights=rights))


class SubmissionSelect(APIView):
    @extend_schema(tags=["submissions"], request=SubmissionSelectSerializer,
                   responses=SubmissionSerializer,
                   summary="Mark (or unmark) a final entry for the leaderboard")
    def post(self, request: Request, id: Any) -> Response:  # noqa: A002
        data = SubmissionSelectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        submission, rights = viewable_submission(request, id)
        submission = services.submission_select(
            submission=submission, user=request.user, selected=data.validated_data["selected"],
        )
        return Response(submission_body(request, submission, rights=rights))


class SubmissionNote(APIView):
    @extend_schema(tags=["submissions"], request=SubmissionNoteSerializer,
                   responses=SubmissionSerializer,
                   summary="Set or clear your team's note on a submission")
    def post(self, request: Request, id: Any) -> Response:  # noqa: A002
        data = SubmissionNoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        submission, rights = viewable_submission(request, id)
        submission = services.submission_note(
            submission=submission, user=request.user, note=data.validated_data["note"])
        return Response(submission_body(request, submission, rights=rights))


class SubmissionCancel(APIView):
    @extend_schema(tags=["submissions"], request=None, responses=SubmissionSerializer,
                   summary="Cancel a submission still waiting in the queue")
    def post(self, request: Request, id: Any) -> Response:  # noqa: A002
        submission, rights = viewable_submission(request, id)
        submission = services.submission_cancel(submission=submission, user=request.user)
        return Response(submission_body(request, submission, rights=rights))


class Quota(APIView):
    @extend_schema(tags=["submissions"], responses=QuotaSerializer,
                   summary="Your team's quota in a phase")
    def get(self, request: Request, slug: str, phase: str) -> Response:
        item = get_phase(request, slug, phase)
        team = selectors.require_team(phase=item, user=request.user)
        quota = selectors.quota_status(phase=item, team=team)
        return Response(QuotaSerializer(quota).data)


# --- resumable uploads -------------------------------------------------------------------


class RawBody(BaseParser):
    """Declares the chunk body for content negotiation; the view streams it unparsed."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        return stream


def own_session(request: Request, uid: Any) -> UploadSession:
    session: UploadSession | None = UploadSession.objects.select_related(
        "phase__challenge", "submission").filter(uid=uid, user=request.user).first()
    if session is None:
        raise NotFound("No such upload.")
    return session


class UploadStart(APIView):
    @extend_schema(tags=["uploads"], request=UploadStartSerializer,
                   responses={201: UploadSessionSerializer},
                   summary="Start a resumable upload (kind, filename, size)")
    def post(self, request: Request, slug: str, phase: str) -> Response:
        item = get_phase(request, slug, phase)
        data = UploadStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.upload_session_start(
            phase=item, user=request.user, kind=data.validated_data["kind"],
            filename=data.validated_data["filename"], total_size=data.validated_data["size"])
        return Response(UploadSessionSerializer(session).data, status=status.HTTP_201_CREATED)


class UploadChunk(APIView):
    parser_classes = [RawBody]

    @extend_schema(tags=["uploads"], responses=UploadSessionSerializer,
                   summary="Where to resume: the bytes received so far")
    def get(self, request: Request, id: Any) -> Response:  # noqa: A002
        return Response(UploadSessionSerializer(own_session(request, id)).data)

    @extend_schema(
        tags=["uploads"], summary="Append a chunk at ?offset= (the raw request body)",
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[ChunkOffsetSerializer], responses=UploadSessionSerializer,
    )
    def put(self, request: Request, id: Any) -> Response:  # noqa: A002
        session = own_session(request, id)
        query = ChunkOffsetSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        stream = request.stream
        chunks = read_chunks(stream) if stream is not None else iter(())
        try:
            session = services.upload_session_append(
                session=session, offset=query.validated_data["offset"], chunks=chunks)
        except InvalidUpload as error:
            session.refresh_from_db()
            raise UploadConflict(error, session) from None
        except UnreadablePostError:
            # The client's connection broke mid-chunk: nothing of it was acknowledged.
            session.refresh_from_db()
            broken = InvalidUpload(f"The connection broke; resume from byte {session.received}.")
            raise UploadConflict(broken, session) from None
        return Response(UploadSessionSerializer(session).data)


class UploadFinish(APIView):
    """Finishing is idempotent per upload: a retry returns the submission the first finish
    created. No Idempotency-Key here: the upload id already is one (and the service cannot
    link one submission to two upload sessions)."""

    @extend_schema(tags=["uploads"], request=None, responses={202: SubmissionSerializer},
                   summary="Turn a complete upload into a submission (safe to retry)")
    def post(self, request: Request, id: Any) -> Response:  # noqa: A002
        session = own_session(request, id)
        team = selectors.require_team(phase=session.phase, user=request.user)
        submission = services.upload_session_finish(session=session, team=team)
        return Response(submission_body(request, submission), status=status.HTTP_202_ACCEPTED)


PHASE = "challenges/<slug:slug>/phases/<slug:phase>"

urlpatterns = [
    path(f"{PHASE}/submissions/", PhaseSubmissions.as_view(), name="submission-list"),
    path(f"{PHASE}/quota/", Quota.as_view(), name="quota"),
    path(f"{PHASE}/uploads/", UploadStart.as_view(), name="upload-start"),
    path("submissions/<uuid:id>/", SubmissionDetail.as_view(), name="submission-detail"),
    path("submissions/<uuid:id>/select/", SubmissionSelect.as_view(), name="submission-select"),
    path("submissions/<uuid:id>/cancel/", SubmissionCancel.as_view(), name="submission-cancel"),
    path("submissions/<uuid:id>/note/", SubmissionNote.as_view(), name="submission-note"),
    path("uploads/<uuid:id>/", UploadChunk.as_view(), name="upload-detail"),
    path("uploads/<uuid:id>/finish/", UploadFinish.as_view(), name="upload-finish"),
]
