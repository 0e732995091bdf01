#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make bench`: one line per comparison, both sides measured in this run:
#   BENCH name=<id> ours=<v> base=<v> unit=<u> speedup=<base/ours>
# (for every unit here, lower is better, so speedup > 1 means we are faster).
source "$(dirname "$0")/common.sh"

bash "$REPO_ROOT/scripts/build-qemu.sh" upstream >&2

ROUNDS=${BENCH_ROUNDS:-5}

bench_line() { # name ours base unit
    awk -v n="$1" -v o="$2" -v b="$3" -v u="$4" 'BEGIN {
        printf "BENCH name=%s ours=%s base=%s unit=%s speedup=", n, o, b, u
        if (o + 0 == 0) print (b + 0 == 0 ? "1.000" : "inf"); else printf "%.3f\n", b / o }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# --- current monitor: old hash table + mutex vs coroutine-specific storage ---
say "monitor_cur(): storage key vs hash table + mutex (tests/bench/monitor-cur-bench)"
while read -r tag name new old; do
    [ "$tag" = RESULT ] || continue
    bench_line "$name" "${new#new_ns=}" "${old#old_ns=}" ns/op
done < <("$BUILD_PATCHED/tests/bench/monitor-cur-bench")

# --- co_run_in_worker vs thread_pool_submit_co and the coth.h BH dance -------
say "offload: co_run_in_worker vs thread_pool_submit_co (tpco) and coth.h (tests/bench/co-worker-bench)"
while read -r tag name unit ours tpco coth; do
    [ "$tag" = RESULT ] || continue
    bench_line "${name}_vs_thread_pool_submit_co" "${ours#ours=}" "${tpco#tpco=}" "$unit"
    bench_line "${name}_vs_coth_bh_dance" "${ours#ours=}" "${coth#coth=}" "$unit"
done < <("$BUILD_PATCHED/tests/bench/co-worker-bench")

# --- coroutine lifecycle: patched vs upstream test-coroutine perf tests -------
# perf_cost_seconds BUILD TEST PATTERN: the seconds a perf test reports.
perf_seconds() {
    "$1/tests/unit/test-coroutine" -m perf -p "$2" --tap 2>&1 |
        sed -n "s/.*$3.*: \([0-9.]*\) s.*/\1/p; s/.*Run operation [0-9]* iterations \([0-9.]*\) s.*/\1/p" |
        head -n 1
}
for t in "/perf/lifecycle Lifecycle coroutine_lifecycle_1M" "/perf/cost cost coroutine_create_enter_yield_40M"; do
    # shellcheck disable=SC2086 # $t is three words: the test path, its label and its name
    set -- $t
    say "test-coroutine $1: patched vs upstream, $ROUNDS interleaved rounds"
    ours=() base=()
    for _ in $(seq "$ROUNDS"); do
        base+=("$(perf_seconds "$BUILD_UPSTREAM" "$1" "$2")")
        ours+=("$(perf_seconds "$BUILD_PATCHED" "$1" "$2")")
    done
    bench_line "$3" "$(printf '%s\n' "${ours[@]}" | median)" \
        "$(printf '%s\n' "${base[@]}" | median)" s
done

# Instruction counts are immune to the machine's noise: callgrind, counting
# only inside perf_lifecycle (1M create/enter/terminate cycles).
if command -v valgrind >/dev/null; then
    say "coroutine lifecycle instructions (callgrind, perf_lifecycle only)"
    instr() {
        local out
        out=$(mktemp)
        valgrind --tool=callgrind --toggle-collect=perf_lifecycle --callgrind-out-file="$out" \
            "$1/tests/unit/test-coroutine" -m perf -p /perf/lifecycle >/dev/null 2>&1
        sed -n 's/^summary: \([0-9]*\).*/\1/p; s/^totals: \([0-9]*\).*/\1/p' "$out" | head -n 1
        rm -f "$out"
    }
    bench_line coroutine_lifecycle_1M_instructions "$(instr "$BUILD_PATCHED")" \
        "$(instr "$BUILD_UPSTREAM")" instructions
fi

# --- 9P engine: one request through the engine and the native backend on ----
# tmpfs vs the plain system calls the request needs (rust/p9-bench).
say "9P engine per-request cost vs the syscalls it needs (rust/p9-bench)"
(cd "$REPO_ROOT" && cargo run --quiet --locked --release -p p9-bench)

# --- the C API over a socket: tests/p9serve (thread mode, native backend, -O2)
# vs the same server in Rust on the engine (p9-bench serve-rust), req/s with
# 1 and 32 clients on tmpfs.  Here speedup = ours/base (higher is better):
# below 1 is what the C boundary costs.
say "p9serve (C API over a Unix socket) vs the same server in Rust (rust/p9-bench socket)"
p9serve=$(bash "$REPO_ROOT/tests/p9serve/build.sh")
(cd "$REPO_ROOT" && cargo run --quiet --locked --release -p p9-bench -- socket "$p9serve")

# --- 9P in a Linux guest: the patched QEMU vs upstream 10.0.13 built alike
# (tests/guest-bench: TCG guest, passthrough share on tmpfs, rounds
# interleaved, medians; wall time and the QEMU process's CPU time).
say "9P in a Linux guest: patched vs upstream QEMU (tests/guest-bench)"
"$REPO_ROOT/tests/guest-bench/run-guest-bench.sh" \
    "$BUILD_PATCHED/qemu-system-x86_64" "$BUILD_UPSTREAM/qemu-system-x86_64" | grep '^BENCH '
