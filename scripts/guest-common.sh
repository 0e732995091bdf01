# shellcheck shell=bash disable=SC2034
# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the guest test (tests/guest) and the guest benchmark
# (tests/guest-bench): the Debian kernel and the base of a busybox
# initramfs that loads the virtio 9p modules.  Sourced after common.sh.
#
# guest_kernel: sets kver, kernel and moddir.  The kernel comes from
# Debian's linux-image-amd64 metapackage (resolved at run time, not pinned),
# cached in $QRS_CACHE/guest.
guest_kernel() {
    local cache=$QRS_CACHE/guest kpkg kdir
    mkdir -p "$cache"
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
}

# guest_initrd_base DIR: busybox (from busybox-static: the initramfs has no
# libc) in DIR/bin, and the modules virtio-pci and 9p need, dependencies
# first, in DIR/modules, listed in load order in DIR/modules.order.  Needs
# guest_kernel first.  The caller adds /init and its tools, then packs DIR.
guest_initrd_base() {
    local dir=$1 want m base d deps
    local -A loaded=()
    local -a order=()
    [ -x /bin/busybox ] || die "busybox-static is not installed"
    mkdir -p "$dir"/{bin,modules}
    cp /bin/busybox "$dir/bin/busybox"
    load_module() {
        local m=$1 d deps
        [ -n "${loaded[$m]:-}" ] && return
        loaded[$m]=1
        read -ra deps <<<"$(sed -n "s|^$m: *||p" "$moddir/modules.dep")"
        for d in "${deps[@]}"; do load_module "$d"; done
        order+=("$m")
    }
    for want in virtio_pci 9pnet_virtio 9p; do
        m=$(grep -oE "^[^:]*/$want\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" | tr -d :)
        [ -n "$m" ] || die "module $want not found for $kver"
        load_module "$m"
    done
    : >"$dir/modules.order"
    for m in "${order[@]}"; do
        base=$(basename "$m")
        case $base in
            *.xz)  xz -dc "$moddir/$m" >"$dir/modules/${base%.xz}"; base=${base%.xz} ;;
            *.zst) zstd -qdc "$moddir/$m" >"$dir/modules/${base%.zst}"; base=${base%.zst} ;;
            *.gz)  gzip -dc "$moddir/$m" >"$dir/modules/${base%.gz}"; base=${base%.gz} ;;
            *)     cp "$moddir/$m" "$dir/modules/$base" ;;
        esac
        echo "$base" >>"$dir/modules.order"
    done
}

# guest_pack DIR OUT: DIR as a gzip'd cpio initramfs.
guest_pack() {
    (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) >"$2"
}
