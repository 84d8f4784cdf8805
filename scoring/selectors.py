"""Reads for leaderboards: cached snapshots, filtered by who may see what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from challenges import selectors as challenge_selectors
from challenges.models import Phase
from scoring.models import LeaderboardSnapshot


@dataclass(frozen=True)
class BoardView:
    visible: bool
    reason: str
    payload: dict[str, Any] | None


def board_visible(*, phase: Phase, user: Any, board: str) -> tuple[bool, str]:
    if challenge_selectors.is_organiser(challenge=phase.challenge, user=user):
        return True, ""
    if board == LeaderboardSnapshot.Board.PRIVATE:
        if phase.has_closed() or phase.private_published:
            return True, ""
        return False, "The private leaderboard appears when the phase closes."
    if phase.score_visibility == Phase.ScoreVisibility.AFTER_CLOSE and not phase.has_closed():
        return False, "Scores of this phase are shown after it closes."
    return True, ""


def leaderboard_for(*, phase: Phase, user: Any, board: str) -> BoardView:
    visible, reason = board_visible(phase=phase, user=user, board=board)
    if not visible:
        return BoardView(False, reason, None)
    snapshot = LeaderboardSnapshot.objects.filter(phase=phase, board=board).first()
    if snapshot is None:
        return BoardView(True, "No scored submissions yet.", None)
    return BoardView(True, "", snapshot.payload)
