"""Computed leaderboards, cached so that page views never run a bootstrap."""

from __future__ import annotations

from django.db import models

from challenges.models import Phase


class LeaderboardSnapshot(models.Model):
    """A computed board, so that page views never run a bootstrap."""

    class Board(models.TextChoices):
        PUBLIC = "public", "Public"
        PRIVATE = "private", "Private"

    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="snapshots")
    board = models.CharField(max_length=10, choices=Board.choices)
    payload = models.JSONField(default=dict)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["phase", "board"], name="leaderboard_snapshot_unique")
        ]

    def __str__(self) -> str:
        return f"{self.phase} {self.board} board"
