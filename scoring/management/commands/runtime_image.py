"""`manage.py runtime_image`: the runtime image on this engine (built when missing) and its
archive for participants' local tests (HELDOUT_RUNTIME_ARCHIVE_DIR, once per recipe). `make
runtime-image` runs it, so the demo and the tests start with the archive made; in production
run it on a worker host after each release (else the first visit to a Data tab asks a worker
for it and the page says "being prepared" until it is written)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from heldout_kernel import runtime_image as images
from heldout_kernel.sandbox.base import BackendError


class Command(BaseCommand):
    help = "Build the runtime image if missing and write its archive for participants."
    requires_system_checks: list[str] = []  # needs neither the database nor the site

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        try:
            archive = images.export_runtime_archive(
                directory=Path(settings.HELDOUT_RUNTIME_ARCHIVE_DIR))
        except BackendError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{archive.tag}\n{archive.path} ({archive.size / 1024**2:.0f} MB, "
                          f"{time.monotonic() - started:.0f} s)\nsha256 {archive.sha256}")
