"""Admin for resumable uploads. Submissions themselves are administered with their runs and
the re-score action in scoring.admin (the runs are scoring's)."""

from __future__ import annotations

from django.contrib import admin

from challenges.admin_scoping import OrganiserScopedAdmin
from submissions.models import UploadSession


@admin.register(UploadSession)
class UploadSessionAdmin(OrganiserScopedAdmin):
    challenge_path = "phase__challenge"
    list_display = ["uid", "user", "phase", "kind", "received", "total_size", "touched_at"]
    list_filter = [("phase__challenge", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = ["uid", "user", "phase", "kind", "filename", "total_size", "received",
                       "created_at", "touched_at", "submission"]
