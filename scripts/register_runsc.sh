#!/usr/bin/env bash
# Register gVisor's runsc (Debian package `runsc`) as the Docker runtime `runsc` in
# /etc/docker/daemon.json, merged with whatever the file already holds. Idempotent: exits 0
# and prints "registered" when it changed the file, "unchanged" when runsc was already there
# with our arguments, "skipped: ..." when it cannot (no runsc, not root). The caller reloads
# dockerd (SIGHUP) when the file changed; see scripts/start_docker.sh.
#
# Why gVisor: models read /proc and /sys through gVisor's own kernel, so counters another
# run changes (forks in /proc/stat, memory in /proc/meminfo, ...) are never the host's.
# --platform=ptrace needs no /dev/kvm (none in most VMs); --network=none: the sandbox has no
# network stack at all (the engine's --network none is kept too).
set -euo pipefail
DAEMON_JSON=${HELDOUT_DAEMON_JSON:-/etc/docker/daemon.json}
RUNSC=$(command -v runsc || true)
if [ -z "$RUNSC" ]; then echo "skipped: runsc is not installed"; exit 0; fi
if [ ! -w "$(dirname "$DAEMON_JSON")" ] && [ "$(id -u)" != 0 ]; then
  echo "skipped: not root, cannot write $DAEMON_JSON"; exit 0
fi
mkdir -p "$(dirname "$DAEMON_JSON")"
python3 - "$DAEMON_JSON" "$RUNSC" <<'EOF'
import json, os, sys

path, runsc = sys.argv[1], sys.argv[2]
wanted = {"path": runsc, "runtimeArgs": ["--platform=ptrace", "--network=none"]}
try:
    with open(path) as handle:
        text = handle.read()
except FileNotFoundError:
    text = ""
config = json.loads(text) if text.strip() else {}
if not isinstance(config, dict):
    sys.exit(f"{path} does not hold a JSON object; fix it by hand")
runtimes = config.setdefault("runtimes", {})
if runtimes.get("runsc") == wanted:
    print("unchanged")
    sys.exit(0)
runtimes["runsc"] = wanted
partial = path + ".heldout-tmp"
with open(partial, "w") as handle:
    json.dump(config, handle, indent=2)
    handle.write("\n")
os.replace(partial, path)  # dockerd never reads a half-written file
print("registered")
EOF
