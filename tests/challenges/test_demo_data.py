"""The demo challenge bundles, built from the real shared data.

The real data must be present (../shared/data or HELDOUT_DATA_DIR): these tests fail, never
skip, without it. Expected facts are restated here from the data's PROVENANCE.md rather than
taken from demo.bundles, so that a wrong recipe cannot agree with itself.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from demo.bundles import (
    BuiltBundle,
    build_demo_bundles,
    build_mammography_bundle,
    build_readmission_bundle,
    default_data_dir,
    parse_info,
)

N_TEST = 3000
SIZE = 256
DEATH_OR_HOSPICE = {"11", "13", "14", "19", "20", "21"}
LABEL_LIKE = {"label", "readmitted", "patient_nbr", "encounter_id", "severity", "split"}
PHASE_KEYS = {
    "slug", "title", "opens", "closes", "submission_kinds", "quota", "metrics", "evaluation",
    "sanity", "limits", "scores", "show_logs", "score_release",
}  # fmt: skip


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def mtimes(root: Path) -> dict[str, int]:
    return {p.as_posix(): p.stat().st_mtime_ns for p in root.rglob("*")}


def pair_of(film_id: str) -> int:
    return (int(film_id[3:]) + 1) // 2  # mdb001+mdb002 belong to one woman


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = default_data_dir()
    assert found is not None, "real data missing: provide ../shared/data or HELDOUT_DATA_DIR"
    for needed in ("diabetes_130_us_hospitals/diabetic_data.csv.gz", "mini_mias/Info.txt"):
        assert (found / needed).is_file(), f"real data missing: {found / needed}"
    return found


@pytest.fixture(scope="session")
def raw(data_dir: Path) -> pd.DataFrame:
    path = data_dir / "diabetes_130_us_hospitals/diabetic_data.csv.gz"
    return read(path).set_index("encounter_id")


@pytest.fixture(scope="session")
def readmission(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> BuiltBundle:
    out = tmp_path_factory.mktemp("real") / "readmission-30d"
    return build_readmission_bundle(out, data_dir=data_dir, n_test=N_TEST)


@pytest.fixture(scope="session")
def mammography(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> BuiltBundle:
    out = tmp_path_factory.mktemp("real") / "mammography-screening"
    return build_mammography_bundle(out, data_dir=data_dir, image_size=SIZE)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> list[BuiltBundle]:
    return build_demo_bundles(tmp_path_factory.mktemp("synthetic"), data_dir=None)


# --------------------------------------------------------------------------- both bundles


@pytest.mark.parametrize("name", ["readmission", "mammography"])
def test_it_writes_a_complete_challenge_yaml(name: str, request: pytest.FixtureRequest) -> None:
    bundle: BuiltBundle = request.getfixturevalue(name)
    config = yaml.safe_load((bundle.path / "challenge.yaml").read_text())
    assert config["slug"] == bundle.slug and config["task"] == "binary"
    assert not config["title"].startswith("[SYNTHETIC]") and not bundle.synthetic
    for key in ("description", "terms", *config["public_files"]):
        assert (bundle.path / config.get(key, key)).is_file(), key
    phase, *others = config["phases"]
    assert [p["slug"] for p in others] == ([] if name == "readmission" else ["detection"])
    assert set(phase) == PHASE_KEYS and phase["opens"] == "2026-01-01T00:00:00Z"
    assert (
        phase["submission_kinds"] == ["bundle", "image"] and phase["metrics"]["primary"] == "auroc"
    )
    for item in config["phases"]:
        for lane in ("evaluation", "sanity"):
            assert (bundle.path / item[lane]["inputs"]).is_dir()
            for table in ("labels", "lesions"):
                assert table not in item[lane] or (bundle.path / item[lane][table]).is_file()


@pytest.mark.parametrize("name", ["readmission", "mammography"])
def test_it_keeps_labels_out_of_every_inputs_folder(
    name: str, request: pytest.FixtureRequest
) -> None:
    bundle: BuiltBundle = request.getfixturevalue(name)
    tables = list(bundle.path.glob("*/inputs/*.csv"))
    assert {p.parent.parent.name for p in tables} == {"hidden", "sanity"}
    for table in tables:
        header = read(table).columns
        assert header[0] == "id" and not LABEL_LIKE & set(header), table
    for inputs in bundle.path.glob("*/inputs"):
        assert {p.name for p in inputs.iterdir()} <= {"features.csv", "manifest.csv", "images"}


@pytest.mark.parametrize("name", ["readmission", "mammography"])
def test_it_lines_up_label_ids_with_input_ids(name: str, request: pytest.FixtureRequest) -> None:
    bundle: BuiltBundle = request.getfixturevalue(name)
    for lane in ("hidden", "sanity"):
        labels = read(bundle.path / lane / "labels.csv")
        (inputs,) = (bundle.path / lane / "inputs").glob("*.csv")
        ids = read(inputs)["id"]
        assert list(labels.columns[:2]) == ["id", "label"] and set(labels["label"]) <= {"0", "1"}
        assert ids.is_unique and list(labels["id"]) == list(ids)
        images = bundle.path / lane / "inputs/images"
        if images.exists():
            assert sorted(p.name for p in images.iterdir()) == sorted(f"{i}.png" for i in ids)


# --------------------------------------------------------------------------- readmission


def test_it_splits_readmission_by_patient(readmission: BuiltBundle, raw: pd.DataFrame) -> None:
    train = read(readmission.path / "public/train.csv")
    test = read(readmission.path / "hidden/labels.csv")
    train_patients = set(raw.loc[train["id"], "patient_nbr"])
    test_patients = set(raw.loc[test["id"], "patient_nbr"])
    assert train_patients and test_patients and not train_patients & test_patients
    kept = raw[~raw["discharge_disposition_id"].isin(DEATH_OR_HOSPICE)]
    assert len(train_patients) / kept["patient_nbr"].nunique() == pytest.approx(0.75, abs=0.02)
    # every surviving encounter of a training patient is in train, none of a test patient
    assert set(kept.index[kept["patient_nbr"].isin(train_patients)]) == set(train["id"])


def test_it_removes_deaths_and_hospice(readmission: BuiltBundle, raw: pd.DataFrame) -> None:
    for table in ("public/train.csv", "hidden/labels.csv", "sanity/labels.csv"):
        ids = read(readmission.path / table)["id"]
        assert not raw.loc[ids, "discharge_disposition_id"].isin(DEATH_OR_HOSPICE).any(), table
    train = read(readmission.path / "public/train.csv")
    assert not train["discharge_disposition_id"].isin(DEATH_OR_HOSPICE).any()


def test_it_labels_readmission_within_30_days(readmission: BuiltBundle, raw: pd.DataFrame) -> None:
    for table in ("public/train.csv", "hidden/labels.csv", "sanity/labels.csv"):
        frame = read(readmission.path / table)
        expected = (raw.loc[frame["id"], "readmitted"] == "<30").astype(int).astype(str)
        assert list(frame["label"]) == list(expected), table
    rate = read(readmission.path / "public/train.csv")["label"].astype(int).mean()
    assert 0.10 < rate < 0.125  # 11.2% before removing deaths (PROVENANCE.md)


def test_it_keeps_features_raw_apart_from_missing_codes(
    readmission: BuiltBundle, raw: pd.DataFrame
) -> None:
    features = read(readmission.path / "hidden/inputs/features.csv").set_index("id")
    source = raw.loc[features.index, features.columns].replace("?", "")
    assert features.equals(source)
    train = read(readmission.path / "public/train.csv")
    assert list(train.columns) == ["id", *features.columns, "label"]
    assert "None" in set(train["max_glu_serum"]) and not (train == "?").any().any()


def test_it_subsamples_the_test_set_and_splits_it_by_patient(
    readmission: BuiltBundle, raw: pd.DataFrame
) -> None:
    labels = read(readmission.path / "hidden/labels.csv")
    assert readmission.n_test == len(labels) and 0.9 * N_TEST < len(labels) <= N_TEST
    assert list(labels.columns) == ["id", "label", "split", "sex", "age_band", "race"]
    labels["patient"] = raw.loc[labels["id"], "patient_nbr"].to_numpy()
    assert (labels.groupby("patient")["split"].nunique() == 1).all()
    assert (labels["split"] == "public").mean() == pytest.approx(0.5, abs=0.05)
    assert list(labels["age_band"]) == list(raw.loc[labels["id"], "age"])
    assert set(labels["sex"]) <= {"Female", "Male", "Unknown"}


def test_it_takes_the_sanity_set_from_training_patients(readmission: BuiltBundle) -> None:
    sanity = read(readmission.path / "sanity/labels.csv")
    train = read(readmission.path / "public/train.csv")
    assert 180 <= len(sanity) <= 240 and set(sanity["id"]) <= set(train["id"])
    assert 0 < sanity["label"].astype(int).sum() < len(sanity)


def test_it_documents_readmission_provenance(readmission: BuiltBundle) -> None:
    readme = (readmission.path / "README.md").read_text()
    dictionary = (readmission.path / "public/data_dictionary.md").read_text()
    for text in (readme, dictionary):
        assert "Strack" in text and "CC BY 4.0" in text and "SYNTHETIC" not in text
    assert "/output/predictions.csv" in readme and "features.csv" in readme
    assert "empty cell" in dictionary and "Expired" in dictionary  # ID code tables included
    assert "re-identify" in (readmission.path / "TERMS.md").read_text()


# --------------------------------------------------------------------------- mammography


def test_it_parses_info_txt(data_dir: Path) -> None:
    films = {f.id: f for f in parse_info((data_dir / "mini_mias/Info.txt").read_text())}
    assert len(films) == 322 and sum(f.label for f in films.values()) == 115
    assert sum(len(f.lesions) for f in films.values()) == 123
    assert films["mdb003"].lesions == () and films["mdb003"].tissue == "D"
    assert len(films["mdb005"].lesions) == 2
    assert films["mdb144"].severity == "M"  # one benign and one malignant lesion
    for unlocated in ("mdb059", "mdb216", "mdb233", "mdb245"):
        assert films[unlocated].label == 1 and films[unlocated].lesions[0].x is None


def test_it_never_separates_a_left_right_pair(mammography: BuiltBundle) -> None:
    train = read(mammography.path / "public/train/labels.csv")["id"]
    test = read(mammography.path / "hidden/labels.csv")["id"]
    assert len(train) + len(test) == 322 and not set(train) & set(test)
    assert not {pair_of(i) for i in train} & {pair_of(i) for i in test}
    assert len(test) / 322 == pytest.approx(0.3, abs=0.03)
    labels = read(mammography.path / "hidden/labels.csv")
    public = labels[labels["split"] == "public"]
    assert 0.4 < len(public) / len(labels) < 0.6 and set(labels["split"]) == {"public", "private"}


def test_it_labels_films_with_any_abnormality(mammography: BuiltBundle, data_dir: Path) -> None:
    rows = [line.split() for line in (data_dir / "mini_mias/Info.txt").read_text().splitlines()]
    abnormal = {r[0] for r in rows if r and r[0].startswith("mdb") and r[2] != "NORM"}
    for table in ("public/train/labels.csv", "hidden/labels.csv", "sanity/labels.csv"):
        frame = read(mammography.path / table)
        assert [int(i in abnormal) for i in frame["id"]] == frame["label"].astype(int).tolist()
    sanity = read(mammography.path / "sanity/labels.csv")
    assert 8 <= len(sanity) <= 12 and set(sanity["label"]) == {"0", "1"}


def test_it_flips_lesion_y_to_a_top_left_origin(mammography: BuiltBundle, data_dir: Path) -> None:
    info = (data_dir / "mini_mias/Info.txt").read_text().splitlines()
    (row,) = [line.split() for line in info if line.startswith("mdb023")]
    x, y, r = (int(v) for v in row[4:7])  # origin bottom-left in Info.txt
    lesions = pd.concat(
        read(mammography.path / f) for f in ("public/lesions.csv", "hidden/lesions.csv")
    )
    (found,) = lesions[lesions["id"] == "mdb023"].itertuples()
    scale = SIZE / 1024
    assert (float(found.x), float(found.y), float(found.radius)) == (
        x * scale, (1024 - y) * scale, r * scale,
    )  # fmt: skip


def test_it_puts_circumscribed_masses_where_the_images_are_bright(mammography: BuiltBundle) -> None:
    """The pixels agree with the flip: a mass is brighter than the ring around it."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    flipped, unflipped = [], []
    for lane, folder in (("public", "public/train/images"), ("hidden", "hidden/inputs/images")):
        lesions = read(mammography.path / f"{lane}/lesions.csv")
        for les in lesions[lesions["class"] == "CIRC"].itertuples():
            image = np.asarray(Image.open(mammography.path / folder / f"{les.id}.png"), float)
            x, y, r = float(les.x), float(les.y), float(les.radius)
            for out, cy in ((flipped, y), (unflipped, SIZE - y)):
                dist = np.hypot(xx - x, yy - cy)
                out.append(image[dist <= r].mean() - image[(dist > r) & (dist <= 2 * r)].mean())
    assert len(flipped) >= 20 and np.median(flipped) > 15 > np.median(unflipped)


