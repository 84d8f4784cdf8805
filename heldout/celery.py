from __future__ import annotations

import functools
import os
from pathlib import Path

from celery import Celery
from celery.signals import before_task_publish, import_modules

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "heldout.settings")

app = Celery("heldout")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@functools.cache
def ensure_broker_folders() -> None:
    """The embedded filesystem broker needs its folders before anyone publishes or consumes."""
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key]).mkdir(parents=True, exist_ok=True)


@import_modules.connect  # type: ignore[untyped-decorator]
@before_task_publish.connect  # type: ignore[untyped-decorator]
def _before_broker_use(**kwargs: object) -> None:
    ensure_broker_folders()
