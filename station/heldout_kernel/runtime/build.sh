#!/usr/bin/env bash
# Build the Heldout runtime image from Debian packages (debootstrap minbase + packages.txt).
#
# Tag: heldout-runtime:<first 12 hex of sha256(packages.txt + build.sh)>; also tagged :latest.
# Idempotent: when the tag exists nothing is built. The last stdout line is the tag.
# Needs root (debootstrap, chroot), debootstrap, docker and network access to the Debian mirror
# that apt on this host is configured with (read from /etc/apt at build time;
# HELDOUT_DEBIAN_MIRROR / HELDOUT_DEBIAN_SECURITY_MIRROR override it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
suite="bookworm"
repo="heldout-runtime"

recipe_hash() {
    # Keep in sync with scoring/images.py:RECIPE_FILES (same files, same order).
    cat "$here/packages.txt" "$here/build.sh" | sha256sum | cut -c1-12
}

# Print the first URI of an apt source (deb822 or one-line format) serving suite $1.
apt_source_uri() {
    local want="$1" f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v want="$want" '
            BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; uris = ""; suites = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^[ \t]*#/) continue
                    if (tolower($i) ~ /^types:/) types = substr($i, index($i, ":") + 1)
                    if (tolower($i) ~ /^uris:/) uris = substr($i, index($i, ":") + 1)
                    if (tolower($i) ~ /^suites:/) suites = substr($i, index($i, ":") + 1)
                }
                if (types !~ /(^|[ \t])deb([ \t]|$)/) next
                n = split(suites, s, /[ \t]+/)
                for (j = 1; j <= n; j++) if (s[j] == want) {
                    split(uris, u, /[ \t]+/)
                    for (k = 1; k in u; k++) if (u[k] != "") { print u[k]; exit }
                }
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v want="$want" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == want) print $i
            }' "$f"
    done
}

first_line() { head -n 1 || true; }

# Empty stand-in packages (the equivs technique) for dependencies models never use:
# - python3-pythran: scipy declares it at run time but needs it only to build; it would pull
#   gcc, g++ and boost (~500 MB).
# - mime-support: python3-pil wants it (or Tk) only for mailcap, which pulls perl (~47 MB);
#   media-types, what Python's mimetypes reads, is installed anyway.
stub_packages="python3-pythran mime-support"

write_stub_debs() {
    local dir="$1" name
    for name in $stub_packages; do
        mkdir -p "$dir/$name/DEBIAN"
        cat >"$dir/$name/DEBIAN/control" <<CONTROL
Package: $name
Version: 999:0~heldout
Architecture: all
Maintainer: Heldout <heldout@localhost>
Description: empty stand-in for $name (build-time only dependency)
CONTROL
        dpkg-deb --root-owner-group --build "$dir/$name" "$dir/$name.deb" >&2
    done
}

make_rootfs() {
    local rootfs="$1" mirror security packages
    mirror="${HELDOUT_DEBIAN_MIRROR:-$(apt_source_uri "$suite" | first_line)}"
    security="${HELDOUT_DEBIAN_SECURITY_MIRROR:-$(apt_source_uri "$suite-security" | first_line)}"
    if [ -z "$mirror" ]; then
        echo "build.sh: no apt source for $suite found in /etc/apt; set HELDOUT_DEBIAN_MIRROR" >&2
        exit 2
    fi
    packages="$(grep -v '^[[:space:]]*\(#\|$\)' "$here/packages.txt" | paste -sd' ' -)"
    echo "build.sh: debootstrap $suite from $mirror, then: $packages" >&2
    debootstrap --variant=minbase --components=main "$suite" "$rootfs" "$mirror" >&2
    {
        echo "deb $mirror $suite main"
        echo "deb $mirror $suite-updates main"
        if [ -n "$security" ]; then echo "deb $security $suite-security main"; fi
    } >"$rootfs/etc/apt/sources.list"
    mkdir -p "$rootfs/tmp/stubs"
    write_stub_debs "$rootfs/tmp/stubs"
    # Recommends off: pandas and scipy recommend matplotlib, numexpr, ... which models can't
    # rely on anyway (the contract lists the packages above).
    chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive sh -ec "
            dpkg -i /tmp/stubs/*.deb
            apt-mark hold $stub_packages
            apt-get -q update
            apt-get -q -y upgrade
            apt-get -q -y install --no-install-recommends $packages
            apt-get -q clean
            rm -rf /tmp/stubs" >&2
}

slim_rootfs() {
    local rootfs="$1"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
        "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/* \
        "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/lintian \
        "$rootfs"/usr/share/locale "$rootfs"/usr/share/doc-base
    # Keep the copyright files: derived participant images redistribute these packages.
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    # Library self-tests are never imported by models and are a large part of the size.
    find "$rootfs/usr/lib/python3/dist-packages" -type d -name tests -prune -exec rm -rf {} +
    # The engine provides these per container; the build host's values must not leak in.
    : >"$rootfs/etc/resolv.conf"
    : >"$rootfs/etc/hostname"
}

import_rootfs() {
    local rootfs="$1" tag="$2"
    tar --numeric-owner --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' \
        -C "$rootfs" -c . |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'ENV HOME=/tmp' \
            --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
            --change 'ENV PYTHONUNBUFFERED=1' \
            --change 'USER 65534:65534' \
            --change 'WORKDIR /tmp' \
            --change 'CMD ["python3"]' \
            --change "LABEL org.heldout.runtime.recipe=$(recipe_hash)" \
            - "$tag" >&2
}

cleanup_dir() {
    local dir="$1"
    [ -d "$dir" ] || return 0
    # debootstrap may leave /proc or /sys mounted in the target after a failure.
    findmnt -rn -o TARGET | grep -F "$dir/" | sort -r | xargs -r -n1 umount -l || true
    rm -rf --one-file-system "$dir"
}

workdir=""

main() {
    local tag
    tag="$repo:$(recipe_hash)"
    # Serialise concurrent builds (a test session and a worker may start at once).
    exec 9>"${TMPDIR:-/tmp}/heldout-runtime-build.lock"
    flock 9
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        workdir="$(mktemp -d "${TMPDIR:-/var/tmp}/heldout-runtime.XXXXXX")"
        trap 'cleanup_dir "$workdir"' EXIT
        make_rootfs "$workdir/rootfs"
        slim_rootfs "$workdir/rootfs"
        import_rootfs "$workdir/rootfs" "$tag"
    fi
    docker tag "$tag" "$repo:latest" >&2
    echo "$tag"
}

main "$@"
