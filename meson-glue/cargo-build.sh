#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# cargo-build.sh CARGO QEMURS_ROOT TARGET_DIR OUTPUT
# Build libqemurs.a (release) and copy it to OUTPUT only if it changed.
set -e
cargo=$1 root=$2 target=$3 out=$4
"$cargo" build --release --quiet --locked -p capi \
    --manifest-path "$root/Cargo.toml" --target-dir "$target"
cmp -s "$target/release/libqemurs.a" "$out" || cp "$target/release/libqemurs.a" "$out"
