"""Leaderboard charts drawn on the server as SVG, and the curve data behind them.

Pure numpy and string building, no ORM and no plotting library: selectors pass arrays or
payload data in, views put the returned markup in the page. Every piece of text that can come
from a participant (team names) is escaped here, so the result is safe to mark safe.

Curves of hidden data are coarsened with the same small-cell rule as subgroup scores. The ROC
rule (and why: a full-resolution curve tells a team that knows its own scores every label)
lives in `heldout_kernel.stats.curves`, which data stations use too; `roc_curve` and `RocCurve` are
imported here for the pages. A calibration bin of a handful of cases would likewise tell those
cases' labels, so:

- Calibration bins (equal width, the ECE bins) are drawn only when they hold at least
  `min_cases` cases and at least `min_positives` of each class.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

# Re-exported: pages and selectors call charts.roc_curve / charts.RocCurve.
from heldout_kernel.stats.curves import MAX_ROC_POINTS, RocCurve, _allowed, roc_curve  # noqa: F401
from heldout_kernel.stats.metrics import ECE_BIN_EDGES, ece_bins

#: Colours of the highlighted series (the top teams), then the rest in grey.
PALETTE = (
    "#2a6fdb", "#d1495b", "#00798c", "#edae49", "#66a182",
    "#8d5a97", "#3d405b", "#e07a5f", "#4f772d", "#9c6644",
)  # fmt: skip
OTHER = "#c3c8d2"


# --------------------------------------------------------------------------- curve data


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-width bin; `mean_predicted` and `observed` are None when suppressed."""

    low: float
    high: float
    suppressed: bool
    n: int | None = None
    mean_predicted: float | None = None
    observed: float | None = None


def calibration_bins(
    y_true: npt.ArrayLike, y_score: npt.ArrayLike, *, min_cases: int, min_positives: int
) -> list[CalibrationBin]:
    """Reliability diagram data on the ECE bins, small bins suppressed (see module doc)."""
    y = np.asarray(y_true).astype(bool)
    s = np.clip(np.asarray(y_score, dtype=np.float64), 0.0, 1.0)
    which = ece_bins(s)
    out = []
    for b in range(ECE_BIN_EDGES.size - 1):
        in_bin = which == b
        n, n_pos = int(in_bin.sum()), int(y[in_bin].sum())
        low, high = float(ECE_BIN_EDGES[b]), float(ECE_BIN_EDGES[b + 1])
        if not _allowed(n, n_pos, min_cases, min_positives):
            out.append(CalibrationBin(low, high, suppressed=True))
            continue
        out.append(CalibrationBin(low, high, False, n, float(s[in_bin].mean()), n_pos / n))
    return out


# --------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class Axis:
    label: str
    low: float
    high: float
    ticks: tuple[tuple[float, str], ...]


