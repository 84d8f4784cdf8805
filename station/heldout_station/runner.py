"""One job from claim to result, and the station's claim loop.

Only aggregates leave the station, and for a failure only its error class: the message,
exit code, duration and log a model produced are the model's to choose (and the messages
quote what it wrote), so they are kept here (the local log, `results/<uid>/run.json` and
`log.txt` under the state folder) and never sent.

The paired bootstrap resamples are drawn with a seed the platform cannot know
(`site_seed`): it knows the phase's seed and a site's case count, so with that seed it
could rebuild each resample's case multiplicities W and solve what is sent (positives per
resample, W·y) for every hidden label.

A job's lease is kept alive by a `Heartbeat` thread while the artefact downloads, the model
runs and its output is scored. When the platform answers a heartbeat with 409 the job was
offered again (this claim lost its lease): the thread removes the job's container at once
(and again every second until the job ends, so a container started in the meantime goes
too), and the job ends without posting anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heldout_kernel import contract, validation
from heldout_kernel.aggregates import site_aggregates, to_json
from heldout_kernel.cases import LabelTable
from heldout_kernel.contract import Error
from heldout_kernel.errors import InvalidUpload
from heldout_kernel.judge import ModelOutput, judge, matched_evidence
from heldout_kernel.lesions import image_sizes
from heldout_kernel.runtime_image import ensure_runtime_image
from heldout_kernel.sandbox.base import (
    Backend,
    BackendError,
    InvalidImage,
    Limits,
    RunResult,
    RunSpec,
)
from heldout_kernel.sandbox.docker import KEEPER_SUFFIX, VOLUME_SUFFIX
from heldout_kernel.scores import Cases
from heldout_kernel.stats.curves import roc_curve
from heldout_station.client import (
    Platform,
    PlatformError,
    PlatformUnavailable,
    StaleJob,
    Stopped,
    Unauthorized,
)
from heldout_station.datasets import (
    Dataset,
    FileHasher,
    discover,
    fingerprint,
    load_table,
    unreadable_inputs,
)

logger = logging.getLogger(__name__)

CONTAINER_PREFIX = "heldout-st-"
# heldout-st-<station>.<job>-c<claim>: the dot ends the station's name (slugs have none).
CONTAINER_NAME = re.compile(r"heldout-st-[a-z0-9_-]+\.[0-9]+-c[0-9]+")
STATION_NAME = re.compile(r"[a-z0-9_-]+")
SECRET_FILE = "secret"
SECRET_BYTES = 32
HELLO_EVERY_S = 300.0
KILL_AGAIN_S = 1.0
SWEEP_ATTEMPTS = 10
MIN_HEARTBEAT_S = 1.0
OUTPUT_FILES = ("predictions.csv", "detections.csv")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
BAD_ARTEFACT = "the artefact's sha256 does not match"


class ModelFailure(Exception):
    """The model (or its upload) failed: an error class the platform knows."""

    def __init__(self, error_class: str, message: str, result: RunResult | None = None):
        super().__init__(message)
        self.error_class, self.message, self.result = error_class, message, result


class StationFailure(Exception):
    """The station could not do the job: posted as internal_error, the text logged here."""


class StateError(Exception):
    """The state folder or its secret cannot be used: the station cannot start."""


class Abandoned(Exception):
    """The claim went stale or the station is stopping: post nothing."""


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class Job:
    id: int
    claim: int
    lease_seconds: float
    dataset: str
    challenge: str
    container_name: str
    uid: str
    kind: str
    sha256: str
    size: int
    artefact: str
    task: str
    metrics: tuple[str, ...]
    primary: str
    resamples: int
    seed: int
    limits: Limits
    min_cases: int
    min_positives: int

    @classmethod
    def from_claim(cls, raw: dict[str, Any]) -> Job:
        """Raises KeyError, TypeError or ValueError for a claim the station cannot use."""
        submission, phase = raw["submission"], raw["phase"]
        limits, cells = phase["limits"], phase["small_cells"]
        metrics = tuple(dict.fromkeys(str(m) for m in phase["metrics"]))
        job = cls(
            id=int(raw["job"]), claim=int(raw["claim"]),
            lease_seconds=float(raw.get("lease_seconds", 60)), dataset=str(raw["dataset"]),
            challenge=str(raw["challenge"]), container_name=str(raw["container_name"]),
            uid=str(submission["uid"]),
            kind=str(submission["kind"]), sha256=str(submission["sha256"]).lower(),
            size=int(submission["size"]), artefact=str(submission["artefact"]),
            task=str(phase["task"]), metrics=metrics, primary=str(phase["primary"]),
            resamples=int(phase["bootstrap_resamples"]), seed=int(phase["seed"]),
            limits=_limits(limits), min_cases=int(cells["min_cases"]),
            min_positives=int(cells["min_positives"]),
        )
        job._check()
        return job

    def _check(self) -> None:
        if not CONTAINER_NAME.fullmatch(self.container_name):
            raise ValueError(f"container name {self.container_name!r} is not a station's")
        if not SAFE_NAME.fullmatch(self.uid) or ".." in self.uid:
            raise ValueError("the submission uid is not a safe folder name")
        if self.kind not in ("bundle", "image"):
            raise ValueError(f"a station cannot run {self.kind!r} submissions")
        if self.primary not in self.metrics or self.resamples < 1 or self.size < 0:
            raise ValueError("the phase's metrics or resamples are not usable")


def _limits(raw: dict[str, Any]) -> Limits:
    return contract.limits(cpus=float(raw["cpus"]), memory_mb=int(raw["memory_mb"]),
                           seconds=int(raw["seconds"]))


def environment(job: Job) -> dict[str, str]:
    return contract.environment(task=job.task, cpus=job.limits.cpus)


# --------------------------------------------------------------------------- the secret seed


def site_seed(secret: bytes, seed: int, dataset: str) -> int:
    """The seed of this station's paired resamples for a phase (`seed`) on `dataset`: the
    same for every entry of the phase here (they stay paired), unknowable without `secret`."""
    digest = hmac.new(secret, f"{seed}:{dataset}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def load_secret(state_dir: Path) -> bytes:
    """The station's secret (`<state>/secret`, 32 random bytes), created at first start:
    the file 0600 in a 0700 folder. Never sent, never logged. Raises StateError."""
    try:
        _private_folder(state_dir)
        path = state_dir / SECRET_FILE
        if not os.path.lexists(path):
            _create_secret(path)
        return _read_secret(path)
    except OSError as error:
        raise StateError(f"the station's secret in {state_dir}: {error}") from None


def _private_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not folder.is_dir() or folder.is_symlink():
        raise StateError(f"the state folder {folder} is not a folder")
    if stat.S_IMODE(folder.stat().st_mode) != 0o700:
        logger.warning("state folder %s: only its owner may use it; mode set to 0700", folder)
        folder.chmod(0o700)


def _create_secret(path: Path) -> None:
    """Written whole under a temporary name, then linked into place (no other process ever
    sees a partial secret; if two start at once, the first one's secret stays)."""
    partial = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                         0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, secrets.token_bytes(SECRET_BYTES))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    try:
        os.link(partial, path)
        logger.info("created the station's secret %s (keep it with the state folder)", path)
    except FileExistsError:
        pass
    finally:
        partial.unlink()


