"""Production mode on this machine: DEBUG off, a fresh PostgreSQL database, Redis as broker and
cache, gunicorn serving pages, /healthz and WhiteNoise's static files, a Celery worker scoring a
model in the real Docker engine, and beat, every process logging JSON lines. The same commands
as docker/compose.yml, without the containers around them."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import requests

from tests.bundles import phase_spec, write_bundle
from tests.conftest import REPO
from tests.pipeline.conftest import AGE_MODEL, containers_named, make_bundle_zip, volumes_named
from tests.production.stack import (
    Processes,
    free_port,
    fresh_database,
    gunicorn_argv,
    manage,
    production_environment,
    wait_healthy,
)

pytestmark = pytest.mark.docker

SLUG, PHASE = "synthetic-test", "leaderboard"
BROKER_DB, CACHE_DB = 11, 10  # Redis databases no other test uses
SCORING_TIMEOUT_S = 180
# Django's deployment warnings expected here: no HSTS and no HTTPS redirect (left to the TLS
# proxy; the settings set neither), and no secure-only cookies (no TLS on this machine, so
# HELDOUT_SECURE_COOKIES=0).
KNOWN_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}
# A log record in a text format ("2026-01-01 12:00:00 INFO ..." or Celery's "[2026-...").
TEXT_RECORD = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")

SETUP_TEAM = f"""
from django.contrib.auth import get_user_model
from accounts.services import token_create
from challenges.models import Challenge
from challenges.services import team_create, terms_accept

alice = get_user_model().objects.create_user("alice", "alice@example.org", "correct horse b")
challenge = Challenge.objects.get(slug="{SLUG}")
terms_accept(challenge=challenge, user=alice)
team_create(challenge=challenge, user=alice, name="Alpha")
print(token_create(user=alice, name="production test").key)
"""


@pytest.fixture(scope="session")
def runtime_image() -> str:
    from heldout_kernel.runtime_image import ensure_runtime_image

    return ensure_runtime_image()


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
def redis_urls() -> Iterator[tuple[str, str]]:
    """Broker and cache databases on the suite's Redis server, emptied before and after."""
    suite = urlsplit(os.environ.get("REDIS_URL", ""))
    assert suite.scheme == "redis", "set REDIS_URL"
    urls = tuple(suite._replace(path=f"/{db}").geturl() for db in (BROKER_DB, CACHE_DB))
    for url in urls:
        redis.Redis.from_url(url).flushdb()
    yield urls  # type: ignore[misc]
    for url in urls:
        redis.Redis.from_url(url).flushdb()


@pytest.fixture
def production_env(
    tmp_path: Path, database_url: str, redis_urls: tuple[str, str]
) -> dict[str, str]:
    return production_environment(folder=tmp_path, database_url=database_url,
                                  redis_url=redis_urls[0], cache_url=redis_urls[1])


def start_services(processes: Processes, port: int, var_dir: Path) -> None:
    """The commands of docker/compose.yml."""
    celery = [sys.executable, "-m", "celery", "-A", "heldout", "--quiet"]
    processes.start("web", *gunicorn_argv(port))
    processes.start("worker", *celery, "worker", "-Q", "scoring,default", "--concurrency", "1",
                    "--prefetch-multiplier", "1", "--loglevel", "INFO")
    processes.start("beat", *celery, "beat", "--loglevel", "INFO",
                    "--schedule", str(var_dir / "celerybeat-schedule"))


def wait_final(base: str, token: str, uid: str) -> dict[str, object]:
    deadline = time.monotonic() + SCORING_TIMEOUT_S
    while True:
        response = requests.get(f"{base}/api/v1/submissions/{uid}/",
                                headers={"Authorization": f"Token {token}"}, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        assert time.monotonic() < deadline, f"not scored within {SCORING_TIMEOUT_S} s: {body}"
        time.sleep(1)


def json_records(log: str) -> list[dict[str, object]]:
    """The JSON log records of a process's output; fails on a log record in a text format.
    Other lines (a Python warning printed before logging is set up) are not records."""
    records = []
    for line in log.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
        else:
            assert not TEXT_RECORD.match(line), f"a log record that is not JSON: {line}"
    return records


def assert_structured_logs(processes: Processes) -> None:
    web = processes.log("web")
    assert all(line.startswith("{") for line in web.splitlines() if line), web
    loggers = {name: {record["logger"] for record in json_records(processes.log(name))}
               for name in ("web", "worker", "beat")}
    assert {"gunicorn.error", "gunicorn.access"} <= loggers["web"]
    assert "celery.app.trace" in loggers["worker"]  # "Task ... succeeded in ..."
    assert "celery.beat" in loggers["beat"]


def test_it_serves_and_scores_with_debug_off_under_gunicorn(
    tmp_path: Path, production_env: dict[str, str], runtime_image: str
) -> None:
    env = production_env
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    checked = manage(env, "check", "--deploy", "--fail-level", "ERROR")
    assert set(re.findall(r"\((\w+\.\w+)\)", checked.stdout + checked.stderr)) <= KNOWN_WARNINGS

    port, processes = free_port(), Processes(env, tmp_path / "logs")
    base = f"http://127.0.0.1:{port}"
    try:
        start_services(processes, port, Path(env["HELDOUT_VAR_DIR"]))
        bundle = write_bundle(tmp_path / "bundle", phases=[phase_spec(
            limits={"cpus": 1, "memory_mb": 256, "seconds": 30})])
        manage(env, "import_challenge", str(bundle))
        token = manage(env, "shell", "-c", SETUP_TEAM).stdout.split()[-1]

        health = wait_healthy(base, processes)
        assert health == {"status": "ok", "checks": dict.fromkeys(
            ("database", "broker", "engine", "runtime_image"), "ok")}
        _assert_pages(base)

        model = make_bundle_zip(tmp_path / "model.zip", AGE_MODEL)
        created = requests.post(
            f"{base}/api/v1/challenges/{SLUG}/phases/{PHASE}/submissions/",
            headers={"Authorization": f"Token {token}"}, data={"kind": "bundle"},
            files={"file": ("model.zip", model.read_bytes(), "application/zip")}, timeout=30,
        )
        assert created.status_code == 202, created.text
        scored = wait_final(base, token, created.json()["id"])
        assert scored["status"] == "succeeded", scored
        assert scored["metrics"] and "auroc" in json.dumps(scored["metrics"])
        processes.assert_alive()
    finally:
        processes.stop()
    prefix = env["HELDOUT_CONTAINER_PREFIX"]
    assert (containers_named(prefix), volumes_named(prefix)) == ([], [])
    assert_structured_logs(processes)


def _assert_pages(base: str) -> None:
    home = requests.get(f"{base}/", timeout=10)
    assert home.status_code == 200 and "[SYNTHETIC] Test challenge" in home.text
    page = requests.get(f"{base}/challenges/{SLUG}/", timeout=10)
    assert page.status_code == 200 and "Leaderboard round" in page.text
    missing = requests.get(f"{base}/no-such-page/", timeout=10)
    assert missing.status_code == 404 and "URLconf" not in missing.text  # no DEBUG page
    # WhiteNoise serves the collected, pre-compressed copy.
    css = requests.get(f"{base}/static/heldout.css", timeout=10)
    assert css.status_code == 200 and css.headers.get("Content-Encoding") == "gzip"
    assert css.content == (REPO / "static" / "heldout.css").read_bytes()
