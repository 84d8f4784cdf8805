"""Runs cannot read what other runs change in the host's kernel (issue 20, attack 1).

The attack: a hidden-lane run forked V x 1500 times, and the team's next submission printed
the `processes` line of /proc/stat in its sanity-lane log (which the team reads): V came back
exactly, 3 of 3 times. Through /proc/meminfo the same worked between two runs at once. Each
test runs under the default runtime (gVisor where the engine has it; the project's scripts
register it) and under the runc fallback (host-wide files masked). The runtime is chosen as
the worker and the stations choose it: by the environment variable HELDOUT_SANDBOX_RUNTIME.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from heldout_kernel.runtime_image import runtime_image_tag
from heldout_kernel.sandbox.base import Limits, RunResult, RunSpec
from heldout_kernel.sandbox.docker import RUNTIME_ENV, DockerBackend, resolve_runtime, shared_client

from .conftest import HOSTILE, SESSION_PREFIX, docker_cli, leftovers, readable

pytestmark = pytest.mark.docker

LIMITS = Limits(cpus=1.0, memory_mb=256, seconds=60, pids=64, output_mb=16, tmp_mb=16,
                log_bytes=64 * 1024)
HIDDEN_FORKS = (40, 160, 40)  # two distinct hidden values, the first again
HELD_MB = 400
MEMINFO_SPREAD_KB = 16 * 1024  # far below HELD_MB: what the reader's own Python moves


@pytest.fixture(params=["default", "runc"])
def sandbox(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
            runtime_image: str) -> DockerBackend:
    if request.param == "runc":
        monkeypatch.setenv(RUNTIME_ENV, "runc")
    else:
        monkeypatch.delenv(RUNTIME_ENV, raising=False)
    return DockerBackend()


Run = Callable[..., tuple[RunResult, Path]]


@pytest.fixture
def run(sandbox: DockerBackend, input_dir: Path, tmp_path: Path) -> Run:
    def run_script(script: str, env: dict[str, str], limits: Limits = LIMITS
                   ) -> tuple[RunResult, Path]:
        name = f"{SESSION_PREFIX}state-{script}-{uuid.uuid4().hex[:6]}"
        folder = tmp_path / name
        (folder / "submission").mkdir(parents=True)
        shutil.copyfile(HOSTILE / f"{script}.py", folder / "submission" / "predict.py")
        readable(folder)
        spec = RunSpec(name=name, image=runtime_image_tag(), input_dir=input_dir,
                       output_dir=folder / "output", limits=limits, env=env,
                       command=("python", "predict.py"), submission_dir=folder / "submission")
        result = sandbox.run(spec)
        sandbox.wait_for_cleanup()
        assert leftovers(name) == []
        return result, folder / "output"

    return run_script


def _samples(output: Path) -> list[dict[str, str]]:
    return list(json.loads((output / "report.json").read_text())["samples"])


def _own_clock_removed(snapshot: dict[str, str]) -> dict[str, str]:
    """Under gVisor the sandbox's boot time (/proc/stat `btime`) and uptime (first field of
    /proc/uptime) are the reader's own start; nothing else may differ between reads."""
    seen = dict(snapshot)
    seen["/proc/stat"] = re.sub(r"^btime .*$", "", seen["/proc/stat"], flags=re.MULTILINE)
    seen["/proc/uptime"] = " ".join(seen["/proc/uptime"].split()[1:])
    seen.pop("/proc/meminfo")  # the reader's own memory under gVisor: see _meminfo_spread
    return seen


def _processes(snapshot: dict[str, str]) -> int | None:
    match = re.search(r"^processes (\d+)", snapshot["/proc/stat"], re.MULTILINE)
    return int(match.group(1)) if match else None


def _meminfo_spread(snapshots: list[dict[str, str]]) -> dict[str, int]:
    """Per /proc/meminfo field, how far its value moved across `snapshots` (kB)."""
    values: dict[str, list[int]] = {}
    for snapshot in snapshots:
        for name, number in re.findall(r"^([\w()]+):\s+(\d+)", snapshot["/proc/meminfo"],
                                       re.MULTILINE):
            values.setdefault(name, []).append(int(number))
    return {name: max(seen) - min(seen) for name, seen in values.items()}


def test_a_run_recovers_nothing_of_the_forks_of_a_hidden_run_before_it(run):
    seen = []
    for forks in HIDDEN_FORKS:
        hidden, _ = run("fork_many", {"FORKS": str(forks)})
        assert hidden.exit_code == 0 and f"forked {forks}" in hidden.log_tail, hidden.log_tail
        reader, output = run("read_host_state", {"SAMPLES": "1"})
        assert reader.exit_code == 0, reader.log_tail
        seen.append(_samples(output)[0])
    # What a team could recover from its sanity log: the processes line, or any other
    # counter of the watched files that moved between its runs.
    assert len({_processes(snapshot) for snapshot in seen}) == 1, [_processes(s) for s in seen]
    normalised = [_own_clock_removed(snapshot) for snapshot in seen]
    moved = sorted(path for path in normalised[0]
                   if len({snapshot[path] for snapshot in normalised}) > 1)
    assert moved == []
    assert max(_meminfo_spread(seen).values(), default=0) < MEMINFO_SPREAD_KB


def test_a_run_reads_nothing_of_the_memory_another_run_holds_meanwhile(run):
    holder: dict[str, RunResult] = {}
    pattern = "0101010"
    thread = threading.Thread(target=lambda: holder.update(result=run(
        "hold_memory", {"MEGABYTES": str(HELD_MB), "SECONDS": "1", "PATTERN": pattern},
        Limits(**{**vars(LIMITS), "memory_mb": HELD_MB + 256}))[0]))
    thread.start()
    try:
        reader, output = run("read_host_state", {"SAMPLES": "80", "SECONDS": "0.1"})
    finally:
        thread.join()
    assert holder["result"].exit_code == 0, holder["result"].log_tail
    assert holder["result"].log_tail.count(f"holding {HELD_MB * 1024 * 1024}") == 3
    assert reader.exit_code == 0, reader.log_tail
    samples = _samples(output)
    spread = _meminfo_spread(samples)
    assert max(spread.values(), default=0) < MEMINFO_SPREAD_KB, spread
    assert len({_processes(snapshot) for snapshot in samples}) == 1
    normalised = [_own_clock_removed(snapshot) for snapshot in samples]
    moved = sorted(path for path in normalised[0]
                   if len({snapshot[path] for snapshot in normalised}) > 1)
    assert moved == []


def test_auto_chooses_gvisor_on_an_engine_set_up_by_the_project_scripts(runtime_image):
    # scripts/system_deps.sh installs runsc and scripts/start_docker.sh registers it.
    runtimes = json.loads(docker_cli("info", "--format", "{{json .Runtimes}}"))
    assert "runsc" in runtimes
    assert runtimes["runsc"]["runtimeArgs"] == ["--platform=ptrace", "--network=none"]
    assert resolve_runtime(shared_client(), runtime_image) == "runsc"
    assert DockerBackend(runtime="auto").runtime() == "runsc"
    assert DockerBackend(runtime="runc").runtime() == "runc"


def test_an_unknown_runtime_is_refused_loudly(monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "kata")
    with pytest.raises(ValueError, match="HELDOUT_SANDBOX_RUNTIME"):
        DockerBackend()