def test_it_writes_small_grayscale_pngs_without_labels(mammography: BuiltBundle) -> None:
    manifest = read(mammography.path / "hidden/inputs/manifest.csv")
    assert list(manifest.columns) == ["id", "tissue"] and set(manifest["tissue"]) == {"F", "G", "D"}
    for film in manifest["id"][:10]:
        image = Image.open(mammography.path / "hidden/inputs/images" / f"{film}.png")
        assert image.format == "PNG" and image.mode == "L" and image.size == (SIZE, SIZE)
        assert np.asarray(image).std() > 20
    hidden = read(mammography.path / "hidden/labels.csv")
    assert list(hidden.columns) == ["id", "label", "split", "tissue"]
    assert list(read(mammography.path / "hidden/lesions.csv").columns[:4]) == [
        "id",
        "x",
        "y",
        "radius",
    ]


def test_it_zips_the_training_images_reproducibly(mammography: BuiltBundle, data_dir: Path) -> None:
    train = read(mammography.path / "public/train/labels.csv")["id"]
    with zipfile.ZipFile(mammography.path / "public/train_images.zip") as archive:
        names = archive.namelist()
        assert sorted(names) == sorted([*(f"images/{i}.png" for i in train), "MIAS_Licence.txt"])
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        first = f"images/{train[0]}.png"
        assert archive.read(first) == (mammography.path / "public/train" / first).read_bytes()
    licence = (data_dir / "mini_mias/Licence.txt").read_bytes()
    assert (mammography.path / "public/MIAS_Licence.txt").read_bytes() == licence


