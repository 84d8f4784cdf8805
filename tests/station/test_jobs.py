"""A station claims a job, runs the model in the sandbox on the real Docker engine next to
its data, and sends back aggregates or an error class, never per-case values."""

from __future__ import annotations

import base64
import csv
import io
import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from scoring.aggregates import from_json
from scoring.backends.docker import DockerBackend
from station import cli
from tests.station.conftest import (
    AGE_MODEL,
    RESAMPLES,
    SCRIPT,
    TOKEN,
    Hidden,
    bundle,
    clean_env,
    docker_cli,
    leftovers,
)

pytestmark = pytest.mark.docker


def _numbers_lists(value: Any) -> list[list[Any]]:
    """Every JSON list in `value`, and every base64 .npy vector decoded, recursively."""
    found = []
    if isinstance(value, list):
        found.append(value)
        for item in value:
            found += _numbers_lists(item)
    elif isinstance(value, dict):
        for item in value.values():
            found += _numbers_lists(item)
    elif isinstance(value, str) and value.startswith("k05VTVBZ"):  # b"\x93NUMPY"
        found.append(np.load(io.BytesIO(base64.b64decode(value))).tolist())
    return found


def _kept_scores(state: Path, uid: str) -> dict[str, str]:
    with (state / "results" / uid / "predictions.csv").open() as handle:
        return {row["id"]: row["score"] for row in csv.DictReader(handle)}


