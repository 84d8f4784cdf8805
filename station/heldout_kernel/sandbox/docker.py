"""Docker engine backend: runs a participant model in a locked-down container.

This is the only module that imports the docker SDK. Sandbox of every run (DESIGN.md):
no network, read-only root fs, all capabilities dropped, no-new-privileges, uid/gid
65534, `--init`, pids/memory(=memory+swap)/CPU limits, private IPC, no core dumps,
size-limited tmpfs at /tmp, /input and /submission bind-mounted read-only, an environment made
only of `spec.env` plus HELDOUT_INPUT/HELDOUT_OUTPUT, json-file logs capped on the host.

/output is a per-run docker volume backed by a size-limited tmpfs, so the kernel enforces its
size (the model gets ENOSPC). A tmpfs lives only while some container has it mounted, so a
tiny "keeper" container (runtime image, `sleep infinity`, same lock-down, always runc) holds
it mounted while the model runs; afterwards the files are streamed out of the keeper with
`get_archive` and the model container, keeper and volume are removed. The keeper starts
alongside the model, not before it; the engine's timestamps then prove it was up before the
model exited (see `_check_held`), else the run is made again with the keeper started first.
Resource names, all labelled `heldout.run`: `<name>` (model), `<name>-keeper`,
`<name>-output` (volume).

Runtime (HELDOUT_SANDBOX_RUNTIME: `auto`, `runsc` or `runc`). Under runc every container
reads the host kernel's /proc and /sys, whose counters (forks in /proc/stat, memory in
/proc/meminfo, load, pressure, idle time, dentries...) other runs change: a hidden run could
write a value there for the team's next public run to read. gVisor's `runsc` gives each run
a kernel of its own, so those files describe the sandbox alone; `auto` (the default) uses it
when the engine has it registered (scripts/register_runsc.sh) and a probe run works, else
runc with the host-wide files masked (MASKED_PATHS). Resolved once per process.

Paths in a RunSpec are paths on the engine's host (bind mounts), and must be readable by
uid 65534.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

import docker.errors
import docker.models.containers
import requests
from docker.client import DockerClient
from docker.models.containers import _create_container_args
from docker.types import LogConfig, Mount, Ulimit

from heldout_kernel.runtime_image import runtime_image_tag
from heldout_kernel.sandbox.base import Backend, BackendError, InvalidImage, RunResult, RunSpec

logger = logging.getLogger(__name__)

CONTAINER_USER = "65534:65534"
LABEL_RUN = "heldout.run"
LABEL_ROLE = "heldout.role"
KEEPER_SUFFIX = "-keeper"
VOLUME_SUFFIX = "-output"
UPLOAD_REPOSITORY = "heldout-upload"
MIB = 1024 * 1024
PAGE = 4096  # tmpfs allocates whole pages
# Predictions need a couple of files; the cap bounds tmpfs inodes and the copy-out loop.
MAX_OUTPUT_FILES = 4096
# Engine calls such as loading a multi-GB image can exceed the SDK's 60 s default.
DEFAULT_CLIENT_TIMEOUT_S = 900
KILL_WAIT_S = 30
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)
RUNTIME_ENV = "HELDOUT_SANDBOX_RUNTIME"
GVISOR = "runsc"
RUNC = "runc"
RUNTIME_CHOICES = ("auto", GVISOR, RUNC)
PROBE_TIMEOUT_S = 60
# Under gVisor the engine's pids limit counts the sandbox's tasks on the host, not the
# model's: gVisor's own kernel has about 40 threads when idle, and each process of the model
# adds about five (its ptrace stub); the sentry dies (exit 2) when the limit is hit. So
# Limits.pids, a number of the model's processes, is scaled to host tasks (measured on
# runsc 20221219: idle 43 tasks, 10 processes 97, 40 processes 248, 40 threads 50).
GVISOR_BASE_TASKS = 64
GVISOR_TASKS_PER_PROCESS = 6
# Under runc: host-wide files that another run can change, hidden from the model (a file
# becomes /dev/null, a folder an empty read-only tmpfs). Found by reading every /proc and
# /sys file a model can read before and after another container forked, allocated, created
# files and burnt CPU (bench/bench_sandbox.py --scan repeats it). Setting MaskedPaths
# replaces the engine's defaults, so those come first. Kept: /sys/fs/cgroup (the run's own
# cgroup: joblib reads its CPU quota there), /proc/cpuinfo (numpy and BLAS read CPU
# features), /proc/sys/kernel/random (uuid is random, boot_id fixed, entropy_avail constant
# since Linux 5.18). Without /sys/devices/system/cpu/online and /proc/stat, glibc counts CPUs
# with sched_getaffinity: os.cpu_count() is unchanged.
ENGINE_DEFAULT_MASKS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
MASKED_PATHS = (
    *ENGINE_DEFAULT_MASKS,
    # counters of the whole machine: forks, CPU and idle time, memory, load, I/O, IRQs
    "/proc/stat", "/proc/meminfo", "/proc/loadavg", "/proc/uptime", "/proc/vmstat",
    "/proc/zoneinfo", "/proc/buddyinfo", "/proc/pagetypeinfo", "/proc/slabinfo",
    "/proc/vmallocinfo", "/proc/swaps", "/proc/diskstats", "/proc/schedstat",
    "/proc/interrupts", "/proc/softirqs", "/proc/pressure", "/proc/irq", "/proc/fs",
    # what other containers hold: cgroups (one per container), file locks, keys, ptys,
    # open files, inodes and dentries (these last survive a run: a sequential channel)
    "/proc/cgroups", "/proc/locks", "/proc/key-users", "/proc/sys/fs",
    "/proc/sys/kernel/pty",
    # sysfs outside the run's cgroup: devices (disk stats, cpuidle time, NUMA meminfo),
    # kernel (IRQ counts, uevent and slab counters, mm statistics), filesystems' counters
    "/sys/devices", "/sys/kernel", "/sys/block", "/sys/class", "/sys/bus", "/sys/dev",
    "/sys/module", "/sys/power", "/sys/hypervisor", "/sys/fs/ext4", "/sys/fs/btrfs",
    "/sys/fs/xfs", "/sys/fs/fuse", "/sys/fs/bpf", "/sys/fs/pstore", "/sys/fs/f2fs",
)
BAD_ARCHIVE = (
    "The uploaded file is not a loadable Docker image archive. Upload the output of "
    "`docker save IMAGE` (optionally gzipped) containing exactly one image."
)


def _default_client() -> Any:
    # docker.client.DockerClient rather than docker.from_env: the project's own docker/
    # folder is a namespace package to static checkers run from the repository root.
    return DockerClient.from_env(version="auto", timeout=DEFAULT_CLIENT_TIMEOUT_S)


_SHARED: dict[int, Any] = {}


def shared_client() -> Any:
    """One engine client per worker process (made on first use, never at import): a new
    client costs an API-version round trip and a connection on every call. Keyed by process
    id, so a forked worker child makes its own rather than sharing its parent's socket."""
    pid = os.getpid()
    client = _SHARED.get(pid)
    if client is None:
        client = _SHARED[pid] = _default_client()
    return client


