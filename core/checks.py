"""System checks of the platform's own settings (`manage.py check`; Django's `check --deploy`
adds the deployment ones). The container backend and the Docker engine are checked in
`scoring/checks.py`, next to the code that uses them.

IDs: heldout.E001 (DEBUG on in a deployment), heldout.E002 (hidden data where static or media
files are served from), heldout.E003 (the audit key is weak, shared or readable by others),
heldout.E004 (audit checkpoints cannot be written).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

MIN_AUDIT_KEY = 32


@register(Tags.security, deploy=True)
def check_debug_off(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # Django's own security.W018 only warns. DEBUG also permits the local-process backend
    # (no sandbox) and relaxes e-mail verification, so a deployment with it is an error.
    if not settings.DEBUG:
        return []
    return [Error("DEBUG is on.", hint="Set DJANGO_DEBUG=0 in production.",
                  id="heldout.E001")]


@register(Tags.security, deploy=True)
def check_audit_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # Settings already refuse to start without a key when DEBUG is off; this also catches a
    # key file others may read (whoever reads it can sign a rewritten trail).
    key = str(getattr(settings, "HELDOUT_AUDIT_KEY", "") or "")
    problem = ""
    if len(key) < MIN_AUDIT_KEY:
        problem = f"HELDOUT_AUDIT_KEY is missing or shorter than {MIN_AUDIT_KEY} characters."
    elif key == settings.SECRET_KEY:
        problem = "HELDOUT_AUDIT_KEY is the SECRET_KEY: rotating sessions would break the trail."
    elif _readable_by_others(getattr(settings, "HELDOUT_AUDIT_KEY_FILE", None)):
        problem = f"HELDOUT_AUDIT_KEY_FILE ({settings.HELDOUT_AUDIT_KEY_FILE}) is readable by "
        problem += "other users."
    if not problem:
        return []
    return [Error(problem, hint="Give the audit trail its own key of 32+ random characters "
                  "(secrets.token_urlsafe(32)), in the environment or a file of mode 0600.",
                  id="heldout.E003")]


def _readable_by_others(path: str | None) -> bool:
    return path is not None and os.path.exists(path) and bool(os.stat(path).st_mode & 0o077)


@register(Tags.security, deploy=True)
def check_audit_checkpoints_writable(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    # A checkpoint that cannot be written fails only inside beat's task: say so at start-up.
    path = Path(settings.HELDOUT_AUDIT_CHECKPOINT_FILE)
    if _appendable(path):
        return []
    return [Error(f"The audit checkpoint file {path} cannot be written.",
                  hint="Point HELDOUT_AUDIT_CHECKPOINT_FILE at a writable place outside the "
                       "database (it defaults to $HELDOUT_VAR_DIR/audit-checkpoints.jsonl).",
                  id="heldout.E004")]


def _appendable(path: Path) -> bool:
    if path.exists():
        return path.is_file() and os.access(path, os.W_OK)
    folder = next(parent for parent in path.parents if parent.exists())  # "/" exists
    return folder.is_dir() and os.access(folder, os.W_OK)


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
