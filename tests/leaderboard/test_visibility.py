"""Who sees which board, before and after the phase closes: pages, live partials, entry
pages and exports, for a team member, another team, a user without a team, the organiser
and an anonymous visitor."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse

from challenges.models import Phase
from leaderboards.compute import recompute
from leaderboards.models import LeaderboardSnapshot
from tests.leaderboard.conftest import close_phase


@dataclass(frozen=True)
class State:
    scores: str
    closed: bool
    published: bool = False


STATES = {
    "live-open": State("live", closed=False),
    "live-closed": State("live", closed=True),
    "after-close-open": State("after-close", closed=False),
    "after-close-closed": State("after-close", closed=True),
    "live-open-private-published": State("live", closed=False, published=True),
}
USERS = ["alice", "carol", "dave", "olga", "anonymous"]


def expected(state: State, user: str, board: str) -> bool:
    if user == "olga":
        return True
    if board == "private":
        return state.closed or state.published
    return state.scores == "live" or state.closed


def fmt(value: float) -> str:
    return f"{value:.4f}"


@pytest.fixture
def setup(request, phase, cast, alice, carol, dave, olga, client):  # type: ignore[no-untyped-def]
    state_name, user = request.param
    state = STATES[state_name]
    Phase.objects.filter(pk=phase.pk).update(score_visibility=state.scores,
                                             private_published=state.published)
    phase.refresh_from_db()
    if state.closed:
        close_phase(phase)
    recompute(phase_pk=phase.pk)
    if user != "anonymous":
        client.force_login({"alice": alice, "carol": carol, "dave": dave, "olga": olga}[user])
    boards = {b.board: b.payload for b in LeaderboardSnapshot.objects.filter(phase=phase)}
    return state, user, boards


def urls(phase, board: str, key: str) -> dict[str, str]:
    args = [phase.challenge.slug, phase.slug, board]
    return {
        "page": reverse("leaderboards:board", args=args),
        "live": reverse("leaderboards:board_live", args=args),
        "entry": reverse("leaderboards:entry", args=[*args, key]),
        "csv": reverse("leaderboards:export_csv", args=args),
        "json": reverse("leaderboards:export_json", args=args),
    }


def scores_of(payload: dict) -> list[str]:
    return [fmt(e["metrics"]["auroc"]) for e in payload["entries"]]


CASES = [(s, u) for s in STATES for u in USERS]


@pytest.mark.parametrize("setup", CASES, ids=[f"{s}-{u}" for s, u in CASES], indirect=True)
@pytest.mark.parametrize("board", ["public", "private"])
def test_boards_pages_and_exports_follow_the_visibility_rules(setup, board, phase, cast, client):
    state, user, boards = setup
    visible = expected(state, user, board)
    payload = boards[board]
    other = boards["private" if board == "public" else "public"]
    links = urls(phase, board, str(cast.a_best.uid))
    for name in ("page", "live"):
        html = client.get(links[name]).content.decode()
        assert (f'data-board="{board}"' in html) == visible, name
        for score in scores_of(payload):
            assert (score in html) == visible, (name, score)
        for score in scores_of(other):
            assert score not in html, (name, "the other board's scores leaked")
    assert client.get(links["entry"]).status_code == (200 if visible else 404)
    for fmt_name in ("csv", "json"):
        response = client.get(links[fmt_name])
        assert response.status_code == (200 if user == "olga" else 403), fmt_name
        if user == "olga":
            body = response.content.decode()
            assert str(cast.a_best.uid) in body and "Team A" in body


@pytest.mark.parametrize("setup", CASES, ids=[f"{s}-{u}" for s, u in CASES], indirect=True)
def test_the_phase_page_shows_the_public_board_only_when_visible(setup, phase, client):
    state, user, boards = setup
    html = client.get(phase.get_absolute_url()).content.decode()
    visible = expected(state, user, "public")
    assert ('data-board="public"' in html) == visible
    for score in scores_of(boards["public"]):
        assert (score in html) == visible
    for score in scores_of(boards["private"]):
        assert score not in html


def test_an_after_close_phase_hides_even_a_teams_own_entry_until_it_closes(
    phase, cast, alice, client
):
    Phase.objects.filter(pk=phase.pk).update(score_visibility="after-close")
    phase.refresh_from_db()
    recompute(phase_pk=phase.pk)
    client.force_login(alice)
    links = urls(phase, "public", str(cast.a_best.uid))
    assert client.get(links["entry"]).status_code == 404
    assert b"shown after it closes" in client.get(links["page"]).content
    close_phase(phase)
    assert client.get(links["entry"]).status_code == 200


def test_an_invite_only_challenge_hides_its_boards_from_outsiders(phase, cast, dave, client):
    phase.challenge.visibility = "invite-only"
    phase.challenge.save()
    recompute(phase_pk=phase.pk)
    client.force_login(dave)
    links = urls(phase, "public", str(cast.a_best.uid))
    for name in ("page", "live", "entry"):
        assert client.get(links[name]).status_code == 404
    view = board_for(phase, dave, "public")
    assert not view.visible and view.payload is None


def board_for(phase, user, board):  # type: ignore[no-untyped-def]
    from challenges.visibility import phase_rights
    from leaderboards.selectors import leaderboard_for

    return leaderboard_for(rights=phase_rights(phase=phase, user=user), board=board)


def test_leaderboard_for_serves_the_api_the_same_rules(phase, cast, alice, olga):
    from django.contrib.auth.models import AnonymousUser

    recompute(phase_pk=phase.pk)
    assert board_for(phase, AnonymousUser(), "public").entries
    hidden = board_for(phase, alice, "private")
    assert (hidden.visible, hidden.payload) == (False, None)
    assert "when the phase closes" in hidden.reason
    assert board_for(phase, olga, "private").entries
    assert not board_for(phase, olga, "secret").visible


def test_an_unknown_board_is_not_found(phase, client):
    url = reverse("leaderboards:board", args=[phase.challenge.slug, phase.slug, "x"])
    response = client.get(url)
    assert response.status_code == 404
