#!/usr/bin/env bash
# Start a Docker engine when none answers (CI and fresh machines have none running).
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
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
