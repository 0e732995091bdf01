#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot a Debian kernel with a busybox initramfs under TCG on the given QEMU
# with one virtio-9p share per case (each `-fsdev local` security model,
# the same four on the `qrs` driver, a 9P2000.u mount, readonly=on,
# multidevs=remap over a nested tmpfs, fsdev throttling), run
# the workload in `init`, drive QMP (migrate refused while mounted,
# system_reset during I/O) with qmp_scenario.py, then check the exports
# from the host (host_checks.py).  Everything happens in one QEMU run.
#
# usage: run-guest-test.sh QEMU_BINARY
# Prints TAP (every guest and host check a test line), then the closing
# line `guest: N passed, N failed`.
#
# The kernel comes from Debian's linux-image-amd64 metapackage (resolved at
# run time, not pinned), busybox from busybox-static; both are cached in
# $QRS_CACHE/guest.
# shellcheck source-path=SCRIPTDIR/../..
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/../../scripts/common.sh"
# shellcheck source=scripts/guest-common.sh
source "$REPO_ROOT/scripts/guest-common.sh"
# shellcheck source=tests/lib/tap.sh
source "$REPO_ROOT/tests/lib/tap.sh"

qemu=${1:?usage: run-guest-test.sh QEMU_BINARY}
[ -x "$qemu" ] || die "$qemu is not executable"
here=$REPO_ROOT/tests/guest
cache=$QRS_CACHE/guest
mkdir -p "$cache"

# --- kernel ----------------------------------------------------------------
guest_kernel

