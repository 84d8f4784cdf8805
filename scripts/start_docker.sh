#!/usr/bin/env bash
# Start a Docker engine when none answers (CI and fresh machines have none running), with
# gVisor's runsc registered as the runtime `runsc` (scripts/register_runsc.sh). A running
# engine whose daemon.json just gained runsc is reloaded with SIGHUP (running containers go
# on). Idempotent.
set -euo pipefail
here=$(dirname "$0")
registered=skipped
if [ "$(id -u)" = 0 ]; then registered=$("$here/register_runsc.sh"); fi

has_runsc() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep '"runsc"' >/dev/null; }

if docker info >/dev/null 2>&1; then
  if [ "$registered" = registered ] || { [ "$registered" = unchanged ] && ! has_runsc; }; then
    pid=$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd || true)
    if [ -n "$pid" ]; then
      kill -HUP "$pid"
      for _ in $(seq 1 30); do has_runsc && exit 0; sleep 1; done
      echo "dockerd did not pick up the runsc runtime after SIGHUP" >&2
      exit 1
    fi
  fi
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "No Docker engine answers and we are not root: start dockerd yourself." >&2
  exit 1
fi
mkdir -p /var/log
nohup dockerd >/var/log/heldout-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not start; see /var/log/heldout-dockerd.log" >&2
tail -20 /var/log/heldout-dockerd.log >&2 || true
exit 1
