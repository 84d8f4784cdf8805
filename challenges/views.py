"""Pages for challenges, terms, public files and teams. Views call services and selectors."""

from __future__ import annotations

import json
import mimetypes
import re

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from challenges import selectors, services, starter_kit
from challenges.exceptions import ChallengeError
from challenges.forms import CaptainForm, InvitationForm, TeamCreateForm, TeamRenameForm
from challenges.models import Challenge, Invitation, JoinRequest, Team
from core.models import AuditEvent
from core.storage import private_path

# Challenges whose valid invitation this session opened: an invite-only challenge is hidden
# from non-members, yet an invitee must read and accept its terms before joining.
INVITED_SESSION_KEY = "challenges.invited"
# The invitation an anonymous visitor opened: after signing up (with mandatory e-mail
# verification the `next` link is lost on the way through the confirmation mail and the
# login form) the first visit to the challenge list, where a login lands, returns there.
PENDING_INVITATION_SESSION_KEY = "challenges.pending_invitation"


def _challenge(request: HttpRequest, slug: str) -> Challenge:
    return selectors.visible_challenge(user=request.user, slug=slug)


def _safe_next(request: HttpRequest, default: str) -> str:
    """Follow `next` only within this site (an open redirect would help phishing)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else default


def challenge_list(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        token = request.session.pop(PENDING_INVITATION_SESSION_KEY, None)
        pending = Invitation.objects.filter(token=token).first() if token else None
        if pending is not None and not services.invitation_ended_message(pending):
            return redirect(pending)
    challenges = selectors.challenge_list(user=request.user)
    return render(request, "challenges/list.html", {"challenges": challenges})


TABS = (("overview", "Overview"), ("data", "Data"), ("evaluation", "Evaluation"),
        ("rules", "Rules and terms"), ("leaderboard", "Leaderboard"), ("team", "Team"),
        ("submissions", "My submissions"))


def challenge_detail(request: HttpRequest, slug: str) -> HttpResponse:
    challenge = _challenge(request, slug)
    tab = request.GET.get("tab", "overview")
    if tab not in dict(TABS):
        tab = "overview"
    accepted = selectors.has_accepted_terms(challenge=challenge, user=request.user)
    context = {
        "challenge": challenge, "tab": tab, "tabs": TABS,
        "phases": challenge.phases.select_related("sanity_set", "evaluation_set")
        .order_by("order"),
        "accepted": accepted,
        "team": selectors.team_for_user(challenge=challenge, user=request.user),
        "is_organiser": selectors.is_organiser(challenge=challenge, user=request.user),
        "public_files": challenge.public_files.all(),
        "teams": challenge.teams.filter(is_organiser_team=False).order_by("name"),
        "team_form": TeamCreateForm(),
        "description": _description(challenge),
    }
    if tab == "data":
        context.update(_runtime_image_context(accepted=accepted))
    return render(request, "challenges/detail.html", context)


_TITLE_HEADING = re.compile(r"\A\s*#{1,2}[ \t]+(?P<text>[^\n]*?)[ \t#]*(?:\n|\Z)")


def _description(challenge: Challenge) -> str:
    """The description without a first heading that repeats the title (a bundle's README
    usually starts with one; the page's own <h1> already says it). Letters and digits are
    compared, so "[SYNTHETIC] Test challenge" repeats "Synthetic test challenge"."""
    text = challenge.description or ""
    first = _TITLE_HEADING.match(text)
    if first and _letters(first["text"]) == _letters(challenge.title):
        return text[first.end():]
    return text


def _letters(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


def _runtime_image_context(*, accepted: bool) -> dict[str, object]:
    """The runtime image archive for the Data tab; while it is missing, a worker is asked
    for it (a participant who may download it sees "being prepared")."""
    archive = starter_kit.runtime_archive()
    if archive is None and accepted:
        starter_kit.request_runtime_archive()
    return {"runtime_archive": archive, "runtime_archive_name": starter_kit.runtime_archive_name(),
            "runtime_image_tag": starter_kit.runtime_tag()}


@login_required
def terms(request: HttpRequest, slug: str) -> HttpResponse:
    invited = Challenge.objects.filter(pk__in=request.session.get(INVITED_SESSION_KEY, []),
                                       status=Challenge.Status.PUBLISHED)
    queryset = (selectors.visible_challenges(user=request.user) | invited).distinct()
    challenge = get_object_or_404(queryset, slug=slug)
    if request.method == "POST":
        services.terms_accept(challenge=challenge, user=request.user)
        messages.success(request, "Thank you: you accepted the data-use terms.")
        return redirect(_safe_next(request, challenge.get_absolute_url()))
    accepted = selectors.has_accepted_terms(challenge=challenge, user=request.user)
    return render(request, "challenges/terms.html", {"challenge": challenge, "accepted": accepted})


@login_required
def public_file(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    challenge = _challenge(request, slug)
    if not selectors.has_accepted_terms(challenge=challenge, user=request.user):
        messages.error(request, "Accept the data-use terms before downloading the data.")
        return redirect("challenges:terms", slug=slug)
    item = get_object_or_404(challenge.public_files, name=name)
    content_type = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
    return FileResponse(
        private_path(item.path).open("rb"), as_attachment=True,
        filename=item.name.rsplit("/", 1)[-1], content_type=content_type,
    )


@login_required
def phase_starter_kit(request: HttpRequest, slug: str, phase: str) -> HttpResponse:
    """The phase's starter kit (a ready bundle, the sanity inputs, the local test)."""
    item = selectors.visible_phase(user=request.user, slug=slug, phase=phase)
    if not selectors.has_accepted_terms(challenge=item.challenge, user=request.user):
        messages.error(request, "Accept the data-use terms before downloading the starter kit.")
        return redirect(f"{reverse('challenges:terms', args=[slug])}?next={request.path}")
    archive_url = request.build_absolute_uri(reverse(
        "challenges:runtime_image", args=[slug, starter_kit.runtime_archive_name()]))
    if starter_kit.runtime_archive() is None:
        starter_kit.request_runtime_archive()
    kit = starter_kit.build_starter_kit(
        item, download=starter_kit.runtime_download(user=request.user, archive_url=archive_url),
        data_url=request.build_absolute_uri(f"{item.challenge.get_absolute_url()}?tab=data"))
    response = HttpResponse(kit, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{starter_kit.kit_name(item)}"'
    return response


def _text(message: str, status: int, **headers: str) -> HttpResponse:
    """An answer for test-locally.sh, which prints it: plain text, no page."""
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8",
                        headers=headers)


def runtime_image(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    """The runtime image archive (or, with `.sha256`, its checksum), after the terms, for
    local tests: to a logged-in participant (the Data tab), or to the personal link in their
    starter kit (`?key=`), which its test-locally.sh follows without a session."""
    key = request.GET.get("key")
    user = starter_kit.download_key_user(key) if key else request.user
    if user is None:
        return _text("This download link is not valid or has expired: download a new starter "
                     "kit, or this file from the challenge's Data tab.", 403)
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    challenge = selectors.visible_challenge(user=user, slug=slug)
    if not selectors.has_accepted_terms(challenge=challenge, user=user):
        if key:
            return _text("Accept the challenge's data-use terms on the site first: "
                         + request.build_absolute_uri(challenge.get_absolute_url()), 403)
        messages.error(request, "Accept the data-use terms before downloading the data.")
        return redirect(f"{reverse('challenges:terms', args=[slug])}?next={request.path}")
    return _runtime_image_file(request, challenge, name, scripted=bool(key))


def _runtime_image_file(request: HttpRequest, challenge: Challenge, name: str, *,
                        scripted: bool) -> HttpResponse:
    expected = starter_kit.runtime_archive_name()
    if name not in (expected, f"{expected}.sha256"):
        # a kit from before the platform's runtime changed asks for an older archive
        return _text(f"No such runtime image here: this site runs {expected}. Download a new "
                     "starter kit.", 404)
    archive = starter_kit.runtime_archive()
    if archive is None:
        starter_kit.request_runtime_archive()
        if scripted:
            return _text("The runtime image archive is being prepared; try again in a few "
                         "minutes.", 503, **{"Retry-After": "120"})
        messages.info(request, "The runtime image archive is being prepared; try again in a "
                               "few minutes.")
        return redirect(f"{challenge.get_absolute_url()}?tab=data")
    if name.endswith(".sha256"):
        return _text(f"{archive.sha256}  {archive.name}", 200)
    return FileResponse(archive.path.open("rb"), as_attachment=True, filename=archive.name,
                        content_type="application/gzip")


@login_required
@require_POST
def team_create(request: HttpRequest, slug: str) -> HttpResponse:
    challenge = _challenge(request, slug)
    form = TeamCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give your team a name of at most 80 characters.")
        return redirect(challenge)
    try:
        team = services.team_create(challenge=challenge, user=request.user,
                                    name=form.cleaned_data["name"])
    except ChallengeError as error:
        messages.error(request, error.message)
        return redirect(challenge)
    messages.success(request, f"Team “{team.name}” created; you are its captain.")
    return redirect(team)


def _team(request: HttpRequest, slug: str, pk: int) -> Team:
    challenge = _challenge(request, slug)
    return get_object_or_404(Team.objects.select_related("challenge", "captain"),
                             pk=pk, challenge=challenge)


def team_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _team(request, slug, pk)
    members = selectors.team_members(team=team)
    user = request.user
    is_member = any(m.user_id == user.pk for m in members)
    context = {
        "team": team, "challenge": team.challenge, "members": members,
        "is_member": is_member, "is_captain": team.captain_id == user.pk,
        "invitations": team.invitations.filter(used_at__isnull=True,
                                               expires_at__gt=timezone.now())
        .order_by("-created_at") if team.captain_id == user.pk else [],
        "rename_form": TeamRenameForm(initial={"name": team.name}),
        "join_requests": team.join_requests.filter(status=JoinRequest.Status.PENDING)
        .select_related("user") if team.captain_id == user.pk else [],
        "invite_form": InvitationForm(),
        "my_team": selectors.team_for_user(challenge=team.challenge, user=user),
    }
    return render(request, "challenges/team.html", context)


def _run(request: HttpRequest, action, success: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        action()
    except ChallengeError as error:
        messages.error(request, error.message)
        return False
    messages.success(request, success)
    return True


@login_required
@require_POST
def team_invite(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _team(request, slug, pk)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a valid e-mail address, or none for a link.")
        return redirect(team)
    email = (form.cleaned_data["email"] or "").strip().lower()

    def invite() -> None:
        services.invitation_create(team=team, user=request.user, email=email,
                                   site_url=request.build_absolute_uri("/"))

    _run(request, invite, f"Invitation created{' and sent to ' + email if email else ''}.")
    return redirect(team)


@login_required
@require_POST
def team_rename(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _team(request, slug, pk)
    form = TeamRenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give your team a name of at most 80 characters.")
        return redirect(team)
    name = form.cleaned_data["name"].strip()
    _run(request, lambda: services.team_rename(team=team, user=request.user, name=name),
         f"The team is now called “{name}”.")
    return redirect(team)


@login_required
@require_POST
def invitation_cancel(request: HttpRequest, slug: str, pk: int, invitation_pk: int
                      ) -> HttpResponse:
    team = _team(request, slug, pk)
    _run(request, lambda: services.invitation_cancel(
        invitation_pk=invitation_pk, team=team, user=request.user),
        "Invitation cancelled: its link no longer works.")
    return redirect(team)


@login_required
@require_POST
def team_leave(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _team(request, slug, pk)
    challenge = team.challenge
    left = _run(request, lambda: services.team_leave(team=team, user=request.user),
                "You left the team.")
    if left:
        return redirect(challenge)
    return redirect(team)


@login_required
@require_POST
def team_transfer(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _team(request, slug, pk)
    form = CaptainForm(request.POST)
    if not form.is_valid():
        raise Http404  # not a user id: filtering on it would be a server error
    new = get_user_model().objects.filter(pk=form.cleaned_data["user_id"]).first()
    if new is None:
        raise Http404
    _run(request, lambda: services.captain_transfer(team=team, user=request.user, new_captain=new),
         f"{new} is now the captain.")
    return redirect(team)


@login_required
@require_POST
def team_request_join(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    team = _team(request, slug, pk)
    _run(request, lambda: services.join_request_create(team=team, user=request.user),
         "Request sent; the captain will decide.")
    return redirect(team)


@login_required
@require_POST
def join_request_decide(request: HttpRequest, slug: str, pk: int, request_pk: int) -> HttpResponse:
    team = _team(request, slug, pk)
    if not team.join_requests.filter(pk=request_pk).exists():  # unknown, or another team's
        raise Http404("No such request to join this team.")
    approve = request.POST.get("decision") == "approve"
    _run(request, lambda: services.join_request_decide(
        request_pk=request_pk, user=request.user, approve=approve),
        "Request approved." if approve else "Request declined.")
    return redirect(team)


def _remember_invitation(request: HttpRequest, item: Invitation, ended: str) -> None:
    invited = request.session.get(INVITED_SESSION_KEY, [])
    if not ended and item.team.challenge_id not in invited:
        request.session[INVITED_SESSION_KEY] = [*invited, item.team.challenge_id]
    if request.user.is_authenticated or ended:
        request.session.pop(PENDING_INVITATION_SESSION_KEY, None)
    else:
        request.session[PENDING_INVITATION_SESSION_KEY] = item.token


def _accept_invitation(request: HttpRequest, item: Invitation) -> bool:
    """Join; with `terms_version` in the form (the terms shown on the page), accept those
    terms and join in one transaction."""
    version = request.POST.get("terms_version", "")

    def accept() -> None:
        if version:
            services.invitation_accept_with_terms(
                token=item.token, user=request.user,
                terms_version=int(version) if version.isdigit() else -1)
        else:
            services.invitation_accept(token=item.token, user=request.user)

    return _run(request, accept, f"Welcome to team {item.team.name}!")


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    item = Invitation.objects.select_related("team__challenge").filter(token=token).first()
    if item is None or (item.team.challenge.is_draft and not selectors.is_organiser(
            challenge=item.team.challenge, user=request.user)):
        raise Http404("This invitation link is not valid.")
    ended = services.invitation_ended_message(item)
    _remember_invitation(request, item, ended)
    if request.method == "POST" and request.user.is_authenticated:
        if _accept_invitation(request, item):
            return redirect(item.team)
        ended = services.invitation_ended_message(item)
    accepted_terms = selectors.has_accepted_terms(challenge=item.team.challenge, user=request.user)
    return render(request, "challenges/invitation.html",
                  {"invitation": item, "team": item.team, "challenge": item.team.challenge,
                   "accepted_terms": accepted_terms, "ended": ended})


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    memberships = request.user.memberships.select_related("team__challenge")
    return render(request, "account/profile.html", {"memberships": memberships})


EXPORTED_FIELDS = ("id", "at", "actor_id", "actor_name", "challenge_id", "verb", "target",
                   "data", "prev_hash", "hash")


@login_required
def audit_export(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    """The challenge's audit events with their hashes, one JSON object a line (organisers).
    Each event's hash can be recomputed from its line; the links between lines run through
    events of other challenges too, which `manage.py audit_verify` checks on the server."""
    challenge = _challenge(request, slug)
    if not selectors.is_organiser(challenge=challenge, user=request.user):
        raise Http404("No such page.")
    events = AuditEvent.objects.filter(challenge_id=challenge.pk).order_by("id")
    lines = (json.dumps({name: _exported(getattr(e, name)) for name in EXPORTED_FIELDS},
                        sort_keys=True) + "\n" for e in events.iterator())
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{slug}-audit.jsonl"'
    return response


def _exported(value: object) -> object:
    return value.isoformat() if hasattr(value, "isoformat") else value
