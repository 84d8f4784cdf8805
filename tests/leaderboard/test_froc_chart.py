"""The FROC drawn on entry pages: only its seven operating rates, never a step per detection,
and nothing at all with too few lesions."""

from __future__ import annotations

import numpy as np

from heldout_kernel.stats.detection import froc, froc_curve, match
from heldout_kernel.stats.metrics import FROC_FP_RATES
from leaderboards import charts


def _evidence():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    n_films, n_lesions, n_det = 40, 30, 160
    lesion_film = rng.integers(0, n_films, n_lesions)
    det_film = rng.integers(0, n_films, n_det)
    return match(n_films=n_films, lesion_film=lesion_film,
                 lesion_x=rng.uniform(0, 100, n_lesions), lesion_y=rng.uniform(0, 100, n_lesions),
                 lesion_radius=np.full(n_lesions, 15.0), det_film=det_film,
                 det_x=rng.uniform(0, 100, n_det), det_y=rng.uniform(0, 100, n_det),
                 det_score=rng.uniform(0, 1, n_det))


def test_the_curve_is_the_froc_at_its_own_rates():
    evidence = _evidence()
    fp, sensitivity = froc_curve(evidence)
    curve = charts.froc_points(fp, sensitivity, rates=FROC_FP_RATES, n_films=40,
                               n_lesions=30, min_lesions=20)
    assert curve is not None
    assert [rate for rate, _ in curve.points] == list(FROC_FP_RATES)
    # the mean of the drawn points is the FROC score itself
    assert np.mean([s for _, s in curve.points]) == froc(evidence)
    svg = charts.froc_svg(curve, label="<Team & Co>")
    assert svg.count("<circle") == len(FROC_FP_RATES)
    assert "&lt;Team &amp; Co&gt;" in svg and "1/8" in svg


def test_too_few_lesions_draw_nothing():
    fp, sensitivity = froc_curve(_evidence())
    assert charts.froc_points(fp, sensitivity, rates=FROC_FP_RATES, n_films=40,
                              n_lesions=30, min_lesions=31) is None
