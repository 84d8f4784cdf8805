"""Checks that scoring can run safely: deployment checks of the configured container backend
(`manage.py check --deploy`), and whether the Docker engine answers and holds the runtime
image, which workers need (`manage.py check --deploy --tag heldout_worker`, and /healthz
through `engine_health`).

The engine is asked through the docker CLI, like `station/heldout_kernel/runtime/build.sh` (which
workers already run to confirm the runtime image): a short subprocess timeout bounds a hung engine,
and only `scoring/backends/docker.py` imports the docker SDK.

IDs: heldout.E010 (backend not importable), heldout.E011 (backend without a sandbox),
heldout.E012 (engine unreachable), heldout.E013 (runtime image missing), heldout.I010 (engine
check switched off).
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Tags, register
from django.utils.module_loading import import_string

from heldout_kernel.runtime_image import runtime_image_tag
from heldout_kernel.sandbox.local import LocalProcessBackend

logger = logging.getLogger(__name__)

WORKER_TAG = "heldout_worker"
ENGINE_TIMEOUT_S = 5.0  # per docker CLI call; a load balancer waits for /healthz


@dataclass(frozen=True)
class EngineStatus:
    engine_ok: bool
    image_ok: bool
    image: str
    detail: str = ""  # why not ok; for logs and the check output, never for /healthz


def probe_engine(*, image: str | None = None, timeout_s: float = ENGINE_TIMEOUT_S) -> EngineStatus:
    """Ask the Docker engine for `image` (default: the runtime image of the current recipe).
    One CLI call when all is well; a second one only to tell a missing image from an
    engine that does not answer."""
    try:
        image = image or runtime_image_tag()
    except OSError as exc:
        return EngineStatus(engine_ok=False, image_ok=False, image="",
                            detail=f"runtime image recipe unreadable: {exc}")
    inspected, detail = _docker("image", "inspect", "--format", "{{.Id}}", image,
                                timeout_s=timeout_s)
    if inspected:
        return EngineStatus(engine_ok=True, image_ok=True, image=image)
    answered, engine_detail = _docker("version", "--format", "{{.Server.Version}}",
                                      timeout_s=timeout_s)
    return EngineStatus(engine_ok=answered, image_ok=False, image=image,
                        detail=detail if answered else engine_detail)


def _docker(*args: str, timeout_s: float) -> tuple[bool, str]:
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"docker {args[0]}: {exc}"
    return done.returncode == 0, done.stderr.strip()[-500:]


def engine_health() -> dict[str, str]:
    """The engine part of /healthz: "ok" or "fail" per item; details go to the log only."""
    status = probe_engine()
    if status.detail:
        logger.warning("health check: %s", status.detail,
                       extra={"engine_ok": status.engine_ok, "image": status.image})
    return {"engine": "ok" if status.engine_ok else "fail",
            "runtime_image": "ok" if status.image_ok else "fail"}


@register(Tags.security, deploy=True)
def check_backend_isolates(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    path = settings.HELDOUT_BACKEND
    try:
        backend = import_string(path)
    except ImportError as exc:
        return [Error(f"HELDOUT_BACKEND {path!r} cannot be imported: {exc}",
                      id="heldout.E010")]
    if isinstance(backend, type) and issubclass(backend, LocalProcessBackend):
        return [Error(
            f"HELDOUT_BACKEND is the local-process backend ({path}): models would run "
            "without any sandbox, next to the hidden data.",
            hint="Use heldout_kernel.sandbox.docker.DockerBackend (the default).",
            id="heldout.E011",
        )]
    return []


@register(WORKER_TAG, deploy=True)
def check_engine(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # Deploy-only: ordinary commands (migrate, shell) must not need an engine. Web nodes
    # without one set HELDOUT_HEALTH_CHECK_ENGINE=0.
    if not settings.HELDOUT_HEALTH_CHECK_ENGINE:
        return [Info("Docker engine check skipped (HELDOUT_HEALTH_CHECK_ENGINE=0).",
                     id="heldout.I010")]
    status = probe_engine()
    if not status.engine_ok:
        return [Error(
            f"The Docker engine does not answer: {status.detail}",
            hint="Workers need a running engine and its socket (or DOCKER_HOST) and the "
                 "docker CLI.",
            id="heldout.E012",
        )]
    if not status.image_ok:
        return [Error(
            f"The runtime image {status.image} is missing: {status.detail}",
            hint="Build it on the engine's host: bash station/heldout_kernel/runtime/build.sh",
            id="heldout.E013",
        )]
    return []
