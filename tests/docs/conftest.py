"""The documentation site, built once per test session as `make docs` builds it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

# A database that answers nothing: the build must not need one.
NO_DATABASE = "postgres://nobody@127.0.0.1:9/nothing"


@dataclass(frozen=True)
class Build:
    site: Path
    returncode: int
    output: str


def build_site(site: Path, var: Path, *, root: Path = REPO) -> Build:
    """`make docs`'s build of the sources under `root` (mkdocs.yml, docs/) into `site`."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "heldout.settings", "DJANGO_DEBUG": "1",
           "DATABASE_URL": NO_DATABASE, "HELDOUT_VAR_DIR": str(var),
           "NO_MKDOCS_2_WARNING": "1"}
    for name in ("REDIS_URL", "HELDOUT_CACHE_URL", "HELDOUT_AUDIT_KEY"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)
    return Build(site, done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    root = tmp_path_factory.mktemp("docs")
    return build_site(root / "site", root / "var")


@pytest.fixture
def site(built: Build) -> Path:
    assert built.returncode == 0, built.output
    return built.site
