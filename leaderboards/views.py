"""Leaderboard pages: the board, its live partial, an entry's detail, organiser exports.

Everything shown comes from the cached snapshot payload (already stripped of suppressed
subgroup cells) through `leaderboards.selectors`; no view runs a bootstrap or reads
`Result.subgroups`. An entry's curves are the only per-case read, on visible boards only.
"""

from __future__ import annotations

import csv
import io
from typing import Any
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    JsonResponse,
)
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from challenges import selectors as challenge_selectors
from challenges.models import Phase
from challenges.visibility import PhaseRights, phase_rights
from heldout_kernel.scores import LESION_PREFIX
from leaderboards import charts, selectors
from leaderboards.models import LeaderboardSnapshot

Board = LeaderboardSnapshot.Board
LIVE_POLL_MS = 10_000


def _phase_rights(request: HttpRequest, slug: str, phase: str) -> PhaseRights:
    item = challenge_selectors.visible_phase(user=request.user, slug=slug, phase=phase)
    return phase_rights(phase=item, user=request.user)


def _board_view(rights: PhaseRights, board: str) -> selectors.BoardView:
    if board not in Board.values:
        raise Http404("There is no such leaderboard.")
    return selectors.leaderboard_for(rights=rights, board=board)


def _svg(markup: str) -> SafeString:
    # charts.py escapes every piece of text it draws; the markup is ours.
    return mark_safe(markup)  # noqa: S308


def leaderboard(request: HttpRequest, slug: str, phase: str, board: str) -> HttpResponse:
    rights = _phase_rights(request, slug, phase)
    item, team_id = rights.phase, rights.team_id
    view = _board_view(rights, board)
    until = min(timezone.now(), item.closes_at)
    release = (view.payload or {}).get("release")
    chart = charts.progress_svg(selectors.progress_lines(view, team_id=team_id),
                                metric=item.primary_metric, until=until,
                                places=release["precision"] if release else None)
    return render(request, "leaderboards/board.html", {
        "phase": item, "challenge": item.challenge, "board": view, "my_team_id": team_id,
        "tabs": _tabs(rights), "chart": _svg(chart), "poll_ms": LIVE_POLL_MS,
        "can_export": rights.can_export,
    })


def _tabs(rights: PhaseRights) -> list[tuple[str, str, bool]]:
    """(board, label, visible to this user); a phase without a split has one board."""
    evaluation = rights.phase.evaluation_set
    has_split = evaluation is not None and evaluation.has_split
    return [(name, label, rights.board(name)[0])
            for name, label in Board.choices if has_split or name == Board.PUBLIC]


