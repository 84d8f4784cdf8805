from __future__ import annotations

from django.contrib import admin

from challenges.admin_scoping import OrganiserScopedAdmin
from scoring.models import LeaderboardSnapshot, Result


@admin.register(Result)
class ResultAdmin(OrganiserScopedAdmin):
    challenge_path = "submission__phase__challenge"
    list_display = ["submission", "computed_at"]
    fields = ["submission", "evaluation_set", "metrics", "subgroups", "computed_at"]
    readonly_fields = fields


@admin.register(LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(OrganiserScopedAdmin):
    challenge_path = "phase__challenge"
    list_display = ["phase", "board", "computed_at"]
    readonly_fields = ["phase", "board", "payload", "computed_at"]