def test_it_carries_the_mias_licence_note(mammography: BuiltBundle) -> None:
    readme = (mammography.path / "README.md").read_text()
    assert "research use only" in readme.lower() and "Suckling" in readme
    assert "origin top-left" in readme and "/input/manifest.csv" in readme
    assert "research use only" in (mammography.path / "TERMS.md").read_text().lower()
    config = yaml.safe_load((mammography.path / "challenge.yaml").read_text())
    phase = config["phases"][0]
    assert phase["metrics"]["secondary"] == ["auprc", "sensitivity", "specificity"]
    assert phase["limits"] == {"cpus": 1, "memory_mb": 2048, "seconds": 900}


# --------------------------------------------------------------------------- detection phase


def lesion_tables(bundle: Path) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """lane -> (lesions.csv, the labels of the same films)."""
    labels = {"public": "public/train/labels.csv", "hidden": "hidden/labels.csv",
              "sanity": "sanity/labels.csv"}  # fmt: skip
    return {
        lane: (read(bundle / lane / "lesions.csv"), read(bundle / table))
        for lane, table in labels.items()
    }


def test_it_adds_a_detection_phase_over_the_same_window(mammography: BuiltBundle) -> None:
    config = yaml.safe_load((mammography.path / "challenge.yaml").read_text())
    assert config["task"] == "binary"  # the challenge's task; the phase overrides it
    leaderboard, detection = config["phases"]
    assert leaderboard["slug"] == "leaderboard" and "task" not in leaderboard
    assert detection["slug"] == "detection" and detection["title"] == "Lesion detection"
    assert set(detection) == PHASE_KEYS | {"task"} and detection["task"] == "detection"
    assert detection["metrics"] == {"primary": "froc", "secondary": ["auroc", "auprc"]}
    assert detection["evaluation"] == {
        "inputs": "hidden/inputs", "labels": "hidden/labels.csv", "lesions": "hidden/lesions.csv",
    }  # fmt: skip
    assert detection["sanity"] == {
        "inputs": "sanity/inputs", "labels": "sanity/labels.csv", "lesions": "sanity/lesions.csv",
    }  # fmt: skip
    for key in ("opens", "closes", "submission_kinds", "quota", "limits", "scores", "show_logs"):
        assert detection[key] == leaderboard[key], key
    assert detection["score_release"] == leaderboard["score_release"] == {
        "policy": "ladder", "eta": 0.01,
    }  # fmt: skip


