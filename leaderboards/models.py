"""Computed leaderboards, cached so that page views never run a bootstrap."""

from __future__ import annotations

from django.db import models

from challenges.models import Phase


class LeaderboardSnapshot(models.Model):
    """A phase's computed board: the latest computation, and what everyone but the organisers
    may see of it, when.

    `payload` is the latest board as computed (exact scores: what organisers see, at once).
    `public` is its view for everyone else when that differs from `payload` in more than the
    precision of its times (a score release policy that picks entries by released scores);
    null: derived from `payload` when read. A new board is shown to everyone else from
    `release_at` on, the end of the release period in which the newest outcome it may
    include ended (HELDOUT_RELEASE_SECONDS): until then they see `held`, a copy of the board
    released before it. So a board never tells anyone when a run on hidden data ended more
    precisely than that run's own team learns it.
    """

    class Board(models.TextChoices):
        PUBLIC = "public", "Public"
        PRIVATE = "private", "Private"

    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="snapshots")
    board = models.CharField(max_length=10, choices=Board.choices)
    payload = models.JSONField(default=dict)
    public = models.JSONField(null=True, blank=True)
    release_at = models.DateTimeField(null=True, blank=True)
    held = models.JSONField(null=True, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["phase", "board"], name="leaderboard_snapshot_unique")
        ]

    def __str__(self) -> str:
        return f"{self.phase} {self.board} board"
