"""Which submissions become entries, how they are ranked, tied and labelled."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from challenges.models import Phase
from leaderboards.compute import recompute
from leaderboards.models import LeaderboardSnapshot
from tests.factories import TeamFactory, UserFactory


def board(phase, name="public") -> dict:
    return LeaderboardSnapshot.objects.get(phase=phase, board=name).payload


def rows(payload) -> list[tuple]:
    return [(e["team"], e["rank"], e["tied_with_leader"]) for e in payload["entries"]]


def test_each_team_is_ranked_once_by_its_best_submission(phase, cast):
    recompute(phase_pk=phase.pk)
    payload = board(phase)
    teams = [e["team"] for e in payload["entries"] if not e["is_baseline"]]
    assert sorted(teams) == ["Team A", "Team C"]
    a = next(e for e in payload["entries"] if e["team"] == "Team A")
    assert a["key"] == str(cast.a_best.uid) and a["submission"] == cast.a_best.number
    assert a["entries"] == 2
    assert a["last_submission_at"] == cast.a_best.created_at.isoformat()


def test_the_private_board_keeps_the_entry_chosen_by_public_score(
    phase, table, cast, add_result, model_scores, team_c
):
    # Team C's second submission is perfect on the private cases and a little worse than its
    # first on the public ones: choosing by private score would pick it.
    private = table.split == "private"
    leaky = model_scores["visits"].copy()
    leaky[private] = table.y[private]
    public = ~private
    leaky[public] = np.clip(leaky[public] + np.random.default_rng(3).normal(0, .2, public.sum()),
                            0, 1).round(4)
    second = add_result(team_c, leaky, minutes_ago=5)
    y_pub, first = table.y[public], model_scores["visits"][public]
    assert roc_auc_score(y_pub, leaky[public]) < roc_auc_score(y_pub, first)
    recompute(phase_pk=phase.pk)
    for name in ("public", "private"):
        c = next(e for e in board(phase, name)["entries"] if e["team"] == "Team C")
        assert c["key"] == str(cast.c_best.uid) != str(second.uid)
    c_private = next(e for e in board(phase, "private")["entries"] if e["team"] == "Team C")
    assert c_private["metrics"]["auroc"] < 0.9


def test_selected_entries_are_ranked_and_the_latest_n_count_without_a_selection(
    phase, cast, add_result, model_scores, team_a, team_c
):
    Phase.objects.filter(pk=phase.pk).update(selection_limit=2)
    extra = add_result(team_c, model_scores["stay"], minutes_ago=20)
    latest_c = add_result(team_c, model_scores["inpatient"], minutes_ago=10)
    from submissions.models import Submission

    Submission.objects.filter(pk=cast.a_other.pk).update(selected=True)
    recompute(phase_pk=phase.pk)
    keys = {e["key"] for e in board(phase)["entries"] if not e["is_baseline"]}
    # Team A selected one entry (its worse one); Team C selected none: its latest two count.
    assert keys == {str(cast.a_other.uid), str(extra.uid), str(latest_c.uid)}
    assert board(phase)["selection"] == "selected:2"
    labels = {e["team"] for e in board(phase)["entries"]}
    assert f"Team C #{latest_c.number}" in labels


def test_identical_entries_share_rank_one_and_the_second_is_tied_with_k_zero(
    phase, add_result, model_scores, team_a, team_c
):
    add_result(team_a, model_scores["five"])
    add_result(team_c, model_scores["five"])
    third = TeamFactory(challenge=phase.challenge, name="Team D",
                        captain=UserFactory(username="dora"))
    add_result(third, model_scores["labs"])
    recompute(phase_pk=phase.pk)
    payload = board(phase)
    assert [(r[1], r[2]) for r in rows(payload)] == [(1, False), (1, True), (3, False)]
    # DREAM's K counts resamples where the two are equal against the leader: K = 0, tied.
    assert payload["entries"][1]["bayes_factor"] == 0.0
    assert payload["entries"][2]["team"] == "Team D"


def test_secondary_metrics_break_primary_ties(phase, table, add_result, model_scores,
                                              team_a, team_c):
    scores = model_scores["five"]
    add_result(team_a, scores)
    add_result(team_c, (scores / 2).round(6))  # same order, so the same AUROC and AUPRC
    recompute(phase_pk=phase.pk)
    entries = board(phase)["entries"]
    assert entries[0]["metrics"]["auroc"] == entries[1]["metrics"]["auroc"]
    assert [e["rank"] for e in entries] == [1, 2]
    first_different = next(n for n in ("auprc", "f1", "brier")
                           if entries[0]["metrics"][n] != entries[1]["metrics"][n])
    a, b = entries[0]["metrics"][first_different], entries[1]["metrics"][first_different]
    assert a < b if first_different == "brier" else a > b


def test_baselines_are_labelled_and_take_no_rank(phase, cast, add_result, model_scores,
                                                 organisers_team):
    # Anything the organisers' team submits is a baseline, flagged or not.
    add_result(organisers_team, model_scores["five"], minutes_ago=1)
    recompute(phase_pk=phase.pk)
    payload = board(phase)
    baselines = [e for e in payload["entries"] if e["is_baseline"]]
    assert len(baselines) == 2 and all(e["rank"] is None for e in baselines)
    assert all(e["team"].startswith("Organisers #") for e in baselines)
    ranked = [e["rank"] for e in payload["entries"] if not e["is_baseline"]]
    assert ranked == [1, 2]
    # The organisers' copy of Team A's model scores as well as the leader without sharing its
    # rank or pushing Team C down, and is not compared with the leader.
    a = next(e for e in payload["entries"] if e["team"] == "Team A")
    copy = next(e for e in baselines if e["metrics"] == a["metrics"])
    assert a["rank"] == 1 and a["bayes_factor"] is None and not a["tied_with_leader"]
    assert copy["bayes_factor"] is None and not copy["tied_with_leader"]


def test_best_score_over_time_follows_each_teams_entry(phase, cast, add_result,
                                                       model_scores, team_a):
    add_result(team_a, model_scores["labs"], minutes_ago=5)  # worse: no new point
    recompute(phase_pk=phase.pk)
    lines = {line["team"]: line["points"] for line in board(phase)["timeline"]}
    assert set(lines) == {"Team A", "Team C"}
    a = [value for _, value in lines["Team A"]]
    assert len(a) == 2 and a[0] < a[1]
    a_entry = next(e for e in board(phase)["entries"] if e["team"] == "Team A")
    assert a[-1] == a_entry["metrics"]["auroc"]
    assert lines["Team A"][1][0] == cast.a_best.created_at.isoformat()
    private = {line["team"]: line["points"] for line in board(phase, "private")["timeline"]}
    assert private["Team A"][-1][1] == next(
        e for e in board(phase, "private")["entries"] if e["team"] == "Team A")["metrics"]["auroc"]


def test_a_phase_without_results_gets_empty_boards(phase):
    assert recompute(phase_pk=phase.pk)
    assert board(phase)["entries"] == [] and board(phase, "private")["entries"] == []
