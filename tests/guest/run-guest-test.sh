#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot a Debian kernel with a busybox initramfs under TCG on the given QEMU,
# mount a `-fsdev local` export over virtio-9p (9P2000.L), run the workload
# in `init`, then check the export from the host (host_checks.py).
#
# usage: run-guest-test.sh QEMU_BINARY      closing line: guest: N passed, N failed
#
# The kernel comes from Debian's linux-image-amd64 metapackage (resolved at
# run time, not pinned), busybox from busybox-static; both are cached in
# $QRS_CACHE/guest.
source "$(dirname "$0")/../../scripts/common.sh"

qemu=${1:?usage: run-guest-test.sh QEMU_BINARY}
here=$REPO_ROOT/tests/guest
cache=$QRS_CACHE/guest
mkdir -p "$cache"

# --- kernel ----------------------------------------------------------------
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
       sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
[ -n "$kpkg" ] || { apt-get update -qq; kpkg=$(apt-cache depends linux-image-amd64 |
       sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1); }
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64"
kdir=$cache/$kpkg
if [ ! -f "$kdir/.done" ]; then
    say "fetching $kpkg"
    rm -rf "$kdir"; mkdir -p "$kdir/deb"
    (cd "$kdir/deb" && apt-get download "$kpkg" >/dev/null 2>&1) || die "apt-get download $kpkg failed"
    dpkg-deb -x "$kdir"/deb/*.deb "$kdir/root"
    rm -rf "$kdir/deb"
    depmod -b "$kdir/root" "$(ls "$kdir/root/lib/modules")"
    touch "$kdir/.done"
fi
kver=$(ls "$kdir/root/lib/modules")
kernel=$kdir/root/boot/vmlinuz-$kver
moddir=$kdir/root/lib/modules/$kver

# --- initramfs ---------------------------------------------------------------
busybox=/bin/busybox  # from busybox-static: the initramfs has no libc
[ -x "$busybox" ] || die "busybox-static is not installed"

initrd_dir=$(mktemp -d)
trap 'rm -rf "$initrd_dir"' EXIT
mkdir -p "$initrd_dir"/{bin,modules}
cp "$busybox" "$initrd_dir/bin/busybox"
cp "$here/init" "$initrd_dir/init"
gcc -static -O2 -Wall -Wextra -Werror -o "$initrd_dir/xattr" "$here/xattr.c"

# Modules for virtio-pci + 9p, dependencies first, from modules.dep.
declare -A loaded=()
order=()
load() {
    local m=$1 d
    [ -n "${loaded[$m]:-}" ] && return
    loaded[$m]=1
    for d in $(sed -n "s|^$m: *||p" "$moddir/modules.dep"); do load "$d"; done
    order+=("$m")
}
for want in virtio_pci 9pnet_virtio 9p; do
    m=$(grep -oE "^[^:]*/$want\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" | tr -d :)
    [ -n "$m" ] || die "module $want not found for $kver"
    load "$m"
done
: >"$initrd_dir/modules.order"
for m in "${order[@]}"; do
    base=$(basename "$m")
    case $base in
        *.xz)  xz -dc "$moddir/$m" >"$initrd_dir/modules/${base%.xz}"; base=${base%.xz} ;;
        *.zst) zstd -qdc "$moddir/$m" >"$initrd_dir/modules/${base%.zst}"; base=${base%.zst} ;;
        *.gz)  gzip -dc "$moddir/$m" >"$initrd_dir/modules/${base%.gz}"; base=${base%.gz} ;;
        *)     cp "$moddir/$m" "$initrd_dir/modules/$base" ;;
    esac
    echo "$base" >>"$initrd_dir/modules.order"
done
(cd "$initrd_dir" && find . | cpio -o -H newc --quiet | gzip -1) >"$cache/initrd.gz"

# --- the export ----------------------------------------------------------------
# On disk, not tmpfs: older host kernels have no user xattrs on tmpfs.
export_dir=$(mktemp -d "$cache/export.XXXXXX")
trap 'rm -rf "$initrd_dir" "$export_dir"' EXIT
mkdir -p "$export_dir/host/many"
head -c 300000 /dev/urandom >"$export_dir/host/data.bin"
sha256sum "$export_dir/host/data.bin" | cut -d' ' -f1 >"$export_dir/host/expected.sha256"
for i in $(seq 0 999); do : >"$export_dir/host/many/h$i"; done

# --- boot ------------------------------------------------------------------------
say "booting $kver on $qemu (TCG)"
console=$cache/console.log
timeout 600 "$qemu" -accel tcg -m 512 -smp 1 -nodefaults -no-user-config \
    -display none -serial "file:$console" -no-reboot \
    -kernel "$kernel" -initrd "$cache/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" \
    -fsdev "local,id=fs0,path=$export_dir,security_model=passthrough" \
    -device virtio-9p-pci,fsdev=fs0,mount_tag=share && rc=0 || rc=$?
tr -d '\r' <"$console" | grep -E '^GUEST ' || true

# count PATTERN < text: matching lines (0 is not an error).
count() { grep -c "$1" || true; }
passed=$(tr -d '\r' <"$console" | count '^GUEST ok ')
failed=$(tr -d '\r' <"$console" | count '^GUEST FAIL ')
if ! tr -d '\r' <"$console" | grep -q '^GUEST-DONE'; then
    echo "guest did not finish (QEMU exit $rc); console tail:"
    tail -n 30 "$console"
    failed=$((failed + 1))
fi

hostlog=$(python3 "$here/host_checks.py" "$export_dir")
echo "$hostlog"
passed=$((passed + $(count '^HOST ok ' <<<"$hostlog")))
failed=$((failed + $(count '^HOST FAIL ' <<<"$hostlog")))
echo "guest: $passed passed, $failed failed"
((failed == 0))