def test_it_keeps_the_readmission_phase_single_and_task_free(readmission: BuiltBundle) -> None:
    config = yaml.safe_load((readmission.path / "challenge.yaml").read_text())
    (phase,) = config["phases"]
    assert set(phase) == PHASE_KEYS and "lesions" not in phase["evaluation"]


@pytest.mark.parametrize("source", ["real", "synthetic"])
def test_it_writes_lesions_inside_the_images_of_abnormal_films(
    source: str, mammography: BuiltBundle, synthetic: list[BuiltBundle]
) -> None:
    bundle = mammography.path if source == "real" else synthetic[1].path
    folders = {"public": "public/train/images", "hidden": "hidden/inputs/images",
               "sanity": "sanity/inputs/images"}  # fmt: skip
    for lane, (lesions, labels) in lesion_tables(bundle).items():
        assert list(lesions.columns) == ["id", "x", "y", "radius", "class", "severity"], lane
        abnormal = set(labels.loc[labels["label"] == "1", "id"])
        assert len(lesions) and set(lesions["id"]) <= abnormal, lane
        for les in lesions.itertuples():
            width, height = Image.open(bundle / folders[lane] / f"{les.id}.png").size
            x, y, r = float(les.x), float(les.y), float(les.radius)
            assert 0 <= x < width and 0 <= y < height and r > 0, (lane, les)


