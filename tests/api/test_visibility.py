"""What each role sees of a submission and a leaderboard: scores hidden in `after-close`
phases until close (organisers always see them), the private part of a split evaluation set
hidden until the private board is, hidden-lane logs only where the phase shows them, and
sanity-lane logs always."""

from __future__ import annotations

import pytest

from challenges.models import Challenge, Phase
from tests.api.conftest import close, finish, v1

SPLIT = {"all": {"auroc": 0.8}, "public": {"auroc": 0.82}, "private": {"auroc": 0.77}}


def detail(api, user, submission):  # type: ignore[no-untyped-def]
    response = api(user).get(v1(f"submissions/{submission.uid}/"))
    assert response.status_code == 200, response.content
    return response.json()


def logs(body) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    return {run["lane"]: run["log"] for run in body["runs"]}


def test_it_never_returns_hidden_lane_logs_to_the_team_unless_the_phase_shows_them(
    api, alice, bob, scored_a
):  # type: ignore[no-untyped-def]
    for user in (alice, bob):
        body = detail(api, user, scored_a)
        assert logs(body) == {"sanity": "sanity: loaded 10 rows", "hidden": None}
        assert [run["log_visible"] for run in body["runs"]] == [True, False]
    assert "secret-looking" not in str(detail(api, alice, scored_a))


def test_it_returns_hidden_lane_logs_where_the_phase_shows_them(api, alice, phase, scored_a):  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(show_logs=True)
    assert logs(detail(api, alice, scored_a))["hidden"] == "hidden: secret-looking output"


def test_it_always_returns_all_logs_to_organisers(api, olga, scored_a):  # type: ignore[no-untyped-def]
    assert logs(detail(api, olga, scored_a)) == {
        "sanity": "sanity: loaded 10 rows", "hidden": "hidden: secret-looking output"}


def test_it_shows_another_team_nothing_of_a_submission(api, carol, scored_a):  # type: ignore[no-untyped-def]
    response = api(carol).get(v1(f"submissions/{scored_a.uid}/"))
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such submission."}


def test_it_shows_scores_live_by_default(api, alice, scored_a):  # type: ignore[no-untyped-def]
    body = detail(api, alice, scored_a)
    assert body["scores_visible"] is True
    assert body["metrics"] == {"all": {"auroc": 0.8, "auprc": 0.6}}


@pytest.fixture
def after_close(phase):  # type: ignore[no-untyped-def]
    Phase.objects.filter(pk=phase.pk).update(score_visibility=Phase.ScoreVisibility.AFTER_CLOSE)
    phase.refresh_from_db()
    return phase


def test_it_hides_scores_of_an_after_close_phase_until_it_closes(
    api, alice, after_close, scored_a
):  # type: ignore[no-untyped-def]
    body = detail(api, alice, scored_a)
    assert (body["scores_visible"], body["metrics"]) == (False, None)
    listed = api(alice).get(v1("challenges/readmission/phases/leaderboard/submissions/")).json()
    assert [(s["scores_visible"], s["metrics"]) for s in listed["results"]] == [(False, None)]
    close(after_close)
    assert detail(api, alice, scored_a)["metrics"] == {"all": {"auroc": 0.8, "auprc": 0.6}}


def test_it_shows_organisers_scores_of_an_after_close_phase_at_once(
    api, olga, after_close, scored_a
):  # type: ignore[no-untyped-def]
    assert detail(api, olga, scored_a)["metrics"] == {"all": {"auroc": 0.8, "auprc": 0.6}}


@pytest.fixture
def split_result(submission_a, evaluation_set):  # type: ignore[no-untyped-def]
    return finish(submission_a, metrics=SPLIT)


def test_it_shows_only_the_public_part_while_the_private_board_is_hidden(
    api, alice, phase, split_result
):  # type: ignore[no-untyped-def]
    assert detail(api, alice, split_result)["metrics"] == {"public": {"auroc": 0.82}}
    listed = api(alice).get(v1("challenges/readmission/phases/leaderboard/submissions/")).json()
    assert listed["results"][0]["metrics"] == {"public": {"auroc": 0.82}}


@pytest.mark.parametrize("reveal", ["close", "publish"])
def test_it_shows_every_part_once_the_private_board_is_visible(
    api, alice, phase, split_result, reveal
):  # type: ignore[no-untyped-def]
    if reveal == "close":
        close(phase)
    else:
        Phase.objects.filter(pk=phase.pk).update(private_published=True)
    assert detail(api, alice, split_result)["metrics"] == SPLIT


