#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build the C tests against include/ and the release libqemurs.a only, with
# -Wall -Wextra -Werror and ASan/UBSan, and run them.  Each test binary
# speaks TAP (tests/c/harness.h); this script relays their tests as one TAP
# stream (tests/lib/tap.sh), renumbered, and ends with the plan and the
# `c tests: N passed, N failed` line.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/lib/tap.sh"
out=$root/tests/c/build
mkdir -p "$out"
cargo build --release --quiet --locked -p capi --manifest-path "$root/Cargo.toml"
lib=$root/target/release/libqemurs.a
# The native libraries the Rust standard library needs (see meson-glue).
libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl)
cflags=(-std=gnu11 -O1 -g -Wall -Wextra -Werror "-fsanitize=address,undefined"
        -fno-sanitize-recover=undefined -fno-omit-frame-pointer -I"$root/include")
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# Every non-test .c file is support code (cohost, p9synth, p9client), built
# once and linked into every test.
support=()
for src in "$root"/tests/c/*.c; do
    [[ $src == *_test.c ]] && continue
    obj=$out/$(basename "$src" .c).o
    gcc "${cflags[@]}" -c "$src" -o "$obj"
    support+=("$obj")
done

tap_start
for src in "$root"/tests/c/*_test.c; do
    name=$(basename "$src" .c)
    gcc "${cflags[@]}" "$src" "${support[@]}" "$lib" "${libs[@]}" -o "$out/$name"
    echo "# --- $name"
    if "$out/$name" >"$out/$name.tap" 2> >(grep -v "doesn't fully support makecontext" >&2); then
        rc=0
    else
        rc=$?
    fi
    tap_relay_tap "$name" <"$out/$name.tap"
    ran=$((tap_relayed_passed + tap_relayed_failed))
    if ((tap_relayed_plan < 0)); then
        tap_not_ok "$name: no TAP plan (exit $rc)"
    elif ((ran != tap_relayed_plan)); then
        tap_not_ok "$name: ran $ran of $tap_relayed_plan tests (exit $rc)"
    elif ((rc != 0 && tap_relayed_failed == 0)); then
        tap_not_ok "$name: exit $rc"
    fi
done
tap_end "c tests"
((tap_failed == 0))
