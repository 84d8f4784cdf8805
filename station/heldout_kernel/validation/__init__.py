"""Trusted validators for everything a participant uploads or a container writes.

Pure Python (no Django, no Docker) so the web process, the scoring worker and tests share one
implementation. Every exception message is shown to participants: it names the problem and at
most the first five offending rows or archive members, then "and N more".

Rows of a CSV are numbered like lines in an editor or rows in a spreadsheet: the header is
row 1, the first prediction is row 2.

Modules: ``shared`` (limits, message helpers, archive path rules), ``predictions`` (CSV),
``bundle`` (zip check and extraction), ``image`` (``docker save`` archives), ``kind`` (which
of the three a file is). Import from the package, not from the modules: only the names below
are its interface (tests patch private helpers where they live, e.g. ``bundle._check_totals``).
"""

from __future__ import annotations

from heldout_kernel.validation.bundle import check_bundle, extract_bundle
from heldout_kernel.validation.detections import MAX_PER_FILM, Detections, read_detections
from heldout_kernel.validation.image import check_image_archive, check_image_header
from heldout_kernel.validation.kind import detect_kind
from heldout_kernel.validation.predictions import (
    Predictions,
    check_predictions_upload,
    read_predictions,
)
from heldout_kernel.validation.shared import MAX_LISTED, UploadLimits

__all__ = [
    "MAX_LISTED",
    "MAX_PER_FILM",
    "Detections",
    "Predictions",
    "UploadLimits",
    "check_bundle",
    "check_image_archive",
    "check_image_header",
    "check_predictions_upload",
    "detect_kind",
    "extract_bundle",
    "read_detections",
    "read_predictions",
]