def test_it_shows_organisers_every_part_at_once(api, olga, split_result):  # type: ignore[no-untyped-def]
    assert detail(api, olga, split_result)["metrics"] == SPLIT


def test_it_lists_only_the_own_teams_submissions(
    api, alice, bob, carol, olga, phase, team_c, submission_a
):  # type: ignore[no-untyped-def]
    from tests.api.conftest import submit

    mine = submit(phase, team_c, carol)
    url = v1("challenges/readmission/phases/leaderboard/submissions/")

    def ids(user) -> list[str]:  # type: ignore[no-untyped-def]
        return [item["id"] for item in api(user).get(url).json()["results"]]

    assert ids(alice) == ids(bob) == [str(submission_a.uid)]
    assert ids(carol) == [str(mine.uid)]
    assert ids(olga) == []


# --- leaderboard ---------------------------------------------------------------------------


def board(api, user, name: str = "public"):  # type: ignore[no-untyped-def]
    response = api(user).get(
        v1("challenges/readmission/phases/leaderboard/leaderboard/"), {"board": name})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("who", ["alice", "carol", "olga", None])
def test_it_shows_a_live_public_board_to_everyone(api, request, boards, who):  # type: ignore[no-untyped-def]
    user = request.getfixturevalue(who) if who else None
    body = board(api, user)
    assert body["visible"] is True
    assert [(e["rank"], e["team"]) for e in body["entries"]] == [(1, "Team A"), (2, "Team C")]
    assert body["entries"][1]["bayes_factor"] == 4.2
    assert "key" not in body["entries"][0]


@pytest.mark.parametrize("who", ["alice", "carol", None])
def test_it_hides_an_after_close_board_from_participants_until_close(
    api, request, after_close, boards, who
):  # type: ignore[no-untyped-def]
    user = request.getfixturevalue(who) if who else None
    body = board(api, user)
    assert (body["visible"], body["entries"]) == (False, [])
    assert body["reason"] == "Scores of this phase are shown after it closes."
    close(after_close)
    assert len(board(api, user)["entries"]) == 2


def test_it_shows_organisers_an_after_close_board_at_once(api, olga, after_close, boards):  # type: ignore[no-untyped-def]
    assert len(board(api, olga)["entries"]) == 2


def test_it_hides_the_private_board_until_close(api, alice, olga, phase, boards):  # type: ignore[no-untyped-def]
    assert board(api, alice, "private")["visible"] is False
    assert board(api, olga, "private")["visible"] is True
    close(phase)
    assert board(api, alice, "private")["visible"] is True


def test_it_refuses_an_unknown_board(api, alice, boards):  # type: ignore[no-untyped-def]
    response = api(alice).get(
        v1("challenges/readmission/phases/leaderboard/leaderboard/"), {"board": "secret"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert "board" in response.json()["errors"]


def test_it_says_when_nothing_is_scored_yet(api, alice, phase):  # type: ignore[no-untyped-def]
    body = board(api, alice)
    assert (body["visible"], body["reason"], body["entries"]) == (
        True, "No scored submissions yet.", [])
    assert body["primary"] == "auroc"


def test_it_hides_invite_only_challenges_from_outsiders(api, alice, dave, olga, challenge, team_a):  # type: ignore[no-untyped-def]
    Challenge.objects.filter(pk=challenge.pk).update(visibility=Challenge.Visibility.INVITE_ONLY)
    for user in (None, dave):
        assert api(user).get(v1("challenges/readmission/")).status_code == 404
        assert api(user).get(
            v1("challenges/readmission/phases/leaderboard/leaderboard/")).status_code == 404
        assert api(user).get(v1("challenges/")).json()["results"] == []
    for user in (alice, olga):
        assert api(user).get(v1("challenges/readmission/")).status_code == 200


def test_it_tells_the_team_why_a_submission_failed(api, bob, submission_a):  # type: ignore[no-untyped-def]
    from submissions.models import Submission

    Submission.objects.filter(pk=submission_a.pk).update(
        status=Submission.Status.FAILED, error_class=Submission.ErrorClass.TIMEOUT,
        error_message="The model did not finish within 600 seconds.")
    body = detail(api, bob, submission_a)
    assert (body["status"], body["error_class"], body["error_message"]) == (
        "failed", "timeout", "The model did not finish within 600 seconds.")
    assert (body["metrics"], body["runs"]) == (None, [])
