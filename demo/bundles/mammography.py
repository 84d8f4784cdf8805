"""The `mammography-screening` recipe: mini-MIAS films, "is this film suspicious?".

A film is positive when its ground truth lists any abnormality. The split keeps both films
of a woman (a left/right pair) on the same side and is stratified by the number of abnormal
films per pair; the held-out half gets a public/private split the same way. Films are written
as grayscale PNGs (optionally downscaled for fast tests), lesion centres are converted to
output pixels with the origin top-left (public/, hidden/ and sanity/ each get a lesions.csv
for the detection phase), and the training images are also shipped as a reproducible zip.
A half-present MIAS folder is an error; an absent one means synthetic films.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from demo.bundles.common import (
    DEFAULT_SEED,
    SYNTHETIC_PREFIX,
    BuiltBundle,
    _phase,
    _present,
    _sha256_file,
    _unit,
    _write_challenge_yaml,
    _write_csv,
    _write_text,
    _write_zip,
)
from demo.bundles.documents import _mammography_readme, _mammography_terms
from demo.bundles.mias import MIAS_PX, Film, _load_pgm, parse_info
from demo.bundles.stamp import _build, _recipe_key
from demo.bundles.synthetic import _synthetic_film_image, _synthetic_films

MIAS_DIR = Path("mini_mias")


@dataclass(frozen=True)
class _FilmSplit:
    train: list[Film]
    test: list[Film]
    sanity: list[Film]
    public_test: frozenset[str]


def _take_pairs(pairs: dict[int, list[Film]], *, salt: str, fraction: float) -> set[int]:
    """A seeded, stratified (by abnormal films per pair) share of the pairs."""
    chosen: set[int] = set()
    for stratum in (0, 1, 2):
        members = sorted(
            (p for p, films in pairs.items() if sum(f.label for f in films) == stratum),
            key=lambda p: _unit(p, salt),
        )
        chosen.update(members[: round(fraction * len(members))])
    return chosen


def _split_films(films: list[Film], *, seed: int) -> _FilmSplit:
    pairs: dict[int, list[Film]] = {}
    for film in films:
        pairs.setdefault(film.pair, []).append(film)
    test_pairs = _take_pairs(pairs, salt=f"{seed}:mias-test", fraction=0.3)
    train_pairs = {p: fs for p, fs in pairs.items() if p not in test_pairs}
    public_pairs = _take_pairs(
        {p: pairs[p] for p in test_pairs}, salt=f"{seed}:mias-split", fraction=0.5
    )
    ordered = sorted(train_pairs, key=lambda p: _unit(p, f"{seed}:mias-sanity"))
    abnormal = [p for p in ordered if any(f.label for f in train_pairs[p])]
    normal = [p for p in ordered if p not in abnormal]
    sanity_pairs = set(abnormal[:3] + normal[:2])
    train = [f for f in films if f.pair not in test_pairs]
    test = [f for f in films if f.pair in test_pairs]
    if {f.pair for f in train} & {f.pair for f in test}:
        raise RuntimeError("mammography split separates a left/right pair")
    return _FilmSplit(
        train=train,
        test=test,
        sanity=[f for f in train if f.pair in sanity_pairs],
        public_test=frozenset(f.id for f in test if f.pair in public_pairs),
    )


def _lesion_rows(films: Iterable[Film], scale: float, size: int) -> pd.DataFrame:
    """Located lesions only, in output pixels with the origin TOP-LEFT.

    The importer wants every centre inside the image and every radius > 0. mini-MIAS (1995
    PEIPA release) meets both (centres x 127..793 and y 125..994 on the 1024 grid, radii >= 3),
    and so do the synthetic films, so the guards below change nothing today; they keep another
    release from breaking the import: a centre past the frame (Info.txt y = 0 would map to
    row 1024) is clipped onto the last source pixel, and a radius of 0 drops the lesion (its
    film stays label 1, like the films whose abnormality has no coordinates).
    """
    rows = []
    for film in films:
        for les in film.lesions:
            xyr = les.top_left(scale)
            if xyr is None or xyr[2] <= 0:
                continue
            x, y = (min(max(v, 0.0), size - scale) for v in xyr[:2])
            rows.append((film.id, _num(x), _num(y), _num(xyr[2]), les.cls, les.severity))
    return pd.DataFrame(rows, columns=["id", "x", "y", "radius", "class", "severity"])


def _write_lesions(root: Path, split: _FilmSplit, *, scale: float, size: int) -> dict[str, int]:
    """lesions.csv of each lane (the sanity films are training films: public anyway)."""
    counts = {}
    for lane, films in (("public", split.train), ("hidden", split.test), ("sanity", split.sanity)):
        rows = _lesion_rows(films, scale, size)
        _write_csv(root / lane / "lesions.csv", rows)
        counts[lane] = len(rows)
    return counts


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 3)


def _film_table(
    films: Sequence[Film], columns: Sequence[str], public: frozenset[str] = frozenset()
) -> pd.DataFrame:
    values: dict[str, Callable[[Film], object]] = {
        "id": lambda f: f.id,
        "label": lambda f: f.label,
        "tissue": lambda f: f.tissue,
        "severity": lambda f: f.severity,
        "n_lesions": lambda f: len(f.lesions),
        "abnormality": lambda f: ";".join(sorted({les.cls for les in f.lesions})) or "NORM",
        "split": lambda f: "public" if f.id in public else "private",
    }
    return pd.DataFrame([{c: values[c](f) for c in columns} for f in films], columns=list(columns))


def _save_images(
    films: Sequence[Film], folder: Path, load: Callable[[Film], Image.Image], size: int
) -> None:
    folder.mkdir(parents=True, exist_ok=True)

    def one(film: Film) -> None:
        image = load(film).convert("L")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.LANCZOS)
        image.save(folder / f"{film.id}.png", format="PNG")

    # lzma and the PNG encoder release the GIL, so two threads use both cores.
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        list(pool.map(one, films))


def _write_image_set(root: Path, films: Sequence[Film], images_from: Path) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for film in films:
        shutil.copyfile(images_from / f"{film.id}.png", root / "images" / f"{film.id}.png")
    _write_csv(root / "manifest.csv", _film_table(films, ["id", "tissue"]))


def build_mammography_bundle(
    out_dir: Path,
    *,
    data_dir: Path | None,
    seed: int = DEFAULT_SEED,
    image_size: int = MIAS_PX,
    force: bool = False,
) -> BuiltBundle:
    """Screening bundle; `image_size` < 1024 writes smaller PNGs (for fast tests)."""
    if not 16 <= image_size <= MIAS_PX:
        raise ValueError("image_size must be between 16 and 1024")
    mias = _present(data_dir, MIAS_DIR / "Info.txt")
    mias = mias.parent if mias else None
    films = parse_info(mias.joinpath("Info.txt").read_text(encoding="latin-1")) if mias else None
    if mias and films:
        missing = [f.id for f in films if not (mias / "pgm_xz" / f"{f.id}.pgm.xz").is_file()]
        if missing:  # a half-present data set is an error, not a reason to go synthetic
            raise FileNotFoundError(f"{mias}/pgm_xz lacks {len(missing)} films, e.g. {missing[:3]}")
        sources = sorted(
            [
                mias / "Info.txt",
                mias / "Licence.txt",
                *(mias / "pgm_xz" / f"{f.id}.pgm.xz" for f in films),
            ]
        )
        inputs = {p.relative_to(mias).as_posix(): _sha256_file(p) for p in sources if p.is_file()}
    else:
        films, inputs = _synthetic_films(seed), {"synthetic": "synthetic"}
    size = image_size if mias else min(image_size, 256)
    key = _recipe_key(
        {"slug": "mammography-screening", "seed": seed, "size": size, "inputs": inputs}
    )
    load = (
        (lambda f: _load_pgm(mias / "pgm_xz" / f"{f.id}.pgm.xz"))
        if mias
        else _synthetic_film_image(seed)
    )

    def write(root: Path) -> tuple[int, int]:
        return _write_mammography(root, films, load=load, size=size, seed=seed, licence_dir=mias)

    return _build(
        out_dir,
        slug="mammography-screening",
        synthetic=mias is None,
        key=key,
        force=force,
        write=write,
    )


def _write_mammography(
    root: Path,
    films: list[Film],
    *,
    load: Callable[[Film], Image.Image],
    size: int,
    seed: int,
    licence_dir: Path | None,
) -> tuple[int, int]:
    split = _split_films(films, seed=seed)
    train_images = root / "public/train/images"
    _save_images(split.train, train_images, load, size)
    _save_images(split.test, root / "hidden/inputs/images", load, size)
    _write_csv(root / "hidden/inputs/manifest.csv", _film_table(split.test, ["id", "tissue"]))
    _write_image_set(root / "sanity/inputs", split.sanity, train_images)
    label_columns = ["id", "label", "tissue", "severity", "abnormality", "n_lesions"]
    _write_csv(root / "public/train/labels.csv", _film_table(split.train, label_columns))
    _write_csv(
        root / "hidden/labels.csv",
        _film_table(split.test, ["id", "label", "split", "tissue"], split.public_test),
    )
    _write_csv(root / "sanity/labels.csv", _film_table(split.sanity, ["id", "label"]))
    n_lesions = _write_lesions(root, split, scale=size / MIAS_PX, size=size)
    members = [(f"images/{f.id}.png", train_images / f"{f.id}.png") for f in split.train]
    public_files = ["public/train/labels.csv", "public/lesions.csv", "public/train_images.zip"]
    if licence_dir is not None and (licence_dir / "Licence.txt").is_file():
        shutil.copyfile(licence_dir / "Licence.txt", root / "public/MIAS_Licence.txt")
        members.append(("MIAS_Licence.txt", root / "public/MIAS_Licence.txt"))
        public_files.append("public/MIAS_Licence.txt")
    _write_zip(root / "public/train_images.zip", members)
    synthetic = licence_dir is None
    stats = {
        "n_train": len(split.train),
        "n_test": len(split.test),
        "size": size,
        "pos_train": sum(f.label for f in split.train),
        "pos_test": sum(f.label for f in split.test),
        "n_sanity": len(split.sanity),
        "pairs_train": len({f.pair for f in split.train}),
        "pairs_test": len({f.pair for f in split.test}),
        "n_lesions_train": n_lesions["public"],
        "n_lesions_test": n_lesions["hidden"],
    }
    _write_text(root / "README.md", _mammography_readme(stats, synthetic=synthetic))
    _write_text(root / "TERMS.md", _mammography_terms(synthetic=synthetic))
    meta = {
        "slug": "mammography-screening",
        "title": (SYNTHETIC_PREFIX if synthetic else "")
        + "Screening mammography: is this film suspicious?",
        "summary": "Score each mammogram for any abnormality, and locate the lesions (mini-MIAS).",
        "task": "binary",
    }
    _write_challenge_yaml(root, meta=meta, public_files=public_files, phases=_mammography_phases())
    return len(split.train), len(split.test)


def _mammography_phases() -> list[dict[str, Any]]:
    """The screening board and, over the same window, the lesion-detection board.

    The challenge's task stays `binary`; the detection phase says `task: detection` itself
    and scores `/output/detections.csv` against `lesions.csv` (FROC), with the film-level
    metrics from the same run as secondaries.
    """
    def ladder() -> dict[str, Any]:  # a fresh dict each: a shared one becomes a YAML alias
        return {"policy": "ladder", "eta": 0.01}

    return [
        _phase(secondary=["auprc", "sensitivity", "specificity"], seconds=900, release=ladder()),
        _phase(
            slug="detection", title="Lesion detection", task="detection", primary="froc",
            secondary=["auroc", "auprc"], seconds=900, release=ladder(), lesions=True,
        ),
    ]
