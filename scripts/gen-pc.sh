#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Write a pkg-config file for libqemurs.a, so that C programs outside QEMU
# can build with `pkg-config --static --cflags --libs qemurs`.
#   gen-pc.sh [OUTPUT]
#     the release libqemurs.a built in this checkout (`cargo build --release
#     -p capi`): target/release/qemurs.pc (PKG_CONFIG_PATH=<repo>/target/release).
#     Not committed: it holds absolute paths.
#   gen-pc.sh --prefix PREFIX OUTPUT
#     the copy `make install` puts under PREFIX: PREFIX/include/qemurs.h,
#     PREFIX/lib/libqemurs.a.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --prefix ]; then
    (($# == 3)) || { echo "usage: gen-pc.sh --prefix PREFIX OUTPUT" >&2; exit 2; }
    prefix=$2 out=$3 libdir="\${prefix}/lib"
else
    prefix=$root out=${1:-$root/target/release/qemurs.pc} libdir="\${prefix}/target/release"
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
# What the Rust standard library needs when linked statically: the list
# in meson-glue/meson.build, which `make check` compares with rustc's.
libs=$(sed -n "s/^qemurs_native_libs = \[\(.*\)\]/\1/p" "$root/meson-glue/meson.build" |
       tr -d "'," | sed 's/ *-lc$//')
[ -n "$libs" ] || { echo "gen-pc.sh: no qemurs_native_libs in meson-glue/meson.build" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.XXXXXX")
cat >"$tmp" <<PC
prefix=$prefix
includedir=\${prefix}/include
libdir=$libdir

Name: qemurs
Description: The qemurs Rust library's C API (9P server, offload, storage)
Version: ${version:-0.1.0}
Cflags: -I\${includedir}
Libs: -L\${libdir} -lqemurs
Libs.private: $libs
PC
mv "$tmp" "$out"
