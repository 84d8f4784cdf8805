#!/usr/bin/env bash
# Install what the platform needs from Debian's packages (idempotent): the Docker engine
# that runs models, gVisor's runsc (the hardened runtime models run under, registered with
# the engine by scripts/start_docker.sh), debootstrap to build the runtime image without a registry, pg_dump for
# the data-station test that searches the central database, nginx for the production
# proxy test, and Chromium for the browser tests. Only runs apt when something is missing.
set -euo pipefail
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v runsc >/dev/null || need+=(runsc)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v xz >/dev/null || need+=(xz-utils)
command -v pg_dump >/dev/null || need+=(postgresql-client)  # tests search a dump for leaks
[ -x /usr/sbin/nginx ] || need+=(nginx)  # the production proxy test runs Debian's nginx
if [ "${HELDOUT_WITH_BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
