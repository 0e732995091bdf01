#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What a Linux guest sees of 9P on two QEMU binaries built alike (ours, the
# baseline), in one run: the same TCG guest and workloads (init, metaload.c)
# on each, rounds interleaved, medians printed as
#   BENCH name=guest_<workload> ours=<s> base=<s> unit=s speedup=<base/ours>
#   BENCH name=guest_<workload>_cpu ... unit=cpu_s    (QEMU's user+system time)
#   BENCH name=guest_<workload>_server_cpu ... unit=cpu_s (the same without
#         the vCPU threads: the 9P path's own cost, the guest's emulation
#         being the same on both)
#   BENCH name=guest_<workload>_waits ... unit=waits  (voluntary context
#         switches of QEMU's threads: the wake-ups the workload cost)
# and the same workloads on the patched QEMU's qrs fsdev driver (the native
# backend) against the baseline's local, and against the patched local:
#   BENCH name=guest_qrs_<workload>[_cpu] ...            base: upstream local
#   BENCH name=guest_qrs_vs_local_<workload>[_cpu|_server_cpu|_waits] ...
#                                                         base: patched local
#
# usage: run-guest-bench.sh OURS_QEMU BASE_QEMU     (BENCH_ROUNDS rounds, default 3;
#        BENCH_WORKLOADS=a,b,...: only those, for profiling)
#
# The export is a passthrough share on tmpfs, so that the host's disk stays
# out of it; each run starts from the same prepared content: a tree of
# 10,000 entries and a tarball of QEMU's own hw/, include/, target/ and
# util/ (about 4,300 entries), and a 64 MiB file for the random reads.
# shellcheck source-path=SCRIPTDIR/../..
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/../../scripts/common.sh"
# shellcheck source=scripts/guest-common.sh
source "$REPO_ROOT/scripts/guest-common.sh"

ours=${1:?usage: run-guest-bench.sh OURS_QEMU BASE_QEMU}
base=${2:?usage: run-guest-bench.sh OURS_QEMU BASE_QEMU}
rounds=${BENCH_ROUNDS:-3}
here=$REPO_ROOT/tests/guest-bench
[ -d "$PRISTINE/hw" ] || die "no QEMU source in $PRISTINE (run make first)"

guest_kernel
work=$(mktemp -d /dev/shm/qemurs-gbench.XXXXXX)
qemu_job=
cleanup() {
    if [ -n "$qemu_job" ] && kill -0 "$qemu_job" 2>/dev/null; then
        kill "$qemu_job" 2>/dev/null || true
        wait "$qemu_job" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

guest_initrd_base "$work/initrd"
cp "$here/init" "$work/initrd/init"
gcc -static -O2 -Wall -Wextra -Werror -o "$work/initrd/metaload" "$here/metaload.c"
guest_pack "$work/initrd" "$work/initrd.gz"

# The content every run starts from.
tpl=$work/template
mkdir -p "$tpl/tree"
for d in $(seq -w 0 99); do
    mkdir "$tpl/tree/d$d"
    (cd "$tpl/tree/d$d" && touch $(seq -f 'f%02g' 0 98))
done
tar -cf "$tpl/src.tar" -C "$PRISTINE" hw include target util
head -c 64M /dev/urandom >"$tpl/randfile"

# run_one QEMU DRIVER OUT: boot, run every workload on a DRIVER (local or
# qrs) share, write drive.py's lines to OUT.
run_one() {
    local qemu=$1 driver=$2 out=$3 export=$work/export rc=0
    rm -rf "$export"
    cp -a "$tpl" "$export"
    mkdir "$export/.sync"
    rm -f "$work/console.log" "$work/qemu.pid"
    timeout -k 10 1800 "$qemu" -accel tcg -m 1024 -smp 2 -nodefaults -no-user-config \
        -name debug-threads=on \
        -display none -serial "file:$work/console.log" -no-reboot -pidfile "$work/qemu.pid" \
        -kernel "$kernel" -initrd "$work/initrd.gz" \
        -append "console=ttyS0 panic=-1 quiet${BENCH_WORKLOADS:+ bench=$BENCH_WORKLOADS}" \
        -fsdev "$driver,id=fs0,path=$export,security_model=passthrough" \
        -device virtio-9p-pci,fsdev=fs0,mount_tag=bench &
    qemu_job=$!
    python3 "$here/drive.py" "$work/console.log" "$export/.sync" "$work/qemu.pid" 1700 >"$out" || rc=$?
    wait "$qemu_job" || true
    qemu_job=
    if ((rc != 0)) || grep -q '^FAIL' "$out"; then
        tail -n 20 "$work/console.log" >&2
        die "guest benchmark run on $qemu failed: $(grep '^FAIL' "$out" | tr '\n' ' ')"
    fi
}

# Variants: base = upstream local, ours = patched local, qrs = patched qrs.
variants=(base ours qrs)
for r in $(seq "$rounds"); do
    # Rotate which variant goes first, so that drift favours none.
    order=("${variants[@]:r % 3}" "${variants[@]:0:r % 3}")
    for v in "${order[@]}"; do
        q=$ours driver=local
        [ "$v" = base ] && q=$base
        [ "$v" = qrs ] && driver=qrs
        say "guest benchmark round $r/$rounds: $v ($driver on $q)"
        run_one "$q" "$driver" "$work/$v.$r"
    done
done

# median VARIANT WORKLOAD FIELD (3: wall, 4: cpu, 5: waits, 6: server cpu)
# over the rounds.
median() {
    cat "$work/$1".* | awk -v w="$2" -v f="$3" '$1 == "RESULT" && $2 == w { print $f }' |
        sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
bench_line() { # name ours base unit
    awk -v n="$1" -v o="$2" -v b="$3" -v u="$4" 'BEGIN {
        printf "BENCH name=%s ours=%s base=%s unit=%s speedup=", n, o, b, u
        if (o + 0 == 0) print (b + 0 == 0 ? "1.000" : "inf"); else printf "%.3f\n", b / o }'
}
for w in create stat list rename unlink find_stat untar rm_tree seq_write seq_read rand_read parallel; do
    [ -n "$(median ours "$w" 3)" ] || continue
    bench_line "guest_$w" "$(median ours $w 3)" "$(median base $w 3)" s
    bench_line "guest_${w}_cpu" "$(median ours $w 4)" "$(median base $w 4)" cpu_s
    bench_line "guest_${w}_server_cpu" "$(median ours $w 6)" "$(median base $w 6)" cpu_s
    bench_line "guest_${w}_waits" "$(median ours $w 5)" "$(median base $w 5)" waits
done
for w in create stat list rename unlink find_stat untar rm_tree seq_write seq_read rand_read parallel; do
    [ -n "$(median qrs "$w" 3)" ] || continue
    bench_line "guest_qrs_$w" "$(median qrs $w 3)" "$(median base $w 3)" s
    bench_line "guest_qrs_${w}_cpu" "$(median qrs $w 4)" "$(median base $w 4)" cpu_s
    bench_line "guest_qrs_vs_local_$w" "$(median qrs $w 3)" "$(median ours $w 3)" s
    bench_line "guest_qrs_vs_local_${w}_cpu" "$(median qrs $w 4)" "$(median ours $w 4)" cpu_s
    bench_line "guest_qrs_vs_local_${w}_server_cpu" "$(median qrs $w 6)" "$(median ours $w 6)" cpu_s
    bench_line "guest_qrs_vs_local_${w}_waits" "$(median qrs $w 5)" "$(median ours $w 5)" waits
done
