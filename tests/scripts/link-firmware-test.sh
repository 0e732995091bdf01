#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# scripts/link-firmware.sh on a build directory in the state configure
# leaves on a machine with Debian's qemu-system-common: a dangling link
# whose name is also a file of a firmware directory.  It must link
# everything else, leave that link alone, and succeed twice in a row.
# Closing line: `link-firmware: N passed, N failed`.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
check() { # NAME CONDITION...
    local name=$1; shift
    if "$@"; then echo "ok $name"; passed=$((passed + 1))
    else echo "not ok $name"; failed=$((failed + 1)); fi
}

src=$tmp/share-qemu
mkdir -p "$src" "$tmp/seabios"
: >"$src/trace-events-all"; : >"$src/kvmvapic.bin"; : >"$tmp/seabios/bios-256k.bin"
fw=$tmp/build/qemu-bundle/usr/local/share/qemu
mkdir -p "$fw"
ln -s "$tmp/build/trace/trace-events-all" "$fw/trace-events-all"  # dangling

for round in 1 2; do
    check "round $round succeeds" bash "$root/scripts/link-firmware.sh" "$tmp/build" "$src" "$tmp/seabios"
done
check "firmware linked" test "$(readlink "$fw/kvmvapic.bin")" = "$src/kvmvapic.bin"
check "second directory linked" test "$(readlink "$fw/bios-256k.bin")" = "$tmp/seabios/bios-256k.bin"
check "dangling link left alone" test "$(readlink "$fw/trace-events-all")" = "$tmp/build/trace/trace-events-all"
check "missing directory ignored" bash "$root/scripts/link-firmware.sh" "$tmp/build" "$tmp/none"
echo "link-firmware: $passed passed, $failed failed"
((failed == 0))
