"""The sweeper removes what killed processes leave behind: work folders of attempts that are
no longer running, and Django's multipart temporary files nothing has touched for an hour;
those of live attempts and fresh uploads stay."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings

from scoring.pipeline import workdir_prefix
from scoring.services import remove_leftovers
from tests.factories import SubmissionFactory

pytestmark = pytest.mark.django_db


def test_leftovers_of_dead_attempts_and_stale_uploads_go(phase, team_a) -> None:
    live = SubmissionFactory(phase=phase, team=team_a, status="running", attempts=2)
    dead = Path(tempfile.mkdtemp(prefix=workdir_prefix(live.pk, 1)))
    running = Path(tempfile.mkdtemp(prefix=workdir_prefix(live.pk, 2)))
    temp = Path(settings.FILE_UPLOAD_TEMP_DIR)
    stale, fresh = temp / "stale.upload", temp / "fresh.upload"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    try:
        removed = set(remove_leftovers())
        assert {dead, stale} <= removed
        assert not dead.exists() and not stale.exists()
        assert running.exists() and fresh.exists()
    finally:
        for path in (running, fresh):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
