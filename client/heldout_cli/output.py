"""Tables for people, JSON for scripts, and progress on stderr only when it is a terminal.

rich draws the tables, progress bars and spinners. Progress never touches stdout, and
nothing is drawn when stderr is redirected, so `heldout ... --json > out.json` and CI logs
stay clean.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from rich import box
from rich.console import Console, RenderableType
from rich.filesize import decimal as human_size
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

# Wide enough that rich never wraps a row: one line per row, for people and for `grep`.
RENDER_WIDTH = 2000


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def render(renderable: RenderableType) -> str:
    """Text of a rich renderable; bold headers only when stdout is a terminal."""
    console = Console(width=RENDER_WIDTH, force_terminal=is_tty(sys.stdout),
                      highlight=False, soft_wrap=False)
    with console.capture() as captured:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value) or "-"
    return " ".join(str(value).split())  # one line per row, whatever the server sent


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned columns under a rule, numbers right-aligned, `-` for missing values."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for i, header in enumerate(headers):
        numeric = bool(rows) and all(_is_number(row[i]) or row[i] is None for row in rows)
        table.add_column(Text(header), justify="right" if numeric else "left", no_wrap=True)
    for row in rows:  # Text, not str: a team called "[bold]x" is no rich markup
        table.add_row(*(Text(_cell(value)) for value in row))
    return render(table)


def render_fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """`key: value` lines, values aligned; pairs whose value is None are left out."""
    grid = Table.grid(padding=(0, 1, 0, 0))
    for key, value in pairs:
        if value is not None:
            grid.add_row(Text(f"{key}:"), Text(_cell(value)))
    return render(grid)


def dump_json(data: Any, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    json.dump(data, out, indent=2, sort_keys=False, ensure_ascii=False)
    out.write("\n")


# --- progress on stderr --------------------------------------------------------------------


def _ignore(*args: Any) -> None:
    pass


def _live(stream: TextIO | None, *columns: Any) -> Progress | None:
    """A transient rich display on `stream` (stderr), or None when that is no terminal.

    Whether it is one is decided here, from isatty() alone: rich would also take
    FORCE_COLOR, which CI systems set, as a terminal and fill their logs with bars.
    """
    stream = stream or sys.stderr
    if not is_tty(stream):
        return None
    console = Console(file=stream, force_terminal=True)
    return Progress(*columns, console=console, transient=True)


@contextmanager
def progress(label: str, total: int | None = None,
             stream: TextIO | None = None) -> Iterator[Callable[..., None]]:
    """`with progress("model.zip", size) as update: update(done)`; update(done, total)
    also sets a total learnt late (a download's Content-Length)."""
    bar = _live(stream, TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                DownloadColumn(), TransferSpeedColumn())
    if bar is None:
        yield _ignore
        return
    with bar:
        task = bar.add_task(label, total=total)

        def update(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total)  # None keeps the known total

        yield update


@contextmanager
def spinner(stream: TextIO | None = None) -> Iterator[Callable[[str], None]]:
    """`with spinner() as show: show("running")`: a spinner, the text and the time taken."""
    live = _live(stream, SpinnerColumn(), TextColumn("{task.description}"),
                 TimeElapsedColumn())
    if live is None:
        yield _ignore
        return
    with live:
        task = live.add_task("", total=None)
        yield lambda text: live.update(task, description=text)


# --- what the commands show ------------------------------------------------------------


def when(value: str | None) -> str | None:
    """`2026-01-01T00:00:00Z` -> `2026-01-01 00:00 UTC` (the server's times are UTC)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return value
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def phase_state(phase: dict[str, Any]) -> str:
    if phase.get("is_open"):
        return "open"
    return "closed" if phase.get("has_closed") else "not yet open"


def challenges_table(items: list[dict[str, Any]]) -> str:
    rows = [
        [c.get("slug"), c.get("title"), c.get("task"),
         [p["slug"] for p in c.get("phases", []) if p.get("is_open")]]
        for c in items
    ]
    return render_table(["SLUG", "TITLE", "TASK", "OPEN PHASES"], rows)


def _quota_text(quota: dict[str, Any]) -> str:
    return (f"{quota.get('per_day')}/day, {quota.get('total')} total, "
            f"{quota.get('concurrent')} at once")


def phases_table(challenge: dict[str, Any]) -> str:
    rows = [
        [p.get("slug"), phase_state(p), when(p.get("opens_at")), when(p.get("closes_at")),
         p.get("submission_kinds"), _quota_text(p.get("quota") or {}),
         p.get("primary_metric")]
        for p in challenge.get("phases", [])
    ]
    viewer = challenge.get("viewer") or {}
    team = (viewer.get("team") or {}).get("name")
    header = render_fields([
        ("challenge", f"{challenge.get('title')} ({challenge.get('slug')})"),
        ("terms accepted", bool(viewer.get("terms_accepted"))),
        ("your team", team or "none yet"),
    ])
    table = render_table(
        ["PHASE", "STATE", "OPENS", "CLOSES", "KINDS", "QUOTA", "METRIC"], rows)
    return f"{header}\n\n{table}"


def team_text(team: dict[str, Any]) -> str:
    members = [
        [m.get("username"), "captain" if m.get("is_captain") else "member",
         when(m.get("joined_at"))]
        for m in team.get("members", [])
    ]
    head = render_fields([("team", team.get("name")), ("challenge", team.get("challenge")),
                          ("captain", team.get("captain"))])
    return f"{head}\n\n{render_table(['MEMBER', 'ROLE', 'JOINED'], members)}"


def metrics_table(metrics: dict[str, dict[str, Any]] | None) -> str | None:
    """Rows are parts ('all', 'public', 'private'), columns the metrics."""
    if not metrics:
        return None
    names: list[str] = []
    for values in metrics.values():
        names += [n for n in values if n not in names]
    rows = [[part, *[values.get(n) for n in names]] for part, values in metrics.items()]
    return render_table(["PART", *[n.upper() for n in names]], rows)


def submission_text(item: dict[str, Any]) -> str:
    error = item.get("error_class")
    fields = render_fields([
        ("submission", item.get("id")),
        ("number", f"#{item.get('number')} of team {item.get('team')}"),
        ("phase", f"{item.get('challenge')}/{item.get('phase')}"),
        ("file", f"{item.get('filename')} ({item.get('kind')}, "
                 f"{human_size(item.get('size') or 0)})"),
        ("status", item.get("status")),
        ("error", f"{error}: {item.get('error_message')}" if error else None),
        ("submitted", when(item.get("created_at"))),
        ("finished", when(item.get("finished_at"))),
        ("selected", item.get("selected") or None),
    ])
    scores = metrics_table(item.get("metrics"))
    if scores:
        return f"{fields}\n\n{scores}"
    if item.get("status") == "succeeded" and not item.get("scores_visible"):
        return f"{fields}\n\nScores of this phase are shown after it closes."
    return fields


def runs_text(item: dict[str, Any]) -> str:
    parts = []
    for run in item.get("runs") or []:
        title = (f"--- {run.get('lane')} run (exit {run.get('exit_code')}, "
                 f"{run.get('duration_s') or 0:.1f} s) ---")
        log = run.get("log") if run.get("log_visible") else "(the log of this run is hidden)"
        parts.append(f"{title}\n{(log or '(empty log)').rstrip()}")
    return "\n".join(parts) or "No runs yet."


def _primary_value(item: dict[str, Any], primary: str) -> float | None:
    metrics = item.get("metrics") or {}
    part = metrics.get("public") or metrics.get("all") or {}
    return part.get(primary) if isinstance(part, dict) else None


def submissions_table(items: list[dict[str, Any]], primary: str | None) -> str:
    metric = primary or "score"
    rows = [
        [f"#{s.get('number')}", s.get("id"), s.get("kind"), s.get("status"),
         s.get("error_class"), _primary_value(s, metric), when(s.get("created_at")),
         "*" if s.get("selected") else ""]
        for s in items
    ]
    return render_table(["#", "ID", "KIND", "STATUS", "ERROR", metric.upper(), "SUBMITTED",
                         "SEL"], rows)


def _interval(entry: dict[str, Any], metric: str) -> str | None:
    value = (entry.get("metrics") or {}).get(metric)
    if value is None:
        return None
    low, high = ((entry.get("intervals") or {}).get(metric) or [None, None])[:2]
    if low is None or high is None:
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.3f}, {high:.3f}]"


def leaderboard_text(board: dict[str, Any]) -> str:
    if not board.get("visible") or not board.get("entries"):
        return board.get("reason") or "No scored submissions yet."
    primary, secondary = board.get("primary", ""), list(board.get("secondary") or [])
    rows = [
        [e.get("rank"), ("= " if e.get("tied_with_leader") and e.get("rank") != 1 else "")
         + str(e.get("team")) + (" (baseline)" if e.get("is_baseline") else ""),
         _interval(e, primary), *[(e.get("metrics") or {}).get(m) for m in secondary],
         e.get("entries")]
        for e in board["entries"]
    ]
    table = render_table(
        ["RANK", "TEAM", f"{primary.upper()} [95% CI]", *[m.upper() for m in secondary],
         "ENTRIES"], rows)
    note = (f"{board.get('board')} board, {board.get('n_cases')} cases, "
            f"{board.get('n_resamples')} bootstrap resamples; '=' marks a statistical tie "
            "with the leader")
    return f"{table}\n\n{note}"


def quota_text(quota: dict[str, Any]) -> str:
    return render_fields([
        ("today", f"{quota.get('used_today')} of {quota.get('per_day')} used, "
                  f"{quota.get('left_today')} left"),
        ("phase", f"{quota.get('used_total')} of {quota.get('total')} used, "
                  f"{quota.get('left_total')} left"),
        ("running", f"{quota.get('running')} of {quota.get('concurrent')} at once"),
        ("resets", when(quota.get("resets_at"))),
    ])
