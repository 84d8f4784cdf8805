"""The starter kit of a phase: a zip that is itself a valid `bundle` submission (predict.py
at its root) plus what a participant needs to test it locally before uploading:

- `predict.py`: a small, honest baseline (the mean of min-max-scaled numeric input columns)
  that follows the container contract;
- `sanity/`: the phase's public sanity inputs (never labels);
- `sample_predictions.csv`: the shape the platform expects;
- `check.py`: the platform's contract checks on a predictions file (standard library only);
- `test-locally.sh`: runs predict.py on sanity/ in the platform's runtime image, sandboxed as
  on the platform, then runs check.py: `sh test-locally.sh`;
- `README.md`.

The runtime image tag is derived from its recipe by `scoring.images`, above this app, so it
is looked up by name (as core.health does for the engine probe), not imported.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from django.template.loader import render_to_string
from django.utils.module_loading import import_string

from challenges.models import Phase
from core.storage import private_path

RUNTIME_TAG = "scoring.images.runtime_image_tag"
KIT_TEMPLATES = "challenges/starter_kit"
INDEX_FILES = ("features.csv", "manifest.csv")


def runtime_tag() -> str:
    return str(import_string(RUNTIME_TAG)())


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


def build_starter_kit(phase: Phase) -> bytes:
    """The kit as zip bytes (sanity sets are small public slices)."""
    inputs = sanity_inputs(phase)
    context = {"phase": phase, "challenge": phase.challenge, "image": runtime_tag(),
               "has_sanity": inputs is not None, "task": phase.challenge.task,
               "memory_mb": phase.limit_memory_mb, "cpus": phase.limit_cpus,
               "seconds": phase.limit_seconds}
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
