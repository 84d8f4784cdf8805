"""The starter kit of a phase: a zip that is itself a valid `bundle` submission (predict.py
at its root) plus what a participant needs to test it locally before uploading:

- `predict.py`: a small, honest baseline (the mean of min-max-scaled numeric input columns)
  that follows the container contract;
- `sanity/`: the phase's public sanity inputs (never labels);
- `sample_predictions.csv`: the shape the platform expects;
- `check.py`: the platform's contract checks on a predictions file (standard library only);
- `test-locally.sh`: runs predict.py on sanity/ in the platform's runtime image, sandboxed as
  on the platform, then runs check.py: `sh test-locally.sh`. No registry serves that image:
  when the participant's engine lacks it, the script loads the site's archive of it
  (`heldout-runtime-<hash>.tar.gz`, from the kit's folder or downloaded with the personal
  link written into the kit) after checking its sha256;
- `README.md`.

The runtime image tag and its archive come from `heldout_kernel.runtime_image`, above this app, so
they are looked up by name (as core.health does for the engine probe), not imported. A worker writes
the archive (it needs the engine, and minutes): a page that finds it missing queues that work and
says the archive is being prepared.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.module_loading import import_string

from challenges.models import Phase
from core import dispatch
from core.storage import private_path

RUNTIME_TAG = "heldout_kernel.runtime_image.runtime_image_tag"
RUNTIME_ARCHIVE = "heldout_kernel.runtime_image.runtime_archive"
ARCHIVE_NAME = "heldout_kernel.runtime_image.archive_name"
EXPORT_TASK = "scoring.tasks.export_runtime_image"
# While the archive is missing, pages ask a worker for it at most this often.
EXPORT_REQUEST_SECONDS = 600
# The personal download link in a kit (test-locally.sh follows it without a session).
DOWNLOAD_SALT = "heldout.runtime-image"
DOWNLOAD_LINK_DAYS = 30
KIT_TEMPLATES = "challenges/starter_kit"
INDEX_FILES = ("features.csv", "manifest.csv")


def runtime_tag() -> str:
    return str(import_string(RUNTIME_TAG)())


def runtime_archive_name() -> str:
    """`heldout-runtime-<hash>.tar.gz`: the file `docker load` restores the image from."""
    return str(import_string(ARCHIVE_NAME)(runtime_tag()))


def runtime_archive() -> Any:
    """The finished archive of the runtime image (heldout_kernel.runtime_image.RuntimeArchive: tag,
    path, sha256, size), or None while it is being prepared. Never builds."""
    return import_string(RUNTIME_ARCHIVE)(
        directory=Path(settings.HELDOUT_RUNTIME_ARCHIVE_DIR), tag=runtime_tag())


def request_runtime_archive() -> None:
    """Ask a worker to write the archive (a web request never waits the minutes it takes);
    pages viewed meanwhile ask once per EXPORT_REQUEST_SECONDS, not once each."""
    if cache.add(f"heldout:runtime-archive-requested:{runtime_tag()}", True,
                 EXPORT_REQUEST_SECONDS):
        dispatch.send(EXPORT_TASK)


def download_key(*, user: Any) -> str:
    return str(signing.TimestampSigner(salt=DOWNLOAD_SALT).sign(str(user.pk)))


def download_key_user(key: str) -> Any:
    """The active user a kit's download link was made for, or None (forged or expired)."""
    try:
        pk = signing.TimestampSigner(salt=DOWNLOAD_SALT).unsign(
            key, max_age=timedelta(days=DOWNLOAD_LINK_DAYS))
    except signing.BadSignature:
        return None
    return get_user_model().objects.filter(pk=pk, is_active=True).first()


@dataclass(frozen=True)
class RuntimeDownload:
    """Where a kit's test-locally.sh finds the runtime image when the engine lacks it."""

    url: str  # the archive, with the personal key
    checksum_url: str
    expires: datetime


def runtime_download(*, user: Any, archive_url: str) -> RuntimeDownload:
    """`archive_url`: the absolute URL of the archive's download view."""
    query = f"?key={download_key(user=user)}"
    return RuntimeDownload(url=archive_url + query, checksum_url=f"{archive_url}.sha256{query}",
                           expires=timezone.now() + timedelta(days=DOWNLOAD_LINK_DAYS))


def sanity_inputs(phase: Phase) -> Path | None:
    """The public sanity inputs of the phase (never hidden inputs, never labels)."""
    sanity = phase.sanity_set
    if sanity is None or not (sanity.is_public or sanity.inputs_public):
        return None
    folder = private_path(sanity.inputs_dir)
    return folder if folder.is_dir() else None


def _ids(inputs: Path) -> list[str]:
    index = next((inputs / name for name in INDEX_FILES if (inputs / name).is_file()), None)
    if index is None:
        return []
    with index.open(newline="", encoding="utf-8-sig") as handle:
        return [row["id"] for row in csv.DictReader(handle)]


def _sample(ids: list[str]) -> str:
    return "id,score\n" + "".join(f"{ident},0.5\n" for ident in ids)


def kit_name(phase: Phase) -> str:
    return f"{phase.challenge.slug}-{phase.slug}-starter-kit.zip"


def _runtime_context(download: RuntimeDownload | None) -> dict[str, object]:
    archive = runtime_archive()
    return {"image": runtime_tag(), "archive_name": runtime_archive_name(),
            # empty while the archive is being prepared: the script fetches the checksum
            "archive_sha256": archive.sha256 if archive else "",
            "archive_size": f"{archive.size / 1024**2:.0f} MB" if archive else "over 100 MB",
            "download": download}


def build_starter_kit(phase: Phase, *, download: RuntimeDownload | None = None,
                      data_url: str = "") -> bytes:
    """The kit as zip bytes (sanity sets are small public slices). `download`: the personal
    link to the runtime image archive; `data_url`: the challenge's Data tab."""
    inputs = sanity_inputs(phase)
    context = {"phase": phase, "challenge": phase.challenge,
               "has_sanity": inputs is not None, "task": phase.challenge.task,
               "memory_mb": phase.limit_memory_mb, "cpus": phase.limit_cpus,
               "seconds": phase.limit_seconds, "data_url": data_url,
               **_runtime_context(download)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("predict.py", "check.py", "README.md", "test-locally.sh"):
            text = render_to_string(f"{KIT_TEMPLATES}/{name}.txt", context)
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".sh") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
        if inputs is not None:
            for path in sorted(inputs.rglob("*")):
                if path.is_file():
                    archive.write(path, f"sanity/{path.relative_to(inputs).as_posix()}")
            archive.writestr("sample_predictions.csv", _sample(_ids(inputs)))
    return buffer.getvalue()