def _read_secret(path: Path) -> bytes:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        mode = stat.S_IMODE(os.fstat(descriptor).st_mode)
        if mode != 0o600:
            logger.warning("%s: only its owner may read it; mode set to 0600", path)
            os.fchmod(descriptor, 0o600)
        secret = os.read(descriptor, SECRET_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(secret) != SECRET_BYTES:
        raise StateError(f"{path} is not a station secret ({SECRET_BYTES} bytes); move it "
                         "away to start with a new one (later resamples then differ)")
    return secret


# --------------------------------------------------------------------------- heartbeats


class Heartbeat:
    """Keeps one claim's lease alive from a background thread (every lease/3 seconds).
    On 409 it sets `stale` and calls `kill` at once, then every second until the job ends."""

    def __init__(self, platform: Platform, job: Job, kill: Callable[[], None]) -> None:
        self.stale = threading.Event()
        self._platform, self._job, self._kill = platform, job, kill
        self._interval = max(MIN_HEARTBEAT_S, job.lease_seconds / 3)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"heartbeat-{job.id}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._done.wait(self._interval):
            try:
                lease = self._platform.heartbeat(self._job.id, self._job.claim)
            except StaleJob:
                logger.warning("job %s: the platform offered it again; stopping", self._job.id)
                self.stale.set()
                self._kill_until_done()
                return
            except Stopped:
                return
            except PlatformError as error:  # includes a revoked token: the lease decides
                logger.warning("job %s: heartbeat failed: %s", self._job.id, error)
                continue
            if lease is not None:
                self._interval = max(MIN_HEARTBEAT_S, lease / 3)

    def _kill_until_done(self) -> None:
        while True:
            try:
                self._kill()
            except Exception:  # noqa: BLE001 - keep trying until the job has ended
                logger.exception("job %s: could not remove its container", self._job.id)
            if self._done.wait(KILL_AGAIN_S):
                return


# --------------------------------------------------------------------------- one job


@dataclass(frozen=True)
class Runnable:
    image: str
    command: tuple[str, ...] | None
    submission_dir: Path | None


def result_body(claim: int, error_class: str) -> dict[str, Any]:
    """What is posted for a job besides its parts: the error class and nothing else of the
    run ("" for success). Message, exit code, duration and log stay at the station: there is
    no field for them, and the platform refuses an answer holding more."""
    return {"claim": claim, "error_class": error_class}


class JobRunner:
    """Runs one claimed job in `folder` and returns the result body to post (None: post
    nothing). `datasets` are the ones reported in the last hello, with their fingerprints;
    `seed` is the station's own seed for the job's resamples (`site_seed`)."""

    def __init__(self, *, platform: Platform, backend: Backend, job: Job, seed: int,
                 datasets: dict[str, Dataset], reported: dict[str, dict[str, Any]],
                 hasher: FileHasher, state_dir: Path, folder: Path,
                 heartbeat: Heartbeat, stop: threading.Event) -> None:
        self.platform, self.backend, self.job, self.seed = platform, backend, job, seed
        self.datasets, self.reported, self.hasher = datasets, reported, hasher
        self.state_dir, self.folder = state_dir, folder
        self.heartbeat, self.stop = heartbeat, stop
        self.dataset_changed = False

    def run(self) -> dict[str, Any] | None:
        try:
            body = self._run()
        except Abandoned:
            return None
        except ModelFailure as failure:
            logger.info("job %s: %s: %s", self.job.id, failure.error_class, failure.message)
            body = result_body(self.job.claim, failure.error_class)
        except StationFailure as failure:
            logger.error("job %s: %s", self.job.id, failure)
            body = result_body(self.job.claim, Error.INTERNAL_ERROR)
        except Exception:
            logger.exception("job %s: internal error", self.job.id)
            body = result_body(self.job.claim, Error.INTERNAL_ERROR)
        return None if self._abandoned() else body

    def _abandoned(self) -> bool:
        return self.heartbeat.stale.is_set() or self.stop.is_set()

    def _check_current(self) -> None:
        if self._abandoned():
            raise Abandoned

    def _run(self) -> dict[str, Any]:
        dataset = self._dataset()
        artefact = self._download()
        self._check_current()
        runnable = self._prepare(artefact)
        table = load_table(dataset, detection=self.job.task == "detection")
        self._check_current()
        output, result = self._run_model(dataset, runnable)
        sizes = (image_sizes(dataset.inputs, table.ids) if self.job.task == "detection"
                 else None)
        error_class, message, written = judge(result, output, table.ids,
                                              self.job.limits.seconds, sizes)
        self._keep(output, result, error_class, message)
        if error_class:
            raise ModelFailure(error_class, message, result)
        assert written is not None
        return {**result_body(self.job.claim, ""), "parts": self._aggregates(table, written)}

    # -- steps -----------------------------------------------------------------------------

    def _dataset(self) -> Dataset:
        dataset = self.datasets.get(self.job.dataset)
        if dataset is None:
            raise StationFailure(f"the station has no dataset named {self.job.dataset!r}")
        if fingerprint(dataset, self.hasher) != self.reported.get(dataset.name):
            self.dataset_changed = True
            raise StationFailure(f"dataset {dataset.name!r} changed since the station "
                                 "reported it; it reports it again now")
        unreadable = unreadable_inputs(dataset)
        if unreadable:
            raise StationFailure(f"dataset {dataset.name!r}: the sandbox user (uid 65534) "
                                 f"cannot read {unreadable[0]} and {len(unreadable) - 1} more")
        return dataset

    def _download(self) -> Path:
        name = "submission.zip" if self.job.kind == "bundle" else "image.tar"
        try:
            got = self.platform.download(self.job.artefact, self.folder / name,
                                         max_bytes=self.job.size)
        except (StaleJob, Stopped):
            raise Abandoned from None
        except PlatformError as error:
            raise StationFailure(f"the artefact could not be downloaded: {error}") from None
        if got.size != self.job.size or got.sha256 != self.job.sha256:
            raise ModelFailure(Error.INVALID_UPLOAD, BAD_ARTEFACT)
        return got.path

    def _prepare(self, artefact: Path) -> Runnable:
        try:
            if self.job.kind == "bundle":
                folder = self.folder / "submission"
                validation.extract_bundle(artefact, folder)
                return Runnable(ensure_runtime_image(), ("python3", "predict.py"), folder)
            validation.check_image_archive(artefact)
            image = self.backend.load_image(artefact)
        except InvalidUpload as error:
            raise ModelFailure(Error.INVALID_UPLOAD, error.message) from None
        except InvalidImage as error:
            raise ModelFailure(Error.INVALID_UPLOAD, str(error)) from None
        except BackendError as error:
            raise StationFailure(f"the Docker engine failed: {error}") from None
        ensure_runtime_image()  # the /output keeper runs from it for images too
        return Runnable(image, None, None)

    def _run_model(self, dataset: Dataset, runnable: Runnable) -> tuple[Path, RunResult]:
        output = self.folder / "output"
        output.mkdir()
        spec = RunSpec(name=self.job.container_name, image=runnable.image,
                       input_dir=dataset.inputs, output_dir=output, limits=self.job.limits,
                       env=environment(self.job), command=runnable.command,
                       submission_dir=runnable.submission_dir)
        logger.info("job %s: running %s", self.job.id, spec.name)
        try:
            result = self.backend.run(spec)
        except BackendError as error:
            self._check_current()  # a stale job's container was removed under the run
            logger.error("job %s: engine failure: %s", self.job.id, error)
            raise StationFailure("the Docker engine failed to run the model") from None
        self._check_current()
        return output, result

    def _keep(self, output: Path, result: RunResult, error_class: str, message: str) -> None:
        """The per-case output (successful runs), the full log, the exit code, duration and
        failure message stay at the station."""
        folder = self.state_dir / "results" / self.job.uid
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not error_class:
            for name in OUTPUT_FILES:
                if (output / name).is_file():
                    shutil.copyfile(output / name, folder / name)
        (folder / "log.txt").write_text(result.log_tail, encoding="utf-8")
        (folder / "run.json").write_text(json.dumps({
            "job": self.job.id, "claim": self.job.claim, "dataset": self.job.dataset,
            "kind": self.job.kind, "sha256": self.job.sha256, "exit_code": result.exit_code,
            "duration_s": round(result.duration_s, 3), "error_class": error_class,
            "message": message, "finished": time.time(),
        }, indent=1), encoding="utf-8")

    def _aggregates(self, table: LabelTable, written: ModelOutput) -> dict[str, Any]:
        predictions = written.predictions
        evidence = matched_evidence(table, written.detections)
        cases = Cases(table.y, np.asarray(predictions.scores, dtype=np.float64),
                      predictions.labels, evidence)
        aggregates = site_aggregates(
            table, cases, names=self.job.metrics, primary=self.job.primary,
            n_resamples=self.job.resamples, seed=self.seed, min_cases=self.job.min_cases,
            min_positives=self.job.min_positives,
            roc=coarse_roc(self.job.min_cases, self.job.min_positives))
        return {part: to_json(aggregate) for part, aggregate in aggregates.items()}


def coarse_roc(min_cases: int, min_positives: int) -> Callable[..., Any]:
    """The coarsened ROC of heldout_kernel.stats.curves (groups of at least `min_cases` cases)."""

    def draw(y: np.ndarray, scores: np.ndarray) -> list[list[float]] | None:
        curve = roc_curve(y, scores, min_cases=min_cases, min_positives=min_positives)
        return None if curve is None else [list(point) for point in curve.points]

    return draw


# --------------------------------------------------------------------------- the loop


@dataclass
class Options:
    data_dir: Path
    state_dir: Path
    work_dir: Path
    poll_seconds: float | None = None
    allow: frozenset[str] = frozenset()  # the challenges (slugs) this station serves


class Station:
    """Hello, then claim and run jobs one at a time; hello again every five minutes."""

    def __init__(self, *, platform: Platform, backend: Backend, options: Options,
                 stop: threading.Event) -> None:
        self.platform, self.backend, self.options, self.stop = platform, backend, options, stop
        self.hasher = FileHasher()
        self.datasets: dict[str, Dataset] = {}
        self.reported: dict[str, dict[str, Any]] = {}
        self.name = ""
        self.poll_seconds = options.poll_seconds or 5.0
        self._hello_at = -math.inf
        self._running: str | None = None
        self._secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = load_secret(self.options.state_dir)
        return self._secret

    @property
    def prefix(self) -> str:
        """This station's containers and work folders: `heldout-st-<name>.<job>-c<claim>`
        (the dot: station `a` never matches station `a-b`'s)."""
        return f"{CONTAINER_PREFIX}{self.name}."

    def start(self) -> None:
        """Read (or create) the secret, say hello (which tells the station its name), remove
        what an earlier process of this station left (its containers and work folders, by
        `prefix`: other stations on the same engine are left alone), and make sure of the
        runtime image."""
        self._secret = load_secret(self.options.state_dir)
        if not self.options.allow:
            logger.warning("no --allow: this station serves no challenge and refuses every "
                           "job")
        self.hello()
        if not STATION_NAME.fullmatch(self.name):
            raise PlatformError(f"hello: the platform named this station {self.name!r}, "
                                "not a slug")
        prefix = self.prefix
        removed = self.backend.remove_orphans(prefix=prefix)
        if removed:
            logger.info("removed leftovers of earlier runs: %s", ", ".join(removed))
        for folder in self.options.work_dir.glob(f"{prefix}*"):
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
        logger.info("runtime image %s", ensure_runtime_image())

    def hello(self) -> None:
        datasets, reported = {}, {}
        for name, dataset in discover(self.options.data_dir).items():
            try:
                reported[name] = fingerprint(dataset, self.hasher)
            except (OSError, ValueError, KeyError) as error:
                logger.warning("dataset %s is skipped: its files cannot be read (%s)", name,
                               error)
                continue
            datasets[name] = dataset
            unreadable = unreadable_inputs(dataset)
            if unreadable:
                logger.warning("dataset %s: the sandbox user (uid 65534) cannot read %s",
                               name, ", ".join(unreadable[:5]))
        self.datasets = datasets
        answer = self.platform.hello([{"name": name, "fingerprint": print_}
                                      for name, print_ in reported.items()],
                                     sorted(self.options.allow))
        self.reported = reported
        self.name = str(answer.get("station", ""))
        if self.options.poll_seconds is None:
            self.poll_seconds = float(answer.get("poll_seconds") or 5.0)
        self._hello_at = time.monotonic()
        logger.info("station %s: %d dataset(s): %s; serving %s", self.name or "?",
                    len(reported), ", ".join(reported) or "none",
                    ", ".join(sorted(self.options.allow)) or "no challenge")

    def serve(self, *, once: bool = False) -> None:
        """Claim and run jobs until stopped; with `once`, until one job has been handled."""
        while not self.stop.is_set():
            try:
                if time.monotonic() - self._hello_at >= HELLO_EVERY_S:
                    self.hello()
                claim = self.platform.claim()
            except Stopped:
                return
            except Unauthorized:
                raise
            except PlatformUnavailable as error:
                logger.warning("the platform is unreachable: %s", error)
                claim = None
            except PlatformError as error:
                logger.error("%s", error)
                claim = None
            if claim is None:
                self.stop.wait(self.poll_seconds)
                continue
            self.handle(claim)
            if once:
                return

    def handle(self, raw: dict[str, Any]) -> None:
        try:
            job = Job.from_claim(raw)
        except (KeyError, TypeError, ValueError) as error:
            self._refuse(raw, f"the station cannot read the job: {error}")
            return
        if job.challenge not in self.options.allow:
            self._refuse(raw, f"challenge {job.challenge!r} is not one this station serves "
                              "(--allow)")
            return
        if not job.container_name.startswith(self.prefix):
            self._refuse(raw, f"container name {job.container_name!r} is not this "
                              f"station's ({self.prefix}...)")
            return
        logger.info("claimed job %s (%s, %s)", job.id, job.challenge, job.dataset)
        folder = Path(tempfile.mkdtemp(prefix=f"{job.container_name}-",
                                       dir=self.options.work_dir))
        self._running = job.container_name
        try:
            self._handle(job, folder)
        finally:
            self._running = None
            shutil.rmtree(folder, ignore_errors=True)
            self.backend.wait_for_cleanup()
            self._sweep(job.container_name)

    def _sweep(self, name: str) -> None:
        """Remove whatever of the job's run is left: a run killed under the backend (stale
        job, shutdown) can leave its keeper or /output volume while removals race."""
        for attempt in range(SWEEP_ATTEMPTS):
            try:
                self.backend.remove_orphans(prefix=name)
                return
            except BackendError as error:
                if attempt == SWEEP_ATTEMPTS - 1:
                    logger.error("could not remove the resources of %s: %s", name, error)
                time.sleep(0.5)

    def _handle(self, job: Job, folder: Path) -> None:
        kill = self._killer(job.container_name)
        with Heartbeat(self.platform, job, kill) as heartbeat:
            runner = JobRunner(platform=self.platform, backend=self.backend, job=job,
                               seed=site_seed(self.secret, job.seed, job.dataset),
                               datasets=self.datasets, reported=self.reported,
                               hasher=self.hasher, state_dir=self.options.state_dir,
                               folder=folder, heartbeat=heartbeat, stop=self.stop)
            body = runner.run()
            if runner.dataset_changed:
                self._hello_at = -math.inf
            if body is None:
                logger.warning("job %s: abandoned (%s); nothing sent", job.id,
                               "stale" if heartbeat.stale.is_set() else "stopping")
                return
            self._post(job, body)

    def _post(self, job: Job, body: dict[str, Any]) -> None:
        outcome = body["error_class"] or "succeeded"
        try:
            accepted = self.platform.post_result(job.id, body)
        except Stopped:
            logger.warning("job %s: stopping before its result was sent", job.id)
            return
        except PlatformError as error:
            logger.error("job %s: %s; the result was not sent", job.id, error)
            return
        if accepted:
            logger.info("job %s: %s", job.id, outcome)
        else:
            logger.warning("job %s: %s, but the platform had offered it again; dropped",
                           job.id, outcome)

    def _refuse(self, raw: dict[str, Any], reason: str) -> None:
        """A claim the station will not run (nothing downloaded, nothing run): internal_error
        when it can name the job; the reason stays in the local log."""
        logger.error("job %r refused: %s", raw.get("job"), reason)
        try:
            job, claim = int(raw["job"]), int(raw["claim"])
            self.platform.post_result(job, result_body(claim, Error.INTERNAL_ERROR))
        except (KeyError, TypeError, ValueError, PlatformError, Stopped):
            return

    def _killer(self, name: str) -> Callable[[], None]:
        # Only the model container: the backend's run then fails at once and removes the
        # keeper and /output volume itself (removing them here too would race with it);
        # `_sweep` removes whatever is left when the job ends.
        spared = frozenset({name + KEEPER_SUFFIX, name + VOLUME_SUFFIX})

        def kill() -> None:
            self.backend.remove_orphans(prefix=name, keep=spared)

        return kill

    def abort(self) -> None:
        """From a signal handler: remove the running job's container (in a thread: engine
        calls must not run inside the handler's frame)."""
        name = self._running
        if name is not None:
            threading.Thread(target=self._killer(name), daemon=True, name="abort").start()
