#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build QEMU: `build-qemu.sh patched` (our series, linking libqemurs.a) or
# `build-qemu.sh upstream` (the baseline for `make bench`).  Configures once,
# then every run is an incremental ninja build (ccache is picked up by meson).
source "$(dirname "$0")/common.sh"

variant=${1:?usage: build-qemu.sh patched|upstream}
case $variant in
    patched)  src=$PATCHED;  build=$BUILD_PATCHED
              bash "$REPO_ROOT/scripts/apply-series.sh" ;;
    upstream) src=$PRISTINE; build=$BUILD_UPSTREAM ;;
    *) die "unknown variant $variant" ;;
esac

export PATH=$VENV/bin:$PATH
# QEMU's configure names the compiler in meson's machine file, which keeps
# meson from adding ccache by itself: name it here.
if command -v ccache >/dev/null; then export CC="ccache gcc"; else export CC=gcc; fi
# The patched build's meson glue records where this checkout is, so a
# checkout elsewhere (a fresh clone) must reconfigure; ccache keeps it cheap.
config="${QEMU_CONFIGURE_FLAGS[*]} src=$src CC=$CC"
[ "$variant" = patched ] && config+=" qemurs=$REPO_ROOT"
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$build/.qemurs-config" 2>/dev/null)" != "$config" ]; then
    say "configuring $variant QEMU in $build"
    rm -rf "$build"
    mkdir -p "$build"
    (cd "$build" && "$src/configure" --python="$VENV/bin/python3" "${QEMU_CONFIGURE_FLAGS[@]}" \
        >configure.log 2>&1) || { tail -n 40 "$build/configure.log"; die "configure failed"; }
    echo "$config" >"$build/.qemurs-config"
fi

# Firmware: a binary run from the build directory looks in qemu-bundle/<firmwarepath>.
bash "$REPO_ROOT/scripts/link-firmware.sh" "$build"

say "building $variant QEMU ($build)"
targets=("${QEMU_TEST_TARGETS[@]}")
# Added by the series; absent upstream, so filtered out there below.
targets+=(tests/unit/test-co-storage tests/unit/test-co-worker
          tests/bench/monitor-cur-bench tests/bench/co-worker-bench)
# Only ask ninja for targets this tree defines.
known=$(ninja -C "$build" -t targets all | cut -d: -f1)
want=(all)
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$known" && want+=("$t")
done
ninja -C "$build" "${want[@]}"
say "$variant QEMU: $build/qemu-system-x86_64"
