"""API representation of a cached leaderboard (leaderboards.compute builds the payload)."""

from __future__ import annotations

from rest_framework import serializers

from leaderboards.models import LeaderboardSnapshot


class LeaderboardEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField(allow_null=True)
    team = serializers.CharField()
    team_id = serializers.IntegerField()
    submission = serializers.IntegerField(help_text="The team's submission number.")
    is_baseline = serializers.BooleanField()
    metrics = serializers.DictField(child=serializers.FloatField(allow_null=True))
    intervals = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="95% bootstrap interval [low, high] per metric.",
    )
    bayes_factor = serializers.JSONField(
        allow_null=True,
        help_text="Bayes factor against the leader (a number, \"inf\", or null for the leader).",
    )
    tied_with_leader = serializers.BooleanField()
    entries = serializers.IntegerField(help_text="Scored submissions of this team.")
    submitted_at = serializers.DateTimeField()


class LeaderboardSerializer(serializers.Serializer):
    board = serializers.ChoiceField(choices=LeaderboardSnapshot.Board.choices)
    visible = serializers.BooleanField()
    reason = serializers.CharField(
        allow_blank=True, help_text="Why the board is hidden or empty; blank otherwise."
    )
    primary = serializers.CharField()
    secondary = serializers.ListField(child=serializers.CharField())
    n_cases = serializers.IntegerField(allow_null=True)
    n_resamples = serializers.IntegerField(allow_null=True)
    final = serializers.BooleanField(
        help_text="Computed after the phase closed: this board will not change any more."
    )
    entries = LeaderboardEntrySerializer(many=True)


class BoardQuerySerializer(serializers.Serializer):
    board = serializers.ChoiceField(
        choices=LeaderboardSnapshot.Board.choices, default=LeaderboardSnapshot.Board.PUBLIC,
        help_text="The private board appears when the phase closes (organisers: always).",
    )
