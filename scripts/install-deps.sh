#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install what building and testing needs on a fresh Debian machine: apt
# packages (only the missing ones) and a venv with meson and pycotap from PyPI.
source "$(dirname "$0")/common.sh"

APT_PACKAGES=(
    # QEMU build (DESIGN.md)
    ninja-build libglib2.0-dev libattr1-dev libfdt-dev flex bison libpixman-1-dev
    pkg-config python3 python3-venv ccache bzip2 xz-utils
    # firmware for the test guests and qtests
    seabios ipxe-qemu qemu-system-data
    # guest test: initramfs tools (the kernel and busybox are fetched as .debs)
    cpio busybox-static kmod
    # C tests
    gcc libc6-dev valgrind
    # make check: shellcheck over every shell script
    shellcheck
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$p")
done
if ((${#missing[@]})); then
    say "apt-get install ${missing[*]}"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# meson >= 1.5 from PyPI into a venv of Debian's python3.  QEMU's mkvenv nests
# its own venv inside this one and inherits its packages.
MESON_VERSION=1.5.2
if ! "$VENV/bin/python3" -c "import mesonbuild, pycotap" 2>/dev/null ||
   [ "$("$VENV/bin/meson" --version 2>/dev/null)" != "$MESON_VERSION" ]; then
    say "creating venv $VENV (meson $MESON_VERSION, pycotap)"
    mkdir -p "$QRS_CACHE"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        "meson==$MESON_VERSION" "pycotap==1.3.1"
fi

if ! command -v cargo >/dev/null; then
    die "cargo not found: install a Rust toolchain (rustup) first"
fi
