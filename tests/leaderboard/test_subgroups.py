"""Subgroup scores: computed on the board's own cases, small cells suppressed in the stored
payload and therefore on every page and export built from it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.urls import reverse
from sklearn.metrics import roc_auc_score

from leaderboards.compute import recompute
from leaderboards.models import LeaderboardSnapshot
from scoring.models import Result

SMALL = {"test-site-19": "19 cases", "test-site-9pos": "9 positives"}


def payload(phase, board="public") -> dict:
    return LeaderboardSnapshot.objects.get(phase=phase, board=board).payload


def site_score(table, scores, value: str) -> float:
    cell = (table.split == "public") & (table.subgroups["site"] == value)
    return float(roc_auc_score(table.y[cell], scores[cell]))


def walk(node):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def test_the_test_cells_have_the_sizes_they_claim(table):
    public = table.split == "public"
    for value, (n, n_pos) in {"test-site-19": (19, 10), "test-site-9pos": (40, 9),
                              "test-site-20": (20, 10)}.items():
        cell = public & (table.subgroups["site"] == value)
        assert (int(cell.sum()), int(table.y[cell].sum())) == (n, n_pos)


def test_small_cells_never_reach_the_payload(phase, table, cast, model_scores):
    recompute(phase_pk=phase.pk)
    # The raw per-result JSON does hold them (scored over all cases): it must never be shown.
    raw = Result.objects.get(submission=cast.a_best).subgroups["site"]
    assert raw["test-site-19"]["auroc"] is not None
    for entry in payload(phase)["entries"]:
        site = entry["subgroups"]["site"]
        for value in SMALL:
            assert site[value] == {"suppressed": True}
        assert site["test-site-20"]["n"] == 20 and site["test-site-20"]["score"] is not None
    text = json.dumps(payload(phase))
    for value in SMALL:
        score = site_score(table, model_scores["five"], value)
        assert repr(score) not in text and f"{score:.4f}" not in text
    for _key, value in walk(payload(phase)):
        if isinstance(value, dict) and value.get("suppressed"):
            assert set(value) == {"suppressed"}


def test_small_cells_never_appear_on_pages_or_exports(phase, table, cast, model_scores,
                                                      client, olga):
    recompute(phase_pk=phase.pk)
    client.force_login(olga)
    args = [phase.challenge.slug, phase.slug, "public"]
    bodies = {
        "entry": client.get(reverse("leaderboards:entry", args=[*args, str(cast.a_best.uid)])),
        "board": client.get(reverse("leaderboards:board", args=args)),
        "csv": client.get(reverse("leaderboards:export_csv", args=args)),
        "json": client.get(reverse("leaderboards:export_json", args=args)),
    }
    for name, response in bodies.items():
        assert response.status_code == 200, name
    html = bodies["entry"].content.decode()
    assert "test-site-19" in html and "suppressed" in html
    shown = site_score(table, model_scores["five"], "test-site-20")
    assert f"{shown:.4f}" in html
    for value in SMALL:
        score = site_score(table, model_scores["five"], value)
        for name, response in bodies.items():
            body = response.content.decode()
            assert f"{score:.4f}" not in body and repr(score) not in body, (name, value)
    csv_lines = bodies["csv"].content.decode().splitlines()
    header = csv_lines[0].split(",")
    column = header.index("subgroup:site=test-site-19")
    assert {line.split(",")[column] for line in csv_lines[1:]} == {"suppressed"}


def test_the_thresholds_come_from_settings(phase, cast, settings):
    settings.HELDOUT_SUBGROUP_MIN_CASES = 21
    recompute(phase_pk=phase.pk)
    site = payload(phase)["entries"][0]["subgroups"]["site"]
    assert site["test-site-20"] == {"suppressed": True}
    assert payload(phase)["subgroup_rule"] == {"min_cases": 21, "min_positives": 10}
    settings.HELDOUT_SUBGROUP_MIN_CASES = 20
    settings.HELDOUT_SUBGROUP_MIN_POSITIVES = 11
    recompute(phase_pk=phase.pk)
    assert payload(phase)["entries"][0]["subgroups"]["site"]["test-site-20"] == {
        "suppressed": True}


@pytest.mark.parametrize("board", ["public", "private"])
def test_subgroup_scores_use_only_the_boards_cases(phase, table, cast, model_scores, board):
    recompute(phase_pk=phase.pk)
    entry = next(e for e in payload(phase, board)["entries"] if e["team"] == "Team A")
    scores = model_scores["five"]
    part = table.split == board
    for value, cell in entry["subgroups"]["sex"].items():
        inside = part & (table.subgroups["sex"] == value)
        assert cell["n"] == int(inside.sum())
        assert cell["n_positive"] == int(table.y[inside].sum())
        assert cell["score"] == pytest.approx(roc_auc_score(table.y[inside], scores[inside]),
                                              abs=1e-12)
        overall = Result.objects.get(submission=cast.a_best).subgroups["sex"][value]["auroc"]
        assert cell["score"] != pytest.approx(overall, abs=1e-9)


def test_the_fairness_gap_is_the_spread_of_the_shown_cells(phase, cast):
    recompute(phase_pk=phase.pk)
    for entry in payload(phase)["entries"]:
        gaps = {}
        for column, cells in entry["subgroups"].items():
            shown = [c["score"] for c in cells.values() if c.get("score") is not None]
            gaps[column] = max(shown) - min(shown) if len(shown) > 1 else None
        assert entry["fairness_gaps"] == pytest.approx(gaps)
        widest = max((g, c) for c, g in gaps.items() if g is not None)
        assert entry["fairness_gap"] == {"column": widest[1], "gap": pytest.approx(widest[0])}
    # Site's gap ignores the suppressed cells although their raw scores are the extremes.
    site = payload(phase)["entries"][0]["subgroups"]["site"]
    assert np.isclose(payload(phase)["entries"][0]["fairness_gaps"]["site"],
                      abs(site["main"]["score"] - site["test-site-20"]["score"]))
