"""A station claims a job, runs the model in the sandbox on the real Docker engine next to
its data, and sends back aggregates or an error class, never per-case values."""

from __future__ import annotations

import base64
import csv
import io
import json
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from heldout_kernel.aggregates import from_json
from heldout_kernel.sandbox.docker import DockerBackend
from heldout_kernel.stats.ranking import bootstrap_indices, resample_weights
from heldout_station import cli
from heldout_station.client import Platform
from heldout_station.runner import Options, Station, site_seed
from tests.station.conftest import (
    AGE_MODEL,
    CHALLENGE,
    PHASE_SEED,
    RESAMPLES,
    SCRIPT,
    TOKEN,
    Hidden,
    bundle,
    clean_env,
    docker_cli,
    failure_body,
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
    assert f"claimed job 17 ({CHALLENGE}, north)" in proc.stderr
    assert "job 17: succeeded" in proc.stderr
    assert TOKEN not in proc.stderr

    result = platform.result(17)
    assert {k: v for k, v in result.items() if k != "parts"} == {
        "claim": 2, "error_class": ""}, "no message, exit code, duration or log"
    assert set(result["parts"]) == {"public", "private"}
    assert platform.artefact_requests == [17]
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


def test_a_failure_sends_its_error_class_only(runtime_image, platform, offer, station_args,
                                              tmp_path, capsys):
    job = offer(bundle("import sys\nprint('boom')\nsys.exit(37)\n"))
    assert cli.main([*station_args, "--token", TOKEN]) == 0
    assert platform.result(17) == failure_body("nonzero_exit"), (
        "no message, exit code, duration or log: the model chooses them")
    assert "boom" not in platform.sent()
    kept = tmp_path / "state" / "results" / job["submission"]["uid"]
    run = json.loads((kept / "run.json").read_text())
    assert run["exit_code"] == 37 and run["duration_s"] > 0
    assert run["error_class"] == "nonzero_exit" and "37" in run["message"]
    assert "boom" in (kept / "log.txt").read_text()
    err = capsys.readouterr().err
    assert "job 17: nonzero_exit" in err and "37" in err, "the details are logged locally"


LEAKY_MODEL = """
import csv, os
rows = list(csv.DictReader(open(os.path.join(os.environ["HELDOUT_INPUT"], "features.csv"))))
print("read", " ".join(row["id"] for row in rows))
with open(os.path.join(os.environ["HELDOUT_OUTPUT"], "predictions.csv"), "w") as out:
    out.write("id,score\\n")
    for row in rows:
        out.write(f"{row['id']},2.5\\n")
"""


def test_it_sends_nothing_of_what_an_invalid_output_says(
        runtime_image, platform, hidden: Hidden, offer, station_args, capsys):
    offer(bundle(LEAKY_MODEL))
    assert cli.main([*station_args, "--token", TOKEN]) == 0
    assert platform.result(17) == failure_body("invalid_output")
    sent = platform.sent()
    assert [i for i in hidden.ids if i in sent] == []
    assert "2.5" not in sent and "outside [0, 1]" not in sent
    assert "outside [0, 1]" in capsys.readouterr().err, "the message is kept locally"


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
                                                     station_args, capsys):
    offer(bundle(AGE_MODEL), sha256="0" * 64)
    with mock.patch.object(DockerBackend, "run", autospec=True) as run:
        assert cli.main([*station_args, "--token", TOKEN]) == 0
    run.assert_not_called()
    assert platform.result(17) == failure_body("invalid_upload")
    assert "the artefact's sha256 does not match" in capsys.readouterr().err


def test_it_reports_a_job_for_an_unknown_dataset_as_internal_error(
        runtime_image, platform, offer, station_args, capsys):
    offer(bundle(AGE_MODEL), dataset="south")
    with mock.patch.object(DockerBackend, "run", autospec=True) as run:
        assert cli.main([*station_args, "--token", TOKEN]) == 0
    run.assert_not_called()
    assert platform.result(17) == failure_body("internal_error")
    assert "no dataset named 'south'" in capsys.readouterr().err


def test_it_reports_its_datasets_and_exits_2_for_a_refused_token(
        runtime_image, platform, station_args, capsys):
    assert cli.main([*station_args, "--token", "wrong-token"]) == 2
    err = capsys.readouterr().err
    assert "401" in err and "wrong-token" not in err
    hello = platform.hellos()[0]
    assert hello["version"] == 1 and hello["challenges"] == [CHALLENGE]
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


