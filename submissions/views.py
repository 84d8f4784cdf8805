"""Phase page (upload, team history, quota), submission page with live status, and the
plain multipart upload for browsers without JavaScript. With JavaScript the page uploads in
resumable chunks through the REST API (/api/v1/, session authentication), so the browser and
scripts meet the same endpoints, codes and statuses."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from challenges import selectors as challenge_selectors
from challenges.models import Phase
from challenges.visibility import PhaseRights, phase_rights
from core.exceptions import DomainError
from core.middleware import declared_length
from submissions import overlays, selectors, services
from submissions.exceptions import InvalidUpload
from submissions.models import NOTE_MAX_LENGTH, Submission
from submissions.serializers import SANITY_LANE
from submissions.uploads import stage_chunks


def _phase(request: HttpRequest, slug: str, phase: str) -> Phase:
    return challenge_selectors.visible_phase(user=request.user, slug=slug, phase=phase)


def phase_detail(request: HttpRequest, slug: str, phase: str) -> HttpResponse:
    item = _phase(request, slug, phase)
    rights = phase_rights(phase=item, user=request.user)
    team = challenge_selectors.team_for_user(challenge=item.challenge, user=request.user)
    context = {
        "phase": item, "challenge": item.challenge, "team": team, "rights": rights,
        "kinds": [(k, Phase.Kind(k).label) for k in item.submission_kinds],
        "accepted": challenge_selectors.has_accepted_terms(
            challenge=item.challenge, user=request.user),
    }
    if team is not None:
        context["quota"] = selectors.quota_status(phase=item, team=team)
        context["upload_blocked"] = _upload_blocked(item, request.user)
        context["history"] = [
            (shown, _shown_primary(rights, shown)) for shown in map(
                rights.shown, selectors.team_submissions(phase=item, team=team))
        ]
        context["show_scores"] = rights.scores_visible
        context["selected_count"] = sum(1 for s, _ in context["history"] if s.selected)
        # under a ladder: submissions that released nothing new, shown as such
        context["no_gain"] = {s.pk for s, _ in context["history"]
                              if rights.score_note(s, getattr(s, "result", None))}
        context["precision"] = (item.release_policy().precision if rights.releases_scores
                                else 4)
    return render(request, "submissions/phase.html", context)


def _upload_blocked(phase: Phase, user: object) -> str:
    """Why the team cannot submit now ("" when it can): the upload's own checks, which need
    no byte of a file (window, terms, quota, concurrency), so the form is disabled and says
    why instead of refusing a file that took minutes to send. A reload shows it open again
    once a slot frees up; the API refuses the same at an upload's start."""
    try:
        services.submission_precheck(phase=phase, user=user, size=0)
    except DomainError as error:
        return error.message
    return ""


def _shown_primary(rights: PhaseRights, submission: Submission) -> float | None:
    """The primary score of the visible part (public, else all) as this viewer may see it."""
    if submission.status != Submission.Status.SUCCEEDED:
        return None
    shown = rights.shown_metrics(getattr(submission, "result", None)) or {}
    part = shown.get("public") or shown.get("all") or {}
    return part.get(rights.phase.primary_metric)


@csrf_exempt  # checked below, once the checks that need no body have passed
@login_required
@require_POST
def submission_upload(request: HttpRequest, slug: str, phase: str) -> HttpResponse:
    """Plain multipart upload (no JavaScript). Django streams files past 2 MB to disk, so
    everything that needs no byte of the body is checked before the body is read: Django's
    CSRF check, which finds its token among the form's fields, comes after them."""
    item = _phase(request, slug, phase)
    try:
        team = services.submission_precheck(phase=item, user=request.user,
                                            size=declared_length(request))
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(item)
    refused = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {})
    if refused is not None:
        return refused
    upload = request.FILES.get("file")
    kind = request.POST.get("kind", "")
    try:
        if upload is None:
            raise InvalidUpload("Choose a file to upload.")
        staged = stage_chunks(upload.chunks(), filename=upload.name or "upload",
                              max_bytes=services.max_upload_bytes(kind))
        submission = services.submission_create(
            phase=item, team=team, user=request.user, kind=kind, staged=staged)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(item)
    return redirect(submission)


def _member_submission(request: HttpRequest, uid: str) -> Submission:
    """A submission of a team the user is on (404 otherwise, as for any unseen submission)."""
    submission, rights = _viewable(request, uid)
    if rights.team_id != submission.team_id:
        raise Http404("No such submission.")
    return submission


