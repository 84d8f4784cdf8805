"""`make bench`: run every bench, then print one table of the figures they report.

Each bench prints its own details and `FIGURE<TAB>name<TAB>value<TAB>unit<TAB>target` lines;
this collects those into one table (with the machine it ran on). Ratios are always against
a baseline measured in the same bench run, never against a stored number.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BENCHES = ["bench_metrics.py", "bench_bootstrap.py", "bench_froc.py", "bench_feedback.py",
           "bench_leaderboard.py", "bench_upload_memory.py", "bench_sandbox.py",
           "bench_omop.py"]


def run(script: str) -> list[list[str]]:
    print(f"\n=== {script}", flush=True)
    process = subprocess.Popen([sys.executable, str(BENCH / script)], stdout=subprocess.PIPE,
                               text=True, cwd=BENCH.parent)
    figures = []
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith("FIGURE\t"):
            figures.append(line.rstrip("\n").split("\t")[1:])
    if process.wait() != 0:
        figures.append([f"{script} FAILED (exit {process.returncode})", "", "", ""])
    return figures


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, "
            f"Python {platform.python_version()}")


def main() -> None:
    rows = [row for script in BENCHES for row in run(script)]
    width = max(len(row[0]) for row in rows) if rows else 10
    print(f"\n=== Figures ({machine()})")
    print(f"{'figure':<{width}}  {'value':>10}  {'unit':<8}  target")
    for name, value, unit, target in rows:
        print(f"{name:<{width}}  {value:>10}  {unit:<8}  {target}")


if __name__ == "__main__":
    main()
