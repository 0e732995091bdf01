#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Produce $PRISTINE: QEMU's upstream source plus Debian's two build fixes
# (skip-unpack-edk2-blobs, disable-pycotap) that the +ds tarball needs.
#
# Where the source comes from, first match wins:
#   1. QEMU_SRC=/path/to/qemu: an existing tree, used as it is;
#   2. ../shared/qemu-src/: the pinned 10.0.13 files, checksums verified;
#   3. $QRS_CACHE/dl: an earlier download, checksums verified;
#   4. apt-get source qemu (deb-src for trixie added if missing): the pinned
#      version if Debian still has it, else the newest 10.0.x it offers.
source "$(dirname "$0")/common.sh"

stamp=$PRISTINE/.qemurs-source
if [ -n "${QEMU_SRC:-}" ]; then
    [ -f "$QEMU_SRC/VERSION" ] || die "QEMU_SRC=$QEMU_SRC has no VERSION file"
    if [ "$(cat "$stamp" 2>/dev/null)" != "QEMU_SRC=$QEMU_SRC" ]; then
        say "using QEMU source from QEMU_SRC=$QEMU_SRC"
        rm -rf "$PRISTINE"
        mkdir -p "$PRISTINE"
        cp -a "$QEMU_SRC/." "$PRISTINE/"
        echo "QEMU_SRC=$QEMU_SRC" >"$stamp"
    fi
    exit 0
fi

dl=$QRS_CACHE/dl
mkdir -p "$dl"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

orig=; debian=
for dir in "$SHARED_QEMU_SRC" "$dl"; do
    if sha_ok "$dir/$QEMU_ORIG" "$QEMU_ORIG_SHA256" &&
       sha_ok "$dir/$QEMU_DEBIAN" "$QEMU_DEBIAN_SHA256"; then
        orig=$dir/$QEMU_ORIG; debian=$dir/$QEMU_DEBIAN
        break
    fi
done

if [ -z "$orig" ]; then
    say "fetching QEMU source with apt-get source"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/qemurs-trixie-src.sources; then
        $SUDO tee /etc/apt/sources.list.d/qemurs-trixie-src.sources >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        $SUDO apt-get update -qq
    fi
    tmp=$(mktemp -d "$dl/apt.XXXXXX")
    if (cd "$tmp" && apt-get source --download-only "qemu=$QEMU_DEB_VERSION" >/dev/null 2>&1); then
        :
    else
        ver=$(apt-cache showsrc qemu | sed -n 's/^Version: //p' |
              grep -E '^1:10\.0\.[0-9]+' | sort -V | tail -n 1)
        [ -n "$ver" ] || die "Debian offers no qemu 10.0.x source package"
        say "pinned $QEMU_DEB_VERSION is gone from Debian; falling back to $ver"
        (cd "$tmp" && apt-get source --download-only "qemu=$ver" >/dev/null)
    fi
    orig=$(ls "$tmp"/qemu_*.orig.tar.xz); debian=$(ls "$tmp"/qemu_*.debian.tar.xz)
    mv "$orig" "$debian" "$tmp"/*.dsc "$dl/"
    orig=$dl/$(basename "$orig"); debian=$dl/$(basename "$debian")
    rm -rf "$tmp"
fi

want="$(basename "$orig") $(basename "$debian")"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi

say "unpacking $(basename "$orig")"
rm -rf "$PRISTINE" "$PRISTINE.tmp"
mkdir -p "$PRISTINE.tmp/debian-pkg"
tar --no-same-owner -xf "$orig" -C "$PRISTINE.tmp"
tar --no-same-owner -xf "$debian" -C "$PRISTINE.tmp/debian-pkg"
top=$(find "$PRISTINE.tmp" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*')
for p in skip-unpack-edk2-blobs.patch disable-pycotap.patch; do
    patch -d "$top" -p1 -s <"$PRISTINE.tmp/debian-pkg/debian/patches/$p"
done
mv "$top" "$PRISTINE"
rm -rf "$PRISTINE.tmp"
echo "$want" >"$stamp"
say "QEMU $(cat "$PRISTINE/VERSION") source ready in $PRISTINE"
