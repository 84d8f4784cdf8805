from __future__ import annotations

import re

import markdown as md
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

from heldout_kernel.stats.metrics import DETECTION_METRICS, METRICS

register = template.Library()
_HEADING = re.compile(r"<(/?)h([1-6])")


@register.filter
def markdown(text: str) -> SafeString:
    """Render organiser Markdown; nh3 strips scripts, handlers and unsafe URLs."""
    html = nh3.clean(md.markdown(text or "", extensions=["tables", "fenced_code"]))
    # Organiser headings sit under the page's own <h1>/<h2>: shift them two levels down.
    html = _HEADING.sub(lambda m: f"<{m[1]}h{min(int(m[2]) + 2, 6)}", html)
    return mark_safe(html)  # noqa: S308 - sanitised by nh3 above


@register.filter
def filesize(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@register.filter
def metric(value: float | None, places: int = 4) -> str:
    """A score to `places` decimals (`{{ v|metric:precision }}`: a released score is shown to
    its release policy's precision, never with digits it does not have)."""
    return "–" if value is None else f"{value:.{int(places)}f}"


@register.filter
def get(mapping: dict, key: str):  # type: ignore[no-untyped-def,type-arg]
    return (mapping or {}).get(key)


def _metric(name: str):  # type: ignore[no-untyped-def]
    return METRICS.get(name) or DETECTION_METRICS.get(name)


@register.filter
def metric_title(name: str) -> str:
    """`auroc` -> `AUROC ↑`: the metric's title with the direction that is better."""
    found = _metric(name)
    if found is None:
        return name
    return f"{found.title} {'↑' if found.higher_is_better else '↓'}"


@register.filter
def metric_hint(name: str) -> str:
    found = _metric(name)
    if found is None:
        return ""
    return f"{found.name}: {'higher' if found.higher_is_better else 'lower'} is better"
