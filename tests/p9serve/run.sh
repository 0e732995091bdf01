#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# p9serve end to end: build the release libqemurs.a, qemurs.pc and p9serve
# (through pkg-config, with ASan/UBSan), serve a temporary directory on a
# Unix socket, run p9-workload against it, then stop p9serve and check it
# exited cleanly without a sanitizer report.  Then a fid storm: p9serve
# started with `ulimit -n 256`, p9-storm walks one connection to 3000 fids
# while a second connection keeps working.  Ends with
# `p9serve workload: N passed, N failed` (both clients' checks; a server
# problem counts as one more failure).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

bin=$("$root/tests/p9serve/build.sh" --asan)
(cd "$root" && cargo build --release --quiet --locked -p p9-client --bin p9-workload --bin p9-storm)
workload=${CARGO_TARGET_DIR:-$root/target}/release/p9-workload
storm=${CARGO_TARGET_DIR:-$root/target}/release/p9-storm

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/export"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

"$bin" --threads 4 --unix "$tmp/sock" "$tmp/export" >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 200); do
    grep -q '^p9serve: listening on ' "$tmp/out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
cat "$tmp/out"
if ! grep -q '^p9serve: listening on ' "$tmp/out"; then
    cat "$tmp/err" >&2
    echo "p9serve did not start"
    echo "p9serve workload: 0 passed, 1 failed"
    exit 1
fi

set +e
# Its own summary line is left out here: the closing line below counts it.
"$workload" "unix:$tmp/sock" "$tmp/export" | tee "$tmp/workload" | grep -v '^p9serve workload: '
wrc=${PIPESTATUS[0]}
kill -TERM "$pid"
wait "$pid"
src=$?
pid=
set -e

summary=$(tail -n 1 "$tmp/workload")
if [[ $summary =~ ^p9serve\ workload:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=${BASH_REMATCH[1]} failed=${BASH_REMATCH[2]}
else
    echo "p9-workload: no summary (exit $wrc)"
    passed=0 failed=1
fi
((wrc == 0)) || ((failed > 0)) || failed=$((failed + 1))

if ((src == 0)) && ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$tmp/err"; then
    echo "ok   p9serve exited cleanly (exit 0, no sanitizer report)"
    passed=$((passed + 1))
else
    echo "FAIL p9serve exit $src; its stderr:"
    cat "$tmp/err"
    failed=$((failed + 1))
fi
# The fid storm, under a low descriptor limit (the native backend's
# budget: 256 - 85 reserved = 171 descriptors for every connection's
# backend together).
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
    "$storm" "unix:$tmp/storm.sock" "$tmp/storm-export" | tee "$tmp/storm" |
        grep -v '^p9serve fid storm: '
    krc=${PIPESTATUS[0]}
    kill -TERM "$pid"
    wait "$pid"
    src=$?
    pid=
    set -e
    summary=$(tail -n 1 "$tmp/storm")
    if [[ $summary =~ ^p9serve\ fid\ storm:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2]))
        ((krc == 0)) || ((BASH_REMATCH[2] > 0)) || failed=$((failed + 1))
    else
        echo "p9-storm: no summary (exit $krc)"
        failed=$((failed + 1))
    fi
    if ((src == 0)) && ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$tmp/storm-err"; then
        echo "ok   p9serve (ulimit -n 256) exited cleanly after the fid storm"
        passed=$((passed + 1))
    else
        echo "FAIL p9serve (ulimit -n 256) exit $src; its stderr:"
        cat "$tmp/storm-err"
        failed=$((failed + 1))
    fi
else
    cat "$tmp/storm-err" >&2
    echo "FAIL p9serve (ulimit -n 256) did not start"
    failed=$((failed + 1))
fi

echo "p9serve workload: $passed passed, $failed failed"
((failed == 0))
