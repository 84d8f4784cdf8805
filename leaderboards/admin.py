from __future__ import annotations

from django.contrib import admin

from challenges.admin_scoping import OrganiserScopedAdmin
from leaderboards.models import LeaderboardSnapshot


@admin.register(LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(OrganiserScopedAdmin):
    challenge_path = "phase__challenge"
    list_display = ["phase", "board", "computed_at"]
    readonly_fields = ["phase", "board", "payload", "computed_at"]
