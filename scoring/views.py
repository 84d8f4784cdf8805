"""Leaderboard pages: the board, its live partial, an entry's detail, organiser exports.

Everything shown comes from the cached snapshot payload (already stripped of suppressed
subgroup cells) through `scoring.selectors`; no view runs a bootstrap or reads
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
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from challenges import selectors as challenge_selectors
from challenges.models import Phase
from scoring import charts, selectors
from scoring.models import LeaderboardSnapshot

Board = LeaderboardSnapshot.Board
LIVE_POLL_MS = 10_000


def _phase(request: HttpRequest, slug: str, phase: str) -> Phase:
    challenges = challenge_selectors.visible_challenges(user=request.user).distinct()
    challenge = get_object_or_404(challenges, slug=slug)
    item: Phase = get_object_or_404(
        Phase.objects.select_related("challenge", "evaluation_set"), challenge=challenge,
        slug=phase,
    )
    return item


def _organiser(request: HttpRequest, item: Phase) -> bool:
    return challenge_selectors.is_organiser(challenge=item.challenge, user=request.user)


def _board_view(
    request: HttpRequest, item: Phase, board: str, organiser: bool | None = None
) -> selectors.BoardView:
    if board not in Board.values:
        raise Http404("There is no such leaderboard.")
    return selectors.leaderboard_for(phase=item, user=request.user, board=board,
                                     organiser=organiser)


def _team_id(request: HttpRequest, item: Phase) -> int | None:
    team = challenge_selectors.team_for_user(challenge=item.challenge, user=request.user)
    return team.pk if team else None


def _svg(markup: str) -> SafeString:
    # charts.py escapes every piece of text it draws; the markup is ours.
    return mark_safe(markup)  # noqa: S308


def leaderboard(request: HttpRequest, slug: str, phase: str, board: str) -> HttpResponse:
    item = _phase(request, slug, phase)
    organiser = _organiser(request, item)
    view = _board_view(request, item, board, organiser)
    team_id = _team_id(request, item)
    until = min(timezone.now(), item.closes_at)
    chart = charts.progress_svg(selectors.progress_lines(view, team_id=team_id),
                                metric=item.primary_metric, until=until)
    return render(request, "scoring/board.html", {
        "phase": item, "challenge": item.challenge, "board": view, "my_team_id": team_id,
        "tabs": _tabs(request, item, organiser), "chart": _svg(chart), "poll_ms": LIVE_POLL_MS,
        "can_export": organiser,
    })


def _tabs(request: HttpRequest, item: Phase, organiser: bool) -> list[tuple[str, str, bool]]:
    """(board, label, visible to this user); a phase without a split has one board."""
    has_split = item.evaluation_set is not None and item.evaluation_set.has_split
    return [
        (name, label, selectors.board_visible(phase=item, user=request.user, board=name,
                                              organiser=organiser)[0])
        for name, label in Board.choices if has_split or name == Board.PUBLIC
    ]


def leaderboard_live(request: HttpRequest, slug: str, phase: str, board: str) -> HttpResponse:
    """The board table alone, polled by the page while the phase runs. Browsers revalidate
    with the ETag, so a poll between two computations costs no rendering."""
    item = _phase(request, slug, phase)
    view = _board_view(request, item, board)
    team_id = _team_id(request, item)
    stamp = view.computed_at.timestamp() if view.computed_at else 0
    etag = f'"{board}-{int(view.visible)}-{stamp}-{team_id}"'
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = render(request, "scoring/_board.html", {
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
        })
        table["rows"].append({"value": value, **cell})
    return list(tables.values())


def entry_detail(
    request: HttpRequest, slug: str, phase: str, board: str, key: UUID
) -> HttpResponse:
    item = _phase(request, slug, phase)
    view = _board_view(request, item, board)
    entry = selectors.board_entry(view, str(key))
    if entry is None or view.payload is None:
        raise Http404("No such entry on a leaderboard you may see.")
    curves = selectors.entry_curves(phase=item, view=view, key=str(key))
    roc = calibration = ""
    if curves is not None and curves.roc is not None:
        roc = charts.roc_svg(curves.roc, label=entry["team"])
    if curves is not None and any(not b.suppressed for b in curves.calibration):
        calibration = charts.calibration_svg(curves.calibration, label=entry["team"])
    return render(request, "scoring/entry.html", {
        "phase": item, "challenge": item.challenge, "board": view, "entry": entry,
        "metrics": _metric_rows(view.payload, entry), "roc": _svg(roc),
        "subgroups": _subgroup_tables(view.payload, entry),
        "calibration": _svg(calibration),
        "calibration_bins": curves.calibration if curves else [],
        "rule": view.payload.get("subgroup_rule", {}),
    })


# --------------------------------------------------------------------------- exports


def _exportable(
    request: HttpRequest, slug: str, phase: str, board: str
) -> tuple[Phase, dict[str, Any]]:
    item = _phase(request, slug, phase)
    if not selectors.can_export(phase=item, user=request.user):
        raise PermissionDenied("Only the challenge's organisers can export leaderboards.")
    view = _board_view(request, item, board, organiser=True)
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
