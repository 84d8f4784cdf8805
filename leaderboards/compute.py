"""Recomputing a phase's leaderboards into cached snapshots, from each result's stored
statistics (scoring.vectors: metric values on the phase's paired resamples, subgroup cells).

Boards: with a `split` column in the hidden labels there are two, "public" (the public cases)
and "private" (the private cases); without one, a single "public" board over all cases.
Both are always computed; who may see which is decided when reading (leaderboards.selectors).

Entries: by default each team's best succeeded submission; where the phase has a selection
limit N, each of the team's selected submissions (its latest N when it selected none). The
choice is made on the public part (or on all cases without a split) for *both* boards, so
private scores never steer which entry is shown. Baselines (organiser submissions marked as
such, or anything an organisers' team submits) are labelled rows that take no rank.

Statistics come from heldout_kernel.stats.ranking.rank_vectors over the stored resample vectors
(paired bootstrap with the phase's B and a seed fixed per phase: the same resamples for every entry,
so intervals are percentiles and DREAM's Bayes factor against the leader compares two stored
vectors; identical entries have K = 0 and are tied). A recomputation reads vectors; only a result
stored before vectors existed has its own computed once.

Subgroups: the primary metric per subgroup value, on the board's cases only. Cells with fewer
than HELDOUT_SUBGROUP_MIN_CASES cases or HELDOUT_SUBGROUP_MIN_POSITIVES positives are
suppressed in the payload itself (no score, no counts), so no page, API or export built on
the payload can leak them. The fairness gap is the largest minus the smallest non-suppressed
subgroup score of a column; the board shows the widest column.

Nothing here reads per-case scores; pages only read the snapshot.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce
from django.utils import timezone

from challenges.models import Phase
from challenges.stations import source_datasets
from core.services import audit_record
from heldout_kernel.scores import lesion_cells
from heldout_kernel.stats.metrics import higher_is_better
from heldout_kernel.stats.ranking import Board, EntryVectors, RankedEntry, rank_vectors
from leaderboards.models import LeaderboardSnapshot
from leaderboards.release import release_board
from scoring import vectors
from scoring.labels import LabelTable, load_labels, part_mask
from scoring.labels import parts as parts_of
from scoring.models import Result
from submissions.models import Submission, outcomes_untold_since, untold_outcomes

logger = logging.getLogger(__name__)
PAYLOAD_VERSION = 2
TIE_THRESHOLD = 3.0
Payload = dict[str, Any]


@dataclass(frozen=True)
class SmallCellRule:
    """Subgroup cells below either count are suppressed."""

    min_cases: int
    min_positives: int

    def allows(self, n: int, n_positive: int) -> bool:
        return n >= self.min_cases and n_positive >= self.min_positives


def small_cell_rule() -> SmallCellRule:
    return SmallCellRule(
        settings.HELDOUT_SUBGROUP_MIN_CASES, settings.HELDOUT_SUBGROUP_MIN_POSITIVES
    )


@dataclass(frozen=True)
class BoardPart:
    """A board and the cases it is computed on ("public", "private" or "all")."""

    board: str
    part: str


def board_parts(has_split: bool) -> tuple[BoardPart, ...]:
    if has_split:
        return (BoardPart("public", "public"), BoardPart("private", "private"))
    return (BoardPart("public", "all"),)


def selection_part(has_split: bool) -> str:
    """Which stored scores choose entries: never the private part."""
    return "public" if has_split else "all"


# --------------------------------------------------------------------------- choosing entries


def phase_results(phase: Phase) -> list[Result]:
    """Scored results of the phase, oldest first, without the per-case arrays. A result
    being re-scored stays until its new one replaces it (or the re-score fails): a board is
    never without the entries and baselines a re-score is recomputing."""
    return list(
        Result.objects.filter(
            submission__phase=phase, evaluation_set_id=phase.evaluation_set_id,
            submission__status__in=(Submission.Status.SUCCEEDED, *Submission.ACTIVE),
        )
        .select_related("submission__team")
        .defer("case_scores", "case_labels", "case_detections", "subgroups", "resamples",
               "part_subgroups", *(() if _remote(phase) else ("site_metrics",)))
        .order_by("submission__created_at", "submission_id")
    )


def _remote(phase: Phase) -> bool:
    return phase.evaluation_set is not None and phase.evaluation_set.is_remote


def is_baseline(result: Result) -> bool:
    return bool(result.submission.is_baseline or result.submission.team.is_organiser_team)


def selection_score(result: Result, part: str, primary: str) -> float:
    """The score entries are chosen by, oriented so that larger is better."""
    value = (result.metrics.get(part) or {}).get(primary)
    if value is None or not math.isfinite(value):
        return -math.inf
    return float(value) if higher_is_better(primary) else -float(value)


def _team_entries(phase: Phase, results: list[Result], part: str) -> list[Result]:
    if phase.selection_limit:
        selected = [r for r in results if r.submission.selected]
        return (selected or results)[-phase.selection_limit :]
    # max() keeps the first of equals: the earliest of equally good submissions.
    return [max(results, key=lambda r: selection_score(r, part, phase.primary_metric))]


def choose_entries(phase: Phase, results: Iterable[Result], *, part: str) -> list[Result]:
    """Ranked entries per team (see module doc) followed by every baseline."""
    by_team: dict[int, list[Result]] = defaultdict(list)
    baselines = []
    for result in results:
        if is_baseline(result):
            baselines.append(result)
        else:
            by_team[result.submission.team_id].append(result)
    chosen = [e for team in by_team.values() for e in _team_entries(phase, team, part)]
    return chosen + baselines


def released_entries(phase: Phase, results: Iterable[Result], *, part: str) -> list[Result]:
    """Each team's entry as everyone but the organisers sees it while the phase runs under a
    release policy other than `exact`, chosen from released values only: under `ladder`
    and `boot-ladder-boot` the submission behind the team's shown scores (the policy keeps
    the earlier one unless a new one beats it by the policy's margin), under `rounded` the
    best rounded score (equal rounded scores: the earlier submission). Choosing by exact
    scores would tell a team, through which entry shows, what the released scores hide."""
    by_team: dict[int, list[Result]] = defaultdict(list)
    baselines = []
    for result in results:
        (baselines if is_baseline(result) else by_team[result.submission.team_id]).append(result)
    chosen = []
    for team_results in by_team.values():
        if phase.selection_limit:
            chosen.extend(_team_entries(phase, team_results, part))
        elif phase.score_release == "rounded":
            chosen.append(max(team_results, key=lambda r: released_score(r, part, phase)))
        else:
            chosen.append(_shown_source(team_results))
    return chosen + baselines


def released_score(result: Result, part: str, phase: Phase) -> float:
    """The released primary score, oriented so that larger is better."""
    value = ((result.released or {}).get(part) or {}).get(phase.primary_metric)
    if value is None or not math.isfinite(value):
        return -math.inf
    return float(value) if phase.higher_is_better else -float(value)


def _shown_source(results: list[Result]) -> Result:
    """The result behind a team's shown scores: the source its latest release names."""
    latest = max(results, key=lambda r: (r.computed_at, r.pk))
    source = str(latest.released_from or latest.submission.uid)
    return next((r for r in results if str(r.submission.uid) == source), latest)


