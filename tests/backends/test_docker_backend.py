"""The Docker backend against the real engine: sandbox limits, hostile models, examples.

Every hostile model is a bundle's predict.py from tests/backends/hostile/, run with small
limits (SMALL in conftest). After each run no container or volume of the run may be left.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from demo.examples import example_module
from heldout_kernel.sandbox import docker as docker_backend
from heldout_kernel.sandbox.base import BackendError, InvalidImage, Limits, RunSpec
from heldout_kernel.sandbox.docker import _instant
from heldout_kernel.sandbox.local import LocalProcessBackend

from .conftest import (
    HOSTILE,
    SESSION_PREFIX,
    SMALL,
    docker_cli,
    leftovers,
    readable,
)

pytestmark = pytest.mark.docker


def _ids(input_dir: Path) -> list[str]:
    return list(pd.read_csv(input_dir / "features.csv", dtype={"id": str})["id"])


# -- sandbox -------------------------------------------------------------------------------


def test_it_runs_a_well_behaved_model_and_copies_its_predictions(run_model, input_dir):
    outcome = run_model("normal")
    result = outcome.result
    assert (result.exit_code, result.timed_out, result.oom_killed) == (0, False, False)
    assert not result.output_too_large
    assert "scored 500 cases" in result.log_tail
    predictions = pd.read_csv(outcome.output_dir / "predictions.csv", dtype={"id": str})
    assert list(predictions["id"]) == _ids(input_dir)


def test_it_gives_the_model_no_network(run_model):
    with socket.socket() as listener:  # a host service the model must not reach
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        report = run_model("network", env={"CANARY_PORT": str(port)}).report()
    for attempt in ("loopback", "docker_bridge", "public_ip", "dns"):
        assert str(report[attempt]).startswith("failed"), (attempt, report[attempt])
    assert report["interfaces"] == ["lo"]


def test_it_contains_a_fork_bomb(run_model):
    started = time.monotonic()
    result = run_model("forkbomb", limits=Limits(**{**vars(SMALL), "seconds": 8})).result
    assert result.timed_out or (result.exit_code or 0) != 0
    assert time.monotonic() - started < 60
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork


def test_it_reports_a_model_killed_for_memory(run_model):
    result = run_model("memory").result
    assert result.oom_killed
    assert result.exit_code == 137
    assert not result.timed_out


def test_it_kills_a_model_at_the_wall_clock_limit(run_model):
    result = run_model("sleeper", limits=Limits(**{**vars(SMALL), "seconds": 3})).result
    assert result.timed_out
    assert result.exit_code is None
    assert 3 <= result.duration_s < 15
    assert "sleeping" in result.log_tail


def test_it_mounts_input_and_code_read_only(run_model, input_dir, tmp_path_factory):
    writable = tmp_path_factory.mktemp("writable-input")
    shutil.copyfile(input_dir / "features.csv", writable / "features.csv")
    # World-writable on the host, so only the read-only mount can stop the model.
    writable.chmod(0o777)
    (writable / "features.csv").chmod(0o666)
    before = (writable / "features.csv").read_bytes()
    outcome = run_model("write_input", inputs=writable)
    assert outcome.result.exit_code == 0
    report = outcome.report()
    assert all(str(v).startswith("failed") for v in report.values()), report
    for attempt in ("append_input", "create_in_input", "delete_input"):
        assert "Read-only file system" in str(report[attempt]), report
    assert (writable / "features.csv").read_bytes() == before
    assert sorted(p.name for p in writable.iterdir()) == ["features.csv"]
    assert (outcome.output_dir / "predictions.csv").exists()


def test_it_stops_a_model_filling_output_with_enospc_in_the_kernel(run_model):
    free_before = shutil.disk_usage("/var/lib/docker" if Path("/var/lib/docker").exists() else "/")
    outcome = run_model("fill_output")
    result = outcome.result
    assert result.output_too_large
    assert result.duration_s < 10
    assert "No space left on device" in result.log_tail
    report = outcome.report()
    assert report["tmp_written"] <= SMALL.tmp_mb * 1024 * 1024
    assert "No space left" in str(report["tmp_error"])
    copied = sum(p.stat().st_size for p in outcome.output_dir.rglob("*") if p.is_file())
    assert copied <= SMALL.output_mb * 1024 * 1024
    free_after = shutil.disk_usage(
        "/var/lib/docker" if Path("/var/lib/docker").exists() else "/"
    )
    assert free_before.free - free_after.free < 1024**3  # nothing near 5 GB hit the disk


def test_it_does_not_expand_a_sparse_file_when_copying_output(run_model):
    outcome = run_model("sparse_output")
    assert outcome.result.exit_code == 0
    assert outcome.result.output_too_large
    assert outcome.result.duration_s < 10
    copied = sum(p.stat().st_size for p in outcome.output_dir.rglob("*") if p.is_file())
    assert copied <= SMALL.output_mb * 1024 * 1024


def test_it_keeps_only_the_tail_of_a_huge_log(run_model, input_dir):
    result = run_model("chatty").result
    assert result.exit_code == 0
    assert (input_dir / "features.csv").stat().st_size * 20 > 100 * SMALL.log_bytes
    assert len(result.log_tail) <= SMALL.log_bytes
    assert result.log_tail.rstrip().endswith("FINAL-LINE-OF-THE-LOG")


def test_it_reports_the_exit_code(run_model):
    result = run_model("exit3").result
    assert result.exit_code == 3
    assert not (result.timed_out or result.oom_killed or result.output_too_large)


def test_it_reports_no_predictions_when_the_model_writes_none(run_model):
    outcome = run_model("silent")
    assert outcome.result.exit_code == 0
    assert not (outcome.output_dir / "predictions.csv").exists()


def test_it_runs_the_model_unprivileged(run_model, sandbox_runtime):
    report = run_model("privileges").report()
    assert report["id_u"]["out"] == "65534"
    assert report["id_g"]["out"] == "65534"
    assert report["mount"]["code"] != 0
    assert str(report["setuid"]).startswith("failed")
    assert str(report["chroot"]).startswith("failed")
    assert str(report["read_shadow"]).startswith("failed")
    assert report["cap_eff"] == "0000000000000000"
    assert report["cap_bnd"] == "0000000000000000"
    assert report["no_new_privs"] == "1"
    if sandbox_runtime == "runsc":
        # gVisor's own kernel answers the model's system calls (and runs itself under a
        # seccomp filter on the host); the engine's filter is not loaded inside it.
        assert report["kernel"] != Path("/proc/version").read_text().strip()
        assert report["seccomp"] == "0"
    else:
        assert report["seccomp"] == "2"  # the engine's default seccomp filter
    assert "init" in report["pid1"]
    mounts = {path: options.split(",") for path, options in report["mounts"].items()}
    for path in ("/", "/input", "/submission"):
        assert "ro" in mounts[path], path
    if sandbox_runtime == "runsc":
        # gVisor lists only the options it applies itself: /output is the host's tmpfs
        # (mounted noexec,nosuid,nodev there) reached through gVisor's file proxy. Set-uid
        # bits are moot with no_new_privs, and device files need the dropped CAP_MKNOD.
        assert {"rw", "noexec"} <= set(mounts["/tmp"])
        assert "rw" in mounts["/output"]
    else:
        for path in ("/tmp", "/output"):
            assert {"rw", "noexec", "nosuid", "nodev"} <= set(mounts[path]), path


def test_it_passes_only_the_spec_environment(run_model, monkeypatch):
    monkeypatch.setenv("HELDOUT_SECRET_CANARY", "worker-secret")
    report = run_model("environment", env={"HELDOUT_TASK": "binary", "EXTRA": "1"}).report()
    env = report["env"]
    assert "HELDOUT_SECRET_CANARY" not in env
    assert "worker-secret" not in json.dumps(report)
    assert env["HELDOUT_INPUT"] == "/input"
    assert env["HELDOUT_OUTPUT"] == "/output"
    assert env["HELDOUT_TASK"] == "binary"
    assert env["EXTRA"] == "1"
    image_env = {"PATH", "HOME", "HOSTNAME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    assert set(env) <= image_env | {"HELDOUT_INPUT", "HELDOUT_OUTPUT", "HELDOUT_TASK", "EXTRA"}
    assert report["cwd"] == "/submission"


def test_it_still_scores_a_normal_model_after_the_hostile_ones(run_model, input_dir):
    outcome = run_model("normal")
    assert outcome.result.exit_code == 0
    predictions = pd.read_csv(outcome.output_dir / "predictions.csv", dtype={"id": str})
    assert len(predictions) == len(_ids(input_dir))


def test_a_model_that_exits_before_its_keeper_is_up_is_run_again_keeper_first(
        run_model, monkeypatch):
    # The keeper's start is held back until the model has surely exited, so its /output
    # tmpfs was unmounted (emptied) in between: the run must not be judged on it.
    real_start, delays, keepers = docker_backend._start, [4.0], []

    def late_start(client, config):  # type: ignore[no-untyped-def]
        keepers.append(config["name"])
        time.sleep(delays.pop() if delays else 0)
        return real_start(client, config)

    monkeypatch.setattr(docker_backend, "_start", late_start)
    outcome = run_model("exit3")  # writes predictions.csv, exits at once
    assert outcome.result.exit_code == 3
    assert (outcome.output_dir / "predictions.csv").read_text() == "id,score\n1,0.5\n"
    assert len(keepers) == 2  # the late one, then the second run's, started first


@pytest.mark.parametrize(("earlier", "later"), [
    ("2026-12-01T03:09:56.1Z", "2026-12-01T03:09:56.123456789Z"),
    ("2026-12-01T03:09:56Z", "2026-12-01T03:09:56.000000001Z"),
    ("2026-12-01T03:09:56.99Z", "2026-12-01T03:09:57Z"),
    ("0001-01-01T00:00:00Z", "2026-12-01T03:09:56Z"),  # the engine's "never"
])
def test_engine_timestamps_order_whatever_their_fraction_digits(earlier, later):
    assert _instant(earlier) < _instant(later)


# -- engine errors, names, orphans ---------------------------------------------------------


def test_it_turns_an_engine_error_into_backend_error_and_cleans_up(backend, input_dir, tmp_path):
    name = f"{SESSION_PREFIX}missing-image"
    spec = RunSpec(name=name, image="sha256:" + "0" * 64, input_dir=input_dir,
                   output_dir=tmp_path / "out", limits=SMALL, command=("true",))
    with pytest.raises(BackendError):
        backend.run(spec)
    assert leftovers(name) == []


def test_it_refuses_a_run_name_in_use_and_leaves_that_container_alone(
    backend, runtime_image, input_dir, tmp_path
):
    name = f"{SESSION_PREFIX}busy"
    docker_cli("create", "--name", name, "--label", f"heldout.run={name}", runtime_image, "true")
    try:
        spec = RunSpec(name=name, image=runtime_image, input_dir=input_dir,
                       output_dir=tmp_path / "out", limits=SMALL, command=("true",))
        with pytest.raises(BackendError, match="already exists"):
            backend.run(spec)
        assert leftovers(name) == [name]
    finally:
        docker_cli("rm", "-f", name)


def test_remove_orphans_removes_containers_and_volumes_by_prefix_except_kept(
    backend, runtime_image
):
    prefix = f"{SESSION_PREFIX}orphan-"
    runs = [f"{prefix}a", f"{prefix}b"]
    for run in runs:
        label = f"heldout.run={run}"
        docker_cli("create", "--name", run, "--label", label, runtime_image, "sleep", "60")
        docker_cli("start", run)
        docker_cli("volume", "create", "--label", label, f"{run}-output")
    docker_cli("create", "--name", f"{prefix}unlabelled", runtime_image, "true")
    try:
        removed = backend.remove_orphans(prefix=prefix, keep=frozenset({runs[1]}))
        assert sorted(removed) == sorted([runs[0], f"{runs[0]}-output"])
        assert leftovers(runs[0]) == []
        assert set(leftovers(runs[1])) == {runs[1], f"{runs[1]}-output"}
        assert backend.find_running(runs[1])
        assert not backend.find_running(runs[0])
    finally:
        docker_cli("rm", "-f", runs[1], f"{prefix}unlabelled")
        docker_cli("volume", "rm", "-f", f"{runs[1]}-output")


# -- load_image ----------------------------------------------------------------------------


def _save(*refs: str, target: Path) -> Path:
    with target.open("wb") as sink:
        subprocess.run(["docker", "save", *refs], check=True, stdout=sink)
    return target


def _tiny_image(tag: str, tmp_path: Path) -> str:
    """An image of one small file, made with `docker import` (a few KB to save and load)."""
    rootfs = tmp_path / f"rootfs-{uuid.uuid4().hex[:6]}"
    rootfs.mkdir()
    (rootfs / "marker").write_text(uuid.uuid4().hex)
    archive = shutil.make_archive(str(rootfs), "tar", rootfs)
    return docker_cli("import", archive, tag).strip()


def test_load_image_returns_the_id_of_an_image_built_from_the_runtime(
    backend, runtime_image, tmp_path
):
    tag = f"{SESSION_PREFIX}tiny:1"
    (tmp_path / "Dockerfile").write_text(f"FROM {runtime_image}\nLABEL heldout.test={tag}\n")
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    subprocess.run(["docker", "build", "-q", "-t", tag, str(tmp_path)], check=True, env=env,
                   capture_output=True)
    expected = docker_cli("image", "inspect", "--format", "{{.Id}}", tag).strip()
    archive = _save(tag, target=tmp_path / "tiny.tar")
    gzipped = tmp_path / "tiny.tar.gz"
    with archive.open("rb") as source, gzip.open(gzipped, "wb", compresslevel=1) as sink:
        shutil.copyfileobj(source, sink)
    docker_cli("rmi", tag)
    try:
        assert backend.load_image(archive) == expected
        assert backend.load_image(gzipped) == expected
        assert docker_cli("image", "inspect", "--format", "{{.Id}}",
                          f"heldout-upload:{expected.removeprefix('sha256:')}").strip() == expected
    finally:
        docker_cli("rmi", "-f", f"heldout-upload:{expected.removeprefix('sha256:')}")


def test_load_image_cannot_repoint_an_existing_tag(backend, runtime_image, tmp_path):
    victim = f"{SESSION_PREFIX}victim:latest"
    uploaded = _tiny_image(victim, tmp_path)
    archive = _save(victim, target=tmp_path / "hijack.tar")
    docker_cli("tag", runtime_image, victim)  # the tag now names something else
    try:
        assert backend.load_image(archive) == uploaded
        assert docker_cli("image", "inspect", "--format", "{{.Id}}", victim).strip() == (
            docker_cli("image", "inspect", "--format", "{{.Id}}", runtime_image).strip()
        )
    finally:
        docker_cli("rmi", "-f", victim, uploaded)


def test_load_image_rejects_an_archive_of_two_images(backend, tmp_path):
    first = _tiny_image(f"{SESSION_PREFIX}pair:1", tmp_path)
    second = _tiny_image(f"{SESSION_PREFIX}pair:2", tmp_path)
    archive = _save(f"{SESSION_PREFIX}pair:1", f"{SESSION_PREFIX}pair:2", target=tmp_path / "p.tar")
    docker_cli("rmi", "-f", f"{SESSION_PREFIX}pair:1", f"{SESSION_PREFIX}pair:2")
    with pytest.raises(InvalidImage):
        backend.load_image(archive)
    images = docker_cli("images", "-q", "--no-trunc").split()
    assert first not in images and second not in images


@pytest.mark.parametrize(
    "content",
    [b"this is not an image archive\n" * 100, b"", gzip.compress(b"\0" * 10)],
    ids=["text", "empty", "gzipped-zeros"],
)
def test_load_image_rejects_a_non_archive_with_a_safe_message(backend, tmp_path, content):
    path = tmp_path / "upload.tar"
    path.write_bytes(content)
    with pytest.raises(InvalidImage, match="docker save"):
        backend.load_image(path)


# -- examples ------------------------------------------------------------------------------


def _unzip(bundle: Path, target: Path) -> Path:
    with zipfile.ZipFile(bundle) as archive:
        assert sorted(archive.namelist()) == ["model.joblib", "predict.py"]
        archive.extractall(target)
    return readable(target)


def test_readmission_example_bundle_predicts_every_id(
    backend, runtime_image, readmission_frame, input_dir, tmp_path
):
    train = tmp_path / "train.csv"
    readmission_frame.iloc[:-500].to_csv(train, index=False)
    build = example_module("readmission_logreg")
    bundle = build.build_bundle(train, tmp_path / "bundle.zip")
    again = build.build_bundle(train, tmp_path / "again.zip")
    assert zipfile.ZipFile(bundle).getinfo("predict.py").date_time == (1980, 1, 1, 0, 0, 0)
    assert bundle.read_bytes()[:200] == again.read_bytes()[:200]
    spec = RunSpec(
        name=f"{SESSION_PREFIX}readmission", image=runtime_image, input_dir=input_dir,
        output_dir=tmp_path / "out", limits=Limits(memory_mb=1024, seconds=120),
        env={"HELDOUT_TASK": "binary"}, command=("python", "predict.py"),
        submission_dir=_unzip(bundle, tmp_path / "submission"),
    )
    result = backend.run(spec)
    assert result.exit_code == 0, result.log_tail
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv", dtype={"id": str})
    assert list(predictions.columns) == ["id", "score"]
    assert list(predictions["id"]) == _ids(input_dir)
    assert predictions["score"].between(0, 1).all()
    assert predictions["score"].nunique() > 10


def test_mammography_example_runs_as_bundle_and_as_image(
    backend, runtime_image, mammography_dirs, tmp_path, request
):
    train_dir, test_dir = mammography_dirs
    build = example_module("mammography_intensity")
    ids = list(pd.read_csv(test_dir / "manifest.csv", dtype={"id": str})["id"])
    bundle = build.build_bundle(train_dir, tmp_path / "bundle.zip")
    archive = build.build_image(train_dir, tmp_path / "image.tar.gz")
    image_id = backend.load_image(archive)
    assert image_id.startswith("sha256:")
    request.addfinalizer(
        lambda: docker_cli("rmi", f"heldout-upload:{image_id.removeprefix('sha256:')}")
    )
    runs = {
        "bundle": dict(image=runtime_image, command=("python", "predict.py"),
                       submission_dir=_unzip(bundle, tmp_path / "submission")),
        "image": dict(image=image_id),
    }
    for kind, how in runs.items():
        out = tmp_path / f"out-{kind}"
        spec = RunSpec(name=f"{SESSION_PREFIX}mammo-{kind}", input_dir=test_dir, output_dir=out,
                       limits=Limits(memory_mb=1024, seconds=120), env={"HELDOUT_TASK": "binary"},
                       **how)
        result = backend.run(spec)
        assert result.exit_code == 0, (kind, result.log_tail)
        predictions = pd.read_csv(out / "predictions.csv", dtype={"id": str})
        assert list(predictions["id"]) == ids, kind
        assert predictions["score"].between(0, 1).all(), kind


# -- local backend -------------------------------------------------------------------------


def test_local_backend_is_refused_unless_allowed():
    with pytest.raises(BackendError):
        LocalProcessBackend(allow=False)
    with pytest.raises(BackendError):
        LocalProcessBackend()  # no Django settings here: counts as DEBUG off


def test_local_backend_runs_a_bundle_with_the_env_contract(input_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HELDOUT_SECRET_CANARY", "worker-secret")
    submission = tmp_path / "submission"
    submission.mkdir()
    shutil.copyfile(HOSTILE / "normal.py", submission / "predict.py")
    spec = RunSpec(name="local", image="unused", input_dir=input_dir, output_dir=tmp_path / "out",
                   limits=Limits(seconds=30), command=("python", "predict.py"),
                   submission_dir=submission)
    result = LocalProcessBackend(allow=True).run(spec)
    assert result.exit_code == 0, result.log_tail
    assert len(pd.read_csv(tmp_path / "out" / "predictions.csv")) == len(_ids(input_dir))
    shutil.copyfile(HOSTILE / "sleeper.py", submission / "predict.py")
    slow = LocalProcessBackend(allow=True).run(
        RunSpec(**{**vars(spec), "limits": Limits(seconds=1)})
    )
    assert slow.timed_out and slow.exit_code is None
