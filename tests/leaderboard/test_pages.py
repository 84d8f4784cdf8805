"""The leaderboard page, the entry page with its server-drawn SVG charts, the live partial,
and the curve data behind the charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from django.urls import reverse

from leaderboards import charts
from leaderboards.compute import recompute
from leaderboards.models import LeaderboardSnapshot
from tests.leaderboard.conftest import close_phase

SVG = "{http://www.w3.org/2000/svg}"


def svgs(html: str) -> list[ET.Element]:
    out = []
    start = html.find("<svg")
    while start != -1:
        end = html.index("</svg>", start) + len("</svg>")
        out.append(ET.fromstring(html[start:end]))
        start = html.find("<svg", end)
    return out


def board_url(phase, board="public", name="leaderboards:board") -> str:
    return reverse(name, args=[phase.challenge.slug, phase.slug, board])


def test_the_board_page_shows_every_column(phase, cast, client, alice):
    recompute(phase_pk=phase.pk)
    payload = LeaderboardSnapshot.objects.get(phase=phase, board="public").payload
    client.force_login(alice)
    html = client.get(board_url(phase)).content.decode()
    a, c = (next(e for e in payload["entries"] if e["team"] == t) for t in ("Team A", "Team C"))
    low, high = a["intervals"]["auroc"]
    assert f"{a['metrics']['auroc']:.4f}" in html and f"[{low:.4f}, {high:.4f}]" in html
    # metric columns carry their titles and the better direction, the id on hover
    for name, title in (("auprc", "AUPRC ↑"), ("f1", "F1 ↑"), ("brier", "Brier score ↓")):
        assert f'<abbr title="{name}: ' in html and f">{title}</abbr>" in html
        assert f"{a['metrics'][name]:.4f}" in html
    assert f"K&nbsp;=&nbsp;{c['bayes_factor']:.2f}" in html
    assert ('class="badge tie"' in html) == c["tied_with_leader"]
    assert f"{a['fairness_gap']['gap']:.4f}" in html
    assert a["last_submission_at"][:10] in html and a["last_submission_at"][11:16] in html
    assert '<span class="badge">baseline</span>' in html
    assert 'class="mine"' in html  # Alice's own team is highlighted
    assert 'data-poll-interval="10000"' in html
    chart = svgs(html)[0]
    assert "Best auroc over time" in chart.findtext(f"{SVG}title")
    assert len(chart.findall(f".//{SVG}polyline")) == 2  # one line per team, no baseline
    assert "export.csv" not in html  # exports are for organisers


def test_the_live_partial_is_the_table_and_marks_a_final_board(phase, cast, client):
    recompute(phase_pk=phase.pk)
    html = client.get(board_url(phase, name="leaderboards:board_live")).content.decode()
    assert html.lstrip().startswith('<div class="board-scroll"><table')
    assert "data-final" not in html
    close_phase(phase)
    recompute(phase_pk=phase.pk)
    live = client.get(board_url(phase, name="leaderboards:board_live"))
    assert "data-final" in live.content.decode()


def test_a_poll_between_two_computations_is_not_modified(phase, cast, client, add_result,
                                                        model_scores, team_c):
    recompute(phase_pk=phase.pk)
    live = board_url(phase, name="leaderboards:board_live")
    first = client.get(live)
    again = client.get(live, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b""
    add_result(team_c, model_scores["stay"])
    recompute(phase_pk=phase.pk)
    assert client.get(live, headers={"If-None-Match": first["ETag"]}).status_code == 200


def test_the_phase_page_polls_the_public_board(phase, cast, client):
    recompute(phase_pk=phase.pk)
    html = client.get(phase.get_absolute_url()).content.decode()
    assert f'data-poll-url="{board_url(phase, name="leaderboards:board_live")}"' in html
    assert 'data-board="public"' in html


def test_a_new_score_shows_on_the_next_poll(phase, cast, client, add_result, model_scores,
                                            team_c):
    recompute(phase_pk=phase.pk)
    live = board_url(phase, name="leaderboards:board_live")
    assert client.get(live).content.decode().count("<tr ") == 3
    newcomer = add_result(team_c, model_scores["five"])  # ties Team A
    recompute(phase_pk=phase.pk)
    html = client.get(live).content.decode()
    # the identical newcomer is tied with the leader (K = 0); the leader has no badge
    assert str(newcomer.uid) in html and html.count('class="badge tie"') == 1


def test_the_entry_page_has_intervals_subgroups_and_curves(phase, cast, client, alice):
    recompute(phase_pk=phase.pk)
    payload = LeaderboardSnapshot.objects.get(phase=phase, board="private").payload
    entry = next(e for e in payload["entries"] if e["team"] == "Team C")
    close_phase(phase)
    client.force_login(alice)
    url = reverse("leaderboards:entry", args=[phase.challenge.slug, phase.slug, "private",
                                         entry["key"]])
    html = client.get(url).content.decode()
    for name in ("auroc", "auprc", "f1", "brier"):
        low, high = entry["intervals"][name]
        assert f"[{low:.4f}, {high:.4f}]" in html
    assert f"K = {entry['bayes_factor']:.2f}" in html
    assert 'data-column="sex"' in html and 'data-column="age_band"' in html
    roc, calibration = svgs(html)
    assert roc.findtext(f"{SVG}title").startswith("ROC curve")
    assert calibration.findtext(f"{SVG}title") == "Calibration (reliability)"
    assert len(roc.findall(f".//{SVG}circle")) >= 3


def test_team_names_are_escaped_in_tables_and_charts(phase, add_result, model_scores, client):
    from tests.factories import TeamFactory, UserFactory

    team = TeamFactory(challenge=phase.challenge, name='<script>alert("x")</script>',
                       captain=UserFactory(username="mallory"))
    submission = add_result(team, model_scores["five"])
    recompute(phase_pk=phase.pk)
    html = client.get(board_url(phase)).content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    svgs(html)  # still well-formed XML
    entry = reverse("leaderboards:entry", args=[phase.challenge.slug, phase.slug, "public",
                                           str(submission.uid)])
    page = client.get(entry).content.decode()
    assert "<script>alert" not in page
    svgs(page)


def test_a_submission_that_is_not_an_entry_has_no_page(phase, cast, client):
    recompute(phase_pk=phase.pk)
    url = reverse("leaderboards:entry", args=[phase.challenge.slug, phase.slug, "public",
                                         str(cast.a_other.uid)])
    assert client.get(url).status_code == 404


# --------------------------------------------------------------------------- curve data


@pytest.fixture
def public_case_scores(table, model_scores):  # type: ignore[no-untyped-def]
    public = table.split == "public"
    return table.y[public].astype(bool), model_scores["five"][public]


def test_roc_points_are_exact_on_groups_that_never_reveal_a_label(public_case_scores):
    y, s = public_case_scores
    curve = charts.roc_curve(y, s, min_cases=20, min_positives=10)
    assert curve is not None and curve.points[0] == (0.0, 0.0) and curve.points[-1] == (1.0, 1.0)
    fpr, tpr = np.array(curve.points).T
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # Each step between points is a group of >= 20 cases with >= 10 of each class, and each
    # point is the exact ROC point at that threshold.
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    steps_pos = np.diff(tpr) * n_pos
    steps_neg = np.diff(fpr) * n_neg
    assert np.all(np.round(steps_pos) >= 10) and np.all(np.round(steps_neg) >= 10)
    assert np.all(np.round(steps_pos + steps_neg) >= 20)
    thresholds = np.sort(np.unique(s))[::-1]
    exact = {(float(((s >= t) & ~y).sum() / n_neg), float(((s >= t) & y).sum() / n_pos))
             for t in thresholds}
    assert set(curve.points[1:]) <= exact | {(1.0, 1.0)}


def test_calibration_bins_are_shown_only_when_large_enough(public_case_scores):
    y, s = public_case_scores
    bins = charts.calibration_bins(y, s, min_cases=20, min_positives=10)
    assert len(bins) == 10
    for b in bins:
        inside = (s >= b.low) & ((s < b.high) if b.high < 1 else (s <= 1))
        n, n_pos = int(inside.sum()), int(y[inside].sum())
        assert b.suppressed == (n < 20 or n_pos < 10 or n - n_pos < 10)
        if not b.suppressed:
            assert (b.n, b.observed) == (n, pytest.approx(n_pos / n))
            assert b.mean_predicted == pytest.approx(s[inside].mean())
    assert any(b.suppressed for b in bins) and any(not b.suppressed for b in bins)


def test_too_few_cases_draw_no_curve():
    y = np.array([1, 0] * 10, dtype=bool)
    s = np.linspace(0, 1, 20)
    assert charts.roc_curve(y, s, min_cases=20, min_positives=10) is None
    assert all(b.suppressed for b in charts.calibration_bins(y, s, min_cases=20,
                                                             min_positives=10))


def test_nice_ticks_cover_the_range():
    ticks = charts.nice_ticks(0.61, 0.68)
    assert ticks[0][0] >= 0.61 and ticks[-1][0] <= 0.68 and len(ticks) >= 3
    assert [t for _, t in ticks] == [f"{v:.2f}" for v, _ in ticks]
