"""The browser tests' own fixture; shared Chromium fixtures are in tests/browser_fixtures.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from challenges.bundles import import_challenge
from challenges.models import Challenge
from tests.bundles import write_bundle


@pytest.fixture
def synthetic_challenge(transactional_db: None, tmp_path: Path) -> Challenge:
    """The synthetic bundle from tests.bundles, imported as organisers do; its phase is open
    from 2026-01-01 to 2030-01-01."""
    challenge, _ = import_challenge(write_bundle(tmp_path / "bundle"))
    return challenge

