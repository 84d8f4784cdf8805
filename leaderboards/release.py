"""Boards as everyone but the organisers sees them.

While a phase runs under a score release policy other than `exact` (heldout_kernel.stats.release),
the public board shown to teams and the public is a board of its own, computed with the exact one
(leaderboards.compute): each team's entry is chosen from released scores only, ranks follow released
scores, and every other number derived from hidden labels passes through the policy here, once,
before it is stored:

- `rounded`: intervals, Bayes factors, subgroup and fairness values and site scores rounded to
  the policy's decimals; an entry is "tied with the leader" when it shares the leader's rank
  or its (rounded) K is below the threshold.
- `ladder` and `boot-ladder-boot`: nothing but the released scores and the ranks they give.
  Intervals, K, subgroup and fairness values and site scores are withheld until the phase
  closes (each carries fine information the ladder exists to hold back); an entry is tied with
  the leader exactly when it shares the leader's rank.

The progress chart follows released scores. Organisers, and everyone once the phase has
closed, see the exact board. `coarse_times` is applied to every board a non-organiser reads.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from heldout_kernel.stats.release import Policy

Payload = dict[str, Any]
LADDERS = ("ladder", "boot-ladder-boot")


def _round(value: Any, places: int) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, places)
    return value


def _rounded_subgroups(subgroups: dict[str, Any], places: int) -> dict[str, Any]:
    return {column: {value: {k: _round(v, places) for k, v in cell.items()}
                     for value, cell in cells.items()}
            for column, cells in (subgroups or {}).items()}


def _rounded_entry(entry: Payload, places: int) -> Payload:
    gap = entry.get("fairness_gap")
    return {
        **entry,
        "intervals": {name: [_round(v, places) for v in bounds]
                      for name, bounds in entry["intervals"].items()},
        "bayes_factor": _round(entry["bayes_factor"], places),
        "subgroups": _rounded_subgroups(entry.get("subgroups"), places),
        "fairness_gaps": {k: _round(v, places) for k, v in
                          (entry.get("fairness_gaps") or {}).items()},
        "fairness_gap": {**gap, "gap": _round(gap.get("gap"), places)} if gap else gap,
        **({"sites": {site: {**item, "metrics": {k: _round(v, places) for k, v in
                                                 item["metrics"].items()}}
                      for site, item in entry["sites"].items()}} if "sites" in entry else {}),
    }


def _laddered_entry(entry: Payload) -> Payload:
    return {
        **entry, "intervals": {}, "bayes_factor": None, "subgroups": {}, "fairness_gaps": {},
        "fairness_gap": None,
        **({"sites": {site: {"withheld": True, "metrics": {}, "n_cases": item.get("n_cases")}
                      for site, item in entry["sites"].items()}} if "sites" in entry else {}),
    }


def _ties_agree(entries: list[Payload], *, by_k: bool) -> list[Payload]:
    """An entry that shares the leader's rank is tied with it (and, where K is shown, so is
    one whose K is below the threshold): ranks and tie markers never disagree."""
    leader = next((e for e in entries if not e["is_baseline"]), None)

    def tied(entry: Payload) -> bool:
        if leader is None or entry is leader or entry["is_baseline"]:
            return False
        return bool(entry["rank"] == leader["rank"] or (by_k and entry["tied_with_leader"]))

    return [{**entry, "tied_with_leader": tied(entry)} for entry in entries]


def release_board(payload: Payload, policy: Policy) -> Payload:
    """The released board (entries already chosen and ranked by released scores) with every
    other number passed through `policy`; what it withholds is named in `withheld`."""
    ladder = policy.name in LADDERS
    entries = [_laddered_entry(e) if ladder else _rounded_entry(e, policy.decimals)
               for e in payload.get("entries") or []]
    entries = [{**e, "released": None} for e in _ties_agree(entries, by_k=not ladder)]
    header = {k: v for k, v in payload.items() if k != "released_timeline"}
    return {**header, "entries": entries, "timeline": payload.get("released_timeline") or [],
            "release": {"policy": policy.name, "precision": policy.precision,
                        "withheld": ["intervals", "bayes_factor", "subgroups", "sites"]
                        if ladder else []}}


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
    coarse = {**payload, "as_of": _minute(payload.get("as_of")), "entries": entries,
              "timeline": _coarse_lines(payload.get("timeline"))}
    if "released_timeline" in payload:
        coarse["released_timeline"] = _coarse_lines(payload["released_timeline"])
    return coarse
