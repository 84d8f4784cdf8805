"""What the station keeps to itself: its secret and the seed derived from it, and which
jobs it refuses to run (other challenges, other stations' containers). No Docker engine."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from heldout_kernel.sandbox.base import Backend
from heldout_station import cli, runner
from heldout_station.client import Platform
from heldout_station.runner import Job, Options, StateError, Station, load_secret, site_seed
from tests.station.conftest import CHALLENGE, PHASE_SEED, TOKEN, failure_body


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _claim(job: int, *, dataset: str = "north", station: str = "north",
           challenge: str = CHALLENGE, container_name: str | None = None) -> dict[str, Any]:
    return {
        "job": job, "claim": 2, "lease_seconds": 60, "dataset": dataset,
        "challenge": challenge,
        "container_name": container_name or f"heldout-st-{station}.{job}-c2",
        "submission": {"uid": f"sub-{job}", "kind": "bundle", "sha256": "0" * 64, "size": 10,
                       "artefact": f"/api/v1/station/jobs/{job}/artefact?claim=2"},
        "phase": {"task": "binary", "metrics": ["auroc"], "primary": "auroc",
                  "bootstrap_resamples": 5, "seed": PHASE_SEED,
                  "limits": {"cpus": 1.0, "memory_mb": 256, "seconds": 30},
                  "small_cells": {"min_cases": 5, "min_positives": 2}},
    }


def _station(platform: Any, hidden: Any, tmp_path: Path, name: str = "north") -> Station:
    (tmp_path / "work").mkdir(exist_ok=True)
    station = Station(platform=platform, backend=mock.create_autospec(Backend, instance=True),
                      options=Options(hidden.root, tmp_path / "state", tmp_path / "work",
                                      allow=frozenset({CHALLENGE})),
                      stop=threading.Event())
    station.name = name
    return station


def test_its_seed_is_an_hmac_of_the_phase_seed_and_dataset():
    secret = bytes(range(32))
    seed = site_seed(secret, PHASE_SEED, "north")
    assert seed == int.from_bytes(
        hmac.new(secret, b"12:north", hashlib.sha256).digest()[:8], "big")
    assert seed != PHASE_SEED and 0 <= seed < 2**64
    assert site_seed(secret, PHASE_SEED, "north") == seed
    assert site_seed(secret, PHASE_SEED, "south") != seed
    assert site_seed(secret, PHASE_SEED + 1, "north") != seed
    assert site_seed(bytes(32), PHASE_SEED, "north") != seed


def test_jobs_of_one_phase_and_dataset_share_the_stations_seed(hidden, tmp_path, monkeypatch):
    seeds: dict[int, int] = {}

    class Recorder:
        dataset_changed = False

        def __init__(self, *, job: Job, seed: int, **_: Any) -> None:
            seeds[job.id] = seed

        def run(self) -> None:
            return None

    monkeypatch.setattr(runner, "JobRunner", Recorder)
    platform = mock.create_autospec(Platform, instance=True)
    first = _station(platform, hidden, tmp_path)
    first.handle(_claim(17))
    first.handle(_claim(18))
    first.handle(_claim(19, dataset="south"))
    _station(platform, hidden, tmp_path).handle(_claim(20))  # restarted: the secret is read
    assert seeds[17] == seeds[18] == seeds[20], "paired: one seed per phase and dataset"
    assert seeds[17] != PHASE_SEED and seeds[19] != seeds[17]
    secret = (tmp_path / "state" / "secret").read_bytes()
    assert seeds[17] == site_seed(secret, PHASE_SEED, "north")


def test_its_secret_is_private_and_kept(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    umask = os.umask(0)  # what the process's umask would not prevent, the station must
    try:
        secret = load_secret(state)
    finally:
        os.umask(umask)
    assert len(secret) == 32
    assert _mode(state / "secret") == 0o600 and _mode(state) == 0o700
    assert [p.name for p in state.iterdir()] == ["secret"], "no partial file is left"
    assert load_secret(state) == secret
    assert load_secret(tmp_path / "elsewhere") != secret


def test_a_damaged_secret_stops_the_station(hidden, tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "secret").write_bytes(b"short")
    code = cli.main(["--url", "http://127.0.0.1:9", "--token", TOKEN, "--data",
                     str(hidden.root), "--state", str(state), "--allow", CHALLENGE])
    assert code == 1
    assert "is not a station secret" in capsys.readouterr().err
    with pytest.raises(StateError):
        load_secret(state)
    assert (state / "secret").read_bytes() == b"short", "it is never replaced silently"


@pytest.mark.parametrize(("name", "usable"), [
    ("heldout-st-north.17-c2", True),
    ("heldout-st-a_b-c.1-c10", True),
    ("heldout-st-north-17-c2", False),      # the old naming: no dot after the station
    ("heldout-st-north.17-c2-x", False),
    ("heldout-st-North.17-c2", False),
    ("heldout-st-.17-c2", False),
    ("heldout-st-a.b.17-c2", False),
    ("heldout-st-north.17-c2\n", False),
    ("other-north.17-c2", False),
])
def test_claims_name_containers_after_the_station_and_a_dot(name, usable):
    if usable:
        assert Job.from_claim(_claim(17, container_name=name)).container_name == name
    else:
        with pytest.raises(ValueError, match="container name"):
            Job.from_claim(_claim(17, container_name=name))


@pytest.mark.parametrize("container_name", ["heldout-st-north-b.17-c2", "heldout-st-nort.17-c2"])
def test_it_refuses_a_container_of_another_station(platform, hidden, tmp_path, container_name,
                                                  monkeypatch, caplog):
    ran = mock.Mock(side_effect=AssertionError("the job was run"))
    monkeypatch.setattr(runner, "JobRunner", ran)
    station = _station(Platform(platform.url, TOKEN), hidden, tmp_path)
    station.handle(_claim(17, container_name=container_name))
    ran.assert_not_called()
    assert platform.result(17) == failure_body("internal_error")
    assert platform.artefact_requests == []
    assert f"container name '{container_name}' is not this station's" in caplog.text


def test_an_unreadable_claim_posts_no_details(platform, hidden, tmp_path):
    station = _station(Platform(platform.url, TOKEN), hidden, tmp_path)
    claim = _claim(17)
    del claim["challenge"]
    station.handle(claim)
    assert platform.result(17) == failure_body("internal_error")
    assert platform.artefact_requests == []
