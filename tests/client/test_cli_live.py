"""The `heldout` CLI end to end, as a real subprocess over real HTTP against a live server,
with a Celery worker on Redis scoring the readmission baseline in the real Docker engine:
login, terms, download, team, submit (plain and resumable), wait, leaderboard, quota,
logout; and the one-line errors of a refused token and of a server that is down."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from allauth.account.models import EmailAddress
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.cache import cache

from challenges.bundles import import_challenge
from demo.bundles import build_readmission_bundle
from demo.examples import readmission_bundle
from heldout.celery import app
from tests.conftest import REPO, SHARED_DATA
from tests.factories import UserFactory

CACHE = REPO / "var" / "test-cache"
PASSWORD = "correct horse battery"  # UserFactory's
SLUG, PHASE = "readmission-30d", "leaderboard"
WAIT_S = 600


@dataclass(frozen=True)
class Baseline:
    bundle: Path
    model: Path


@pytest.fixture(scope="session")
def baseline() -> Baseline:
    """The real readmission bundle (3,000 test patients) and the logistic-regression
    baseline fitted on its public training data; both cached under var/test-cache."""
    assert SHARED_DATA.is_dir(), f"the real data sets are required at {SHARED_DATA}"
    built = build_readmission_bundle(CACHE / "cli" / SLUG, data_dir=SHARED_DATA, n_test=3000)
    assert not built.synthetic
    return Baseline(bundle=built.path, model=readmission_bundle(built.path, CACHE / "models"))


@pytest.fixture(scope="session")
def runtime_image() -> str:
    from heldout_kernel.runtime_image import ensure_runtime_image

    return ensure_runtime_image()


@pytest.fixture
def worker(transactional_db) -> Iterator[object]:  # type: ignore[no-untyped-def]
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test sets REDIS_URL"
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    with start_worker(app, pool="solo", perform_ping_check=False,
                      queues=["scoring", "default"], shutdown_timeout=30) as running:
        yield running


@pytest.fixture
def alice(transactional_db):  # type: ignore[no-untyped-def]
    user = UserFactory(username="alice")
    # Without DEBUG e-mail verification is mandatory, for the API's password login too.
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


class Cli:
    """`heldout` as a subprocess with its own config folder and no inherited overrides."""

    def __init__(self, config_home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HELDOUT_")}
        self.env["XDG_CONFIG_HOME"] = str(config_home)

    def __call__(self, *argv: str, stdin: str = "", timeout: float = 120,
                 **env: str) -> Ran:
        done = subprocess.run(
            [sys.executable, "-m", "heldout_cli", *argv], input=stdin, capture_output=True,
            text=True, env={**self.env, **env}, timeout=timeout,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Ran(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def heldout(tmp_path: Path) -> Cli:
    cache.clear()  # the login throttle counts in the cache the live server shares with us
    return Cli(tmp_path / "config")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _login(heldout: Cli, url: str) -> Path:
    ran = heldout("login", "--url", url, "--username", "alice", "--password-stdin",
                  stdin=PASSWORD + "\n")
    assert ran.code == 0, ran.err
    stored = Path(heldout.env["XDG_CONFIG_HOME"]) / "heldout" / "config.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert json.loads(stored.read_text())["url"] == url
    return stored


def _join(heldout: Cli, tmp_path: Path, bundle: Path) -> None:
    refused = heldout("team", "create", SLUG, "Alpha")
    assert refused.code == 2
    assert refused.err.startswith("heldout: terms_not_accepted: ")
    assert refused.err.count("\n") == 1
    assert heldout("terms", "accept", SLUG).code == 0
    assert heldout("download", SLUG, "--dest", str(tmp_path / "data")).code == 0
    assert _sha256(tmp_path / "data" / "train.csv") == _sha256(bundle / "public" / "train.csv")
    created = heldout("team", "create", SLUG, "Alpha")
    assert created.code == 0, created.err
    assert "captain:   alice" in created.out


def _submit(heldout: Cli, model: Path, **env: str) -> str:
    ran = heldout("submit", SLUG, PHASE, str(model), **env)
    assert ran.code == 0, ran.err
    assert "(bundle)" in ran.err  # the kind was detected from the zip
    return ran.out.strip()


def _board(heldout: Cli) -> dict[str, object]:
    """The public board once the worker has recomputed it after scoring."""
    deadline = time.monotonic() + 60
    while True:
        ran = heldout("leaderboard", SLUG, PHASE, "--json")
        assert ran.code == 0, ran.err
        board = ran.json()
        assert isinstance(board, dict)
        if board["entries"] or time.monotonic() > deadline:
            return board
        time.sleep(0.5)


@pytest.mark.docker
def test_it_takes_part_in_a_challenge_from_the_command_line(
    live_server, worker, alice, baseline: Baseline, runtime_image: str, heldout: Cli,
    tmp_path: Path,
) -> None:
    import_challenge(baseline.bundle)
    stored = _login(heldout, live_server.url)
    listed = heldout("challenges", "--json")
    assert [c["slug"] for c in listed.json()] == [SLUG]  # type: ignore[union-attr]
    assert re.search(r"^leaderboard +open ", heldout("phases", SLUG).out, re.MULTILINE)
    _join(heldout, tmp_path, baseline.bundle)

    plain = _submit(heldout, baseline.model)
    chunked = _submit(heldout, baseline.model, HELDOUT_CHUNKED_THRESHOLD="1024",
                      HELDOUT_CHUNK_SIZE="1000")  # the resumable endpoints, ~4 chunks
    assert plain != chunked

    waited = heldout("status", plain, "--wait", "--timeout", str(WAIT_S), timeout=WAIT_S + 30)
    assert waited.code == 0, waited.out + waited.err
    assert re.search(r"^status: +succeeded$", waited.out, re.MULTILINE)
    done = heldout("status", chunked, "--wait", "--json", timeout=WAIT_S + 30)
    assert done.code == 0, done.out + done.err
    scored = done.json()
    assert isinstance(scored, dict) and scored["status"] == "succeeded"
    assert 0.55 < scored["metrics"]["public"]["auroc"] < 0.85

    board = _board(heldout)
    assert [e["team"] for e in board["entries"]] == ["Alpha"]  # type: ignore[index]
    table = heldout("leaderboard", SLUG, PHASE)
    assert table.out.splitlines()[2].split()[:2] == ["1", "Alpha"]
    quota = heldout("quota", SLUG, PHASE, "--json").json()
    assert isinstance(quota, dict) and quota["used_today"] == 2

    token = json.loads(stored.read_text())["token"]
    assert heldout("logout").code == 0
    revoked = heldout("quota", SLUG, PHASE, HELDOUT_TOKEN=token)
    assert (revoked.code, revoked.err) == (
        2, "heldout: the token was refused; run heldout login\n")


@pytest.mark.django_db(transaction=True)
def test_a_bad_token_gives_one_line(live_server, heldout: Cli) -> None:
    ran = heldout("status", "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
                  HELDOUT_URL=live_server.url, HELDOUT_TOKEN="hld_not-a-real-token")
    assert (ran.code, ran.out) == (2, "")
    assert ran.err == "heldout: the token was refused; run heldout login\n"


def test_a_server_that_is_down_gives_one_clear_line(heldout: Cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ran = heldout("leaderboard", SLUG, PHASE, "--url", f"http://127.0.0.1:{port}")
    assert ran.code == 2
    assert ran.err == f"heldout: cannot reach http://127.0.0.1:{port}: connection refused\n"


def test_the_installed_heldout_command_is_this_cli() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="console_scripts")
               if e.name == "heldout"]
    assert (entry.value, entry.dist.name) == ("heldout_cli.cli:main", "heldout-cli")
    script = Path(sys.executable).with_name("heldout")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "heldout 0.1.0")
