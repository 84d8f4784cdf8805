"""The organiser's pages inside the admin: import a bundle zip, publish a draft, try a
baseline first, and a dashboard per challenge. ChallengeAdmin.get_urls routes here; each view
is wrapped by admin_site.admin_view (staff login) and checks the organiser's rights itself.

"Try it first" must create a submission, which is `submissions`' business, above this app:
the file is staged under the private root and the baseline is created by the Celery task
BASELINE_SUBMIT (by name, through core.dispatch), which calls submission_create with
is_baseline=True; scoring is then queued as for any submission.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from celery import current_app
from django import forms
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.contrib.contenttypes.views import shortcut
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from challenges import lifecycle, selectors
from challenges.bundles import export_challenge_zip
from challenges.exceptions import BundleError, ChallengeError, NotReady
from challenges.models import Challenge, Phase
from core import dispatch
from core.audit import latest_checkpoint
from core.models import AuditEvent
from core.services import audit_record
from core.storage import private_root

BASELINE_SUBMIT = "submissions.tasks.baseline_submit"
KIND_BY_SUFFIX = {".zip": Phase.Kind.BUNDLE, ".csv": Phase.Kind.PREDICTIONS,
                  ".tar": Phase.Kind.IMAGE, ".gz": Phase.Kind.IMAGE, ".tgz": Phase.Kind.IMAGE}


class BundleImportForm(forms.Form):
    bundle = forms.FileField(help_text="A zip of the bundle folder: challenge.yaml at its root "
                             "or inside one top folder, with the files it names.")


class TryForm(forms.Form):
    phase = forms.ModelChoiceField(queryset=Phase.objects.none())
    model = forms.FileField(help_text="Your baseline: a bundle zip (predict.py at its root), a "
                            "docker save archive, or (where inputs are public) a predictions CSV.")

    def __init__(self, *args: Any, challenge: Challenge, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["phase"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = challenge.phases.order_by("order")
        field.initial = field.queryset.first()


def stage_upload(upload: UploadedFile, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (Path(upload.name or "upload").name or "upload")
    with target.open("wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    return target


def _organised(request: HttpRequest, object_id: str) -> Challenge:
    challenge = Challenge.objects.filter(pk=object_id).first() if object_id.isdigit() else None
    if challenge is None:
        raise Http404("No such challenge.")
    if not selectors.is_organiser(challenge=challenge, user=request.user):
        raise PermissionDenied
    return challenge


def _context(model_admin: Any, request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta,
            **extra}


def import_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    if not selectors.may_create_challenges(user=request.user):
        raise PermissionDenied
    form = BundleImportForm(request.POST or None, request.FILES or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        with tempfile.TemporaryDirectory(prefix="heldout-upload-") as scratch:
            archive = stage_upload(form.cleaned_data["bundle"], Path(scratch))
            try:
                challenge, changed = lifecycle.challenge_import_zip(archive=archive,
                                                                    actor=request.user)
            except BundleError as error:
                problems = error.problems
            else:
                verb = "imported" if changed else "unchanged (same bundle)"
                state = " as a draft" if challenge.is_draft else ""
                messages.success(request, f"“{challenge.title}” {verb}{state}.")
                return redirect("admin:challenges_challenge_change", challenge.pk)
    return TemplateResponse(request, "admin/challenges/challenge/import.html", _context(
        model_admin, request, form=form, problems=problems, title="Import a challenge bundle"))


def publish_view(model_admin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    challenge = _organised(request, object_id)
    try:
        lifecycle.challenge_publish(challenge=challenge, actor=request.user)
    except NotReady as error:
        messages.error(request, "Not published yet; fix these first:")
        for problem in error.problems:
            messages.error(request, problem)
    else:
        messages.success(request, f"“{challenge.title}” is published.")
    return redirect("admin:challenges_challenge_change", challenge.pk)


def unpublish_view(model_admin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    challenge = _organised(request, object_id)
    lifecycle.challenge_unpublish(challenge=challenge, actor=request.user)
    messages.success(request, f"“{challenge.title}” is a draft again (organisers only).")
    return redirect("admin:challenges_challenge_change", challenge.pk)


def _queue_baseline(request: HttpRequest, challenge: Challenge, form: TryForm) -> None:
    phase, upload = form.cleaned_data["phase"], form.cleaned_data["model"]
    suffix = Path(upload.name or "").suffix.lower()
    kind = KIND_BY_SUFFIX.get(suffix)
    if kind is None:
        raise ChallengeError("Upload a .zip bundle, a .tar/.tar.gz image archive or a .csv.")
    team = lifecycle.organiser_team_ensure(challenge=challenge, user=request.user)
    folder = private_root() / "baselines" / uuid.uuid4().hex
    path = stage_upload(upload, folder)
    try:
        dispatch.send(BASELINE_SUBMIT, phase_pk=phase.pk, team_pk=team.pk,
                      user_pk=request.user.pk, path=str(path), filename=path.name, kind=kind)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def dashboard_view(model_admin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    challenge = _organised(request, object_id)
    form = TryForm(request.POST or None, request.FILES or None, challenge=challenge)
    if request.method == "POST" and form.is_valid():
        try:
            _queue_baseline(request, challenge, form)
        except ChallengeError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Baseline submitted: it runs on the sanity and hidden "
                             "sets like any model; its result appears under “Try it first”.")
        return HttpResponseRedirect(reverse("admin:challenges_challenge_dashboard",
                                            args=[challenge.pk]) + "#try")
    sets = challenge.evaluation_sets.order_by("name")
    # The whole trail's last signed checkpoint, for organisers to note down: a copy of the
    # head outside the platform that no one with the database can change.
    checkpoint, checkpoint_problem = latest_checkpoint()
    return TemplateResponse(request, "admin/challenges/challenge/dashboard.html", _context(
        model_admin, request, **_live(challenge), original=challenge, form=form, sets=sets,
        checkpoint=checkpoint, checkpoint_problem=checkpoint_problem,
        links=dashboard_links(challenge), refresh_seconds=DASHBOARD_REFRESH_SECONDS,
        problems=lifecycle.publish_problems(challenge=challenge),
        title=f"Dashboard: {challenge.title}"))


DASHBOARD_REFRESH_SECONDS = 15


def dashboard_live_view(model_admin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    """The dashboard's live parts alone (queue, workers, baselines, failures, stale results,
    latest events), which the page fetches again every DASHBOARD_REFRESH_SECONDS."""
    challenge = _organised(request, object_id)
    response = TemplateResponse(request, "admin/challenges/challenge/_dashboard_live.html",
                                {**_live(challenge), "links": dashboard_links(challenge),
                                 "refresh_seconds": DASHBOARD_REFRESH_SECONDS})
    response["Cache-Control"] = "no-store"
    return response


def _live(challenge: Challenge) -> dict[str, Any]:
    return {"challenge": challenge, "workers": worker_health(),
            "events": AuditEvent.objects.filter(challenge_id=challenge.pk).order_by("-id")[:20]}


def _admin_list(name: str, **query: Any) -> str:
    return f"{reverse(f'admin:{name}_changelist')}?{urlencode(query)}"


def dashboard_links(challenge: Challenge) -> dict[str, Any]:
    """Where the dashboard leads: each phase's boards, and the admin's lists filtered to
    this challenge (submissions, failures by error class, stale results, announcements).
    Admin URLs by name: the lists belong to apps above this one."""
    mine = {"phase__challenge__id__exact": challenge.pk}
    return {
        "boards": [(phase, [(board, reverse("leaderboards:board",
                                            args=[challenge.slug, phase.slug, board]))
                            for board in ("public", "private")])
                   for phase in challenge.phases.order_by("order")],
        "submissions": _admin_list("submissions_submission", **mine),
        "failures": _admin_list("submissions_submission", **mine, status__exact="failed"),
        "stale_results": _admin_list("scoring_result", stale="yes",
                                     submission__phase__challenge__id__exact=challenge.pk),
        "stale_submissions": _admin_list("submissions_submission", **mine, stale="yes"),
        "announcements": _admin_list("challenges_announcement",
                                     challenge__id__exact=challenge.pk),
        "announce": f"{reverse('admin:challenges_announcement_add')}?challenge={challenge.pk}",
        "audit": _admin_list("core_auditevent", challenge_id=challenge.pk),
    }


def export_view(model_admin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    """"Export as bundle": the zip `manage.py export_challenge SLUG FILE.zip` writes, hidden
    labels included, for the challenge's organisers; a POST, since it is audited."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    challenge = _organised(request, object_id)
    scratch = Path(tempfile.mkdtemp(prefix="heldout-export-"))
    try:
        path = scratch / f"{challenge.slug}.zip"
        facts = export_challenge_zip(challenge, path)
        archive = path.open("rb")  # still readable once unlinked below, until closed
    except BundleError as error:
        for problem in error.problems:
            messages.error(request, problem)
        return redirect("admin:challenges_challenge_change", challenge.pk)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    audit_record(verb="challenge.exported", actor=request.user, challenge=challenge,
                 data={**facts, "via": "admin"})
    return FileResponse(archive, as_attachment=True, filename=f"{challenge.slug}.zip",
                        content_type="application/zip")


