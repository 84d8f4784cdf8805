"""Build the two demo challenge bundles (challenge-as-code folders) from the shared real data.

A bundle is a folder: challenge.yaml, README.md, TERMS.md, public/, hidden/, sanity/ (see the
challenge importer for how it is read). Two recipes live here:

* ``readmission-30d``: UCI Diabetes 130-US hospitals, 30-day readmission, split by patient.
* ``mammography-screening``: mini-MIAS films, "is this film suspicious?", split by woman
  (left/right film pairs), plus a lesion-detection phase scored on the located lesions.

When the source files are absent the recipes fall back to clearly labelled synthetic stand-ins
with the same layout. Builds are deterministic (same inputs -> byte-identical files) and a
``.built`` stamp (hash of recipe, parameters, input files and this package's source) lets a
rebuild be skipped.

Pure Python on purpose (pandas, numpy, PIL; no Django): the importer, the demo command and the
tests all call it, and it must run on a machine that has only the data.

Modules: ``common`` (constants, writers, phase skeleton), ``stamp`` (recipe key, stamp,
atomic swap), ``readmission`` and ``mammography`` (the recipes), ``mias`` (Info.txt and PGM
reading), ``synthetic`` (stand-in data), ``documents`` (README, TERMS, data dictionary),
``cli`` (both bundles at once, ``python -m demo.bundles``). Import from the package,
not from the modules: only the names below are its interface.
"""

from __future__ import annotations

from demo.bundles.cli import build_demo_bundles, main
from demo.bundles.common import BuiltBundle, default_data_dir
from demo.bundles.mammography import build_mammography_bundle
from demo.bundles.mias import Film, Lesion, parse_info
from demo.bundles.readmission import build_readmission_bundle

__all__ = [
    "BuiltBundle",
    "Film",
    "Lesion",
    "build_demo_bundles",
    "build_mammography_bundle",
    "build_readmission_bundle",
    "default_data_dir",
    "main",
    "parse_info",
]