# --- clean-up ----------------------------------------------------------------
# Whatever happens: no QEMU left running, no tmpfs left mounted.
initrd_dir=$(mktemp -d)
work=$(mktemp -d "$cache/run.XXXXXX")  # on disk: user xattrs for the mapped models
qemu_job=
watch_job=
cleanup() {
    if [ -n "$watch_job" ]; then kill "$watch_job" 2>/dev/null || true; fi
    if [ -n "$qemu_job" ] && kill -0 "$qemu_job" 2>/dev/null; then
        kill "$qemu_job" 2>/dev/null || true  # timeout(1) passes it on to QEMU
        wait "$qemu_job" 2>/dev/null || true
    fi
    for m in "$work/remap/sub" "$work/remap"; do
        if mountpoint -q "$m"; then umount "$m" || umount -l "$m"; fi
    done
    rm -rf "$initrd_dir" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP  # so that the EXIT trap runs on these too

# --- initramfs ---------------------------------------------------------------
guest_initrd_base "$initrd_dir"
cp "$here/init" "$initrd_dir/init"
for tool in xattr fsop openunlink hammer lockop fdhold; do
    gcc -static -O2 -Wall -Wextra -Werror -o "$initrd_dir/$tool" "$here/$tool.c"
done
guest_pack "$initrd_dir" "$work/initrd.gz"

# --- the exports ------------------------------------------------------------------
# One directory per mount tag (init and host_checks.py use the same names).
models=(passthrough mapped-xattr mapped-file none)
for model in "${models[@]}" "${models[@]/#/qrs-}"; do
    d=$work/$model
    mkdir -p "$d/host/many"
    head -c 300000 /dev/urandom >"$d/host/data.bin"
    sha256sum "$d/host/data.bin" | cut -d' ' -f1 >"$d/host/expected.sha256"
    for i in $(seq 0 999); do : >"$d/host/many/h$i"; done
done
mkdir "$work/passthrough/.sync"  # the host's answers to the guest

mkdir "$work/dotu"
echo "hello from the host" >"$work/dotu/hello.txt"

# fsdev throttling: 1 MiB/s each way, so that moving 4 MiB takes seconds.
mkdir "$work/throttle"

# Read-only: a file with an xattr, a directory, an empty one, a symlink.
mkdir -p "$work/ro/d" "$work/ro/e"
echo "read-only content" >"$work/ro/f"
: >"$work/ro/d/inner"
ln -s f "$work/ro/l"
"$initrd_dir/xattr" set "$work/ro/f" user.ro yes

# multidevs=remap: two tmpfs, one inside the other, both numbering their
# inodes from 1, so that raw inode numbers collide across them.
mkdir "$work/remap"
mount -t tmpfs -o size=8m,mode=755 qemurs-remap "$work/remap"
mkdir "$work/remap/sub"
mount -t tmpfs -o size=8m,mode=755 qemurs-remap-sub "$work/remap/sub"

# The qrs driver's export also holds what a guest must see as what it is
# and never make the host open: symbolic links out of the export (to /,
# /etc, ../.. and a host directory beside it), a FIFO and a device node.
# inotify records any open, read or write of them on the host.
q=$work/qrs-passthrough
mkdir "$q/special" "$work/outside"
echo "host secret" >"$work/outside/secret"
ln -s / "$q/special/root-link"
ln -s /etc "$q/special/etc-link"
ln -s ../.. "$q/special/up-link"
ln -s "$work/outside" "$q/special/outside-link"
mkfifo "$q/special/fifo"
mknod "$q/special/null" c 1 3
: >"$q/locked"  # byte-range locks: guest against guest and host
# The descriptor budget: 2,000 files, each holding its own path (QEMU runs
# with RLIMIT_NOFILE 1024, the guest holds them all open at once).
for d in $(seq -f 'd%02g' 0 19); do
    mkdir -p "$work/qrs-budget/many/$d"
    for f in $(seq -f 'f%03g' 0 99); do echo "$d/$f" >"$work/qrs-budget/many/$d/$f"; done
done
python3 "$here/watch_opens.py" "$work/opens.log" "$work/opens.ready" \
    "$q/special/fifo" "$q/special/null" "$work/outside" "$work/outside/secret" &
watch_job=$!
for _ in $(seq 50); do [ -e "$work/opens.ready" ] && break; sleep 0.1; done

python3 "$here/host_checks.py" snapshot "$work"

fsdev=()
share() {  # share TAG FSDEV_OPTIONS
    fsdev+=(-fsdev "local,id=fs-$1,path=$work/$1,$2"
            -device "virtio-9p-pci,fsdev=fs-$1,mount_tag=$1")
}
# fmode/dmode: the host modes of what mapped-file creates, on both drivers
# (mapped-xattr keeps the defaults, 0600 and 0700).
declare -A model_opts=([mapped-file]=",fmode=0604,dmode=0705")
for model in "${models[@]}"; do share "$model" "security_model=$model${model_opts[$model]:-}"; done
qrs_share() {  # qrs_share TAG FSDEV_OPTIONS: the same, on the qrs driver
    fsdev+=(-fsdev "qrs,id=fs-$1,path=$work/$1,$2"
            -device "virtio-9p-pci,fsdev=fs-$1,mount_tag=$1")
}
for model in "${models[@]}"; do qrs_share "qrs-$model" "security_model=$model${model_opts[$model]:-}"; done
qrs_share qrs-budget security_model=passthrough
# One export per mapped model, shared through both drivers: xl-MODEL
# (local) and xq-MODEL (qrs) are the same directory, x-MODEL.
for model in mapped-xattr mapped-file; do
    mkdir "$work/x-$model"
    for d in local:xl qrs:xq; do
        fsdev+=(-fsdev "${d%:*},id=fs-${d#*:}-$model,path=$work/x-$model,security_model=$model"
                -device "virtio-9p-pci,fsdev=fs-${d#*:}-$model,mount_tag=${d#*:}-$model")
    done
done
share dotu security_model=passthrough
share ro security_model=passthrough,readonly=on
share remap security_model=passthrough,multidevs=remap
share throttle security_model=passthrough,throttling.bps-read=1048576,throttling.bps-write=1048576

# --- boot ------------------------------------------------------------------------
# -S: the first migrate happens before the guest runs.  No -no-reboot: it
# would turn QMP's system_reset into a shutdown.
say "booting $kver on $qemu (TCG)"
# Per run (other checkouts may run this stage at the same time); a copy
# of the last console stays in $cache for a look afterwards.
console=$work/console.log
# thread=single: with one host thread per vCPU (MTTCG), QEMU 10.0's TCG
# aborted once here in iotlb_to_section() ("section_index <
# d->map.sections_nb"), before the guest had mounted anything, while it
# set up its sixteen PCI devices: a race in TCG's memory map, not in 9P.
# One thread runs both vCPUs in turn and keeps the test deterministic.
# RLIMIT_NOFILE 1024, soft and hard (QEMU raises its soft limit to the
# hard one), whatever the caller's: the qrs-budget share
# holds more files open than that.
(ulimit -n 1024 && exec timeout -k 10 900 "$qemu" -accel tcg,thread=single -m 512 -smp 2 -nodefaults -no-user-config \
    -display none -serial "file:$console" -S \
    -qmp "unix:$work/qmp.sock,server=on,wait=off" -pidfile "$work/qemu.pid" \
    -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" \
    "${fsdev[@]}") &
qemu_job=$!

exports=()
for tag in "${models[@]}" "${models[@]/#/qrs-}" qrs-budget dotu ro remap throttle; do exports+=("$tag=$work/$tag"); done
for model in mapped-xattr mapped-file; do exports+=("xl-$model=$work/x-$model" "xq-$model=$work/x-$model"); done
# In the background: `wait` lets a signal's trap run at once, and the
# scenario ends by itself when the clean-up kills QEMU.
python3 "$here/qmp_scenario.py" "$work/qmp.sock" "$console" \
    "$work/passthrough/.sync" "$work/qemu.pid" "${exports[@]}" | tee "$work/qmp.log" >&2 &
wait $! || true
qmplog=$(cat "$work/qmp.log")
# The scenario ends with `quit`; give QEMU a minute before the trap kills it.
for _ in $(seq 60); do kill -0 "$qemu_job" 2>/dev/null || break; sleep 1; done
if kill -0 "$qemu_job" 2>/dev/null; then echo "QEMU did not quit; killing it" >&2; kill "$qemu_job"; fi
rc=0; wait "$qemu_job" || rc=$?
qemu_job=

cp "$console" "$cache/console.log"
kill "$watch_job" 2>/dev/null || true
wait "$watch_job" 2>/dev/null || true
watch_job=
hostlog=$(python3 "$here/host_checks.py" check "$work" /bin/busybox)

# --- every check as a TAP line (tests/lib/tap.sh) ----------------------------------
# tap_lines: `GUEST|HOST ok NAME`, `GUEST|HOST FAIL NAME: why` and
# `GUEST|HOST info TEXT` lines on stdin, as TAP.
tap_lines() {
    local line
    while IFS= read -r line; do
        if [[ $line =~ ^(GUEST|HOST)\ ok\ (.*)$ ]]; then
            tap_ok "${BASH_REMATCH[2]}"
        elif [[ $line =~ ^(GUEST|HOST)\ FAIL\ (.*)$ ]]; then
            tap_not_ok "${BASH_REMATCH[2]}"
        elif [[ $line =~ ^(GUEST|HOST)\ info\ (.*)$ ]]; then
            tap_diag "${BASH_REMATCH[2]}"
        fi
    done
}
tap_start
tap_lines < <(tr -d '\r' <"$console")
if tr -d '\r' <"$console" | grep -q '^GUEST-DONE'; then
    tap_ok "guest finished"
else
    tap_not_ok "guest finished (QEMU exit $rc)"
    tap_diag "$(tail -n 30 "$console")"
fi
tap_lines <<<"$qmplog"
# `quit` ends QEMU with status 0; anything else is a crash or the timeout.
if ((rc == 0)); then tap_ok "qemu-exit-status"; else tap_not_ok "qemu-exit-status: $rc"; fi
tap_lines <<<"$hostlog"
tap_end guest
((tap_failed == 0))