@contextmanager
def _engine_errors(what: str) -> Iterator[None]:
    try:
        yield
    except ENGINE_ERRORS as exc:
        raise BackendError(f"docker engine error while {what}: {exc}") from exc


class DockerBackend(Backend):
    """Runs `RunSpec`s on a Docker engine (see the module docstring for the sandbox).

    `client_factory` returns a docker SDK client, made per call and closed afterwards; by
    default the process's shared client is used (and kept open). `keeper_image` holds the
    /output volume mounted; it defaults to the runtime image of the current recipe
    (`heldout_kernel.runtime_image.runtime_image_tag()`), which must exist
    (`heldout_kernel.runtime_image.ensure_runtime_image()` at worker start). `runtime` is `auto`,
    `runsc` or `runc` (see the module docstring); by default the environment variable
    HELDOUT_SANDBOX_RUNTIME, else `auto`. Raises ValueError for any other value.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any] | None = None,
        *,
        keeper_image: str | None = None,
        runtime: str | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._keeper_image = keeper_image
        self._runtime = _runtime_choice(runtime)
        self._cleanups: list[threading.Thread] = []

    # -- Backend contract ------------------------------------------------------------------

    def run(self, spec: RunSpec) -> RunResult:
        """Run `spec` to completion or its wall-clock limit, then copy /output out.

        `exit_code` is None when the run was killed at the time limit. `oom_killed` means the
        kernel OOM-killed a process and the model did not exit 0. `output_too_large` means
        /output was filled to (nearly) its limit, or held more than `limits.output_mb`
        of apparent (sparse) file size or more than MAX_OUTPUT_FILES files; only what
        fits the limit is copied. Raises BackendError for engine failures, including a run
        name that is already in use.
        """
        with self._client() as client:
            self._refuse_name_in_use(client, spec.name)
            try:
                with _engine_errors(f"running {spec.name}"):
                    result = self._run_held(client, spec)
            except BaseException:
                _remove_or_raise(client, spec.name)  # before a retry reuses the name
                raise
            if self._client_factory is None:
                self._remove_later(spec.name)  # the output is copied; the caller goes on
            else:
                _remove_or_raise(client, spec.name)
            return result

    def wait_for_cleanup(self) -> None:
        """Wait until the resources of finished runs are removed (see `run`)."""
        while self._cleanups:
            self._cleanups.pop().join()

    def _remove_later(self, name: str) -> None:
        thread = threading.Thread(target=_remove_in_background, args=(name,), daemon=True,
                                  name=f"remove-{name}")
        thread.start()
        self._cleanups.append(thread)

    def load_image(self, archive: Path) -> str:
        """Load a `docker save` archive (plain or gzipped) holding exactly one image.

        The archive is streamed to the engine with its tags removed, so an upload can never
        re-point an existing tag (e.g. the runtime image's); the image is then tagged
        `heldout-upload:<64 hex of its id>` so `docker image prune` keeps it for re-scoring.
        Returns the id `sha256:...`. Raises InvalidImage (participant-safe message).
        """
        sanitizer = _ArchiveSanitizer(archive)
        with self._client() as client:
            try:
                images = client.images.load(sanitizer.chunks())
            except Exception as exc:
                raise _load_error(exc, sanitizer.error) from exc
            if len(images) != 1:
                raise InvalidImage(BAD_ARCHIVE)
            image_id: str = images[0].id
            with _engine_errors("tagging a loaded image"):
                images[0].tag(UPLOAD_REPOSITORY, image_id.removeprefix("sha256:"))
            return image_id

    def remove_orphans(self, *, prefix: str, keep: frozenset[str] = frozenset()) -> list[str]:
        """Remove this backend's containers and /output volumes whose name starts with
        `prefix`, except those of runs named in `keep` (a run's keeper and volume count
        as the run). Only resources labelled `heldout.run` are touched. Returns the names
        removed (containers first, then volumes)."""
        if not prefix:
            raise ValueError("prefix must not be empty")
        with self._client() as client, _engine_errors("removing orphans"):
            # ignore_removed: a run's own cleanup may remove containers while we list them.
            containers = client.containers.list(all=True, ignore_removed=True,
                                                filters={"label": LABEL_RUN})
            removed = _remove_labelled(containers, prefix, keep)
            removed += _remove_labelled(client.volumes.list(filters={"label": LABEL_RUN}),
                                        prefix, keep)
        return removed

    def runtime(self) -> str:
        """The OCI runtime models run under, `runsc` or `runc` (`auto` resolved once per
        process; see `resolve_runtime`). Raises BackendError when the engine cannot be asked."""
        with self._client() as client:
            return self._resolved_runtime(client)

    # -- helpers for the pipeline -----------------------------------------------------------

    def find_running(self, name: str) -> bool:
        """True while the model container of run `name` exists and is running: a restarted
        worker uses it to tell a live run of another worker from a dead attempt."""
        with self._client() as client, _engine_errors(f"looking up {name}"):
            try:
                container = client.containers.get(name)
            except docker.errors.NotFound:
                return False
            return bool(container.status == "running")

    # -- internals --------------------------------------------------------------------------

    @contextmanager
    def _client(self) -> Iterator[Any]:
        if self._client_factory is None:
            with _engine_errors("connecting"):
                shared = shared_client()
            yield shared
            return
        with _engine_errors("connecting"):
            client = self._client_factory()
        try:
            yield client
        finally:
            client.close()

    def _refuse_name_in_use(self, client: Any, name: str) -> None:
        # Checked before creating anything, so the cleanup in run() only removes our own.
        with _engine_errors(f"checking the name {name}"):
            if _exists(client.containers, name) or _exists(client.containers, name + KEEPER_SUFFIX):
                raise BackendError(f"a container of run {name} already exists")
            if _exists(client.volumes, name + VOLUME_SUFFIX):
                raise BackendError(f"the output volume of run {name} already exists")

    def _run_held(self, client: Any, spec: RunSpec) -> RunResult:
        """The run with its keeper started alongside the model; in the rare case the keeper
        came up only after the model had exited (a model that ends at once on a loaded
        engine), its /output may have been emptied: the run is made again, keeper first."""
        try:
            return self._run_sandboxed(client, spec, keeper_first=False)
        except _OutputNotHeld as lost:
            logger.warning("%s; running %s again with the keeper up first", lost, spec.name)
            _remove_or_raise(client, spec.name)
            return self._run_sandboxed(client, spec, keeper_first=True)

    def _resolved_runtime(self, client: Any) -> str:
        if self._runtime != "auto":
            return self._runtime
        with _engine_errors("choosing the sandbox runtime"):
            return resolve_runtime(client, self._keeper_image or runtime_image_tag())

    def _run_sandboxed(self, client: Any, spec: RunSpec, *, keeper_first: bool) -> RunResult:
        runtime = self._resolved_runtime(client)
        volume = client.volumes.create(
            name=spec.name + VOLUME_SUFFIX,
            driver="local",
            driver_opts=_output_volume_opts(spec.limits.output_mb),
            labels=_labels(spec.name, "output"),
        )
        # create + start, never containers.run(): that would try to pull a missing image. The
        # keeper starts (to hold the tmpfs mounted) while the model container is created and,
        # unless `keeper_first`, started: then `_check_held` proves it held /output in time.
        keeper_started = _pool().submit(_start, client, self._keeper_config(spec, volume.name))
        try:
            container = _create(client, _model_config(client, spec, volume.name, runtime))
            if keeper_first:
                keeper_started.result()
            started = time.monotonic()
            container.start()
            timed_out = _wait_or_kill(container, spec.limits.seconds)
            duration = time.monotonic() - started
        finally:
            keeper = keeper_started.result()
        container.reload()
        state = container.attrs["State"]
        if not keeper_first:
            _check_held(keeper, state)
        exit_code = None if timed_out else int(state["ExitCode"])
        log_tail = _log_tail(container, spec.limits.log_bytes)
        too_large = _collect_output(keeper, spec.output_dir, spec.limits.output_mb)
        return RunResult(
            exit_code=exit_code,
            timed_out=timed_out,
            oom_killed=bool(state.get("OOMKilled")) and exit_code != 0,
            log_tail=log_tail,
            duration_s=duration,
            output_too_large=too_large,
        )

    def _keeper_config(self, spec: RunSpec, volume_name: str) -> dict[str, Any]:
        # Always runc (masked): the keeper runs our `sleep infinity` and never opens what the
        # model writes (dockerd reads the volume for get_archive), so its runtime does not
        # touch isolation; under gVisor it took 0.6-0.8 s to start, longer than a quick
        # model's whole run, which was then made again keeper first (see _run_held).
        return {
            "image": self._keeper_image or runtime_image_tag(),
            "runtime": RUNC,
            "command": ["sleep", "infinity"],
            "entrypoint": [],
            "name": spec.name + KEEPER_SUFFIX,
            "user": CONTAINER_USER,
            "labels": _labels(spec.name, "keeper"),
            "mounts": [Mount("/output", volume_name, type="volume", no_copy=True)],
            "pids_limit": 16,
            "mem_limit": "64m",
            "memswap_limit": "64m",
            "nano_cpus": 200_000_000,
            "log_config": LogConfig(type=LogConfig.types.NONE),
            "detach": True,
            **_LOCKDOWN,
        }


class _OutputNotHeld(BackendError):
    """The keeper was not up before the model exited: /output may have been emptied."""


def _check_held(keeper: Any, model_state: Mapping[str, Any]) -> None:
    """Raise _OutputNotHeld unless the keeper was running before the model exited.

    The engine mounts a volume's tmpfs when the first container using it starts and
    unmounts it (its files gone) when the last one stops. The keeper's mount precedes its
    StartedAt, and the model's unmount follows its FinishedAt (both stamped by the engine),
    so keeper StartedAt < model FinishedAt proves /output was never unmounted; otherwise
    the model's output is never judged."""
    keeper.reload()
    keeper_up = keeper.attrs["State"].get("StartedAt", "")
    if not (keeper.status == "running" and _instant(keeper_up) < _instant(
            model_state.get("FinishedAt", ""))):
        raise _OutputNotHeld(f"the /output keeper {keeper.name} was not up before the model "
                             "exited")


def _instant(stamp: str) -> tuple[str, int]:
    """An engine timestamp (RFC 3339, UTC, 0-9 fraction digits) as a sortable pair."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return whole, int(fraction.ljust(9, "0")[:9] or 0)


def _load_error(exc: Exception, archive_error: Exception | None) -> Exception:
    if archive_error is not None:
        logger.info("image archive rejected: %r", archive_error)
        return InvalidImage(BAD_ARCHIVE)
    if isinstance(exc, (docker.errors.APIError, docker.errors.ImageLoadError)):
        logger.info("image load rejected by the engine: %s", exc)
        return InvalidImage(BAD_ARCHIVE)
    if isinstance(exc, ENGINE_ERRORS):
        return BackendError(f"docker engine error while loading an image: {exc}")
    return exc


# Shared by the model and the keeper container.
_LOCKDOWN: dict[str, Any] = {
    "network_disabled": True,
    "network_mode": "none",
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "ipc_mode": "private",
    # A crash must not hand a core file to the host's core_pattern handler.
    "ulimits": [Ulimit(name="core", soft=0, hard=0)],
}


def _labels(run: str, role: str) -> dict[str, str]:
    return {LABEL_RUN: run, LABEL_ROLE: role}


def _output_volume_opts(output_mb: int) -> dict[str, str]:
    options = (
        f"size={output_mb}m,nr_inodes={MAX_OUTPUT_FILES},uid=65534,gid=65534,mode=0700,"
        "nosuid,nodev,noexec"
    )
    return {"type": "tmpfs", "device": "tmpfs", "o": options}


def _exists(collection: Any, name: str) -> bool:
    try:
        collection.get(name)
    except docker.errors.NotFound:
        return False
    return True


def _environment(env: Mapping[str, str]) -> dict[str, str]:
    # Built from the spec alone: the SDK never forwards the worker's own environment.
    return {**env, "HELDOUT_INPUT": "/input", "HELDOUT_OUTPUT": "/output"}


def _model_config(client: Any, spec: RunSpec, volume_name: str, runtime: str
                  ) -> dict[str, Any]:
    limits = spec.limits
    mounts = [
        Mount("/input", str(spec.input_dir.resolve()), type="bind", read_only=True),
        Mount("/output", volume_name, type="volume", no_copy=True),
    ]
    if spec.submission_dir is not None:
        mounts.append(
            Mount("/submission", str(spec.submission_dir.resolve()), type="bind", read_only=True)
        )
    return {
        "image": spec.image,
        "runtime": runtime,
        "command": list(spec.command) if spec.command is not None else None,
        "name": spec.name,
        "user": CONTAINER_USER,
        "working_dir": "/submission" if spec.submission_dir is not None else None,
        "environment": _environment(spec.env),
        "labels": _labels(spec.name, "model"),
        "mounts": mounts,
        "tmpfs": _tmpfs_mounts(client, spec),
        "pids_limit": _host_pids(limits.pids, runtime),
        "mem_limit": f"{limits.memory_mb}m",
        "memswap_limit": f"{limits.memory_mb}m",
        "nano_cpus": int(limits.cpus * 1e9),
        "shm_size": f"{min(64, limits.tmp_mb)}m",
        "init": True,
        "log_config": _log_config(limits.log_bytes),
        "detach": True,
        **_LOCKDOWN,
        "ulimits": _ulimits(limits.pids, runtime),
    }


def _host_pids(processes: int, runtime: str) -> int:
    if runtime == GVISOR:
        return GVISOR_BASE_TASKS + GVISOR_TASKS_PER_PROCESS * processes
    return processes


def _ulimits(processes: int, runtime: str) -> list[Ulimit]:
    """Under gVisor RLIMIT_NPROC counts the sandbox's own tasks, so a fork bomb gets EAGAIN
    at `processes`, as the pids cgroup gives it under runc, long before the host-task limit
    (which would kill the sandbox). Never under runc: there it counts every process of uid
    65534 on the host, other runs' included."""
    ulimits = list(_LOCKDOWN["ulimits"])
    if runtime == GVISOR:
        ulimits.append(Ulimit(name="nproc", soft=processes, hard=processes))
    return ulimits


def _tmpfs_mounts(client: Any, spec: RunSpec) -> dict[str, str]:
    # An image's VOLUME would otherwise become an anonymous volume on the host disk, writable
    # without limit; shadow each one with a size-limited tmpfs (charged to the memory limit).
    tmp = f"size={spec.limits.tmp_mb}m,mode=1777"
    declared = client.images.get(spec.image).attrs.get("Config", {}).get("Volumes") or {}
    taken = {"/input", "/output", "/submission"}
    mounts = {path: tmp for path in declared if path not in taken}
    mounts["/tmp"] = tmp
    return mounts


def _log_config(log_bytes: int) -> LogConfig:
    # Rotating json-file keeps host disk bounded while holding at least the tail we report
    # (json framing and escaping inflate each line, hence the factor).
    size = max(MIB, 8 * log_bytes)
    return LogConfig(
        type=LogConfig.types.JSON, config={"max-size": str(size), "max-file": "2"}
    )


def _wait_or_kill(container: Any, seconds: int) -> bool:
    """Wait up to `seconds`; kill on overrun. True when the container was killed."""
    try:
        container.wait(timeout=seconds)
        return False
    except requests.exceptions.RequestException:
        pass  # read timeout: decide below from the container's state, not the exception
    container.reload()
    if container.status != "running":
        return False
    try:
        container.kill()
    except docker.errors.APIError:
        container.reload()
        if container.status == "running":
            raise
        return False
    container.wait(timeout=KILL_WAIT_S)
    return True


def _log_tail(container: Any, limit: int) -> str:
    tail = bytearray()
    for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=False):
        tail += chunk
        if len(tail) > 2 * limit:
            del tail[:-limit]
    return bytes(tail[-limit:] if limit > 0 else b"").decode("utf-8", errors="replace")


