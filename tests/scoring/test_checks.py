"""Deployment checks of scoring: the configured backend must sandbox models, and a worker's
Docker engine must answer and hold the runtime image (`check --deploy --tag heldout_worker`),
asked of the real engine."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.checks import run_checks

from scoring import checks
from scoring.checks import EngineStatus, check_backend_isolates, check_engine, probe_engine

MISSING_IMAGE = "heldout-runtime:no-such-recipe"


def ids(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [message.id for message in messages]


@pytest.fixture(scope="session")
def runtime_image() -> str:
    from heldout_kernel.runtime_image import ensure_runtime_image

    return ensure_runtime_image()


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")


def test_it_accepts_the_docker_backend(settings) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_BACKEND = "heldout_kernel.sandbox.docker.DockerBackend"
    assert check_backend_isolates() == []


def test_it_refuses_the_local_process_backend(settings) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_BACKEND = "heldout_kernel.sandbox.local.LocalProcessBackend"
    assert ids(check_backend_isolates()) == ["heldout.E011"]


def test_it_refuses_a_backend_that_does_not_import(settings) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_BACKEND = "heldout_kernel.sandbox.nowhere.Backend"
    assert ids(check_backend_isolates()) == ["heldout.E010"]


@pytest.mark.docker
def test_the_engine_answers_and_holds_the_runtime_image(runtime_image: str) -> None:
    assert probe_engine() == EngineStatus(engine_ok=True, image_ok=True, image=runtime_image)


def test_it_tells_a_missing_image_from_a_silent_engine(no_engine: None) -> None:
    silent = probe_engine(image=MISSING_IMAGE)
    assert (silent.engine_ok, silent.image_ok) == (False, False)
    assert "nonexistent" in silent.detail


@pytest.mark.docker
def test_it_reports_a_missing_image() -> None:
    missing = probe_engine(image=MISSING_IMAGE)
    assert (missing.engine_ok, missing.image_ok) == (True, False)
    assert MISSING_IMAGE in missing.detail


def test_it_reports_a_missing_docker_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    status = probe_engine(image=MISSING_IMAGE)
    assert not status.engine_ok and "docker" in status.detail


@pytest.mark.docker
def test_the_worker_check_passes_on_a_ready_engine(settings, runtime_image: str) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_HEALTH_CHECK_ENGINE = True
    assert check_engine() == []


def test_the_worker_check_fails_without_an_engine(settings, no_engine: None) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_HEALTH_CHECK_ENGINE = True
    assert ids(check_engine()) == ["heldout.E012"]


@pytest.mark.docker
def test_the_worker_check_fails_without_the_runtime_image(settings) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_HEALTH_CHECK_ENGINE = True
    with mock.patch.object(checks, "runtime_image_tag", autospec=True,
                           return_value=MISSING_IMAGE):
        [error] = check_engine()
    assert error.id == "heldout.E013" and MISSING_IMAGE in error.msg


def test_the_worker_check_is_skipped_where_switched_off(settings, no_engine: None) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_HEALTH_CHECK_ENGINE = False
    assert ids(check_engine()) == ["heldout.I010"]


def test_the_worker_tag_runs_only_the_engine_check(settings, no_engine: None) -> None:  # type: ignore[no-untyped-def]
    settings.HELDOUT_HEALTH_CHECK_ENGINE = True
    settings.HELDOUT_BACKEND = "heldout_kernel.sandbox.local.LocalProcessBackend"
    assert ids(run_checks(tags=["heldout_worker"], include_deployment_checks=True)) == [
        "heldout.E012"]
    # Not part of the checks every command runs: migrate must not need an engine.
    assert "heldout.E012" not in ids(run_checks())
