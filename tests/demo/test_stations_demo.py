"""The two-station demo (`make demo-stations`): the real readmission bundle's hidden cases are
split into two hospitals' station folders by admission source, and the challenge bundle that
names the two stations imports. No Docker engine needed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from challenges.bundles import import_challenge
from challenges.models import Station
from challenges.stations import station_add, station_for_token
from demo.bundles import BuiltBundle, build_readmission_bundle
from demo.stations import (
    DATASET,
    SLUG,
    STATIONS,
    TITLE,
    Site,
    build_station_bundle,
    ensure_station,
    split_hidden_by_site,
)
from tests.conftest import REPO, SHARED_DATA

CACHE = REPO / "var" / "test-cache"


@pytest.fixture(scope="session")
def readmission() -> BuiltBundle:
    """The real readmission bundle with about 2,000 hidden cases, cached under var/test-cache."""
    assert SHARED_DATA.is_dir(), f"the real data sets are required at {SHARED_DATA}"
    built = build_readmission_bundle(CACHE / "stations" / "readmission-30d",
                                     data_dir=SHARED_DATA, n_test=2000)
    assert not built.synthetic
    return built


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _hidden(bundle: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (_read(bundle / "hidden" / "inputs" / "features.csv"),
            _read(bundle / "hidden" / "labels.csv"))


def test_it_partitions_the_hidden_cases_between_the_two_stations(readmission, tmp_path):
    sites = split_hidden_by_site(readmission.path, tmp_path)
    features, _ = _hidden(readmission.path)
    ids = [_read(sites[s].dataset / "inputs" / "features.csv")["id"] for s in STATIONS]
    together = pd.concat(ids)
    assert set(sites) == {"emergency", "referral"}
    assert together.is_unique  # no case at both stations
    assert sorted(together) == sorted(features["id"])  # and none lost
    assert all(len(site_ids) > 100 for site_ids in ids)  # both hospitals hold real cases
    assert [sites[s].n_cases for s in STATIONS] == [len(i) for i in ids]


def test_it_splits_by_admission_source_emergency_room_or_not(readmission, tmp_path):
    sites = split_hidden_by_site(readmission.path, tmp_path)
    features, _ = _hidden(readmission.path)
    emergency = _read(sites["emergency"].dataset / "inputs" / "features.csv")
    referral = _read(sites["referral"].dataset / "inputs" / "features.csv")
    assert set(emergency["admission_source_id"]) == {"7"}  # IDs_mapping: Emergency Room
    assert "7" not in set(referral["admission_source_id"])
    assert len(set(referral["admission_source_id"])) > 3  # referrals, transfers, unknown
    hidden = features.set_index("id")
    for site in (emergency, referral):  # every feature column, byte for byte
        assert site.columns.tolist() == features.columns.tolist()
        pd.testing.assert_frame_equal(site.set_index("id"), hidden.loc[site["id"]])


def test_each_station_labels_file_holds_the_hidden_labels_of_its_cases(readmission, tmp_path):
    sites = split_hidden_by_site(readmission.path, tmp_path)
    _, labels = _hidden(readmission.path)
    assert {"split", "sex", "age_band", "race"} <= set(labels.columns)
    hidden = labels.set_index("id")
    for station in STATIONS:
        site = _read(sites[station].dataset / "labels.csv")
        ids = _read(sites[station].dataset / "inputs" / "features.csv")["id"]
        assert site.columns.tolist() == labels.columns.tolist()
        assert site["id"].tolist() == ids.tolist()
        pd.testing.assert_frame_equal(site.set_index("id"), hidden.loc[site["id"]])
        assert sites[station].n_positive == int((site["label"] == "1").sum()) > 0
        assert set(site["split"]) == {"public", "private"}


def test_station_inputs_are_readable_by_the_sandbox_user(readmission, tmp_path):
    sites = split_hidden_by_site(readmission.path, tmp_path)
    for site in sites.values():
        inputs = site.dataset / "inputs"
        assert inputs.stat().st_mode & 0o005 == 0o005
        assert (inputs / "features.csv").stat().st_mode & 0o004


@pytest.mark.django_db
def test_the_station_bundle_imports_with_its_hidden_set_at_both_stations(
        readmission, tmp_path):
    for station in STATIONS:
        station_add(name=station)
    bundle = build_station_bundle(readmission.path, tmp_path / SLUG)
    assert not (bundle / "hidden").exists()  # the hidden cases are at the stations only
    challenge, _ = import_challenge(bundle)
    phase = challenge.phases.get()
    assert challenge.slug == SLUG and challenge.title == TITLE
    assert phase.evaluation_set.sources == [
        {"station": "emergency", "dataset": DATASET},
        {"station": "referral", "dataset": DATASET}]
    assert phase.evaluation_set.is_remote
    assert phase.sanity_set is not None and not phase.sanity_set.is_remote
    assert phase.sanity_set.n_cases > 0
    assert phase.score_release == "ladder"  # boot-ladder-boot needs per-case scores
    assert "never reach the platform" in challenge.description
    source = yaml.safe_load((readmission.path / "challenge.yaml").read_text())
    assert sorted(challenge.public_files.values_list("name", flat=True)) == sorted(
        name.removeprefix("public/") for name in source["public_files"])
    assert challenge.terms == (readmission.path / "TERMS.md").read_text()


@pytest.mark.django_db
def test_the_station_bundle_does_not_import_before_its_stations_are_registered(
        readmission, tmp_path):
    from challenges.exceptions import BundleError

    station_add(name="emergency")
    bundle = build_station_bundle(readmission.path, tmp_path / SLUG)
    with pytest.raises(BundleError, match="referral"):
        import_challenge(bundle)


def _site(tmp_path: Path, station: str = "emergency") -> Site:
    return Site(station=station, root=tmp_path / station, n_cases=0, n_positive=0)


@pytest.mark.django_db
def test_it_registers_a_station_once_and_keeps_its_token_in_a_private_file(tmp_path):
    site = _site(tmp_path)
    ensure_station(site)
    token = site.token_file.read_text().strip()
    assert station_for_token(token).name == "emergency"
    assert site.token_file.stat().st_mode & 0o777 == 0o600
    ensure_station(site)  # a second start keeps the registration and its token
    assert site.token_file.read_text().strip() == token
    assert Station.objects.filter(name="emergency").count() == 1


@pytest.mark.django_db
def test_it_registers_again_when_the_token_file_is_missing_or_stale(tmp_path):
    site = _site(tmp_path)
    ensure_station(site)
    first = site.token_file.read_text().strip()
    site.token_file.unlink()
    ensure_station(site)
    second = site.token_file.read_text().strip()
    assert second != first and station_for_token(first) is None
    assert station_for_token(second).name == "emergency"
    site.token_file.write_text("a token of another database\n")
    ensure_station(site)
    assert station_for_token(site.token_file.read_text().strip()).name == "emergency"
