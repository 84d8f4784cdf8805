"""Reads for leaderboards: cached snapshots, filtered by who may see what.

Who sees a board is decided by challenges.visibility (`PhaseRights.board`); pages, API and
exports all ask it through `leaderboard_for`.

Nothing here runs a bootstrap: boards are read from `LeaderboardSnapshot`, whose payload is
already stripped of suppressed subgroup cells. The only per-case work is an entry's ROC and
calibration curves, drawn from one stored result on a visible board.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db.models import Case, F, JSONField, Q, QuerySet, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.crypto import salted_hmac

from challenges.models import Phase
from challenges.visibility import PhaseRights
from core.storage import private_path
from heldout_kernel.stats.detection import Evidence, froc_curve
from heldout_kernel.stats.metrics import FROC_FP_RATES
from leaderboards import charts
from leaderboards.compute import SmallCellRule, payload_as_of, small_cell_rule
from leaderboards.models import LeaderboardSnapshot
from leaderboards.release import coarse_times
from scoring.arrays import from_bytes
from scoring.labels import LabelTable, part_mask, read_labels
from scoring.models import Result


def _num(value: float | None, places: int = 4) -> str:
    return "–" if value is None else f"{value:.{places}f}"


def _stamp(iso: str) -> str:
    return f"{iso[:10]} {iso[11:16]}"


@dataclass(frozen=True)
class BoardRow:
    """One table row, formatted once in Python: the board template only prints fields (a
    200-row board rendered through template filters cost several times more)."""

    key: str
    team: str
    team_id: int
    is_baseline: bool
    rank: int | None
    primary: str
    interval: str
    secondary: tuple[tuple[str, str, str], ...]  # (metric, value, interval)
    tied: bool
    bayes_factor: str
    is_leader: bool
    gap: str
    gap_column: str
    entries: int
    last_submission: str
    released: str = ""  # organisers, under a release policy: what teams see of this entry
    stale: bool = False  # scored against replaced labels or changed metrics


def _interval(entry: dict[str, Any], name: str, places: int) -> str:
    low, high = entry["intervals"].get(name) or (None, None)
    if low is None and high is None and not entry["intervals"]:
        return ""  # withheld by the release policy
    return f"[{_num(low, places)}, {_num(high, places)}]"


def _k(value: float | str | None) -> str:
    if value is None:
        return ""
    return "∞" if value == "inf" else f"{float(value):.2f}"


def _released_cell(payload: dict[str, Any], entry: dict[str, Any]) -> str:
    shown = entry.get("released")
    if not shown or payload.get("release") or payload.get("policy", "exact") == "exact":
        return ""
    return _num(shown.get(payload["primary"]))


def board_row(payload: dict[str, Any], entry: dict[str, Any]) -> BoardRow:
    primary = payload["primary"]
    places = int((payload.get("release") or {}).get("precision", 4))
    gap = entry.get("fairness_gap") or {}
    return BoardRow(
        key=entry["key"], team=entry["team"], team_id=entry["team_id"],
        is_baseline=entry["is_baseline"], rank=entry["rank"],
        primary=_num(entry["metrics"].get(primary), places),
        interval=_interval(entry, primary, places),
        secondary=tuple((n, _num(entry["metrics"].get(n), places),
                         _interval(entry, n, places)) for n in payload["secondary"]),
        tied=entry["tied_with_leader"], bayes_factor=_k(entry["bayes_factor"]),
        is_leader=entry["rank"] == 1 and not entry["tied_with_leader"]
        and entry["bayes_factor"] is None and not entry["is_baseline"],
        gap=_num(gap.get("gap"), places) if gap else "–", gap_column=gap.get("column", ""),
        entries=entry["entries"], last_submission=_stamp(entry["last_submission_at"]),
        released=_released_cell(payload, entry), stale=bool(entry.get("stale")),
    )


@dataclass(frozen=True)
class BoardView:
    """What one user may see of one board. `payload` is None when hidden or not computed."""

    visible: bool
    reason: str
    payload: dict[str, Any] | None
    board: str = "public"
    version: str = ""  # names the computation shown, without its time (ETags)

    @property
    def entries(self) -> list[dict[str, Any]]:
        return list((self.payload or {}).get("entries") or [])

    @functools.cached_property
    def rows(self) -> list[BoardRow]:
        return [board_row(self.payload, e) for e in self.entries] if self.payload else []

    @property
    def final(self) -> bool:
        """The board was computed after the phase closed (pollers may stop)."""
        return bool((self.payload or {}).get("final"))


def _missing_reason(phase: Phase, board: str) -> str:
    evaluation = phase.evaluation_set
    if board == LeaderboardSnapshot.Board.PRIVATE and evaluation and not evaluation.has_split:
        return "This phase has a single leaderboard over all held-out cases."
    return "No scored submissions yet."


def leaderboard_for(*, rights: PhaseRights, board: str) -> BoardView:
    """The board `board` as the holder of `rights` may see it."""
    phase = rights.phase
    visible, reason = rights.board(board)
    if not visible:
        return BoardView(False, reason, None, board)
    payload = _stored_board(phase, board, exact=rights.is_organiser,
                            policy_applies=rights.releases_scores)
    if not payload:
        return BoardView(True, _missing_reason(phase, board), None, board)
    reason = "" if payload.get("entries") else "No scored submissions yet."
    version = _version(payload)
    if not rights.is_organiser:  # released already where a policy applies (release.py)
        payload = coarse_times(payload)
    return BoardView(True, reason, payload, board, version)


def _version(payload: dict[str, Any]) -> str:
    """Names a board's computation without telling when it ran (for ETags): keyed, since a
    plain hash of a time is inverted by trying every microsecond of a minute."""
    return salted_hmac("heldout.board-version", str(payload.get("as_of", ""))).hexdigest()[:16]


def _stored_board(phase: Phase, board: str, *, exact: bool, policy_applies: bool
                  ) -> dict[str, Any] | None:
    """The latest board for organisers; for everyone else the one released to them now
    (LeaderboardSnapshot: a newer board waits for the end of its release period), its
    released version while a score release policy applies (once the phase has closed the
    final boards are exact at once, before their recomputation). Only one payload is read."""
    released = Q(release_at__isnull=True) | Q(release_at__lte=timezone.now())
    latest = Coalesce("public", "payload") if policy_applies else F("payload")
    shown = F("payload") if exact else Case(
        When(released, then=latest), default=F("held"), output_field=JSONField())
    return LeaderboardSnapshot.objects.filter(  # type: ignore[no-any-return]
        phase=phase, board=board).values_list(shown, flat=True).first()


def shown_board_as_of(*, phase_id: int, board: str, exact: bool) -> str | None:
    """`as_of` of the board a viewer sees (see `_stored_board`), read without its payload:
    a large board is not worth loading for one stamp."""
    row = LeaderboardSnapshot.objects.filter(phase_id=phase_id, board=board).annotate(
        latest=KeyTextTransform("as_of", "payload"), public_as_of=KeyTextTransform(
            "as_of", "public"), held_as_of=KeyTextTransform("as_of", "held"),
    ).values("release_at", "latest", "public_as_of", "held_as_of").first()
    if row is None:
        return None
    if exact:
        return row["latest"]  # type: ignore[no-any-return]
    if row["release_at"] is None or row["release_at"] <= timezone.now():
        return row["public_as_of"] or row["latest"]  # type: ignore[no-any-return]
    return row["held_as_of"]  # type: ignore[no-any-return]


def board_entry(view: BoardView, key: str) -> dict[str, Any] | None:
    """The entry `key` of a visible board, or None (hidden board, or not an entry)."""
    if not view.visible:
        return None
    return next((e for e in view.entries if e["key"] == key), None)


# --------------------------------------------------------------------------- recomputation


def snapshot_as_of(*, phase_pk: int) -> datetime | None:
    """When the data of the phase's oldest board were read; None if a board is missing."""
    payloads = list(
        LeaderboardSnapshot.objects.filter(phase_id=phase_pk).values_list("payload", flat=True)
    )
    times = [payload_as_of(p) for p in payloads]
    if not times or any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


