"""`manage.py check --deploy` refuses DEBUG, and every `manage.py check` refuses hidden data in a
folder that is served by URL (or a served folder inside the hidden data)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.checks import run_checks

from core.checks import check_debug_off, check_private_root_not_served


def ids(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [message.id for message in messages]


@pytest.fixture
def served(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Static and media folders apart from the private root (the test's own)."""
    settings.STATIC_ROOT = tmp_path / "var" / "static"
    settings.STATICFILES_DIRS = [tmp_path / "src" / "static"]
    settings.MEDIA_ROOT = tmp_path / "var" / "media"
    return tmp_path


def test_it_refuses_debug_in_a_deployment(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True
    assert ids(check_debug_off()) == ["heldout.E001"]
    settings.DEBUG = False
    assert check_debug_off() == []


def test_it_accepts_a_private_root_apart_from_served_folders(served: Path) -> None:
    assert check_private_root_not_served() == []


@pytest.mark.parametrize("setting", ["STATIC_ROOT", "MEDIA_ROOT"])
def test_it_refuses_a_private_root_inside_a_served_folder(
    settings, served: Path, setting: str  # type: ignore[no-untyped-def]
) -> None:
    settings.PRIVATE_ROOT = Path(getattr(settings, setting)) / "private"
    [error] = check_private_root_not_served()
    assert error.id == "heldout.E002" and setting in error.msg


def test_it_refuses_a_served_folder_inside_the_private_root(
    settings, served: Path, private_root: Path  # type: ignore[no-untyped-def]
) -> None:
    settings.STATIC_ROOT = private_root / "static"
    assert ids(check_private_root_not_served()) == ["heldout.E002"]


def test_it_reads_prefixed_static_dirs(settings, served: Path) -> None:  # type: ignore[no-untyped-def]
    settings.STATICFILES_DIRS = [("extra", str(served / "extra"))]
    settings.PRIVATE_ROOT = served / "extra"
    assert ids(check_private_root_not_served()) == ["heldout.E002"]


def test_it_follows_symlinks(settings, served: Path, private_root: Path) -> None:  # type: ignore[no-untyped-def]
    link = served / "var" / "media"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(private_root / "public", target_is_directory=True)
    assert ids(check_private_root_not_served()) == ["heldout.E002"]


def test_the_deploy_checks_are_registered(settings, served: Path) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True
    settings.MEDIA_ROOT = Path(settings.PRIVATE_ROOT) / "media"
    # Outside a deployment only the served-folder check applies.
    assert {"heldout.E001", "heldout.E002"} & set(ids(run_checks())) == {"heldout.E002"}
    deploy = set(ids(run_checks(include_deployment_checks=True, tags=["security"])))
    assert {"heldout.E001", "heldout.E002"} <= deploy
