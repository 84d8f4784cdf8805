"""Phase page (upload, team history, quota), submission page with live status, and the
browser's resumable chunked upload endpoints (JSON)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from challenges import selectors as challenge_selectors
from challenges.models import Phase
from scoring.models import Run
from submissions import selectors, services
from submissions.exceptions import InvalidUpload, SubmissionError
from submissions.models import Submission, UploadSession
from submissions.uploads import read_chunks, stage_chunks


def _phase(request: HttpRequest, slug: str, phase: str) -> Phase:
    challenges = challenge_selectors.visible_challenges(user=request.user).distinct()
    challenge = get_object_or_404(challenges, slug=slug)
    return get_object_or_404(
        Phase.objects.select_related("challenge", "evaluation_set", "sanity_set"),
        challenge=challenge, slug=phase,
    )


def phase_detail(request: HttpRequest, slug: str, phase: str) -> HttpResponse:
    item = _phase(request, slug, phase)
    team = challenge_selectors.team_for_user(challenge=item.challenge, user=request.user)
    context = {
        "phase": item, "challenge": item.challenge, "team": team,
        "kinds": [(k, Phase.Kind(k).label) for k in item.submission_kinds],
        "accepted": challenge_selectors.has_accepted_terms(
            challenge=item.challenge, user=request.user),
    }
    if team is not None:
        context["quota"] = selectors.quota_status(phase=item, team=team)
        context["history"] = selectors.team_submissions(phase=item, team=team)
        context["show_scores"] = selectors.scores_visible_for_phase(phase=item, user=request.user)
    from scoring.selectors import leaderboard_for

    context["board"] = leaderboard_for(phase=item, user=request.user, board="public")
    return render(request, "submissions/phase.html", context)


def _refuse(request: HttpRequest, error: SubmissionError, item: Phase) -> HttpResponse:
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"code": error.code, "detail": error.message}, status=400)
    messages.error(request, error.message)
    return redirect(item)


@login_required
@require_POST
def submission_upload(request: HttpRequest, slug: str, phase: str) -> HttpResponse:
    """Plain multipart upload (no JavaScript). Django streams files past 2 MB to disk."""
    item = _phase(request, slug, phase)
    team = challenge_selectors.team_for_user(challenge=item.challenge, user=request.user)
    upload = request.FILES.get("file")
    kind = request.POST.get("kind", "")
    try:
        if team is None:
            raise SubmissionError("Join or create a team before submitting.")
        if upload is None:
            raise InvalidUpload("Choose a file to upload.")
        staged = stage_chunks(upload.chunks(), filename=upload.name or "upload",
                              max_bytes=services.max_upload_bytes(kind))
        submission = services.submission_create(
            phase=item, team=team, user=request.user, kind=kind, staged=staged)
    except SubmissionError as error:
        return _refuse(request, error, item)
    return redirect(submission)


def _viewable(request: HttpRequest, uid: str) -> Submission:
    submission = get_object_or_404(
        Submission.objects.select_related("phase__challenge", "team", "created_by"), uid=uid)
    if not selectors.can_view_submission(submission=submission, user=request.user):
        raise Http404
    return submission


def _metric_rows(result: object, parts: list[str]) -> list[tuple[str, list[float | None]]]:
    if result is None:
        return []
    metrics = result.metrics  # type: ignore[attr-defined]
    return [(name, [metrics.get(part, {}).get(name) for part in parts])
            for name in metrics.get("all", {})]


def _submission_context(request: HttpRequest, submission: Submission) -> dict[str, object]:
    runs = list(submission.runs.filter(attempt=submission.attempts).order_by("started_at"))
    hidden_logs = selectors.hidden_logs_visible(submission=submission, user=request.user)
    show_scores = selectors.scores_visible(submission=submission, user=request.user)
    parts = selectors.visible_metric_parts(submission=submission, user=request.user)
    result = getattr(submission, "result", None) if parts else None
    return {
        "submission": submission, "phase": submission.phase,
        "challenge": submission.phase.challenge, "runs": runs, "result": result,
        "show_scores": show_scores,
        "metric_rows": _metric_rows(result, parts),
        "metric_parts": parts,
        "private_pending": parts == ["public"],
        "visible_logs": {
            run.pk: run.log_tail for run in runs
            if run.lane == Run.Lane.SANITY or hidden_logs
        },
    }


@login_required
def submission_detail(request: HttpRequest, uid: str) -> HttpResponse:
    submission = _viewable(request, uid)
    return render(request, "submissions/detail.html", _submission_context(request, submission))


@login_required
def submission_status(request: HttpRequest, uid: str) -> HttpResponse:
    """The live part of the submission page, polled until the submission is final."""
    submission = _viewable(request, uid)
    return render(request, "submissions/_status.html", _submission_context(request, submission))


# --- resumable chunked uploads (used by the browser for every file) ----------------------


def _json_error(error: SubmissionError, status: int = 400) -> JsonResponse:
    return JsonResponse({"code": error.code, "detail": error.message}, status=status)


@login_required
@require_POST
def upload_start(request: HttpRequest, slug: str, phase: str) -> JsonResponse:
    item = _phase(request, slug, phase)
    try:
        body = json.loads(request.body or b"{}")
        session = services.upload_session_start(
            phase=item, user=request.user, kind=str(body.get("kind", "")),
            filename=str(body.get("filename", "upload")), total_size=int(body.get("size", 0)))
    except (ValueError, TypeError):
        return _json_error(InvalidUpload("Send JSON with kind, filename and size."))
    except SubmissionError as error:
        return _json_error(error)
    return JsonResponse(_session_json(session), status=201)


def _session_json(session: UploadSession) -> dict[str, object]:
    return {"id": str(session.uid), "received": session.received, "size": session.total_size}


def _session(request: HttpRequest, uid: str) -> UploadSession:
    return get_object_or_404(UploadSession.objects.select_related("phase__challenge"),
                             uid=uid, user=request.user)


@login_required
@require_http_methods(["GET", "PUT"])
def upload_chunk(request: HttpRequest, uid: str) -> JsonResponse:
    """GET tells where to resume; PUT appends the body at `?offset=`."""
    session = _session(request, uid)
    if request.method == "PUT":
        try:
            offset = int(request.GET.get("offset", "-1"))
            session = services.upload_session_append(
                session=session, offset=offset, chunks=read_chunks(request))
        except ValueError:
            return _json_error(InvalidUpload("offset must be a whole number."))
        except SubmissionError as error:
            return JsonResponse({**_session_json(session), "code": error.code,
                                 "detail": error.message}, status=409)
    return JsonResponse(_session_json(session))


@login_required
@require_POST
def upload_finish(request: HttpRequest, uid: str) -> JsonResponse:
    session = _session(request, uid)
    team = challenge_selectors.team_for_user(challenge=session.phase.challenge, user=request.user)
    try:
        if team is None:
            raise SubmissionError("Join or create a team before submitting.")
        submission = services.upload_session_finish(session=session, team=team)
    except SubmissionError as error:
        return _json_error(error)
    return JsonResponse({"submission": str(submission.uid), "url": submission.get_absolute_url()},
                        status=201)