def test_it_places_every_located_info_txt_lesion_once_after_the_y_flip(
    mammography: BuiltBundle, data_dir: Path
) -> None:
    rows = [line.split() for line in (data_dir / "mini_mias/Info.txt").read_text().splitlines()]
    located = [r for r in rows if r and r[0].startswith("mdb") and len(r) == 7]
    assert len(located) == 119  # 123 abnormality rows, 4 without coordinates (PROVENANCE.md)
    scale = SIZE / 1024
    expected = sorted(
        (r[0], int(r[4]) * scale, (1024 - int(r[5])) * scale, int(r[6]) * scale, r[2], r[3])
        for r in located
    )
    tables = lesion_tables(mammography.path)
    written = pd.concat([tables["public"][0], tables["hidden"][0]])
    found = sorted(
        zip(written["id"], *(written[c].astype(float) for c in ("x", "y", "radius")),
            written["class"], written["severity"], strict=True)
    )  # fmt: skip
    assert found == expected
    # mdb001, the first film: CIRC B at x 535, y 425 from the bottom, radius 197
    (first,) = [row for row in found if row[0] == "mdb001"]
    assert first[1:4] == (535 * scale, (1024 - 425) * scale, 197 * scale)


def test_it_ships_the_sanity_films_lesions(mammography: BuiltBundle) -> None:
    tables = lesion_tables(mammography.path)
    sanity, labels = tables["sanity"]
    public, _ = tables["public"]
    assert len(sanity) >= 1 and set(sanity["id"]) < set(labels["id"])
    expected = public[public["id"].isin(labels["id"])].reset_index(drop=True)
    assert sanity.equals(expected)  # the same rows as the public file: the set is public


def test_it_documents_the_detection_contract(mammography: BuiltBundle) -> None:
    readme = " ".join((mammography.path / "README.md").read_text().split())  # unwrapped
    assert "## Detection phase" in readme and "/output/detections.csv" in readme
    assert "id,x,y,score" in readme and "at most 100 per film" in readme
    assert "HELDOUT_TASK=detection" in readme
    assert "1/8, 1/4, 1/2, 1, 2, 4" in readme and "within the lesion's" in readme
    assert "TOP-LEFT" in readme and "(1024 - y_info)" in readme


