"""Template tags that let other apps' pages show a board without importing this app
(the phase page of `submissions` embeds the live board; the submission page asks whether
the board has caught up with the submission)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template

from challenges.models import Phase
from challenges.visibility import phase_rights
from leaderboards.models import LeaderboardSnapshot
from leaderboards.selectors import BoardView, leaderboard_for, shown_board_as_of

register = template.Library()


@register.simple_tag(takes_context=True)
def phase_board(context: dict[str, Any], phase: Phase, board: str = "public") -> BoardView:
    """`{% phase_board phase as board %}`: the board as the page's viewer may see it."""
    rights = context.get("rights") or phase_rights(phase=phase, user=context["request"].user)
    return leaderboard_for(rights=rights, board=board)


@register.simple_tag(takes_context=True)
def board_pending(context: dict[str, Any], submission: Any) -> bool:
    """`{% board_pending submission as pending %}`: True while a succeeded submission is not
    on the board its viewer sees yet, i.e. the public board was computed from results read
    before the submission finished (or not at all). Boards are recomputed by a task after
    each result, so this is the few seconds between "Succeeded" and the entry appearing."""
    if submission.status != "succeeded" or submission.finished_at is None:
        return False
    rights = context.get("rights") or phase_rights(
        phase=submission.phase, user=context["request"].user)
    if not rights.board(LeaderboardSnapshot.Board.PUBLIC)[0]:
        return False  # a board the viewer cannot see is not "being added to" for them
    raw = shown_board_as_of(phase_id=submission.phase_id, board=LeaderboardSnapshot.Board.PUBLIC,
                            exact=rights.is_organiser)
    return not raw or datetime.fromisoformat(raw) < submission.finished_at
