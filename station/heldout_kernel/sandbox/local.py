"""Local-process backend for development on machines without Docker.

NO ISOLATION: the model runs as a plain subprocess of the worker, with the worker's user, file
system, network and memory. Only the environment contract, the working directory, the
wall-clock limit, the log tail and a post-hoc output size check are honoured. It is refused
unless Django's DEBUG is on (or `allow=True` is passed explicitly, e.g. by tools running
without Django settings), so it can never score hidden data in production.

Paths differ from the container: HELDOUT_INPUT and HELDOUT_OUTPUT point at the host folders,
so models must read those variables instead of hard-coding /input and /output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from heldout_kernel.sandbox.base import Backend, BackendError, InvalidImage, RunResult, RunSpec

MIB = 1024 * 1024


def _debug_enabled() -> bool:
    """Development only: the platform's DJANGO_DEBUG (read from the environment, as the
    platform's settings read it, so the kernel needs no Django)."""
    return os.environ.get("DJANGO_DEBUG", "0").strip().lower() in ("1", "true", "yes", "on")


class LocalProcessBackend(Backend):
    """Runs bundles as `python predict.py` subprocesses (no container isolation at all)."""

    def __init__(self, *, allow: bool | None = None) -> None:
        permitted = _debug_enabled() if allow is None else allow
        if not permitted:
            raise BackendError("LocalProcessBackend is refused when DEBUG is off")

    def run(self, spec: RunSpec) -> RunResult:
        if spec.command is None or spec.submission_dir is None:
            raise BackendError("the local backend runs bundles only (command + submission_dir)")
        spec.output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as log:
            started = time.monotonic()
            exit_code, timed_out = self._run_process(spec, log)
            duration = time.monotonic() - started
            log_tail = _tail(log, spec.limits.log_bytes)
        return RunResult(
            exit_code=exit_code,
            timed_out=timed_out,
            oom_killed=False,
            log_tail=log_tail,
            duration_s=duration,
            output_too_large=_tree_size(spec.output_dir) > spec.limits.output_mb * MIB,
        )

    def load_image(self, archive: Path) -> str:
        raise InvalidImage("Image submissions need the Docker backend.")

    def remove_orphans(self, *, prefix: str, keep: frozenset[str] = frozenset()) -> list[str]:
        return []  # processes die with their run; nothing outlives it

    def _run_process(self, spec: RunSpec, log: IO[bytes]) -> tuple[int | None, bool]:
        assert spec.command is not None and spec.submission_dir is not None
        command = list(spec.command)
        if command[0] in ("python", "python3"):
            command[0] = sys.executable  # the runtime image's python is this worker's here
        env = {
            **spec.env,
            "HELDOUT_INPUT": str(spec.input_dir.resolve()),
            "HELDOUT_OUTPUT": str(spec.output_dir.resolve()),
            "PATH": os.defpath,
            "PYTHONUNBUFFERED": "1",
        }
        try:
            process = subprocess.Popen(
                command,
                cwd=spec.submission_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, so a timeout kills its children
            )
        except OSError as exc:
            raise BackendError(f"cannot start {command[0]}: {exc}") from exc
        try:
            return process.wait(timeout=spec.limits.seconds), False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None, True


def _tail(log: IO[bytes], limit: int) -> str:
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(0, size - limit))
    data = log.read(limit) if limit > 0 else b""
    return data.decode("utf-8", errors="replace")


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
