"""The production stack on this machine, for the tests in this folder: a fresh PostgreSQL
database, the environment docker/compose.yml gives every process (DEBUG off), manage.py, and
long-running processes (gunicorn, Celery, nginx) each in its own process group."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
from psycopg import sql

from tests.conftest import REPO


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new database on the suite's PostgreSQL server (DATABASE_URL), dropped afterwards."""
    suite = urlsplit(os.environ.get("DATABASE_URL", ""))
    assert suite.scheme in ("postgres", "postgresql"), "set DATABASE_URL to PostgreSQL"
    name = f"heldout_prod_{secrets.token_hex(4)}"
    server = suite._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield suite._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def production_environment(
    *, folder: Path, database_url: str, redis_url: str, cache_url: str
) -> dict[str, str]:
    """What docker/compose.yml sets, for processes started here: the suite's own HELDOUT_,
    DJANGO_ and CELERY_ settings are left out."""
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith(("HELDOUT_", "DJANGO_", "CELERY_"))
                 and key not in ("DATABASE_URL", "REDIS_URL")}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "heldout.settings",  # not the suite's test settings
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "HELDOUT_AUDIT_KEY": secrets.token_urlsafe(32),
        "HELDOUT_SECURE_COOKIES": "0",  # plain HTTP on localhost
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "HELDOUT_CACHE_URL": cache_url,
        "HELDOUT_VAR_DIR": str(folder / "var"),
        "HELDOUT_PRIVATE_ROOT": str(folder / "private"),
        # Our own container names, so neither our sweeper nor another run's touches the other's.
        "HELDOUT_CONTAINER_PREFIX": f"heldout-prod-{secrets.token_hex(3)}-",
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"manage.py {args[0]}:\n{done.stdout}\n{done.stderr}"
    return done


def gunicorn_argv(port: int) -> list[str]:
    """The web command of docker/compose.yml, on a local port with two workers."""
    return [sys.executable, "-m", "gunicorn", "-c", "docker/gunicorn.conf.py",
            "--bind", f"127.0.0.1:{port}", "--workers", "2", "heldout.wsgi"]


class Processes:
    """Long-running processes, each in its own process group with its output in a file."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *argv: str, env: dict[str, str] | None = None) -> None:
        # Appending: nginx opens /dev/stdout anew for its access log, and would otherwise
        # write over its error log at the start of the same file.
        with (self.logs / f"{name}.log").open("ab") as out:
            self.running[name] = subprocess.Popen(
                argv, cwd=REPO, env=self.env if env is None else env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def assert_alive(self) -> None:
        dead = {name: self.log(name) for name, proc in self.running.items()
                if proc.poll() is not None}
        assert not dead, dead

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        """TERM to each main process, as `docker stop` does (gunicorn and Celery then stop
        their own children gracefully), then KILL whatever is left in its process group."""
        for proc in self.running.values():
            proc.terminate()
        for proc in self.running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass  # killed below
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the whole group is gone
            proc.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(base: str, processes: Processes) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while True:
        processes.assert_alive()
        try:
            response = requests.get(f"{base}/healthz", timeout=10)
            if response.status_code == 200:
                return response.json()  # type: ignore[no-any-return]
        except (requests.ConnectionError, requests.Timeout):
            pass  # still starting: workers load the application before they answer
        assert time.monotonic() < deadline, "no healthy /healthz within 60 s"
        time.sleep(0.5)
