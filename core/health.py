"""/healthz: can this node serve and score? For load balancers and orchestrators.

    {"status": "ok" | "fail",
     "checks": {"database": ..., "broker": ..., "engine": ..., "runtime_image": ...}}

Each check is "ok", "fail" or "skipped" (engine and runtime image with
HELDOUT_HEALTH_CHECK_ENGINE=0, on web nodes without a Docker engine). 200 when nothing
failed, 503 otherwise. Anyone may ask, so the body carries no detail: why a check failed goes
to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import redis
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from kombu.connection import Connection

logger = logging.getLogger(__name__)

# scoring sits above core (tests/test_architecture.py), so its probe is named, not imported.
ENGINE_PROBE = "scoring.checks.engine_health"
ENGINE_CHECKS = ("engine", "runtime_image")
TIMEOUT_S = 3
FILESYSTEM_FOLDERS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if url.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S,
                                      socket_timeout=TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
    elif url.startswith("filesystem://"):
        # The embedded broker is a set of folders, made by the first worker or publisher.
        missing = [key for key in FILESYSTEM_FOLDERS if not Path(options[key]).is_dir()]
        if missing:
            raise FileNotFoundError(f"filesystem broker folders missing: {missing}")
    else:
        with Connection(url, transport_options=options, connect_timeout=TIMEOUT_S) as conn:
            conn.ensure_connection(max_retries=1)


def run_checks() -> dict[str, str]:
    checks = {"database": _outcome("database", check_database),
              "broker": _outcome("broker", check_broker)}
    if settings.HELDOUT_HEALTH_CHECK_ENGINE:
        checks |= _engine_checks()
    else:
        checks |= dict.fromkeys(ENGINE_CHECKS, "skipped")
    return checks


def _outcome(name: str, check: Callable[[], None]) -> str:
    try:
        check()
    except Exception:  # noqa: BLE001 - any failure is a failed check; the log has the detail
        logger.warning("health check %s failed", name, exc_info=True)
        return "fail"
    return "ok"


def _engine_checks() -> dict[str, str]:
    try:
        probe: Callable[[], dict[str, str]] = import_string(ENGINE_PROBE)
        result = probe()
        return {name: result[name] for name in ENGINE_CHECKS}
    except Exception:  # noqa: BLE001 - as in _outcome
        logger.warning("health check engine failed", exc_info=True)
        return dict.fromkeys(ENGINE_CHECKS, "fail")


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = run_checks()
    failed = "fail" in checks.values()
    return JsonResponse({"status": "fail" if failed else "ok", "checks": checks},
                        status=503 if failed else 200)
