"""Benchmark: what gVisor (runsc) costs per run against runc, on the real Docker engine.

Run from the repository root (the engine must have runsc registered: scripts/start_docker.sh):

    python bench/bench_sandbox.py            # 7 rounds
    python bench/bench_sandbox.py --rounds 3 # a quick run
    python bench/bench_sandbox.py --scan     # also: which /proc and /sys files move under each
    python bench/bench_sandbox.py --rounds 0 --contention   # only the contention channel

Measured, in one process, with the platform's own DockerBackend (keeper, limits and copy-out
included: the wall time of `backend.run`, after which the worker judges the output; the
containers' removal goes on in the background and is waited for, untimed), for two
bundles on 2,000 synthetic cases (labelled as such):
1. `trivial`: predict.py reads the ids with the csv module and writes a constant score.
2. `sklearn`: `import numpy, pandas, sklearn`, fits a logistic regression on 2,000 x 20
   synthetic rows and writes its scores.
Rounds are interleaved (each round runs every bundle under both runtimes, the runtime order
alternating from round to round) because this VM drifts; figures are medians over rounds,
and the ratio is runsc's median over runc's median in this same run. Also printed: the
model container's own time (`RunResult.duration_s`, start to exit) for each.

`--contention` measures what remains between two runs at once: a hidden run encodes random
bits (busy on both cores for a 1, asleep for a 0, one bit per --slot s) while a public run,
started alongside, counts its own loop iterations per slot and prints the counts (as a
sanity log would); a slot slower than the median reads as a 1. Printed: bits recovered
correctly out of those sent, and the raw rate that makes.

`--scan` runs, under each runtime, a model that reads every /proc and /sys file it can, then
again while another run forks, allocates 150 MB, creates files and burns CPU, and prints the
files whose content changed (how MASKED_PATHS in scoring/backends/docker.py was chosen).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from heldout_kernel.runtime_image import ensure_runtime_image  # noqa: E402
from heldout_kernel.sandbox.base import Limits, RunSpec  # noqa: E402
from heldout_kernel.sandbox.docker import GVISOR, RUNC, DockerBackend  # noqa: E402

CASES = 2000
LIMITS = Limits(cpus=1.0, memory_mb=1024, seconds=300, pids=64, output_mb=16, tmp_mb=64)

TRIVIAL = """
import csv
with open("/input/features.csv") as f:
    ids = [row["id"] for row in csv.DictReader(f)]
with open("/output/predictions.csv", "w") as out:
    out.write("id,score\\n")
    out.writelines(f"{i},0.5\\n" for i in ids)
"""

SKLEARN = """
import numpy as np, pandas as pd, sklearn
from sklearn.linear_model import LogisticRegression
frame = pd.read_csv("/input/features.csv", dtype={"id": str})
X = frame.drop(columns=["id"]).to_numpy()
y = (X[:, 0] + X[:, 1] > 0).astype(int)  # SYNTHETIC target
model = LogisticRegression(max_iter=200).fit(X, y)
pd.DataFrame({"id": frame["id"], "score": model.predict_proba(X)[:, 1]}).to_csv(
    "/output/predictions.csv", index=False)
"""

SCANNER = """
import os, sys, time
def snap():
    seen = {}
    for top in ("/proc", "/sys"):
        for folder, dirs, files in os.walk(top):
            if folder == "/proc":
                dirs[:] = [d for d in dirs if not d.isdigit() and d not in ("self", "thread-self")]
            for name in files:
                path = os.path.join(folder, name)
                try:
                    with open(path, "rb") as f:
                        seen[path] = f.read(65536)
                except OSError:
                    pass
    return seen
before = snap()
time.sleep(float(os.environ["WAIT"]))
after = snap()
print("readable", len(before))
print("\\n".join(sorted(p for p in before if p in after and before[p] != after[p])))
"""

NOISE = """
import os, time
for _ in range(300):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
block = bytearray(150 * 1024 * 1024)
block[::4096] = b"x" * len(block[::4096])
for i in range(2000):
    open(f"/tmp/f{i}", "w").close()
start = time.time()
while time.time() - start < 2:
    pass
"""


SLOT_S = 1.0
BITS = 24

SENDER = """
import os, time
start, slot = float(os.environ["START"]), float(os.environ["SLOT"])
if os.fork() == 0:
    os.environ["CHILD"] = "1"
for i, bit in enumerate(os.environ["BITS"]):
    while time.time() < start + i * slot:
        time.sleep(0.005)
    end = start + (i + 1) * slot
    if bit == "1":
        while time.time() < end:
            pass
if not os.environ.get("CHILD"):
    os.wait()
"""

RECEIVER = """
import os, time
start, slot, bits = float(os.environ["START"]), float(os.environ["SLOT"]), int(os.environ["N"])
while time.time() < start:
    time.sleep(0.005)
counts = []
for i in range(bits):
    end, n = start + (i + 1) * slot, 0
    while time.time() < end:
        n += 1
    counts.append(n)