def test_it_sends_only_aggregates_of_a_bundle_run(
        runtime_image, platform, hidden: Hidden, offer, station_args, tmp_path):
    job = offer(bundle(AGE_MODEL))
    proc = subprocess.run([str(SCRIPT), *station_args], env={**clean_env(),
                          "HELDOUT_STATION_TOKEN": TOKEN}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "claimed job 17 (north)" in proc.stderr and "job 17: succeeded" in proc.stderr
    assert TOKEN not in proc.stderr

    result = platform.result(17)
    assert result["claim"] == 2 and result["error_class"] == "" and result["exit_code"] == 0
    assert set(result["parts"]) == {"public", "private"}
    scores = _kept_scores(tmp_path / "state", job["submission"]["uid"])
    assert sorted(scores) == hidden.ids, "per-case predictions are kept under --state"
    for part, raw in result["parts"].items():
        aggregate = from_json(raw, names=["auroc", "auprc"], n_resamples=RESAMPLES)
        ids = [i for i in hidden.ids if hidden.split[i] == part]
        y = [hidden.labels[i] for i in ids]
        s = [float(scores[i]) for i in ids]
        assert aggregate.n_cases == len(ids) and aggregate.n_positive == sum(y)
        assert aggregate.metrics["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert aggregate.metrics["auprc"] == pytest.approx(average_precision_score(y, s),
                                                           abs=1e-12)
        assert aggregate.samples["auroc"].shape == (RESAMPLES,)
        assert set(aggregate.subgroups) == {"sex"}

    sent = platform.sent()
    assert [i for i in hidden.ids if i in sent] == []
    assert [s for s in scores.values() if s in sent or str(float(s)) in sent] == []
    sizes = {len(hidden.ids), *(sum(1 for i in hidden.ids if hidden.split[i] == p)
                                for p in ("public", "private"))}
    assert [len(v) for v in _numbers_lists(result) if len(v) in sizes] == [], (
        "no per-case vector (labels, scores) in the result")
    assert sorted(p.relative_to(hidden.root).as_posix() for p in hidden.root.rglob("*")
                  if p.is_file()) == ["north/inputs/features.csv", "north/labels.csv"], (
        "nothing is written inside --data")


def test_it_reports_a_model_that_exits_nonzero(runtime_image, platform, offer,
                                                station_args, capsys):
    offer(bundle("import sys\nprint('boom')\nsys.exit(1)\n"))
    assert cli.main([*station_args, "--token", TOKEN]) == 0
    result = platform.result(17)
    assert result["error_class"] == "nonzero_exit"
    assert result["exit_code"] == 1 and "1" in result["message"]
    assert "parts" not in result
    assert result["log_tail"] == "", "logs stay at the station unless --send-logs"
    assert "job 17: nonzero_exit" in capsys.readouterr().err


LEAKY_MODEL = """
import csv, os
rows = list(csv.DictReader(open(os.path.join(os.environ["HELDOUT_INPUT"], "features.csv"))))
print("read", " ".join(row["id"] for row in rows))
with open(os.path.join(os.environ["HELDOUT_OUTPUT"], "predictions.csv"), "w") as out:
    out.write("id,score\\n")
    for row in rows:
        out.write(f"{row['id']},2.5\\n")
"""


def test_it_withholds_hidden_ids_from_failure_messages_and_logs(
        runtime_image, platform, hidden: Hidden, offer, station_args):
    offer(bundle(LEAKY_MODEL))
    assert cli.main([*station_args, "--token", TOKEN, "--send-logs"]) == 0
    result = platform.result(17)
    assert result["error_class"] == "invalid_output"
    assert "outside [0, 1]" in result["message"] and '"…"' in result["message"]
    assert result["log_tail"].startswith("read [id] [id]")
    sent = platform.sent()
    assert [i for i in hidden.ids if i in sent] == []
    assert "2.5" not in sent


def _mark_running(job: dict[str, Any], marked: list[float], then: Any = None) -> None:
    """Once the job's model container runs: call `then`, note the time in `marked`."""
    name = job["container_name"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = docker_cli("ps", "--filter", f"name=^/{name}$", "--filter",
                             "status=running", "--format", "{{.Names}}")
        if running.strip() == name:
            if then is not None:
                then()
            marked.append(time.monotonic())
            return
        time.sleep(0.2)


def test_it_stops_a_run_whose_job_went_stale(runtime_image, platform, offer, station_args):
    job = offer(bundle("import time\ntime.sleep(60)\n"), seconds=120, lease_seconds=3)
    marked: list[float] = []
    watcher = threading.Thread(target=_mark_running, daemon=True, args=(
        job, marked, lambda: platform.stale.add(job["job"])))
    watcher.start()
    assert cli.main([*station_args, "--token", TOKEN]) == 0
    stopped = time.monotonic()
    watcher.join(timeout=5)
    assert marked, "the model container never ran"
    assert stopped - marked[0] < 15, "the station did not stop the run at once"
    assert 17 in platform.heartbeats
    assert platform.results == {}, "a stale job posts nothing"
    assert not [r for r in platform.requests if r.path.endswith("/result")]
    assert leftovers(job["container_name"]) == []


def test_it_refuses_an_artefact_whose_sha256_differs(runtime_image, platform, offer,
                                                     station_args):
    offer(bundle(AGE_MODEL), sha256="0" * 64)
    with mock.patch.object(DockerBackend, "run", autospec=True) as run:
        assert cli.main([*station_args, "--token", TOKEN]) == 0
    run.assert_not_called()
    result = platform.result(17)
    assert result["error_class"] == "invalid_upload"
    assert result["message"] == "the artefact's sha256 does not match"
    assert "parts" not in result


def test_it_reports_a_job_for_an_unknown_dataset_as_internal_error(
        runtime_image, platform, offer, station_args):
    offer(bundle(AGE_MODEL), dataset="south")
    with mock.patch.object(DockerBackend, "run", autospec=True) as run:
        assert cli.main([*station_args, "--token", TOKEN]) == 0
    run.assert_not_called()
    result = platform.result(17)
    assert result["error_class"] == "internal_error" and "south" in result["message"]


def test_it_reports_its_datasets_and_exits_2_for_a_refused_token(
        runtime_image, platform, station_args, capsys):
    assert cli.main([*station_args, "--token", "wrong-token"]) == 2
    err = capsys.readouterr().err
    assert "401" in err and "wrong-token" not in err
    hello = platform.hellos()[0]
    assert hello["version"] == 1
    assert [d["name"] for d in hello["datasets"]] == ["north"]
    assert json.dumps(hello["datasets"][0]["fingerprint"]["parts"]) == (
        '{"public": 20, "private": 20}')


def test_it_stops_cleanly_on_sigterm(runtime_image, platform, offer, station_args):
    job = offer(bundle("import time\ntime.sleep(60)\n"), seconds=120, lease_seconds=3)
    marked: list[float] = []
    watcher = threading.Thread(target=_mark_running, args=(job, marked), daemon=True)
    watcher.start()
    proc = subprocess.Popen([str(SCRIPT), *station_args], env={
        **clean_env(), "HELDOUT_STATION_TOKEN": TOKEN}, stderr=subprocess.PIPE, text=True)
    watcher.join(timeout=60)
    assert marked, "the model container never ran"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping" in err and "abandoned" in err
    assert platform.results == {}, "an interrupted job posts nothing: its lease runs out"
    assert leftovers(job["container_name"]) == []
