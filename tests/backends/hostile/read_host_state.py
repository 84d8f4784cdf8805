"""A team's public (sanity-lane) run reading what the kernel says about the machine: every
file another run could move, sampled SAMPLES times SECONDS apart, written to report.json and
printed (as a sanity log the team reads would carry them)."""
import glob
import json
import os
import re
import time

FILES = [
    "/proc/stat", "/proc/meminfo", "/proc/loadavg", "/proc/uptime", "/proc/vmstat",
    "/proc/zoneinfo", "/proc/buddyinfo", "/proc/swaps", "/proc/diskstats", "/proc/schedstat",
    "/proc/interrupts", "/proc/softirqs", "/proc/cgroups", "/proc/locks",
    "/proc/pressure/cpu", "/proc/pressure/memory", "/proc/pressure/io",
    "/proc/sys/fs/file-nr", "/proc/sys/fs/inode-nr", "/proc/sys/fs/dentry-state",
    "/sys/kernel/uevent_seqnum",
    *glob.glob("/sys/devices/system/node/node*/meminfo"),
    *glob.glob("/sys/devices/system/node/node*/vmstat"),
    *glob.glob("/sys/devices/system/cpu/cpu*/cpuidle/state*/usage"),
    *glob.glob("/sys/block/*/stat"),
]


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as exc:
        return f"unreadable: {exc.__class__.__name__}"


def field(text, name):
    match = re.search(rf"^{name}:?\s+(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


samples = []
for i in range(int(os.environ.get("SAMPLES", "1"))):
    if i:
        time.sleep(float(os.environ.get("SECONDS", "0.1")))
    snapshot = {path: read(path) for path in FILES}
    samples.append(snapshot)
    print("processes", field(snapshot["/proc/stat"], "processes"),
          "MemFree", field(snapshot["/proc/meminfo"], "MemFree"),
          "loadavg", snapshot["/proc/loadavg"].strip(), flush=True)
with open("/output/report.json", "w") as out:
    json.dump({"samples": samples}, out)
