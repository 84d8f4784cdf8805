"""The `.built` stamp and the all-or-nothing swap that every recipe builds through.

A recipe computes a key from its parameters and input-file hashes (`_recipe_key` adds the
recipe version and the source of this whole package, so editing any module of it triggers a
rebuild), then calls `_build` with a writer. `_build` skips the work when the output folder
already carries a stamp with that key and exactly the files the stamp lists; otherwise it
writes into a hidden staging folder next to the target and replaces the target in one
`os.replace`, so a reader never sees a half-written bundle and a failed build leaves the old
one in place. A non-empty folder that is not a bundle is never deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demo.bundles.common import (
    RECIPE_VERSION,
    STAMP_NAME,
    BuiltBundle,
    _sha256_file,
    _write_text,
)

logger = logging.getLogger(__name__)


def _code_digest() -> str:
    """Hash of every module of this package, by name and content, in sorted order.

    Only *.py files: __pycache__ bytes differ between Python versions and runs.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(f"{path.name}\x1f{_sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _recipe_key(parts: dict[str, Any]) -> str:
    recipe = {"version": RECIPE_VERSION, "code": _code_digest(), **parts}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _valid_stamp(out_dir: Path, key: str) -> dict[str, Any] | None:
    """The stamp if `out_dir` holds a complete bundle built from the same recipe, else None."""
    try:
        stamp = json.loads((out_dir / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("key") != key:
        return None
    files = stamp.get("files", {})
    for rel, entry in files.items():
        path = out_dir / rel
        if not path.is_file() or path.stat().st_size != entry["size"]:
            return None
    present = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}
    return stamp if present - {STAMP_NAME} == set(files) else None


def _write_stamp(
    root: Path, *, key: str, slug: str, synthetic: bool, counts: tuple[int, int]
) -> None:
    files = {
        p.relative_to(root).as_posix(): {"size": p.stat().st_size, "sha256": _sha256_file(p)}
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    stamp = {
        "slug": slug,
        "key": key,
        "recipe_version": RECIPE_VERSION,
        "synthetic": synthetic,
        "n_train": counts[0],
        "n_test": counts[1],
        "files": files,
    }
    _write_text(root / STAMP_NAME, json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def _refuse_foreign(out_dir: Path) -> None:
    # Building replaces out_dir wholesale, so never delete a folder that is not one of ours.
    if out_dir.exists() and any(out_dir.iterdir()):
        if not ((out_dir / STAMP_NAME).is_file() or (out_dir / "challenge.yaml").is_file()):
            raise FileExistsError(
                f"{out_dir} exists and does not look like a bundle; not replacing it"
            )


def _build(
    out_dir: Path,
    *,
    slug: str,
    synthetic: bool,
    key: str,
    force: bool,
    write: Callable[[Path], tuple[int, int]],
) -> BuiltBundle:
    out_dir = Path(out_dir)
    stamp = None if force else _valid_stamp(out_dir, key)
    if stamp is not None:
        logger.info("%s: up to date in %s, not rebuilt", slug, out_dir)
        return BuiltBundle(out_dir, slug, synthetic, stamp["n_train"], stamp["n_test"])
    _refuse_foreign(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        counts = write(staging)
        _write_stamp(staging, key=key, slug=slug, synthetic=synthetic, counts=counts)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("%s: built in %s (%d train, %d test)", slug, out_dir, *counts)
    return BuiltBundle(out_dir, slug, synthetic, *counts)
