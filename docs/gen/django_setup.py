"""Django, set up for reading the code only: the generators need the apps' classes and the
URL configuration, never a database or a broker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def setup() -> None:
    """Set Django up unless it is already (pytest-django's test settings, a shell).

    Development settings (DJANGO_DEBUG=1) need no secret and default to SQLite, which is
    not opened unless a query runs; the generators run none."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django
    from django.apps import apps

    if not apps.ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "heldout.settings")
        os.environ.setdefault("DJANGO_DEBUG", "1")
        django.setup()
    # Every view module and so every app's exceptions: the error codes are collected from
    # the DomainError subclasses that have been imported.
    import heldout.urls  # noqa: F401
