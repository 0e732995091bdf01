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

# check NAME CMD...: one check that passes when CMD succeeds.
check() {
    local name=$1; shift
    if "$@"; then
        passed=$((passed + 1)); printf '%-28s ok\n' "$name"
    else
        failed=$((failed + 1)); failures+=("$name"); printf '%-28s FAILED\n' "$name"
    fi
}

# The 9P requests must be served by the engine, not by a 9p.c that is still
# linked in: the old handlers and co*.c wrappers must be gone, the engine's
# entry points, the FileOperations adapter and the qrs fsdev driver present.
engine_symbols() {
    local syms missing=0 name
    syms=$(nm "$QTEST_QEMU_BINARY" | awk '$2 ~ /^[tT]$/ { print $3 }')
    for name in qrs_p9_receive qrs_p9_handle v9fs_qrs_backend_new \
                v9fs_qrs_native_take_backend; do
        grep -qx "$name" <<<"$syms" || { echo "    missing: $name"; missing=1; }
    done
    for name in v9fs_walk v9fs_open v9fs_read v9fs_readdir v9fs_flush pdu_complete \
                v9fs_co_lstat v9fs_co_readdir_many v9fs_co_open v9fs_co_preadv; do
        grep -qx "$name" <<<"$syms" && { echo "    still linked: $name"; missing=1; }
    done
    return $missing
}
check "9P handlers are the engine's" engine_symbols

# The qrs fsdev driver reports bad options the way local does: a message
# naming the problem and exit status 1, never an abort.
qrs_option_errors() {
    local bad=0 opts want out rc
    while IFS='|' read -r opts want; do
        out=$(timeout 30 "$QTEST_QEMU_BINARY" -accel qtest -display none -nodefaults -S \
                  -fsdev "qrs,id=f,$opts" -device virtio-9p-pci,fsdev=f,mount_tag=t 2>&1 </dev/null)
        rc=$?
        if ((rc != 1)) || ! grep -qF "$want" <<<"$out"; then
            echo "    qrs,$opts: exit $rc: $out"; bad=1
        fi
    done <<EOF2
path=/nonexistent,security_model=mapped|failed to open '/nonexistent': No such file or directory
path=/etc/passwd,security_model=none|failed to open '/etc/passwd': Not a directory
path=/tmp|security_model property not set
path=/tmp,security_model=bogus|invalid security_model property 'bogus'
path=/tmp,security_model=passthrough,fmode=0644|fmode is only valid for mapped security modes
path=/tmp,security_model=none,dmode=0755|dmode is only valid for mapped security modes
path=/tmp,security_model=none,writeout=immediate|'writeout' is invalid for fsdriver 'qrs'
security_model=none|path property not set
EOF2
    return $bad
}
check "qrs driver option errors" qrs_option_errors

# The local 9p tests create their export in the working directory; on ext4
# the xattr_limit tests hit ENOSPC even upstream, so work on tmpfs.
work=$(mktemp -d /dev/shm/qemurs-qtest.XXXXXX)
ninep=/x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/virtio-9p-pci/virtio-9p/virtio-9p-tests
n9p=$(cd "$work" && "$build/tests/qtest/qos-test" -l -m slow | grep -c "^$ninep/")
pushd "$work" >/dev/null || exit 1
run "virtio-9p ($n9p listed)" 900 "$build/tests/qtest/qos-test" -m slow -r "$ninep"
popd >/dev/null || exit 1
rm -rf "$work"

# The trace events a user relies on still fire: each request as it
# arrives, and an error reply with its errno (a walk to a missing name:
# ENOENT).
traced() {
    local log
    log=$(cd "$work" && QTEST_TRACE='v9fs_*' timeout 120 "$build/tests/qtest/qos-test" \
              -m slow -p "$ninep/synth/walk/non_existent" 2>&1)
    if grep -q '^v9fs_request tag 0 id 110 ' <<<"$log" &&
        grep -q '^v9fs_rerror tag 0 id 110 err 2$' <<<"$log" &&
        grep -q '^v9fs_reply tag 0 id 104 reply id 105$' <<<"$log"; then
        return 0
    fi
    grep '^v9fs_' <<<"$log" | head -n 10 | sed 's/^/    /'
    return 1
}
work=$(mktemp -d /dev/shm/qemurs-qtest.XXXXXX)
check "v9fs trace events" traced
rm -rf "$work"

# 20 synth, 14 local, and the same 14 on the qrs driver.
if ((n9p != 48)); then
    echo "expected 48 virtio-9p qos tests, qos-test lists $n9p"
    failed=$((failed + 1))
fi
((${#failures[@]})) && printf 'failed: %s\n' "${failures[@]}"
echo "qemu tests: $passed passed, $failed failed"
((failed == 0))
