"""A board as the public and the teams see it while the phase runs under a score release
policy other than `exact` (stats.release): each entry shows its released scores, every other
number derived from hidden labels is rounded to the policy's precision, ranks follow the
shown scores, and the progress chart follows shown scores too. Organisers, and everyone
once the phase has closed, see the exact board."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from stats.release import Policy

Payload = dict[str, Any]


def _round(value: Any, places: int) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, places)
    return value


def _rounded_subgroups(subgroups: dict[str, Any], places: int) -> dict[str, Any]:
    return {column: {value: {k: _round(v, places) for k, v in cell.items()}
                     for value, cell in cells.items()}
            for column, cells in (subgroups or {}).items()}


def _released_entry(entry: Payload, places: int) -> Payload:
    shown = entry.get("released") or {}
    metrics = {name: shown.get(name) if shown else _round(value, places)
               for name, value in entry["metrics"].items()}
    gap = entry.get("fairness_gap")
    return {
        **entry, "metrics": metrics, "released": None,
        "intervals": {name: [_round(v, places) for v in bounds]
                      for name, bounds in entry["intervals"].items()},
        "bayes_factor": _round(entry["bayes_factor"], 1),
        "subgroups": _rounded_subgroups(entry.get("subgroups"), places),
        "fairness_gaps": {k: _round(v, places) for k, v in (entry.get("fairness_gaps") or {})
                          .items()},
        "fairness_gap": {**gap, "gap": _round(gap.get("gap"), places)} if gap else gap,
        # each data station's scores: rounded like everything else not released as such
        **({"sites": {site: {**item, "metrics": {k: _round(v, places) for k, v in
                                                 item["metrics"].items()}}
                      for site, item in entry["sites"].items()}} if "sites" in entry else {}),
    }


def _rerank(entries: list[Payload], primary: str, higher: bool) -> list[Payload]:
    """Board order and shared ranks by the shown primary score (no order among equal shown
    scores may reveal more than they do); baselines keep no rank."""
    def key(entry: Payload) -> tuple[bool, float]:
        value = entry["metrics"].get(primary)
        if value is None:
            return True, 0.0
        return False, -value if higher else value

    ordered = sorted(entries, key=key)
    ranked, previous, count = [], None, 0
    for entry in ordered:
        if entry["is_baseline"]:
            ranked.append(entry)
            continue
        count += 1
        rank = previous[1] if previous and previous[0] == key(entry) else count
        previous = (key(entry), rank)
        ranked.append({**entry, "rank": rank})
    return ranked


def released_payload(payload: Payload, policy: Policy) -> Payload:
    places = policy.precision
    primary = payload["primary"]
    higher = payload["higher_is_better"].get(primary, True)
    entries = [_released_entry(entry, places) for entry in payload.get("entries") or []]
    return {**payload, "entries": _rerank(entries, primary, higher), "release": policy.name,
            "timeline": payload.get("released_timeline") or []}


def _minute(stamp: Any) -> Any:
    if not isinstance(stamp, str) or not stamp:
        return stamp
    return datetime.fromisoformat(stamp).replace(second=0, microsecond=0).isoformat()


def _coarse_lines(lines: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{**line, "points": [[_minute(t), v] for t, v in line["points"]]}
            for line in lines or []]


def coarse_times(payload: Payload) -> Payload:
    """The board with every time in it to the minute, as everyone but the organisers sees it:
    when a board was computed, or a submission made, to the second would time runs on hidden
    data (the boards are recomputed right after each result)."""
    entries = [{**entry, "submitted_at": _minute(entry.get("submitted_at")),
                "last_submission_at": _minute(entry.get("last_submission_at"))}
               for entry in payload.get("entries") or []]
    return {**payload, "as_of": _minute(payload.get("as_of")), "entries": entries,
            "timeline": _coarse_lines(payload.get("timeline")),
            "released_timeline": _coarse_lines(payload.get("released_timeline"))}
