#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# p9serve end to end: build the release libqemurs.a, qemurs.pc and p9serve
# (through pkg-config, with ASan/UBSan), serve a temporary directory on a
# Unix socket, run p9-workload against it, then stop p9serve and check it
# exited cleanly without a sanitizer report.  Then a fid storm: p9serve
# started with `ulimit -n 256`, p9-storm walks one connection to 3000 fids
# while a second connection keeps working.  Then a third p9serve with
# small bounds meets p9-hostile: Tflushes naming Tflushes, a client that
# never reads its replies (memory must stay bounded), 256 connections (the
# limit; threads must stay bounded).  Speaks TAP (tests/lib/tap.sh): the
# clients' checks and this script's own, one stream; ends with the plan and
# the `p9serve workload: N passed, N failed` line summing them all (a server
# problem counts as one more failure).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/lib/tap.sh"

bin=$("$root/tests/p9serve/build.sh" --asan)
(cd "$root" && cargo build --release --quiet --locked -p p9-client --bin p9-workload \
    --bin p9-storm --bin p9-hostile)
workload=${CARGO_TARGET_DIR:-$root/target}/release/p9-workload
storm=${CARGO_TARGET_DIR:-$root/target}/release/p9-storm
hostile=${CARGO_TARGET_DIR:-$root/target}/release/p9-hostile

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/export"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

tap_start
"$bin" --threads 4 --unix "$tmp/sock" "$tmp/export" >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 200); do
    grep -q '^p9serve: listening on ' "$tmp/out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
tap_diag "$(cat "$tmp/out")"
if ! grep -q '^p9serve: listening on ' "$tmp/out"; then
    cat "$tmp/err" >&2
    tap_not_ok "p9serve started"
    tap_end "p9serve workload"
    exit 1
fi

# stop_server: SIGTERM, then at most 30 s for a clean exit (a server that
# cannot stop is killed and fails); sets src.
stop_server() {
    kill -TERM "$pid"
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "p9serve did not stop within 30 s of SIGTERM"
        kill -KILL "$pid"
    fi
    wait "$pid"
    src=$?
    pid=
}

# client NAME SUMMARY_REGEX CMD...: run a Rust client (rust/p9-client/src/bin)
# and relay its `ok`/`FAIL` lines as TAP tests, live; its closing
# `...: N passed, N failed` line (SUMMARY_REGEX: the two counts) becomes a
# diagnostic and must agree with them.  A client that exits non-zero
# without a failed check, or without a summary, is one more failure.
client() {
    local name=$1 re=$2 rc summary
    shift 2
    tap_relay_lines "$name" < <(
        set +e
        "$@" | tee "$tmp/client"
        echo "${PIPESTATUS[0]}" >"$tmp/client-rc")
    rc=$(cat "$tmp/client-rc")
    summary=$(tail -n 1 "$tmp/client")
    if ! [[ $summary =~ $re ]]; then
        tap_not_ok "$name: no summary (exit $rc)"
    elif ((BASH_REMATCH[1] != tap_relayed_passed || BASH_REMATCH[2] != tap_relayed_failed)); then
        tap_not_ok "$name: its summary ($summary) disagrees with its checks"
    elif ((rc != 0 && tap_relayed_failed == 0)); then
        tap_not_ok "$name: exit $rc"
    fi
}

set +e
client p9-workload '^p9serve workload: ([0-9]+) passed, ([0-9]+) failed$' \
    "$workload" "unix:$tmp/sock" "$tmp/export"
stop_server
set -e

exited_cleanly() { # stderr file
    if ((src == 0)) && ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$1"; then
        tap_ok "p9serve exited cleanly (exit 0, no sanitizer report)"
    else
        tap_not_ok "p9serve exited cleanly (exit $src)"
        tap_diag "its stderr:"
        tap_diag "$(cat "$1")"
    fi
}
exited_cleanly "$tmp/err"

# --- a fid storm, under a low descriptor limit -------------------------------
# The native backend's budget: 256 - 85 reserved = 171 descriptors for every
# connection's backend together.
mkdir "$tmp/storm-export"
(ulimit -n 256 && exec "$bin" --threads 4 --unix "$tmp/storm.sock" "$tmp/storm-export") \
    >"$tmp/storm-out" 2>"$tmp/storm-err" &
pid=$!
for _ in $(seq 200); do
    grep -q '^p9serve: listening on ' "$tmp/storm-out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
if grep -q '^p9serve: listening on ' "$tmp/storm-out"; then
    set +e
    client p9-storm '^p9serve fid storm: ([0-9]+) passed, ([0-9]+) failed$' \
        "$storm" "unix:$tmp/storm.sock" "$tmp/storm-export"
    stop_server
    set -e
    exited_cleanly "$tmp/storm-err"
else
    cat "$tmp/storm-err" >&2
    tap_not_ok "p9serve (ulimit -n 256) started"
fi

# --- hostile clients, against small bounds -----------------------------------
# 4 threads for every connection; per connection at most 64 requests and
# 4 MiB in flight, and as many unsent replies; at most 256 connections.
# ASan's quarantine of freed memory is cut to 16 MiB so that VmRSS shows
# what p9serve holds: its growth must stay under 64 MiB (4 MiB of requests
# + 4 MiB of replies + the quarantine + allocator slack) while the slow
# reader sends as much as it can (1 GiB if nothing stops it); its threads
# at most 4 + 3 (main, event loop, reaper) + 2.
mkdir "$tmp/export2"
ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=16 \
    "$bin" --threads 4 --max-connections 256 --max-requests 64 --max-bytes 4194304 \
    --unix "$tmp/sock2" "$tmp/export2" >"$tmp/out2" 2>"$tmp/err2" &
pid=$!
for _ in $(seq 200); do
    grep -q '^p9serve: listening on ' "$tmp/out2" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
tap_diag "$(cat "$tmp/out2")"
set +e
hostile_pid=$pid
for what in "flush" "slow-reader $hostile_pid 64" "connections $hostile_pid 256 9"; do
    # shellcheck disable=SC2086 # $what is words
    client "p9-hostile ${what%% *}" '^p9-hostile .*: ([0-9]+) passed, ([0-9]+) failed$' \
        timeout 600 "$hostile" "unix:$tmp/sock2" $what
done
stop_server
set -e
exited_cleanly "$tmp/err2"
tap_end "p9serve workload"
((tap_failed == 0))