def phases_due_at_close(*, now: datetime) -> QuerySet[Phase]:
    """Closed phases whose boards were last computed from data read before the close."""
    final = LeaderboardSnapshot.objects.filter(payload__final=True).values("phase_id")
    return Phase.objects.filter(closes_at__lte=now, evaluation_set__isnull=False).exclude(
        pk__in=final
    )


# --------------------------------------------------------------------------- entry curves


@dataclass(frozen=True)
class EntryCurves:
    roc: charts.RocCurve | None
    calibration: list[charts.CalibrationBin]
    froc: charts.FrocCurve | None = None
    site_rocs: dict[str, list[list[float]]] | None = None


@functools.lru_cache(maxsize=4)
def _labels(path: str, mtime_ns: int, size: int) -> LabelTable:
    # Keyed on the file's identity so a re-import (new file) is never served stale.
    return read_labels(Path(path))


def _label_table(phase: Phase) -> LabelTable:
    assert phase.evaluation_set is not None
    path = private_path(phase.evaluation_set.labels_file)
    stat = path.stat()
    return _labels(str(path), stat.st_mtime_ns, stat.st_size)


def entry_curves(*, phase: Phase, view: BoardView, key: str, organiser: bool = False
                 ) -> EntryCurves | None:
    """Coarsened ROC and calibration of an entry on its board's cases (visible boards only).
    Organisers, who may read every per-case score anyway, get them without the small-group
    rule (a detection phase's public part may hold fewer lesions than it asks)."""
    if board_entry(view, key) is None or phase.evaluation_set is None or view.payload is None:
        return None
    if phase.evaluation_set.is_remote:
        return _site_curves(phase, key, view.payload["part"])
    result = Result.objects.filter(
        submission__uid=key, submission__phase=phase, evaluation_set=phase.evaluation_set
    ).only("case_scores", "case_detections").first()
    if result is None:
        return None
    table = _label_table(phase)
    mask = part_mask(table, view.payload["part"])
    y, scores = table.y[mask], from_bytes(result.case_scores)[mask]
    rule = SmallCellRule(1, 1) if organiser else small_cell_rule()
    limits = {"min_cases": rule.min_cases, "min_positives": rule.min_positives}
    froc = None
    if result.case_detections is not None:
        froc = _froc(Evidence.from_bytes(result.case_detections).select_films(mask), rule)
    return EntryCurves(roc=charts.roc_curve(y, scores, **limits),
                       calibration=charts.calibration_bins(y, scores, **limits), froc=froc)


