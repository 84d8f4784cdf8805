"""The client is its own distribution: `pip install ./client` into an empty virtualenv brings
the `heldout` command and nothing of the server (issue #9). Needs the package registry, like
any `pip install`; takes about ten seconds."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "client"
SERVER_ONLY = {"heldout", "django", "djangorestframework", "celery", "numpy", "pandas",
               "scipy", "scikit-learn", "docker", "psycopg", "pillow"}


def _run(*argv: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HELDOUT_", "PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd="/")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv (no system site-packages) with `pip install ./client` done in it.
    The client is copied first so that the build leaves nothing in the work tree."""
    root = tmp_path_factory.mktemp("cli-package")
    source = root / "client"
    shutil.copytree(CLIENT, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    made = _run(sys.executable, "-m", "venv", root / "venv", timeout=120)
    assert made.returncode == 0, made.stderr
    pip = root / "venv" / "bin" / "pip"
    installed = _run(pip, "install", "--quiet", "--disable-pip-version-check", source,
                     timeout=300)
    assert installed.returncode == 0, installed.stderr
    return root / "venv"


def test_it_installs_no_server_dependency(venv: Path) -> None:
    listed = _run(venv / "bin" / "python", "-m", "pip", "list", "--format=json")
    names = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert {"heldout-cli", "click", "rich", "httpx", "tenacity"} <= names
    assert not names & SERVER_ONLY


def test_the_installed_command_runs(venv: Path) -> None:
    helped = _run(venv / "bin" / "heldout", "--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: heldout [OPTIONS] COMMAND")
    assert "submit" in helped.stdout and "leaderboard" in helped.stdout
    version = _run(venv / "bin" / "heldout", "--version")
    assert (version.returncode, version.stdout) == (0, "heldout 0.1.0\n")


def test_the_installed_command_talks_http(venv: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ran = _run(venv / "bin" / "heldout", "challenges", "--url", f"http://127.0.0.1:{port}")
    assert (ran.returncode, ran.stdout) == (2, "")
    assert ran.stderr == f"heldout: cannot reach http://127.0.0.1:{port}: connection refused\n"