# --------------------------------------------------------------------------- stamps


@pytest.mark.parametrize("name", ["readmission", "mammography"])
def test_it_skips_a_rebuild_when_the_stamp_matches(
    name: str, request: pytest.FixtureRequest, data_dir: Path
) -> None:
    bundle: BuiltBundle = request.getfixturevalue(name)
    before = mtimes(bundle.path)
    if name == "readmission":
        again = build_readmission_bundle(bundle.path, data_dir=data_dir, n_test=N_TEST)
    else:
        again = build_mammography_bundle(bundle.path, data_dir=data_dir, image_size=SIZE)
    assert again == bundle and mtimes(bundle.path) == before


@pytest.mark.parametrize("name", ["readmission", "mammography"])
def test_it_rebuilds_byte_identically_when_forced(
    name: str, request: pytest.FixtureRequest, data_dir: Path
) -> None:
    bundle: BuiltBundle = request.getfixturevalue(name)
    before = tree(bundle.path)
    if name == "readmission":
        build_readmission_bundle(bundle.path, data_dir=data_dir, n_test=N_TEST, force=True)
    else:
        build_mammography_bundle(bundle.path, data_dir=data_dir, image_size=SIZE, force=True)
    assert tree(bundle.path) == before


def test_it_builds_synthetic_films_reproducibly(tmp_path: Path) -> None:
    first = build_mammography_bundle(tmp_path / "a", data_dir=None)
    second = build_mammography_bundle(tmp_path / "b", data_dir=None)
    assert tree(first.path) == tree(second.path)


def test_it_rebuilds_when_the_recipe_changes_or_a_file_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "readmission-30d"
    build_readmission_bundle(out, data_dir=None)
    first = tree(out)
    build_readmission_bundle(out, data_dir=None, seed=7)
    assert tree(out)["hidden/labels.csv"] != first["hidden/labels.csv"]
    (out / "sanity/labels.csv").unlink()
    build_readmission_bundle(out, data_dir=None, seed=7)
    assert (out / "sanity/labels.csv").is_file()


def test_it_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build_readmission_bundle(tmp_path, data_dir=None)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- synthetic fallback


def test_it_falls_back_to_clearly_labelled_synthetic_data(synthetic: list[BuiltBundle]) -> None:
    assert [b.slug for b in synthetic] == ["readmission-30d", "mammography-screening"]
    for bundle in synthetic:
        config = yaml.safe_load((bundle.path / "challenge.yaml").read_text())
        assert bundle.synthetic and config["title"].startswith("[SYNTHETIC] ")
        assert "SYNTHETIC DATA" in (bundle.path / "README.md").read_text()
        assert "synthetic" in (bundle.path / "TERMS.md").read_text()
    readmission, mammography = synthetic
    assert 4500 <= readmission.n_train + readmission.n_test <= 5500
    assert mammography.n_train + mammography.n_test == 40
    image = Image.open(next((mammography.path / "hidden/inputs/images").iterdir()))
    assert image.size == (256, 256) and image.mode == "L"
    config = yaml.safe_load((mammography.path / "challenge.yaml").read_text())
    assert [p["slug"] for p in config["phases"]] == ["leaderboard", "detection"]
    assert (mammography.path / "sanity/lesions.csv").is_file()


def test_synthetic_readmission_has_a_learnable_signal(synthetic: list[BuiltBundle]) -> None:
    train = read(synthetic[0].path / "public/train.csv")
    y = train["label"].astype(int).to_numpy()
    score = train["number_inpatient"].astype(int).to_numpy() + np.random.default_rng(0).random(
        len(y)
    )
    ranks = score.argsort().argsort() + 1
    auroc = (ranks[y == 1].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (len(y) - y.sum()))
    assert 0.05 < y.mean() < 0.2 and auroc > 0.6


def test_it_falls_back_when_the_data_dir_lacks_the_files(tmp_path: Path) -> None:
    built = build_mammography_bundle(tmp_path / "m", data_dir=tmp_path / "empty")
    assert built.synthetic


def test_default_data_dir_prefers_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HELDOUT_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
