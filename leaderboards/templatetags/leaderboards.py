"""Template tags that let other apps' pages show a board without importing this app
(the phase page of `submissions` embeds the live board)."""

from __future__ import annotations

from typing import Any

from django import template

from challenges.models import Phase
from challenges.visibility import phase_rights
from leaderboards.selectors import BoardView, leaderboard_for

register = template.Library()


@register.simple_tag(takes_context=True)
def phase_board(context: dict[str, Any], phase: Phase, board: str = "public") -> BoardView:
    """`{% phase_board phase as board %}`: the board as the page's viewer may see it."""
    rights = context.get("rights") or phase_rights(phase=phase, user=context["request"].user)
    return leaderboard_for(rights=rights, board=board)
