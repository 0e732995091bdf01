# SPDX-License-Identifier: GPL-2.0-or-later
# Shared settings for the build scripts.  Sourced, not run.
# shellcheck shell=bash
# The settings are used by the scripts that source this file:
# shellcheck disable=SC2034
#
# Everything large (downloads, QEMU trees, build directories, the Python venv)
# lives in $QRS_CACHE, outside the clone, so that repeat runs and fresh clones
# on the same machine reuse it and rebuilds stay incremental.

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QRS_CACHE=${QRS_CACHE:-/var/cache/qemurs}
QEMU_VERSION=10.0.13
QEMU_DEB_VERSION=1:10.0.13+ds-0+deb13u1
QEMU_ORIG=qemu_10.0.13+ds.orig.tar.xz
QEMU_ORIG_SHA256=6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae
QEMU_DEBIAN=qemu_10.0.13+ds-0+deb13u1.debian.tar.xz
QEMU_DEBIAN_SHA256=da73c092f5684c551b0334d675eb16a3dec91e1edea94759cfb1102fa4a0364e
SHARED_QEMU_SRC=${SHARED_QEMU_SRC:-$REPO_ROOT/../shared/qemu-src}

VENV=$QRS_CACHE/venv
PRISTINE=$QRS_CACHE/qemu-pristine      # upstream + Debian's two build fixes
PATCHED=$QRS_CACHE/qemu-patched        # pristine + qemu-patches/series (a git tree)
BUILD_PATCHED=$QRS_CACHE/build-patched
BUILD_UPSTREAM=$QRS_CACHE/build-upstream

# The configure line from DESIGN.md: minimal, x86_64 system emulator with VirtFS.
QEMU_CONFIGURE_FLAGS=(
    --target-list=x86_64-softmmu --without-default-features
    --enable-virtfs --enable-attr --enable-tcg --enable-kvm
    --disable-docs --disable-download --disable-install-blobs
)

# QEMU binaries the tests and benchmarks need, besides the default targets.
QEMU_TEST_TARGETS=(
    qemu-system-x86_64
    tests/qtest/qos-test tests/qtest/qmp-test tests/qtest/qmp-cmd-test
    tests/qtest/test-hmp tests/unit/test-coroutine
)

# Identifies the patched tree's content: the pristine source and the series.
series_hash() {
    (cat "$PRISTINE/.qemurs-source"
     # shellcheck disable=SC2046 # one patch file name a line, none with spaces
     cd "$REPO_ROOT/qemu-patches" && cat series $(grep -v '^#' series)) |
        sha256sum | cut -d' ' -f1
}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
