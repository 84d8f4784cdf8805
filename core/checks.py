"""System checks of the platform's own settings (`manage.py check`; Django's `check --deploy`
adds the deployment ones). The container backend and the Docker engine are checked in
`scoring/checks.py`, next to the code that uses them.

IDs: heldout.E001 (DEBUG on in a deployment), heldout.E002 (hidden data where static or media
files are served from).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register


@register(Tags.security, deploy=True)
def check_debug_off(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # Django's own security.W018 only warns. DEBUG also permits the local-process backend
    # (no sandbox) and relaxes e-mail verification, so a deployment with it is an error.
    if not settings.DEBUG:
        return []
    return [Error("DEBUG is on.", hint="Set DJANGO_DEBUG=0 in production.",
                  id="heldout.E001")]


# Not deploy-only: hidden data served as a static file would leak in development too.
@register(Tags.security)
def check_private_root_not_served(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    private = _resolved(settings.PRIVATE_ROOT)
    return [
        Error(
            f"PRIVATE_ROOT ({private}) and {name} ({served}) overlap: hidden data would be "
            "served by URL, or served files written into the hidden data.",
            hint="Give HELDOUT_PRIVATE_ROOT its own folder, outside every static and media "
                 "folder (HELDOUT_VAR_DIR, HELDOUT_STATIC_ROOT).",
            id="heldout.E002",
        )
        for name, served in _served_folders()
        if _overlap(private, served)
    ]


def _served_folders() -> Iterator[tuple[str, Path]]:
    """Every folder whose files are reachable by URL: collected static files, the static
    source folders (served with WHITENOISE_USE_FINDERS) and media."""
    if settings.STATIC_ROOT:
        yield "STATIC_ROOT", _resolved(settings.STATIC_ROOT)
    for entry in _static_dirs(getattr(settings, "STATICFILES_DIRS", ())):
        yield "STATICFILES_DIRS", _resolved(entry)
    if settings.MEDIA_ROOT:
        yield "MEDIA_ROOT", _resolved(settings.MEDIA_ROOT)


def _static_dirs(entries: Iterable[Any]) -> Iterator[str | Path]:
    for entry in entries:
        # An entry is a folder or a (URL prefix, folder) pair.
        yield entry[1] if isinstance(entry, tuple | list) else entry


def _resolved(folder: str | Path) -> Path:
    # resolve() follows symlinks, so a link from static/ into the hidden data is caught.
    return Path(folder).expanduser().resolve()


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents
