#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Record every open, read or write of some host paths, with inotify.

usage: watch_opens.py LOG READY PATH...

Watches each PATH (a file, a FIFO, a device node, or a directory: then
also what is in it) for IN_OPEN, IN_ACCESS and IN_MODIFY and appends one
line per event to LOG ("MASK PATH[/NAME]") until killed; creates READY
once every watch is in place.  The guest test proves with it that the
9P server never opens what a guest must not reach: special files of the
export and anything outside it.  O_PATH descriptors, which only name a
file, do not count as opens (the kernel sends no event for them).
"""
import ctypes
import os
import struct
import sys

IN_ACCESS, IN_MODIFY, IN_OPEN = 0x1, 0x2, 0x20
NAMES = {IN_ACCESS: "access", IN_MODIFY: "modify", IN_OPEN: "open"}

libc = ctypes.CDLL(None, use_errno=True)
log_path, ready, *paths = sys.argv[1:]

fd = libc.inotify_init1(os.O_CLOEXEC)
if fd < 0:
    sys.exit(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
watches = {}
for path in paths:
    wd = libc.inotify_add_watch(fd, os.fsencode(path), IN_ACCESS | IN_MODIFY | IN_OPEN)
    if wd < 0:
        sys.exit(f"inotify_add_watch {path}: {os.strerror(ctypes.get_errno())}")
    watches[wd] = path
open(ready, "w").close()

with open(log_path, "a", buffering=1) as log:
    while True:
        data = os.read(fd, 65536)
        off = 0
        while off < len(data):
            wd, mask, _cookie, size = struct.unpack_from("iIII", data, off)
            name = data[off + 16:off + 16 + size].rstrip(b"\0").decode(errors="replace")
            off += 16 + size
            what = ",".join(n for bit, n in NAMES.items() if mask & bit)
            log.write(f"{what} {os.path.join(watches.get(wd, '?'), name)}\n")