@login_required
@require_POST
def submission_select(request: HttpRequest, uid: str) -> HttpResponse:
    """Mark or unmark a final entry from the team's history (the API's rules and refusals)."""
    submission = _member_submission(request, uid)
    selected = request.POST.get("selected") == "1"
    try:
        services.submission_select(submission=submission, user=request.user, selected=selected)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        verb = "selected as a final entry" if selected else "no longer a final entry"
        messages.success(request, f"Submission #{submission.number} is {verb}.")
    return redirect(f"{submission.phase.get_absolute_url()}#history")


@login_required
@require_POST
def submission_note(request: HttpRequest, uid: str) -> HttpResponse:
    submission = _member_submission(request, uid)
    try:
        services.submission_note(submission=submission, user=request.user,
                                 note=request.POST.get("note", ""))
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Note saved." if submission.note else "Note removed.")
    return redirect(submission)


def _viewable(request: HttpRequest, uid: str) -> tuple[Submission, PhaseRights]:
    return selectors.viewable_submission(user=request.user, uid=uid)


def _metric_rows(metrics: dict[str, dict[str, float | None]] | None,
                 parts: list[str]) -> list[tuple[str, list[float | None]]]:
    if not metrics:
        return []
    names = dict.fromkeys(name for part in parts for name in metrics.get(part, {}))
    return [(name, [metrics.get(part, {}).get(name) for part in parts]) for name in names]


def _submission_context(row: Submission, rights: PhaseRights) -> dict[str, object]:
    runs = rights.shown_runs(row, list(row.runs.filter(attempt=row.attempts).order_by(
        "started_at")))
    submission = rights.shown(row)  # as the viewer may see it now (Submission.as_told)
    result = getattr(submission, "result", None)
    metrics = rights.shown_metrics(result)
    parts = list(metrics or {})
    started_at, finished_at = rights.submission_times(submission)
    return {
        "submission": submission, "phase": submission.phase, "rights": rights,
        "is_member": rights.team_id == submission.team_id,
        "note_max_length": NOTE_MAX_LENGTH,
        "challenge": submission.phase.challenge, "runs": runs,
        "detailed_runs": {run.pk for run in runs if rights.run_details_visible(run)},
        "started_at": started_at, "finished_at": finished_at,
        "time_format": "H:i:s" if rights.is_organiser else "H:i",
        # duplicate and collusion signals (scoring's CollusionFlag rows), organisers only
        "flags": list(submission.flags.select_related("other__team")) if rights.is_organiser
        else [],
        "result": result if parts else None,
        "score_note": rights.score_note(submission, result),
        "precision": rights.phase.release_policy().precision if rights.releases_scores else 4,
        "show_scores": rights.scores_visible,
        "metric_rows": _metric_rows(metrics, parts),
        "metric_parts": parts,
        "private_pending": parts == ["public"],
        "visible_logs": {
            run.pk: run.log_tail for run in runs
            if run.lane == SANITY_LANE or rights.hidden_logs_visible
        },
        "overlays": _overlays(submission, runs), "overlay_cap": overlays.OVERLAY_CAP,
    }


def _overlays(submission: Submission, runs: list) -> list[overlays.Overlay]:  # type: ignore[type-arg]
    sanity = next((run for run in runs if run.lane == SANITY_LANE and run.detections), None)
    if sanity is None:
        return []
    return overlays.overlays(submission.phase.sanity_set, sanity.detections)


@login_required
def sanity_film(request: HttpRequest, uid: str, film: str) -> FileResponse:
    """A public sanity film's image, for the overlays of a submission the viewer may see."""
    submission, _ = _viewable(request, uid)
    path = overlays.public_film_path(submission.phase.sanity_set, film)
    if path is None:
        raise Http404("No such public film.")
    return FileResponse(path.open("rb"), content_type="image/png")


@login_required
def submission_detail(request: HttpRequest, uid: str) -> HttpResponse:
    submission, rights = _viewable(request, uid)
    return render(request, "submissions/detail.html", _submission_context(submission, rights))


@login_required
def submission_status(request: HttpRequest, uid: str) -> HttpResponse:
    """The live part of the submission page, polled until the submission is final."""
    submission, rights = _viewable(request, uid)
    return render(request, "submissions/_status.html", _submission_context(submission, rights))
