"""Build the two demo challenge bundles (challenge-as-code folders) from the shared real data.
This module builds both bundles side by side under one root, for `demo.run`, the tests
and the command line: `python -m demo.bundles OUT_ROOT [--data-dir DIR] [--synthetic]
[--force]` (see `__main__.py`); the first line of this docstring is the CLI's description.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from demo.bundles.common import BuiltBundle, default_data_dir
from demo.bundles.mammography import build_mammography_bundle
from demo.bundles.readmission import build_readmission_bundle


def build_demo_bundles(
    out_root: Path, *, data_dir: Path | None, force: bool = False
) -> list[BuiltBundle]:
    out_root = Path(out_root)
    return [
        build_readmission_bundle(out_root / "readmission-30d", data_dir=data_dir, force=force),
        build_mammography_bundle(
            out_root / "mammography-screening", data_dir=data_dir, force=force
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo.bundles", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "out_root", type=Path, help="folder that receives one bundle folder per challenge"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="shared data folder (default: $HELDOUT_DATA_DIR or ../shared/data)",
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="ignore real data, build stand-ins"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the stamp matches")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    data_dir = None if args.synthetic else (args.data_dir or default_data_dir())
    print(f"data: {data_dir or 'none (synthetic stand-ins)'}", flush=True)
    builders: list[Callable[[], BuiltBundle]] = [
        lambda: build_readmission_bundle(
            args.out_root / "readmission-30d", data_dir=data_dir, force=args.force
        ),
        lambda: build_mammography_bundle(
            args.out_root / "mammography-screening", data_dir=data_dir, force=args.force
        ),
    ]
    for build in builders:
        started = time.perf_counter()
        bundle = build()
        kind = "SYNTHETIC" if bundle.synthetic else "real"
        print(
            f"{bundle.slug}: {kind} data, {bundle.n_train} train / {bundle.n_test} test "
            f"-> {bundle.path} ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    return 0