def _collect_output(keeper: Any, output_dir: Path, output_mb: int) -> bool:
    """Copy the keeper's /output into `output_dir`; True when the output was too large."""
    limit = output_mb * MIB
    chunks, _stat = keeper.get_archive("/output")
    try:
        stream = io.BufferedReader(_IterReader(chunks), buffer_size=MIB)
        used = _extract_regular_files(stream, output_dir, limit)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    # A write that hit ENOSPC leaves the volume (nearly) full; the slack covers tmpfs
    # bookkeeping. Judged from the archive (no exec into the keeper: it costs ~90 ms).
    return used is None or used >= limit - max(64 * 1024, limit // 100)


def _extract_regular_files(stream: IO[bytes], dest: Path, limit_bytes: int) -> int | None:
    """Extract regular files from the tar stream of /output; stop at the byte or file cap.

    Returns the tmpfs space the files take (whole pages), or None when a cap was hit. Links,
    devices and paths escaping `dest` are skipped, and files are written with our own open()
    so nothing in the tar chooses modes or owners.
    """
    dest.mkdir(parents=True, exist_ok=True)
    copied, used, files = 0, 0, 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            relative = _relative_output_path(member.name)
            if relative is None or not member.isreg():
                continue
            files += 1
            if copied + member.size > limit_bytes or files > MAX_OUTPUT_FILES:
                return None
            copied += member.size
            used += -(-member.size // PAGE) * PAGE
            target = dest.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # isreg() members always have data
            with target.open("wb") as sink:
                while block := source.read(MIB):
                    sink.write(block)
    return used


def _relative_output_path(name: str) -> PurePosixPath | None:
    parts = PurePosixPath(name).parts
    if not parts or parts[0] != "output":
        return None
    rest = parts[1:]
    if not rest or any(p in ("", ".", "..") or "/" in p for p in rest):
        return None
    return PurePosixPath(*rest)


def _remove_labelled(resources: Iterable[Any], prefix: str, keep: frozenset[str]) -> list[str]:
    removed = []
    for resource in resources:
        run = (resource.attrs.get("Labels") or resource.attrs.get("Config", {}).get("Labels") or {})
        run_name = run.get(LABEL_RUN)
        if run_name is None or not resource.name.startswith(prefix):
            continue
        if run_name in keep or resource.name in keep:
            continue
        _remove(resource)
        removed.append(resource.name)
    return removed


def _start(client: Any, config: dict[str, Any]) -> Any:
    container = _create(client, config)
    container.start()
    return container


def _create(client: Any, config: dict[str, Any]) -> Any:
    """`client.containers.create(**config)`, with the host-wide /proc and /sys files masked
    under runc. The SDK's create() has no argument for the engine's HostConfig.MaskedPaths,
    so the SDK's own translation of the arguments is used and the key added to it."""
    if config.get("runtime") != RUNC:
        return client.containers.create(**config)
    arguments = _create_container_args({**config, "version": client.api._version})
    arguments["host_config"]["MaskedPaths"] = list(MASKED_PATHS)
    created = client.api.create_container(**arguments)
    return client.containers.get(created["Id"])


def _runtime_choice(given: str | None) -> str:
    choice = given or os.environ.get(RUNTIME_ENV) or "auto"
    if choice not in RUNTIME_CHOICES:
        raise ValueError(f"{RUNTIME_ENV} must be one of {', '.join(RUNTIME_CHOICES)}, "
                         f"not {choice!r}")
    return choice


_RESOLVED: dict[int, str] = {}
_RESOLVING = threading.Lock()


def resolve_runtime(client: Any, image: str) -> str:
    """What `auto` means on this engine: `runsc` when the engine has it registered and a
    locked-down probe container of `image` runs under it and exits 0, else `runc` (logged).
    Decided once per process (keyed by process id, as the shared client)."""
    pid = os.getpid()
    with _RESOLVING:
        if pid not in _RESOLVED:
            _RESOLVED[pid] = GVISOR if _gvisor_works(client, image) else RUNC
            logger.info("sandbox runtime: %s", _RESOLVED[pid])
        return _RESOLVED[pid]


def _gvisor_works(client: Any, image: str) -> bool:
    if GVISOR not in (client.info().get("Runtimes") or {}):
        logger.warning("the engine has no %s runtime (scripts/register_runsc.sh): models run "
                       "under runc with host-wide /proc and /sys files masked", GVISOR)
        return False
    name = f"heldout-probe-{uuid.uuid4().hex[:12]}"
    try:
        container = _create(client, {
            "image": image, "command": ["sleep", "0"],
            "entrypoint": [], "name": name, "user": CONTAINER_USER, "runtime": GVISOR,
            "labels": _labels(name, "probe"), "tmpfs": {"/tmp": "size=16m,mode=1777"},
            "pids_limit": _host_pids(16, GVISOR), "mem_limit": "256m",
            "memswap_limit": "256m", "init": True,
            "detach": True, **_LOCKDOWN,
        })
        try:
            container.start()
            status = container.wait(timeout=PROBE_TIMEOUT_S).get("StatusCode")
        finally:
            _remove(container)
    except ENGINE_ERRORS as exc:
        logger.warning("%s is registered but a probe run failed (%s): models run under runc "
                       "with host-wide /proc and /sys files masked", GVISOR, exc)
        return False
    if status != 0:
        logger.warning("a probe run under %s exited %s: models run under runc", GVISOR, status)
    return bool(status == 0)


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    """A small thread pool per worker process (made on first use) for engine calls that can
    overlap: they are network round trips to the engine, not CPU work."""
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS[pid] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="engine")
    return _POOLS[pid]


def _remove_or_raise(client: Any, name: str) -> None:
    leftovers = _remove_run_resources(client, name)
    if leftovers:
        raise BackendError(f"could not remove {leftovers} after run {name}")


def _remove_in_background(name: str) -> None:
    """After a finished run (its output already copied): remove its container, keeper and
    volume off the critical path. What fails here is logged; the sweeper removes orphans."""
    leftovers = _remove_run_resources(shared_client(), name)
    if leftovers:
        logger.error("could not remove %s after run %s", leftovers, name)


def _remove(resource: Any) -> None:
    try:
        if isinstance(resource, docker.models.containers.Container):
            resource.remove(force=True, v=True)  # v: also any anonymous volumes
        else:
            resource.remove(force=True)
    except docker.errors.NotFound:
        pass


def _remove_run_resources(client: Any, name: str) -> list[str]:
    """Remove the model container, keeper and volume of run `name`; never raises.

    Returns what could not be removed (the caller decides whether that is an error).
    """
    failed = []
    for collection, resource_name in (
        (client.containers, name),
        (client.containers, name + KEEPER_SUFFIX),
        (client.volumes, name + VOLUME_SUFFIX),
    ):
        try:
            _remove(collection.get(resource_name))
        except docker.errors.NotFound:
            continue
        except Exception:  # noqa: BLE001 - cleanup must go on; reported by the caller
            logger.exception("could not remove %s", resource_name)
            failed.append(resource_name)
    return failed


class _IterReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for tarfile and requests)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class _ArchiveSanitizer:
    """Re-streams a `docker save` archive without tags, checking it holds one image.

    Runs as the engine reads the upload, so nothing is buffered whole. On a problem it
    records `error` and raises, which aborts the chunked upload mid-body: the engine then
    loads nothing, because it unpacks the whole archive before importing any image (a
    stream that merely ended early could be taken for a complete legacy archive).
    """

    MAX_MANIFEST_BYTES = MIB

    def __init__(self, archive: Path) -> None:
        self._archive = archive
        self.error: Exception | None = None

    def chunks(self) -> Iterator[bytes]:
        try:
            with tarfile.open(self._archive, mode="r|*") as tar:
                for member in tar:
                    yield from self._member(tar, member)
            yield tarfile.NUL * (2 * tarfile.BLOCKSIZE)
        except Exception as exc:
            self.error = exc
            raise

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
        if member.name.lstrip("./") == "repositories":
            return  # the legacy tag list
        if member.name.lstrip("./") == "manifest.json":
            yield from _tar_entry(member, self._untagged_manifest(tar, member))
            return
        yield member.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if member.isreg():
            source = tar.extractfile(member)
            assert source is not None
            while block := source.read(MIB):
                yield block
            yield _padding(member.size)

    def _untagged_manifest(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
        if member.size > self.MAX_MANIFEST_BYTES:
            raise ValueError("manifest.json too large")
        source = tar.extractfile(member)
        assert source is not None
        manifest = json.loads(source.read())
        if not isinstance(manifest, list) or len(manifest) != 1:
            raise ValueError("the archive must hold exactly one image")
        manifest[0]["RepoTags"] = None
        return json.dumps(manifest).encode()


def _tar_entry(template: tarfile.TarInfo, data: bytes) -> Iterator[bytes]:
    info = tarfile.TarInfo(template.name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = template.mtime
    yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    yield data
    yield _padding(len(data))


def _padding(size: int) -> bytes:
    remainder = size % tarfile.BLOCKSIZE
    return tarfile.NUL * (tarfile.BLOCKSIZE - remainder) if remainder else b""
