#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Run QEMU's own tests against the patched build: the coroutine,
# coroutine-storage and co_run_in_worker unit tests, the monitor qtests, and
# all virtio-9p qos tests including the slow ones.  Ends with `N passed, N failed`.
#
# usage: run-qemu-tests.sh BUILD_DIR
set -uo pipefail

build=$(cd "${1:?usage: run-qemu-tests.sh BUILD_DIR}" && pwd)
export QTEST_QEMU_BINARY=$build/qemu-system-x86_64
export G_TEST_SRCDIR=${G_TEST_SRCDIR:-}
passed=0 failed=0
failures=()

# run NAME TIMEOUT CMD...: run a GLib test binary in TAP mode and count its
# results; a crash, a timeout or no result at all counts as a failure.
run() {
    local name=$1 limit=$2; shift 2
    local log ok notok rc
    log=$(mktemp)
    timeout "$limit" "$@" --tap -k >"$log" 2>&1
    rc=$?
    ok=$(grep -c '^ok ' "$log")
    notok=$(grep -c '^not ok ' "$log")
    passed=$((passed + ok))
    failed=$((failed + notok))
    if ((notok > 0 || rc != 0 || ok == 0)); then
        ((notok == 0)) && failed=$((failed + 1))
        failures+=("$name (exit $rc)")
        grep -E '^not ok |^Bail out|ERROR|assertion' "$log" | head -n 20 | sed 's/^/    /'
    fi
    printf '%-28s %4d ok %4d not ok (exit %d)\n' "$name" "$ok" "$notok" "$rc"
    rm -f "$log"
}

run test-coroutine 300 "$build/tests/unit/test-coroutine"
run test-co-storage 120 "$build/tests/unit/test-co-storage"
run test-co-worker 300 "$build/tests/unit/test-co-worker"
run qmp-test 600 "$build/tests/qtest/qmp-test"
run qmp-cmd-test 900 "$build/tests/qtest/qmp-cmd-test"
run test-hmp 600 "$build/tests/qtest/test-hmp"

# The local 9p tests create their export in the working directory; on ext4
# the xattr_limit tests hit ENOSPC even upstream, so work on tmpfs.
work=$(mktemp -d /dev/shm/qemurs-qtest.XXXXXX)
ninep=/x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/virtio-9p-pci/virtio-9p/virtio-9p-tests
n9p=$(cd "$work" && "$build/tests/qtest/qos-test" -l -m slow | grep -c "^$ninep/")
pushd "$work" >/dev/null
run "virtio-9p ($n9p listed)" 900 "$build/tests/qtest/qos-test" -m slow -r "$ninep"
popd >/dev/null
rm -rf "$work"

if ((n9p != 34)); then
    echo "expected 34 virtio-9p qos tests, qos-test lists $n9p"
    failed=$((failed + 1))
fi
((${#failures[@]})) && printf 'failed: %s\n' "${failures[@]}"
echo "qemu tests: $passed passed, $failed failed"
((failed == 0))