def view_on_site(request: HttpRequest, content_type_id: int, object_id: str) -> HttpResponse:
    """The admin's "view on site" redirect (admin/r/<type>/<id>/), for rows the user may view
    in the admin only. Django's own looks up any row of any model for any staff user, and
    the address it answers can be a secret (an invitation's link) or name a draft."""
    content_type = ContentType.objects.filter(pk=content_type_id).first()
    model = content_type.model_class() if content_type else None
    if model is None or not admin.site.is_registered(model):
        raise Http404("No such page.")
    model_admin = admin.site.get_model_admin(model)
    obj = model_admin.get_object(request, object_id)  # within the user's queryset, or None
    if obj is None or not model_admin.has_view_permission(request, obj):
        raise Http404("No such page.")
    return shortcut(request, content_type_id, object_id)


def worker_health(timeout: float = 1.0) -> dict[str, Any]:
    """Which Celery workers answer a ping (None: the broker cannot broadcast, e.g. the
    embedded filesystem broker; then the queue length tells whether work moves)."""
    if current_app.conf.task_always_eager:
        return {"answered": None, "note": "tasks run inline (eager mode)"}
    try:
        replies = current_app.control.inspect(timeout=timeout).ping() or {}
    except Exception as error:  # noqa: BLE001 - any broker failure is shown, not raised
        return {"answered": None, "note": f"cannot ask the workers ({type(error).__name__})"}
    return {"answered": sorted(replies), "note": ""}
