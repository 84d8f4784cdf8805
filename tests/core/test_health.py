"""/healthz answers anyone with one word per check: 200 when nothing failed, 503 otherwise,
and the reason only in the server log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.db import OperationalError

from core import health

pytestmark = pytest.mark.django_db

ALL_OK = dict.fromkeys(("database", "broker", "engine", "runtime_image"), "ok")


@pytest.fixture
def web_node(settings) -> None:  # type: ignore[no-untyped-def]
    """A web node without a Docker engine; the suite's broker is Redis."""
    settings.HELDOUT_HEALTH_CHECK_ENGINE = False
    assert settings.CELERY_BROKER_URL.startswith("redis://")


@pytest.fixture
def engine_health() -> Iterator[mock.MagicMock]:
    with mock.patch("scoring.checks.engine_health", autospec=True,
                    return_value={"engine": "ok", "runtime_image": "ok"}) as probe:
        yield probe


def test_it_is_ok_on_a_web_node_and_skips_the_engine(client, web_node: None) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {
        "database": "ok", "broker": "ok", "engine": "skipped", "runtime_image": "skipped"}}
    assert "no-cache" in response["Cache-Control"]


def test_it_asks_the_engine_where_switched_on(client, settings, engine_health) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_HEALTH_CHECK_ENGINE = True
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "checks": ALL_OK})
    engine_health.assert_called_once_with()


def test_a_missing_runtime_image_fails(client, settings, engine_health) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_HEALTH_CHECK_ENGINE = True
    engine_health.return_value = {"engine": "ok", "runtime_image": "fail"}
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"
    assert response.json()["checks"]["runtime_image"] == "fail"


def test_a_failing_engine_probe_fails_both_engine_checks(client, settings, engine_health) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_HEALTH_CHECK_ENGINE = True
    engine_health.side_effect = RuntimeError("boom")
    checks = client.get("/healthz").json()["checks"]
    assert (checks["engine"], checks["runtime_image"]) == ("fail", "fail")


def test_an_unreachable_broker_fails_without_saying_where(  # type: ignore[no-untyped-def]
    client, settings, web_node: None, caplog
) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="core.health"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "fail", "checks": {
        "database": "ok", "broker": "fail", "engine": "skipped", "runtime_image": "skipped"}}
    assert "127.0.0.1" not in response.content.decode()
    assert "health check broker failed" in caplog.text
    assert "ConnectionError" in caplog.text  # the traceback, for the operator


def test_a_failing_database_fails(client, web_node: None) -> None:  # type: ignore[no-untyped-def]
    with mock.patch.object(health, "check_database", autospec=True,
                           side_effect=OperationalError("connection refused")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "fail"


def test_the_filesystem_broker_needs_its_folders(  # type: ignore[no-untyped-def]
    client, settings, web_node: None, tmp_path: Path
) -> None:
    folders = {key: str(tmp_path / "broker" / key) for key in health.FILESYSTEM_FOLDERS}
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = folders
    assert client.get("/healthz").json()["checks"]["broker"] == "fail"
    for folder in folders.values():
        Path(folder).mkdir(parents=True)
    assert client.get("/healthz").json()["checks"]["broker"] == "ok"


def test_it_only_answers_reads(client, web_node: None) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200
