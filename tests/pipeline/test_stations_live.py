"""Data stations end to end: two real `heldout-station` processes (separate data folders, no
database settings at all) talk HTTP to a live test server and run a model on the real
Docker engine. A phase split across them is scored; the combined metrics equal a direct
computation; no hidden id or per-case score appears anywhere in the central database or
files; killing a station mid-run gets its job offered again after the lease and ends with
exactly one result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from sklearn.metrics import brier_score_loss, roc_auc_score

from challenges.bundles import import_challenge
from challenges.services import team_create
from challenges.stations import station_add
from heldout_kernel.cases import read_labels
from scoring.models import Result, StationJob
from scoring.pipeline import evaluate
from scoring.services import sweep_stuck_runs
from submissions.services import submission_create
from submissions.uploads import stage_existing
from tests.bundles import write_station_bundle, write_station_data
from tests.factories import UserFactory, accept_terms
from tests.pipeline.conftest import make_bundle_zip

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

STATION = Path(sys.executable).with_name("heldout-station")
SOURCES = [{"station": "north", "dataset": "ward"}, {"station": "south", "dataset": "ward"}]
# Scores with nine distinctive digits, so a leaked per-case score could be found as text; on
# hidden data (ids "HID...") it takes a few seconds, time enough to kill a station mid-run.
MODEL = """
import csv, os, time
IN, OUT = os.environ["HELDOUT_INPUT"], os.environ["HELDOUT_OUTPUT"]
rows = list(csv.DictReader(open(os.path.join(IN, "features.csv"))))
if rows[0]["id"].startswith("HID"):
    time.sleep(4)
with open(os.path.join(OUT, "predictions.csv"), "w") as out:
    out.write("id,score\\n")
    for row in rows:
        out.write(f"{row['id']},{score(row)}\\n") if False else out.write(
            f"{row['id']},{int(row['age']) / 100 + 0.001234567:.9f}\\n")
"""


def _ids(prefix: str, n: int) -> list[str]:
    return [f"HID{prefix}{i:04d}Q" for i in range(n)]


def _station(url: str, token: str, data: Path, state: Path, *once: str) -> subprocess.Popen:
    # No database, no Django settings: only what a hospital machine would have.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE", "DJANGO", "REDIS", "HELDOUT"))}
    return subprocess.Popen(
        [str(STATION), "--url", url, "--token", token, "--data", str(data), "--state",
         str(state), "--poll", "0.3", "--allow", "station-test", *once],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(predicate, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _central_text(tmp_path: Path) -> str:
    """Everything the platform keeps: a dump of its database and every file it stores."""
    name = connection.settings_dict["NAME"]
    dump = subprocess.run(["pg_dump", "--data-only", "-h", "127.0.0.1", "-U", "postgres",
                           name], capture_output=True, text=True, check=True).stdout
    files = [p for root in (Path(settings.PRIVATE_ROOT), Path(settings.FILE_UPLOAD_TEMP_DIR))
             if root.exists() for p in root.rglob("*") if p.is_file()]
    return dump + "".join(p.read_bytes().decode("latin-1") for p in files)


def test_two_stations_score_a_split_phase_and_keep_their_cases(
        live_server, tmp_path, runtime_image, settings):
    settings.HELDOUT_STATION_LEASE_SECONDS = 4
    tokens, data = {}, {}
    for n, name in enumerate(("north", "south")):
        tokens[name] = station_add(name=name)[1]
        data[name] = tmp_path / f"{name}-data"
        write_station_data(data[name], "ward", _ids(name[0].upper(), 60 + 20 * n), seed=n)
    challenge, _ = import_challenge(write_station_bundle(tmp_path / "bundle", SOURCES))
    phase = challenge.phases.get()
    alice = UserFactory(username="alice")
    accept_terms(challenge, alice)
    team = team_create(challenge=challenge, user=alice, name="Alpha")
    zipped = make_bundle_zip(tmp_path / "model.zip", MODEL)
    submission = submission_create(phase=phase, team=team, user=alice, kind="bundle",
                                   staged=stage_existing(zipped, filename="model.zip"))
    evaluate(submission.pk)  # the central sanity lane, then a job per station
    submission.refresh_from_db()
    assert submission.status == "running", submission.error_message
    assert StationJob.objects.filter(submission=submission).count() == 2

    url = live_server.url
    north = _station(url, tokens["north"], data["north"], tmp_path / "north-state")
    south = _station(url, tokens["south"], data["south"], tmp_path / "south-state", "--once")
    _wait(lambda: StationJob.objects.filter(station__name="north", status="running").exists())
    time.sleep(1.5)  # its model is running now
    north.send_signal(signal.SIGKILL)  # the station vanishes mid-run
    north.wait()
    assert south.wait(timeout=120) == 0, south.stdout.read()
    submission.refresh_from_db()
    assert submission.status == "running"  # still waiting for the north

    time.sleep(settings.HELDOUT_STATION_LEASE_SECONDS + 0.5)
    sweep_stuck_runs()  # the north's lease ran out: its job is offered again
    assert StationJob.objects.get(station__name="north").status == "queued"
    again = _station(url, tokens["north"], data["north"], tmp_path / "north-state", "--once")
    assert again.wait(timeout=120) == 0, again.stdout.read()

    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    assert Result.objects.filter(submission=submission).count() == 1
    assert StationJob.objects.get(station__name="north").claim == 2
    _check_metrics(Result.objects.get(submission=submission), data)
    _check_nothing_per_case_is_central(tmp_path, data)
    out = subprocess.run(["docker", "ps", "-aq", "--filter", "name=heldout-st-"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def _site(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = read_labels(folder / "ward" / "labels.csv")
    ages = dict(line.split(",") for line in (
        folder / "ward" / "inputs" / "features.csv").read_text().splitlines()[1:])
    scores = np.array([int(ages[i]) / 100 + 0.001234567 for i in table.ids])
    return table.y, scores, table.split == "public"


def _check_metrics(result: Result, data: dict[str, Path]) -> None:
    """AUROC: the positives x negatives weighted mean of the sites' AUROCs; the Brier score
    pools exactly: the Brier score of all public cases together."""
    aurocs, weights, ys, scores_all = [], [], [], []
    for folder in data.values():
        y, scores, public = _site(folder)
        aurocs.append(roc_auc_score(y[public], scores[public]))
        weights.append(y[public].sum() * (1 - y[public]).sum())
        ys.append(y[public])
        scores_all.append(scores[public])
    public = result.metrics["public"]
    assert public["auroc"] == pytest.approx(np.average(aurocs, weights=weights), abs=1e-12)
    assert public["brier"] == pytest.approx(
        brier_score_loss(np.concatenate(ys), np.concatenate(scores_all)), abs=1e-12)
    assert set(result.site_metrics) == {"north/ward", "south/ward"}
    assert result.site_metrics["north/ward"]["metrics"]["public"]["auroc"] == pytest.approx(
        aurocs[0], abs=1e-12)


def _check_nothing_per_case_is_central(tmp_path: Path, data: dict[str, Path]) -> None:
    text = _central_text(tmp_path)
    assert "station.result" in text and "north/ward" in text  # the search sees the data
    for folder in data.values():
        table = read_labels(folder / "ward" / "labels.csv")
        _, scores, _ = _site(folder)
        leaked = [i for i in table.ids if i in text]
        assert leaked == [], f"hidden ids in the central database or files: {leaked[:3]}"
        values = [f"{s:.9f}" for s in scores]
        assert [v for v in values if v in text] == [], "per-case scores are stored centrally"
    result = Result.objects.get()
    assert result.case_scores == b"" and result.case_labels is None