def _site_curves(phase: Phase, key: str, part: str) -> EntryCurves | None:
    """Phases at data stations: each station drew its coarsened ROC itself."""
    result = Result.objects.filter(submission__uid=key, submission__phase=phase).only(
        "site_metrics").first()
    if result is None:
        return None
    sites = {site: (item.get("roc") or {}).get(part)
             for site, item in sorted((result.site_metrics or {}).items())}
    return EntryCurves(roc=None, calibration=[],
                       site_rocs={site: points for site, points in sites.items() if points})


def _froc(evidence: Evidence, rule: SmallCellRule) -> charts.FrocCurve | None:
    fp, sensitivity = froc_curve(evidence)
    return charts.froc_points(fp, sensitivity, rates=FROC_FP_RATES, n_films=evidence.n_films,
                              n_lesions=int(evidence.lesion_film.size),
                              min_lesions=rule.min_cases)


# --------------------------------------------------------------------------- progress


HIGHLIGHTED_TEAMS = 10


def progress_lines(view: BoardView, *, team_id: int | None = None) -> list[charts.TeamLine]:
    """Each team's best score over time, in board order; the top teams and the viewer's own
    team are highlighted."""
    if not view.visible or not view.payload:
        return []
    order: dict[int, int] = {}
    for entry in view.entries:
        if not entry["is_baseline"]:
            order.setdefault(entry["team_id"], len(order))
    lines = sorted(view.payload.get("timeline") or [],
                   key=lambda line: order.get(line["team_id"], len(order)))
    return [
        charts.TeamLine(
            team=line["team"],
            points=tuple((datetime.fromisoformat(t), v) for t, v in line["points"]),
            highlight=order.get(line["team_id"], HIGHLIGHTED_TEAMS) < HIGHLIGHTED_TEAMS
            or line["team_id"] == team_id,
        )
        for line in lines
    ]