print(" ".join(map(str, counts)))
"""


def stage(root: Path, name: str, code: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "predict.py").write_text(code)
    return folder


def make_inputs(root: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    folder = root / "input"
    folder.mkdir()
    columns = ",".join(f"x{j}" for j in range(20))
    rows = (f"c{i}," + ",".join(f"{v:.4f}" for v in rng.normal(size=20)) for i in range(CASES))
    (folder / "features.csv").write_text(f"id,{columns}\n" + "\n".join(rows) + "\n")
    return folder


def open_up(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # models run as uid 65534


def timed_run(backend: DockerBackend, image: str, inputs: Path, bundle: Path,
              root: Path, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    name = f"heldout-bench-{uuid.uuid4().hex[:10]}"
    spec = RunSpec(name=name, image=image, input_dir=inputs, output_dir=root / name,
                   limits=LIMITS, env=env or {"HELDOUT_TASK": "binary"},
                   command=("python", "predict.py"), submission_dir=bundle)
    started = time.perf_counter()
    result = backend.run(spec)
    wall = time.perf_counter() - started
    backend.wait_for_cleanup()  # off the critical path in the worker; not timed
    if result.exit_code != 0:
        raise SystemExit(f"{bundle.name} exited {result.exit_code}: {result.log_tail}")
    return wall, result.duration_s, result.log_tail


def figure(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"FIGURE\t{name}\t{value:.2f}\t{unit}\t{target}", flush=True)


def bench(rounds: int, image: str, inputs: Path, bundles: dict[str, Path], root: Path) -> None:
    backends = {GVISOR: DockerBackend(runtime=GVISOR), RUNC: DockerBackend(runtime=RUNC)}
    walls: dict[tuple[str, str], list[float]] = {}
    inside: dict[tuple[str, str], list[float]] = {}
    for number in range(rounds + 1):  # round 0 warms the page cache and is not counted
        order = [GVISOR, RUNC] if number % 2 else [RUNC, GVISOR]
        for kind, bundle in bundles.items():
            for runtime in order:
                wall, duration, _ = timed_run(backends[runtime], image, inputs, bundle, root)
                if number:
                    walls.setdefault((kind, runtime), []).append(wall)
                    inside.setdefault((kind, runtime), []).append(duration)
        print(f"round {number}{' (warm-up)' if not number else ''} done", flush=True)
    for kind in bundles:
        for runtime in (RUNC, GVISOR):
            spread = walls[kind, runtime]
            print(f"{kind:8} {runtime:6} run {statistics.median(spread):6.2f} s "
                  f"(min {min(spread):.2f}, max {max(spread):.2f}); model container "
                  f"{statistics.median(inside[kind, runtime]):.2f} s")
        runc, gvisor = (statistics.median(walls[kind, r]) for r in (RUNC, GVISOR))
        figure(f"sandbox run, {kind} bundle, runc", runc, "s")
        figure(f"sandbox run, {kind} bundle, runsc (gVisor)", gvisor, "s")
        figure(f"  runsc against runc, {kind} bundle", gvisor / runc, "x", "cost of gVisor")


def scan(image: str, inputs: Path, root: Path) -> None:
    scanner, noise = stage(root, "scanner", SCANNER), stage(root, "noise", NOISE)
    open_up(root)
    for runtime in (RUNC, GVISOR):
        backend, noisy = DockerBackend(runtime=runtime), DockerBackend(runtime=RUNC)
        found: dict[str, str] = {}

        def read(backend: DockerBackend = backend, found: dict[str, str] = found) -> None:
            found["log"] = timed_run(backend, image, inputs, scanner, root, {"WAIT": "10"})[2]

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(4)  # the scanner's first pass is done (it reads thousands of files)
        timed_run(noisy, image, inputs, noise, root)
        reader.join()
        print(f"--- files that moved under {runtime} (masked, if runc):\n{found['log']}")


def contention(image: str, inputs: Path, root: Path, slot: float) -> None:
    import random

    sender, receiver = stage(root, "sender", SENDER), stage(root, "receiver", RECEIVER)
    open_up(root)
    for runtime in (GVISOR, RUNC):
        backend = DockerBackend(runtime=runtime)
        bits = "".join(random.choice("01") for _ in range(BITS))
        env = {"START": f"{time.time() + 8:.3f}", "SLOT": str(slot), "BITS": bits,
               "N": str(BITS)}
        found: dict[str, str] = {}

        def send(backend: DockerBackend = backend, env: dict[str, str] = env) -> None:
            timed_run(backend, image, inputs, sender, root, env)

        thread = threading.Thread(target=send)
        thread.start()
        found["log"] = timed_run(backend, image, inputs, receiver, root, env)[2]
        thread.join()
        counts = [int(n) for n in found["log"].split()]
        middle = statistics.median(counts)
        read = "".join("1" if n < middle else "0" for n in counts)
        right = sum(a == b for a, b in zip(bits, read, strict=True))
        print(f"{runtime}: sent {bits}\n{' ' * len(runtime)}  read {read}  "
              f"({right}/{BITS} right; loop counts {min(counts)}..{max(counts)})")
        figure(f"contention channel, {runtime}, bits right of {BITS} at {1 / slot:g} bit/s",
               right, "bits", f"{BITS // 2} = chance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scan", action="store_true")
    parser.add_argument("--contention", action="store_true")
    parser.add_argument("--slot", type=float, default=SLOT_S, help="seconds per bit")
    args = parser.parse_args()
    image = ensure_runtime_image()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        root = Path(tmp)
        inputs = make_inputs(root)
        bundles = {"trivial": stage(root, "trivial", TRIVIAL),
                   "sklearn": stage(root, "sklearn", SKLEARN)}
        open_up(root)
        print(f"{args.rounds} rounds of {', '.join(bundles)} under runc and runsc, "
              f"{CASES} SYNTHETIC cases", flush=True)
        if args.rounds:
            bench(args.rounds, image, inputs, bundles, root)
        if args.contention:
            contention(image, inputs, root, args.slot)
        if args.scan:
            scan(image, inputs, root)


if __name__ == "__main__":
    main()