def leaderboard_live(request: HttpRequest, slug: str, phase: str, board: str) -> HttpResponse:
    """The board table alone, polled by the page while the phase runs. Browsers revalidate
    with the ETag, so a poll between two computations costs no rendering."""
    rights = _phase_rights(request, slug, phase)
    item, team_id = rights.phase, rights.team_id
    view = _board_view(rights, board)
    etag = f'"{board}-{int(view.visible)}-{view.version}-{team_id}"'
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = render(request, "leaderboards/_board.html", {
            "phase": item, "board": view, "my_team_id": team_id,
        })
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def _metric_rows(payload: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    names = [payload["primary"], *payload["secondary"]]
    return [
        {"name": name, "value": entry["metrics"].get(name),
         "interval": entry["intervals"].get(name) or [None, None],
         "higher_is_better": payload["higher_is_better"].get(name, True)}
        for name in dict.fromkeys(names)
    ]


def _subgroup_tables(payload: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Subgroup cells in the board's order (JSON objects from the database lose theirs)."""
    tables: dict[str, dict[str, Any]] = {}
    for column, value in payload.get("subgroup_cells", []):
        cell = (entry.get("subgroups") or {}).get(column, {}).get(value)
        if cell is None:
            continue
        table = tables.setdefault(column, {
            "column": column, "gap": (entry.get("fairness_gaps") or {}).get(column), "rows": [],
            "lesions": column.startswith(LESION_PREFIX),  # cells count lesions, all positive
        })
        table["rows"].append({"value": value, **cell})
    return list(tables.values())


def entry_detail(
    request: HttpRequest, slug: str, phase: str, board: str, key: UUID
) -> HttpResponse:
    rights = _phase_rights(request, slug, phase)
    item = rights.phase
    view = _board_view(rights, board)
    entry = selectors.board_entry(view, str(key))
    if entry is None or view.payload is None:
        raise Http404("No such entry on a leaderboard you may see.")
    # Curves are drawn from per-case scores: not while scores are released coarsely.
    curves = None if rights.releases_scores else selectors.entry_curves(
        phase=item, view=view, key=str(key), organiser=rights.is_organiser)
    roc = calibration = froc = ""
    if curves is not None and curves.roc is not None:
        roc = charts.roc_svg(curves.roc, label=entry["team"])
    if curves is not None and curves.site_rocs:
        roc = charts.site_roc_svg(curves.site_rocs)
    if curves is not None and curves.froc is not None:
        froc = charts.froc_svg(curves.froc, label=entry["team"])
    if curves is not None and any(not b.suppressed for b in curves.calibration):
        calibration = charts.calibration_svg(curves.calibration, label=entry["team"])
    return render(request, "leaderboards/entry.html", {
        "phase": item, "challenge": item.challenge, "board": view, "entry": entry,
        "metrics": _metric_rows(view.payload, entry), "roc": _svg(roc), "froc": _svg(froc),
        "detection": item.is_detection,
        "subgroups": _subgroup_tables(view.payload, entry),
        "calibration": _svg(calibration),
        "calibration_bins": curves.calibration if curves else [],
        "rule": view.payload.get("subgroup_rule", {}),
        "sites": _site_rows(view.payload, entry),
        "release": view.payload.get("release"), "withheld": _withheld(rights, view.payload),
        "precision": _precision(view.payload),
    })


def _withheld(rights: PhaseRights, payload: dict[str, Any]) -> str:
    """Why the entry's curves (and whatever its release withholds) are not shown, or ''."""
    if not rights.releases_scores:
        return ""
    return (f"Withheld until the phase closes: while it runs, this phase shows teams and the "
            f"public only its released scores (the “{rights.phase.score_release}” release "
            "policy); curves, and under the ladders intervals, K and subgroups, would tell "
            "more.")


def _precision(payload: dict[str, Any]) -> int:
    """Decimal places worth showing: the release policy's, else four."""
    return int((payload.get("release") or {}).get("precision", 4))


def _site_rows(payload: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Each data station's cases and scores of this entry (phases at several stations)."""
    names = [payload["primary"], *payload.get("secondary", [])]
    return [{"site": site, "n_cases": item.get("n_cases"), "suppressed": item.get("suppressed"),
             "values": [(item.get("metrics") or {}).get(name) for name in names]}
            for site, item in (entry.get("sites") or {}).items()]


# --------------------------------------------------------------------------- exports


def _exportable(
    request: HttpRequest, slug: str, phase: str, board: str
) -> tuple[Phase, dict[str, Any]]:
    rights = _phase_rights(request, slug, phase)
    item = rights.phase
    if not rights.can_export:
        raise PermissionDenied("Only the challenge's organisers can export leaderboards.")
    view = _board_view(rights, board)
    if view.payload is None:
        raise Http404("This leaderboard has not been computed yet.")
    return item, view.payload


def _cell(value: Any) -> str:
    """CSV-safe text: numbers as is; text that a spreadsheet would run as a formula is
    quoted with a leading apostrophe (team names are participants' input)."""
    if value is None:
        return ""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _numeric(text):
        return "'" + text
    return text


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_header(payload: dict[str, Any]) -> list[str]:
    header = ["rank", "team", "submission", "baseline", "key"]
    for name in dict.fromkeys([payload["primary"], *payload["secondary"]]):
        header += [name, f"{name}_low", f"{name}_high"]
    header += ["bayes_factor", "tied_with_leader", "fairness_gap", "fairness_gap_column",
               "entries", "last_submission_at"]
    return header + [f"subgroup:{c}={v}" for c, v in payload.get("subgroup_cells", [])]


def _subgroup_value(entry: dict[str, Any], column: str, value: str) -> Any:
    cell = (entry.get("subgroups") or {}).get(column, {}).get(value) or {}
    return "suppressed" if cell.get("suppressed") else cell.get("score")


def _csv_row(payload: dict[str, Any], entry: dict[str, Any]) -> list[Any]:
    row: list[Any] = [entry["rank"], entry["team"], entry["submission"], entry["is_baseline"],
                      entry["key"]]
    for name in dict.fromkeys([payload["primary"], *payload["secondary"]]):
        low, high = entry["intervals"].get(name) or [None, None]
        row += [entry["metrics"].get(name), low, high]
    gap = entry.get("fairness_gap") or {}
    row += [entry["bayes_factor"], entry["tied_with_leader"], gap.get("gap"), gap.get("column"),
            entry["entries"], entry["last_submission_at"]]
    return row + [_subgroup_value(entry, c, v) for c, v in payload.get("subgroup_cells", [])]


def _filename(item: Phase, board: str, ext: str) -> str:
    return f"{item.challenge.slug}-{item.slug}-{board}-leaderboard.{ext}"


def export_csv(request: HttpRequest, slug: str, phase: str, board: str) -> HttpResponse:
    item, payload = _exportable(request, slug, phase, board)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_csv_header(payload))
    for entry in payload["entries"]:
        writer.writerow([_cell(v) for v in _csv_row(payload, entry)])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(item, board, "csv")}"'
    return response


def export_json(request: HttpRequest, slug: str, phase: str, board: str) -> HttpResponse:
    item, payload = _exportable(request, slug, phase, board)
    response = JsonResponse(payload, json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="{_filename(item, board, "json")}"'
    return response
