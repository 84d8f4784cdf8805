"""Shared fixtures. The cast: Alice captains team A, Bob is her team-mate, Carol is on
another team, Dave has no team yet, Olga organises the challenge."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_fixtures import (  # noqa: F401 - one shared Chromium for every browser test
    artifacts,
    browser,
    new_context,
    playwright_driver,
    pytest_runtest_makereport,
)
from tests.factories import ChallengeFactory, PhaseFactory, TeamFactory, UserFactory, add_member

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Throttle counters and locks live in the cache (Redis in the suite): start from zero."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path: Path) -> Path:
    """Each test gets its own private root (hidden data, uploads, staging)."""
    root = tmp_path / "private"
    root.mkdir()
    settings.PRIVATE_ROOT = root
    return root


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"The real data sets are required at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def alice(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="bob")


@pytest.fixture
def carol(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="carol")


@pytest.fixture
def dave(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="dave")


@pytest.fixture
def olga(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="olga", is_staff=True)


@pytest.fixture
def challenge(db, olga):  # type: ignore[no-untyped-def]
    item = ChallengeFactory(slug="readmission", title="Readmission")
    item.organisers.add(olga)
    return item


@pytest.fixture
def phase(challenge):  # type: ignore[no-untyped-def]
    return PhaseFactory(challenge=challenge, slug="leaderboard")


@pytest.fixture
def team_a(challenge, alice, bob):  # type: ignore[no-untyped-def]
    team = TeamFactory(challenge=challenge, name="Team A", captain=alice)
    add_member(team, bob)
    return team


@pytest.fixture
def team_c(challenge, carol):  # type: ignore[no-untyped-def]
    return TeamFactory(challenge=challenge, name="Team C", captain=carol)