class _StatsCache:
    """Unpacked statistics of recently ranked results, per worker process, within a byte
    budget: a recomputation reads from the database only what changed since the last one.
    Keyed by (result, what the vectors were computed for, the result's save time), so a
    re-scored result is never served stale."""

    BUDGET = 256 * 1024**2

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[Any, ...], dict[str, vectors.PartStats]] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[Any, ...]) -> dict[str, vectors.PartStats] | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: tuple[Any, ...], stats: dict[str, vectors.PartStats]) -> None:
        if key in self._items:
            return
        self._items[key] = stats
        self._bytes += _size(stats)
        while self._bytes > self.BUDGET and self._items:
            self._bytes -= _size(self._items.popitem(last=False)[1])


def _size(stats: dict[str, vectors.PartStats]) -> int:
    return sum(v.nbytes for item in stats.values() for v in item.samples.values())


_cache = _StatsCache()


def load_stats(phase: Phase, table: LabelTable | None,
               results: Sequence[Result]) -> dict[int, dict[str, vectors.PartStats]]:
    """The stored statistics (resample vectors, subgroup cells) of the given results: from
    this process's cache, else read in one query; a result without them (scored before they
    existed, or re-scored) has them computed now."""
    current = vectors.stats_key(phase)
    heads = Result.objects.filter(pk__in=[r.pk for r in results]).values_list(
        "pk", "resample_key", "computed_at")
    out: dict[int, dict[str, vectors.PartStats]] = {}
    keys = {}
    for pk, key, at in heads:
        keys[pk] = (pk, current, at)
        cached = _cache.get(keys[pk]) if key == current else None
        if cached is not None:
            out[pk] = cached
    missing = [pk for pk in keys if pk not in out]
    fresh = Result.objects.filter(pk__in=missing, resample_key=current).only(
        "pk", "resamples", "part_subgroups", "resample_key")
    stale = Result.objects.filter(pk__in=missing).exclude(resample_key=current)
    for row in [*fresh, *stale]:
        try:
            out[row.pk] = vectors.of_result(row, phase, table)
        except vectors.NoCases:
            logger.warning("result %s was combined at data stations for other settings of "
                           "%s; re-score it to rank it", row.pk, phase)
            continue
        _cache.put(keys[row.pk], out[row.pk])
    return out


