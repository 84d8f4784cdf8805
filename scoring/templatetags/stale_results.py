"""`{% stale_results challenge as n %}`: how many of a challenge's results are stale, for the
organisers' dashboard (a `challenges` admin page, which cannot import this app)."""

from __future__ import annotations

from typing import Any

from django import template

from scoring.staleness import stale_count

register = template.Library()


@register.simple_tag
def stale_results(challenge: Any) -> int:
    return stale_count(challenge=challenge)
