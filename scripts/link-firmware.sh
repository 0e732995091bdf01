#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Link the firmware a QEMU binary run from its build directory looks for
# (qemu-bundle/<firmwarepath>) to Debian's seabios, ipxe-qemu and
# qemu-system-data files.
#
# usage: link-firmware.sh BUILD_DIR [SOURCE_DIR...]
#
# A name that is already there is left alone, whether it is a file, a link
# or a dangling link: on machines with Debian's qemu-system-common,
# configure leaves a link named trace-events-all that points into the
# build tree and dangles until the build makes its target.
set -euo pipefail
build=${1:?usage: link-firmware.sh BUILD_DIR [SOURCE_DIR...]}
shift
(($#)) || set -- /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu
fwdir=$build/qemu-bundle/usr/local/share/qemu
mkdir -p "$fwdir"
for d in "$@"; do
    for f in "$d"/*; do
        [ -e "$f" ] || continue  # an empty or missing directory
        t=$fwdir/$(basename "$f")
        [ -e "$t" ] || [ -L "$t" ] || ln -s "$f" "$t"
    done
done
