#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build p9serve against the release libqemurs.a through pkg-config (which
# is the point: it proves target/release/qemurs.pc works).
#   build.sh [--asan] [OUTPUT]
# --asan: -O1 with ASan/UBSan (tests); default: -O2 (benchmarks).
# Default OUTPUT: target/p9serve/p9serve[-asan].  Prints the binary's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
asan=0
if [ "${1:-}" = --asan ]; then asan=1; shift; fi
if ((asan)); then
    out=${1:-$root/target/p9serve/p9serve-asan}
    cflags=(-O1 -g "-fsanitize=address,undefined" -fno-sanitize-recover=undefined
            -fno-omit-frame-pointer)
else
    out=${1:-$root/target/p9serve/p9serve}
    cflags=(-O2 -g)
fi
# The default target dir: the library CI builds.
(cd "$root" && env -u CARGO_TARGET_DIR cargo build --release --quiet --locked -p capi)
bash "$root/scripts/gen-pc.sh"
export PKG_CONFIG_PATH=$root/target/release${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2046 # pkg-config's output is meant to be split
gcc -std=gnu11 -Wall -Wextra -Werror "${cflags[@]}" -pthread \
    "$root/tests/p9serve/p9serve.c" -o "$out" \
    $(pkg-config --static --cflags --libs qemurs)
echo "$out"