# The same features, scored the other way round: other scores, the same cases.
OTHER_MODEL = AGE_MODEL.replace("{(int(row['age']) % 90) / 100",
                                "{0.95 - (int(row['age']) % 90) / 100")
assert OTHER_MODEL != AGE_MODEL


def _positives_per_resample(y: list[int], seed: int) -> np.ndarray:
    """W·y: each resample's positives, with W rebuilt from `seed` as the station draws it."""
    labels = np.asarray(y, dtype=np.float64)
    return np.concatenate([labels @ resample_weights(indices, labels.size)
                           for indices in bootstrap_indices(labels.size, RESAMPLES, seed)])


def test_its_resamples_come_from_its_secret_not_the_public_seed(
        runtime_image, platform, hidden: Hidden, offer, station_args, tmp_path, capsys):
    offer(bundle(AGE_MODEL), job=17)
    assert cli.main([*station_args, "--token", TOKEN]) == 0
    offer(bundle(OTHER_MODEL), job=18)  # the same phase; a restarted station
    assert cli.main([*station_args, "--token", TOKEN]) == 0

    state = tmp_path / "state"
    assert stat.S_IMODE((state / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    secret = (state / "secret").read_bytes()
    own_seed = site_seed(secret, PHASE_SEED, "north")
    first, second = platform.result(17)["parts"], platform.result(18)["parts"]
    for part in ("public", "private"):
        y = [hidden.labels[i] for i in hidden.ids if hidden.split[i] == part]
        a, b = (from_json(parts[part], names=["auroc", "auprc"], n_resamples=RESAMPLES)
                for parts in (first, second))
        positives = a.sample_weights["auprc"]
        assert np.array_equal(positives, _positives_per_resample(y, own_seed)), (
            "auprc's site weight on a resample is W·y")
        assert not np.array_equal(positives, _positives_per_resample(y, PHASE_SEED)), (
            "the platform cannot rebuild W from the phase's seed")
        for name in ("auroc", "auprc"):
            assert np.array_equal(a.sample_weights[name], b.sample_weights[name]), (
                "every entry of the phase gets the same resamples here (paired)")
        assert not np.array_equal(a.samples["auroc"], b.samples["auroc"])

    said = platform.sent() + capsys.readouterr().err
    assert secret.hex() not in said and base64.b64encode(secret).decode() not in said
    assert str(own_seed) not in said


@pytest.mark.parametrize("allow", [["--allow", "other-challenge"], []], ids=["other", "none"])
def test_it_refuses_a_job_of_a_challenge_it_does_not_serve(
        runtime_image, platform, offer, station_args, allow, capsys, monkeypatch):
    monkeypatch.delenv("HELDOUT_STATION_ALLOW", raising=False)
    offer(bundle(AGE_MODEL))
    args = [*station_args[: station_args.index("--allow")], *allow, "--token", TOKEN]
    with mock.patch.object(DockerBackend, "run", autospec=True) as run:
        assert cli.main(args) == 0
    run.assert_not_called()
    assert platform.artefact_requests == [], "nothing is downloaded"
    assert platform.result(17) == failure_body("internal_error")
    assert platform.hellos()[0]["challenges"] == allow[1:]
    err = capsys.readouterr().err
    assert f"challenge '{CHALLENGE}' is not one this station serves" in err
    assert ("serves no challenge and refuses every job" in err) == (not allow)


def test_it_removes_only_its_own_leftovers_at_start(runtime_image, platform, hidden: Hidden,
                                                    tmp_path):
    mine = platform.container_name(5, 1)
    theirs = f"heldout-st-{platform.station}-b.5-c1"  # station <name>-b on the same engine
    work = tmp_path / "work"
    for name in (mine, theirs):
        docker_cli("create", "--label", f"heldout.run={name}", "--name", name,
                   runtime_image, "true")
        (work / f"{name}-x1y2").mkdir(parents=True)
    try:
        Station(platform=Platform(platform.url, TOKEN), backend=DockerBackend(),
                options=Options(hidden.root, tmp_path / "state", work,
                                allow=frozenset({CHALLENGE})),
                stop=threading.Event()).start()
        assert leftovers(mine) == []
        assert leftovers(theirs) == [theirs]
        assert [p.name for p in work.iterdir()] == [f"{theirs}-x1y2"]
    finally:
        subprocess.run(["docker", "rm", "-f", mine, theirs], capture_output=True, timeout=60)