# --------------------------------------------------------------------------- subgroups


@dataclass(frozen=True)
class _Cell:
    column: str
    value: str
    mask: npt.NDArray[np.bool_]
    n: int
    n_positive: int
    allowed: bool


def subgroup_cells(
    table: LabelTable, mask: npt.NDArray[np.bool_], rule: SmallCellRule
) -> list[_Cell]:
    """Every (column, value) among the board's cases, with its mask over those cases."""
    y = table.y[mask]
    cells = []
    for column, values in table.subgroups.items():
        part = values[mask]
        for value in sorted(set(part.tolist())):
            inside = part == value
            n, n_pos = int(inside.sum()), int(y[inside].sum())
            cells.append(_Cell(column, str(value), inside, n, n_pos, rule.allows(n, n_pos)))
    for column, value, lesions in lesion_cells(table, mask):
        n = int(lesions.sum())  # every lesion is a positive: the rule counts lesions
        cells.append(_Cell(column, value, lesions, n, n, rule.allows(n, n)))
    return cells


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def entry_subgroups(
    cells: Sequence[_Cell], stored: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """{column: {value: {"n", "n_positive", "score"} | {"suppressed": True}}} from a result's
    stored cells, with the small-cell rule applied."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for cell in cells:
        if not cell.allowed:
            out[cell.column][cell.value] = {"suppressed": True}
            continue
        score = (stored.get(cell.column) or {}).get(cell.value, {}).get("score")
        out[cell.column][cell.value] = {"n": cell.n, "n_positive": cell.n_positive,
                                        "score": _finite(score)}
    return dict(out)


def fairness_gaps(subgroups: dict[str, dict[str, dict[str, Any]]]) -> dict[str, float | None]:
    """Per column: largest minus smallest non-suppressed score (None with fewer than two)."""
    gaps: dict[str, float | None] = {}
    for column, cells in subgroups.items():
        scores = [c["score"] for c in cells.values() if c.get("score") is not None]
        gaps[column] = max(scores) - min(scores) if len(scores) >= 2 else None
    return gaps


def widest_gap(gaps: dict[str, float | None]) -> dict[str, Any] | None:
    known = [(gap, column) for column, gap in gaps.items() if gap is not None]
    if not known:
        return None
    gap, column = max(known)
    return {"column": column, "gap": gap}


# --------------------------------------------------------------------------- progress


def team_timelines(
    results: Sequence[Result], *, part: str, choose_by: str, primary: str
) -> list[dict[str, Any]]:
    """Each team's best score over time on `part`: the part's score of the submission that
    was the team's entry (best by `choose_by`) at each moment, one point per change."""
    lines: dict[int, dict[str, Any]] = {}
    best: dict[int, float] = {}
    for result in results:
        if is_baseline(result):
            continue
        team_id = result.submission.team_id
        score = selection_score(result, choose_by, primary)
        if team_id in best and score <= best[team_id]:
            continue
        best[team_id] = score
        value = _finite((result.metrics.get(part) or {}).get(primary))
        line = lines.setdefault(team_id, {"team_id": team_id, "team": result.submission.team.name,
                                          "points": []})
        if value is not None and (not line["points"] or line["points"][-1][1] != value):
            line["points"].append([result.submission.created_at.isoformat(), value])
    return [line for line in lines.values() if line["points"]]


def released_timelines(
    results: Sequence[Result], *, part: str, primary: str
) -> list[dict[str, Any]]:
    """Each team's shown (released) primary score over time: a point whenever it changed."""
    lines: dict[int, dict[str, Any]] = {}
    for result in results:
        value = ((result.released or {}).get(part) or {}).get(primary)
        if is_baseline(result) or value is None:
            continue
        team_id = result.submission.team_id
        line = lines.setdefault(team_id, {"team_id": team_id, "team": result.submission.team.name,
                                          "points": []})
        if not line["points"] or line["points"][-1][1] != value:
            line["points"].append([result.submission.created_at.isoformat(), value])
    return list(lines.values())


# --------------------------------------------------------------------------- the payload


@dataclass(frozen=True)
class _TeamStats:
    entries: dict[int, int]
    last: dict[int, datetime]


def _team_stats(results: Sequence[Result]) -> _TeamStats:
    entries: dict[int, int] = defaultdict(int)
    last: dict[int, datetime] = {}
    for result in results:
        team_id = result.submission.team_id
        entries[team_id] += 1
        last[team_id] = max(last.get(team_id, result.submission.created_at),
                            result.submission.created_at)
    return _TeamStats(dict(entries), last)


def _bayes_json(value: float | None) -> float | str | None:
    if value is None or math.isnan(value):
        return None
    return "inf" if math.isinf(value) else value


def _label(result: Result, phase: Phase) -> str:
    submission = result.submission
    if is_baseline(result) or phase.selection_limit:
        return f"{submission.team.name} #{submission.number}"
    return str(submission.team.name)


def _entry_json(
    entry: RankedEntry, result: Result, stats: _TeamStats, subgroups: dict[str, Any], part: str,
    scored_key: str,
) -> Payload:
    submission = result.submission
    baseline = entry.is_baseline
    gaps = fairness_gaps(subgroups)
    last = submission.created_at if baseline else stats.last[submission.team_id]
    return {
        "key": entry.key, "team": entry.team, "team_id": submission.team_id,
        "submission": submission.number, "rank": entry.rank, "is_baseline": baseline,
        "metrics": {k: _finite(v) for k, v in entry.metrics.items()},
        "intervals": {k: [_finite(i.low), _finite(i.high)] for k, i in entry.intervals.items()},
        "bayes_factor": _bayes_json(entry.bayes_factor),
        "tied_with_leader": entry.tied_with_leader,
        "entries": 1 if baseline else stats.entries[submission.team_id],
        "submitted_at": submission.created_at.isoformat(),
        "last_submission_at": last.isoformat(),
        "subgroups": subgroups, "fairness_gaps": gaps, "fairness_gap": widest_gap(gaps),
        # what the team is shown while the phase runs (score release policy); None: exact
        "released": (result.released or {}).get(part),
        # scored against labels or metrics the phase no longer has: to be re-scored
        "stale": bool(result.scored_with) and result.scored_with != scored_key,
    }


def exact_scores(result: Result, part: str) -> dict[str, float | None]:
    return result.metrics.get(part) or {}


def released_scores(result: Result, part: str) -> dict[str, float | None]:
    """What the team is shown of a result (its exact scores for a baseline: organisers'
    rows are not the teams' probes, and a result without a release)."""
    return (result.released or {}).get(part) or exact_scores(result, part)


@dataclass(frozen=True)
class _Context:
    phase: Phase
    table: LabelTable | None  # None: the cases are at data stations
    results: list[Result]
    chosen: list[Result]
    stats: dict[int, dict[str, vectors.PartStats]]
    rule: SmallCellRule
    as_of: datetime
    part_cases: dict[str, int]
    scored_key: str = ""  # what results are scored against now (stale ones differ)
    # the scores entries are ranked by and shown with: exact, or released (release.py)
    shown: Callable[[Result, str], dict[str, float | None]] = exact_scores


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _rank(ctx: _Context, spec: BoardPart, n_cases: int) -> Board:
    phase = ctx.phase
    entries = [
        EntryVectors(
            key=str(result.submission.uid), team=_label(result, phase),
            metrics={name: _nan(ctx.shown(result, spec.part).get(name))
                     for name in vectors.metric_names(phase)},
            samples=ctx.stats[result.pk][spec.part].samples, is_baseline=is_baseline(result),
        )
        for result in ctx.chosen
    ]
    return rank_vectors(
        entries, primary=phase.primary_metric, secondary=phase.secondary_metrics,
        n_cases=n_cases, n_resamples=phase.bootstrap_resamples, seed=phase.pk,
        tie_threshold=TIE_THRESHOLD,
    )


def _header(ctx: _Context, spec: BoardPart, n_cases: int) -> Payload:
    phase = ctx.phase
    names = list(dict.fromkeys([phase.primary_metric, *phase.secondary_metrics]))
    return {
        "version": PAYLOAD_VERSION, "board": spec.board, "part": spec.part,
        "primary": phase.primary_metric, "secondary": list(phase.secondary_metrics),
        "higher_is_better": {n: higher_is_better(n) for n in names},
        "selection": f"selected:{phase.selection_limit}" if phase.selection_limit else "best",
        "policy": phase.score_release,
        "n_cases": n_cases, "n_resamples": phase.bootstrap_resamples, "seed": phase.pk,
        "tie_threshold": TIE_THRESHOLD,
        "subgroup_rule": {"min_cases": ctx.rule.min_cases,
                          "min_positives": ctx.rule.min_positives},
        "as_of": ctx.as_of.isoformat(), "final": phase.has_closed(ctx.as_of),
    }


def compute_board(ctx: _Context, spec: BoardPart) -> Payload:
    n_cases = ctx.part_cases.get(spec.part, 0)
    payload = _header(ctx, spec, n_cases)
    if ctx.table is not None:
        cells = subgroup_cells(ctx.table, part_mask(ctx.table, spec.part), ctx.rule)
    else:
        cells = remote_cells([ctx.stats[r.pk][spec.part].subgroups for r in ctx.chosen
                              if spec.part in ctx.stats[r.pk]], ctx.rule)
    payload["subgroup_cells"] = [[c.column, c.value] for c in cells]
    payload["timeline"] = team_timelines(
        ctx.results, part=spec.part, choose_by=selection_part("public" in ctx.part_cases),
        primary=ctx.phase.primary_metric,
    )
    payload["released_timeline"] = released_timelines(
        ctx.results, part=spec.part, primary=ctx.phase.primary_metric)
    payload["entries"] = []
    if not ctx.chosen or not n_cases:
        return payload
    board = _rank(ctx, spec, n_cases)
    by_key = {str(r.submission.uid): r for r in ctx.chosen}
    stats = _team_stats(ctx.results)
    for entry in board.entries:
        result = by_key[entry.key]
        subgroups = entry_subgroups(cells, ctx.stats[result.pk][spec.part].subgroups)
        payload["entries"].append(_entry_json(entry, result, stats, subgroups, spec.part,
                                              ctx.scored_key))
        if ctx.table is None:  # at data stations (site_metrics is deferred otherwise)
            payload["entries"][-1]["sites"] = _site_scores(result, spec.part, ctx.rule)
    return payload


def _site_scores(result: Result, part: str, rule: SmallCellRule) -> dict[str, Any]:
    """Each data station's scores of an entry on this board's part, with its case count; a
    site with fewer cases or positives than the small-cell rule allows shows none."""
    out = {}
    for site, item in sorted(result.site_metrics.items()):
        n = (item.get("n_cases") or {}).get(part)
        n_positive = (item.get("n_positive") or {}).get(part)
        if n is None or n_positive is None or not rule.allows(n, n_positive):
            out[site] = {"suppressed": True, "metrics": {}, "n_cases": None}
        else:
            out[site] = {"metrics": (item.get("metrics") or {}).get(part) or {},
                         "n_cases": n}
    return out


def remote_cells(stored: Sequence[dict[str, dict[str, dict[str, Any]]]],
                 rule: SmallCellRule) -> list[_Cell]:
    """Subgroup cells of a board whose cases are at data stations: the cells the stations
    reported with the combined results (the same counts for every entry); a cell any of
    them suppressed, or below the rule here, is suppressed."""
    counts: dict[tuple[str, str], tuple[int, int] | None] = {}
    for subgroups in stored:
        for column, cells in subgroups.items():
            for value, cell in cells.items():
                key = (column, value)
                if cell.get("suppressed"):
                    counts[key] = None
                elif counts.get(key, (0, 0)) is not None:
                    counts[key] = (int(cell["n"]), int(cell["n_positive"]))
    empty = np.zeros(0, dtype=bool)
    return [_Cell(column, value, empty, *(found or (0, 0)),
                  found is not None and rule.allows(*found))
            for (column, value), found in sorted(counts.items())]


def payload_as_of(payload: Payload | None) -> datetime | None:
    raw = (payload or {}).get("as_of")
    return datetime.fromisoformat(raw) if raw else None


def _audit_final(phase: Phase, payload: Payload) -> None:
    """The first board computed after the close is the published final board."""
    audit_record(verb="board.published", challenge=phase.challenge, target=f"phase:{phase.pk}",
                 data={"board": payload["board"], "entries": len(payload["entries"]),
                       "as_of": payload["as_of"]})


def release_time(phase: Phase, as_of: datetime) -> datetime:
    """When everyone but the organisers may see boards computed at `as_of`: at once, unless
    the phase has an outcome on hidden data that its team is not told yet; then at the end
    of the release period, as that team learns it (submissions.models.untold_outcomes)."""
    if Submission.objects.filter(untold_outcomes(as_of), phase=phase).exists():
        return outcomes_untold_since(as_of) + timedelta(seconds=settings.HELDOUT_RELEASE_SECONDS)
    return as_of


def _hold_released(snapshot: LeaderboardSnapshot, now: datetime) -> None:
    """Keep the board everyone sees now (server-side copy) before a newer one replaces it;
    a board not released yet is simply replaced (the held one stays)."""
    LeaderboardSnapshot.objects.filter(
        Q(release_at__isnull=True) | Q(release_at__lte=now), pk=snapshot.pk,
    ).update(held=Coalesce("public", "payload"))


def _store(phase: Phase, boards: dict[str, Payload], as_of: datetime,
           public: Payload | None = None) -> bool:
    """Write the boards unless a computation that read newer data already landed. `public`:
    the public board as everyone but the organisers sees it, where it is a board of its own
    (a release policy choosing entries by released scores); None: derived when read."""
    release_at = release_time(phase, as_of)
    with transaction.atomic():
        for name in boards:
            LeaderboardSnapshot.objects.get_or_create(phase=phase, board=name,
                                                      defaults={"payload": {}})
        # Only the stored boards' stamps are read, not their payloads (megabytes for a
        # thousand entries).
        snapshots = list(
            LeaderboardSnapshot.objects.select_for_update().filter(
                phase=phase, board__in=list(boards)).defer("payload").annotate(
                stored_as_of=KeyTextTransform("as_of", "payload"),
                stored_final=KeyTransform("final", "payload")))
        stamps = [datetime.fromisoformat(s.stored_as_of) for s in snapshots if s.stored_as_of]
        if any(stamp > as_of for stamp in stamps):
            return False
        now = timezone.now()
        for snapshot in snapshots:
            if boards[snapshot.board].get("final") and snapshot.stored_final is not True:
                _audit_final(phase, boards[snapshot.board])
            _hold_released(snapshot, now)
            snapshot.payload, snapshot.release_at = boards[snapshot.board], release_at
            snapshot.public = public if snapshot.board == LeaderboardSnapshot.Board.PUBLIC else None
            snapshot.save(update_fields=["payload", "public", "release_at", "computed_at"])
        LeaderboardSnapshot.objects.filter(phase=phase).exclude(board__in=boards).delete()
    return True


def recompute(*, phase_pk: int) -> bool:
    """Compute and store the phase's boards. Returns False when nothing was stored (phase
    gone, no evaluation set, or a newer computation landed meanwhile)."""
    phase = Phase.objects.select_related("evaluation_set").filter(pk=phase_pk).first()
    if phase is None or phase.evaluation_set is None:
        return False
    # Read the clock before the results: everything committed before `as_of` is included.
    as_of = timezone.now()
    table, part_cases = board_cases(phase)
    results = phase_results(phase)
    has_split = "public" in part_cases
    part = selection_part(has_split)
    chosen = choose_entries(phase, results, part=part)
    releasing = phase.score_release != "exact" and not phase.has_closed(as_of)
    shown = released_entries(phase, results, part=part) if releasing else []
    stats = load_stats(phase, table, list({r.pk: r for r in chosen + shown}.values()))
    ctx = _Context(phase, table, results, [r for r in chosen if r.pk in stats], stats,
                   small_cell_rule(), as_of, part_cases, vectors.scored_key(phase))
    boards = {spec.board: compute_board(ctx, spec) for spec in board_parts(has_split)}
    public = None
    if releasing:
        released = replace(ctx, chosen=[r for r in shown if r.pk in stats],
                           shown=released_scores)
        public = release_board(compute_board(released, board_parts(has_split)[0]),
                               phase.release_policy())
    return _store(phase, boards, as_of, public=public)


def board_cases(phase: Phase) -> tuple[LabelTable | None, dict[str, int]]:
    """(the label table, or None at data stations; the number of cases of each part)."""
    evaluation = phase.evaluation_set
    assert evaluation is not None
    if evaluation.is_remote:
        parts: dict[str, int] = defaultdict(int)
        for dataset in source_datasets(evaluation):
            for part, n in ((dataset.fingerprint if dataset else {}).get("parts") or {}).items():
                parts[part] += int(n)
        return None, dict(parts)
    table = load_labels(evaluation)
    return table, {part: int(part_mask(table, part).sum()) for part in parts_of(table)}
