"""Combining data stations (heldout_kernel.aggregates): metrics that pool exactly equal the metric
on all sites' cases together, on all cases and on every stratified resample; AUROC is the positives
x negatives weighted mean of the sites' AUROCs; small cells stay suppressed."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, recall_score

from heldout_kernel import aggregates
from heldout_kernel.cases import LabelTable
from heldout_kernel.scores import Cases
from heldout_kernel.stats.metrics import auroc
from heldout_kernel.stats.ranking import bootstrap_indices

NAMES = ["auroc", "f1", "sensitivity", "specificity", "accuracy", "brier", "log_loss", "auprc"]
B, SEED = 40, 7


def _site(n: int, seed: int) -> tuple[LabelTable, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(np.int8)
    scores = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    ids = tuple(f"s{seed}-{i:04d}" for i in range(n))
    sex = np.array(["F" if i % 3 else "M" for i in range(n)])
    return LabelTable(ids=ids, y=y, split=None, subgroups={"sex": sex}), scores


def _aggregate(table: LabelTable, scores: np.ndarray) -> aggregates.SiteAggregate:
    parts = aggregates.site_aggregates(table, Cases(table.y, scores, None), names=NAMES,
                                       primary="auroc", n_resamples=B, seed=SEED,
                                       min_cases=5, min_positives=2)
    return aggregates.from_json(aggregates.to_json(parts["all"]), names=NAMES, n_resamples=B)


@pytest.fixture(scope="module")
def sites():  # type: ignore[no-untyped-def]
    return [_site(120, 1), _site(75, 2), _site(200, 3)]


def test_pooled_metrics_are_exact_on_all_cases(sites):
    combined = aggregates.combine_metrics([_aggregate(*s) for s in sites], NAMES)
    y = np.concatenate([t.y for t, _ in sites])
    s = np.concatenate([scores for _, scores in sites])
    hard = s >= 0.5
    assert combined["accuracy"] == pytest.approx(accuracy_score(y, hard), abs=1e-12)
    assert combined["f1"] == pytest.approx(f1_score(y, hard), abs=1e-12)
    assert combined["sensitivity"] == pytest.approx(recall_score(y, hard), abs=1e-12)
    assert combined["specificity"] == pytest.approx(recall_score(1 - y, ~hard), abs=1e-12)
    assert combined["brier"] == pytest.approx(brier_score_loss(y, s), abs=1e-12)


def test_auroc_is_site_stratified(sites):
    combined = aggregates.combine_metrics([_aggregate(*s) for s in sites], NAMES)
    values = [auroc(t.y, s) for t, s in sites]
    weights = [int(t.y.sum()) * int((1 - t.y).sum()) for t, _ in sites]
    assert combined["auroc"] == pytest.approx(np.average(values, weights=weights), abs=1e-12)
    pooled = auroc(np.concatenate([t.y for t, _ in sites]),
                   np.concatenate([s for _, s in sites]))
    assert combined["auroc"] != pytest.approx(pooled, abs=1e-9)  # not the pooled AUROC


def test_each_resample_pools_the_sites_resamples_exactly(sites):
    """Resample b of the combination is the metric on the union of every site's own
    resample b (each site resamples within itself, with the phase's seed)."""
    samples = aggregates.combine_samples([_aggregate(*s) for s in sites], NAMES)
    draws = [next(bootstrap_indices(len(t.ids), B, SEED, chunk_size=B)) for t, _ in sites]
    for b in (0, 17, B - 1):
        y = np.concatenate([t.y[d[b]] for (t, _), d in zip(sites, draws, strict=True)])
        s = np.concatenate([sc[d[b]] for (_, sc), d in zip(sites, draws, strict=True)])
        assert samples["accuracy"][b] == pytest.approx(accuracy_score(y, s >= 0.5), abs=1e-12)
        assert samples["f1"][b] == pytest.approx(f1_score(y, s >= 0.5), abs=1e-12)
        assert samples["brier"][b] == pytest.approx(brier_score_loss(y, s), abs=1e-12)


def test_a_cell_suppressed_at_any_site_stays_suppressed(sites):
    small = _aggregate(*_site(12, 9))  # its "M" cell has 4 cases: below 5
    combined = aggregates.combine_subgroups([_aggregate(*sites[0]), small])
    assert combined["sex"]["M"] == {"suppressed": True}
    assert combined["sex"]["F"]["n"] == 80 + 8


def test_a_station_cannot_send_vectors_of_another_length(sites):
    raw = aggregates.to_json(_aggregate(*sites[0]))
    with pytest.raises(ValueError, match="do not have 41 resamples"):
        aggregates.from_json(raw, names=NAMES, n_resamples=B + 1)