@dataclass(frozen=True)
class Series:
    """A polyline; `step` draws it as a staircase (value held until the next point)."""

    label: str
    points: tuple[tuple[float, float], ...]
    color: str
    step: bool = False
    markers: bool = False
    tooltips: tuple[str, ...] = field(default_factory=tuple)
    legend: bool = True


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int
    left: int = 56
    right: int = 40
    top: int = 30
    bottom: int = 44

    def px(self, x: float, axis: Axis) -> float:
        span = (axis.high - axis.low) or 1.0
        return self.left + (x - axis.low) / span * (self.width - self.left - self.right)

    def py(self, y: float, axis: Axis) -> float:
        span = (axis.high - axis.low) or 1.0
        plot = self.height - self.top - self.bottom
        return self.top + plot - (y - axis.low) / span * plot


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def nice_ticks(low: float, high: float, count: int = 5, *, min_step: float = 0.0
               ) -> tuple[tuple[float, str], ...]:
    """Round tick positions covering [low, high], at least `min_step` apart."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return ((low, f"{low:g}"),)
    raw = max((high - low) / max(count, 1), min_step)
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.ceil(low / step - 1e-9) * step
    digits = next(d for d in range(8) if abs(round(step, d) - step) < step * 1e-6)
    count = int(math.floor((high - first) / step + 1e-9)) + 1
    values = [round(first + i * step, digits + 2) for i in range(count)]
    return tuple((v, f"{v:.{digits}f}") for v in values)


def _axes_svg(frame: _Frame, x: Axis, y: Axis) -> list[str]:
    bottom, right = frame.height - frame.bottom, frame.width - frame.right
    parts = [f'<rect class="plot" x="{frame.left}" y="{frame.top}" '
             f'width="{right - frame.left}" height="{bottom - frame.top}"/>']
    for value, text in x.ticks:
        px = frame.px(value, x)
        parts.append(f'<line class="grid" x1="{px:.1f}" y1="{frame.top}" x2="{px:.1f}" '
                     f'y2="{bottom}"/><text class="tick" x="{px:.1f}" y="{bottom + 16}" '
                     f'text-anchor="middle">{_e(text)}</text>')
    for value, text in y.ticks:
        py = frame.py(value, y)
        parts.append(f'<line class="grid" x1="{frame.left}" y1="{py:.1f}" x2="{right}" '
                     f'y2="{py:.1f}"/><text class="tick" x="{frame.left - 6}" y="{py + 4:.1f}" '
                     f'text-anchor="end">{_e(text)}</text>')
    parts.append(f'<text class="label" x="{(frame.left + right) / 2:.1f}" '
                 f'y="{frame.height - 6}" text-anchor="middle">{_e(x.label)}</text>')
    parts.append(f'<text class="label" transform="translate(14 {(frame.top + bottom) / 2:.1f}) '
                 f'rotate(-90)" text-anchor="middle">{_e(y.label)}</text>')
    return parts


def _staircase(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for x, y in points:
        if out:
            out.append((x, out[-1][1]))
        out.append((x, y))
    return out


def _series_svg(frame: _Frame, x: Axis, y: Axis, series: Series) -> str:
    points = _staircase(series.points) if series.step else list(series.points)
    path = " ".join(f"{frame.px(a, x):.1f},{frame.py(b, y):.1f}" for a, b in points)
    title = f"<title>{_e(series.label)}</title>"
    parts = [f'<g class="series"><polyline fill="none" stroke="{series.color}" '
             f'stroke-width="2" points="{path}">{title}</polyline>']
    if series.markers:
        for i, (a, b) in enumerate(series.points):
            tip = series.tooltips[i] if i < len(series.tooltips) else series.label
            parts.append(f'<circle cx="{frame.px(a, x):.1f}" cy="{frame.py(b, y):.1f}" r="4" '
                         f'fill="{series.color}"><title>{_e(tip)}</title></circle>')
    parts.append("</g>")
    return "".join(parts)


def _legend_svg(frame: _Frame, series: Sequence[Series]) -> list[str]:
    shown = [s for s in series if s.legend]
    parts = []
    for i, s in enumerate(shown):
        col, row = i % 4, i // 4
        lx = frame.left + col * (frame.width - frame.left) / 4
        ly = frame.height + 14 + row * 16
        parts.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" '
                     f'fill="{s.color}"/><text class="legend" x="{lx + 14:.1f}" y="{ly}">'
                     f"{_e(s.label[:28])}</text>")
    return parts


def plot(
    series: Sequence[Series], x: Axis, y: Axis, *, title: str, width: int = 560,
    height: int = 340, diagonal: bool = False, legend: bool = False,
) -> str:
    """A complete <svg> element: axes, grid, optional y = x diagonal, series, legend."""
    frame = _Frame(width, height)
    rows = math.ceil(sum(1 for s in series if s.legend) / 4) if legend else 0
    total = height + (rows * 16 + 8 if rows else 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {width} {total}" width="{width}" height="{total}" '
             f'aria-label="{_e(title)}"><title>{_e(title)}</title>',
             f'<text class="title" x="{frame.left}" y="18">{_e(title)}</text>']
    parts += _axes_svg(frame, x, y)
    if diagonal:
        parts.append(f'<line class="diagonal" x1="{frame.px(x.low, x):.1f}" '
                     f'y1="{frame.py(y.low, y):.1f}" x2="{frame.px(x.high, x):.1f}" '
                     f'y2="{frame.py(y.high, y):.1f}"/>')
    parts += [_series_svg(frame, x, y, s) for s in series]
    if legend:
        parts += _legend_svg(frame, series)
    parts.append("</svg>")
    return "".join(parts)


UNIT = tuple((v / 5, f"{v / 5:.1f}") for v in range(6))


def roc_svg(curve: RocCurve, *, label: str) -> str:
    series = Series(label=label, points=curve.points, color=PALETTE[0], markers=True,
                    tooltips=tuple(f"FPR {a:.3f}, TPR {b:.3f}" for a, b in curve.points))
    return plot([series], Axis("False positive rate", 0, 1, UNIT),
                Axis("True positive rate", 0, 1, UNIT),
                title=f"ROC curve ({curve.n_groups} groups of cases)", diagonal=True)


@dataclass(frozen=True)
class FrocCurve:
    """Sensitivity at the FROC's own false-positive rates (per image), nothing finer: a step
    for every detection would tell a team which of its detections found a lesion."""

    points: tuple[tuple[float, float], ...]  # (false positives per image, sensitivity)
    n_films: int
    n_lesions: int


def froc_points(fp_per_image: npt.ArrayLike, sensitivity: npt.ArrayLike, *,
                rates: Sequence[float], n_films: int, n_lesions: int,
                min_lesions: int) -> FrocCurve | None:
    """The FROC at `rates` from its operating points (fp ascending): at each rate the best
    sensitivity within that many false positives per image. None with too few lesions."""
    if n_lesions < min_lesions:
        return None
    fp = np.asarray(fp_per_image, dtype=np.float64)
    sens = np.asarray(sensitivity, dtype=np.float64)
    points = tuple((float(rate), float(np.max(sens[fp <= rate], initial=0.0)))
                   for rate in rates)
    return FrocCurve(points=points, n_films=n_films, n_lesions=n_lesions)


def _rate_label(rate: float) -> str:
    return f"1/{round(1 / rate)}" if rate < 1 else f"{rate:g}"


def froc_svg(curve: FrocCurve, *, label: str) -> str:
    """FROC on a log2 axis of false positives per image (1/8 ... 8)."""
    logs = [math.log2(rate) for rate, _ in curve.points]
    points = tuple((x, sens) for x, (_, sens) in zip(logs, curve.points, strict=True))
    tips = tuple(f"{_rate_label(rate)} FP/image: sensitivity {sens:.3f}"
                 for rate, sens in curve.points)
    series = Series(label=label, points=points, color=PALETTE[2], markers=True, tooltips=tips)
    ticks = tuple((x, _rate_label(rate)) for x, (rate, _) in zip(logs, curve.points,
                                                                   strict=True))
    return plot([series], Axis("False positives per image", logs[0], logs[-1], ticks),
                Axis("Lesion sensitivity", 0, 1, UNIT),
                title=f"FROC ({curve.n_lesions} lesions on {curve.n_films} films)")


def site_roc_svg(sites: dict[str, list[list[float]]]) -> str:
    """One coarsened ROC per data station (each drawn at the station by `roc_curve`'s rule)."""
    series = [Series(label=site, points=tuple((float(a), float(b)) for a, b in points),
                     color=PALETTE[i % len(PALETTE)], markers=True, legend=True,
                     tooltips=tuple(f"{site}: FPR {a:.3f}, TPR {b:.3f}" for a, b in points))
              for i, (site, points) in enumerate(sites.items())]
    return plot(series, Axis("False positive rate", 0, 1, UNIT),
                Axis("True positive rate", 0, 1, UNIT), title="ROC curve per site",
                diagonal=True, legend=True)


def calibration_svg(bins: Sequence[CalibrationBin], *, label: str) -> str:
    shown = [b for b in bins if not b.suppressed]
    points = tuple((b.mean_predicted or 0.0, b.observed or 0.0) for b in shown)
    tips = tuple(
        f"[{b.low:.1f}, {b.high:.1f}): {b.n} cases, mean predicted {b.mean_predicted:.3f}, "
        f"observed {b.observed:.3f}" for b in shown
    )
    series = Series(label=label, points=points, color=PALETTE[1], markers=True, tooltips=tips)
    return plot([series], Axis("Mean predicted probability", 0, 1, UNIT),
                Axis("Observed frequency", 0, 1, UNIT),
                title="Calibration (reliability)", diagonal=True)


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class TeamLine:
    """One team's best score over time: (time, value) steps, oldest first."""

    team: str
    points: tuple[tuple[datetime, float], ...]
    highlight: bool


def _time_ticks(low: float, high: float) -> tuple[tuple[float, str], ...]:
    fmt = "%Y-%m-%d" if high - low > 2 * 86400 else "%m-%d %H:%M"
    times = np.linspace(low, high, 4).tolist()
    return tuple((t, datetime.fromtimestamp(t, tz=UTC).strftime(fmt)) for t in times)


def _value_axis(values: Sequence[float], label: str, places: int | None = None) -> Axis:
    """A value axis; with `places`, ticks no finer than that many decimals (a chart of
    released scores shows no digit the release policy holds back)."""
    step = 10.0 ** -places if places is not None else 0.0
    low, high = min(values), max(values)
    pad = max((high - low) * 0.08, 0.005, step)
    low, high = low - pad, high + pad
    return Axis(label, low, high, nice_ticks(low, high, min_step=step))


def progress_svg(lines: Sequence[TeamLine], *, metric: str, until: datetime,
                 places: int | None = None) -> str:
    """Each team's best score over time, drawn as staircases up to `until`; highlighted
    teams in colour with a legend, the others in grey underneath. `places`: the release
    policy's precision, for the value axis."""
    values = [v for line in lines for _, v in line.points]
    times = [t.timestamp() for line in lines for t, _ in line.points]
    if not values:
        return ""
    end = max(max(times), until.timestamp())
    start = min(times)
    x = Axis("Time (UTC)", start, end if end > start else start + 3600,
             _time_ticks(start, end if end > start else start + 3600))
    series, colour = [], 0
    for line in sorted(lines, key=lambda item: item.highlight):
        pts = tuple((t.timestamp(), v) for t, v in line.points) + ((end, line.points[-1][1]),)
        color = OTHER
        if line.highlight:
            color, colour = PALETTE[colour % len(PALETTE)], colour + 1
        series.append(Series(line.team, pts, color, step=True, legend=line.highlight))
    return plot(series, x, _value_axis(values, metric, places), title=f"Best {metric} over time",
                width=720, height=360, legend=True)
