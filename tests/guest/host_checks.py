#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Check, from the host, what the guest workload did to the export.

usage: host_checks.py EXPORT_DIR; prints `HOST ok NAME` or `HOST FAIL NAME: why`.
"""
import hashlib
import os
import stat
import sys

root = sys.argv[1]


def path(*names):
    return os.path.join(root, *names)


def sha256(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check(name, fn):
    try:
        problem = fn()
    except Exception as e:  # a missing file is a failed check, not a crash
        problem = f"{type(e).__name__}: {e}"
    print(f"HOST ok {name}" if not problem else f"HOST FAIL {name}: {problem}")


def written():
    want = open(path("results", "written.sha256")).read().strip()
    got = sha256(path("written.bin"))
    return None if want == got else f"guest wrote {want}, host reads {got}"


def mode_and_size():
    st = os.stat(path("written.bin"))
    got = (st.st_size, stat.S_IMODE(st.st_mode))
    return None if got == (1048576, 0o640) else f"size/mode {got}"


def readdir():
    n = len(os.listdir(path("many")))
    return None if n == 1000 else f"{n} entries"


def rename():
    if os.path.exists(path("before")):
        return "old name still exists"
    return None if open(path("after")).read() == "rename-me\n" else "content differs"


def symlink():
    if not os.path.islink(path("link")):
        return "not a symlink"
    target = os.readlink(path("link"))
    return None if target == "written.bin" else f"target {target}"


def hardlink():
    a, b = os.stat(path("written.bin")), os.lstat(path("hard"))
    if a.st_ino != b.st_ino:
        return "different inodes"
    return None if b.st_nlink == 2 else f"nlink {b.st_nlink}"


def xattr():
    got = os.getxattr(path("written.bin"), "user.qemurs")
    return None if got == b"hello-xattr" else f"value {got!r}"


def truncate():
    data = open(path("trunc"), "rb").read()
    head = open(path("written.bin"), "rb").read(1000)
    if len(data) != 5000:
        return f"size {len(data)}"
    if data[:1000] != head or data[1000:] != bytes(4000):
        return "content is not the first 1000 bytes then zeros"
    return None


def unlink():
    return "still exists" if os.path.lexists(path("unlinked")) else None


def mkdir_rmdir():
    if not os.path.isdir(path("d1", "d2")):
        return "d1/d2 missing"
    return "d1/d2/d3 still exists" if os.path.exists(path("d1", "d2", "d3")) else None


for name, fn in [
    ("written-data", written), ("mode-and-size", mode_and_size), ("readdir", readdir),
    ("rename", rename), ("symlink", symlink), ("hardlink", hardlink), ("xattr", xattr),
    ("truncate", truncate), ("unlink", unlink), ("mkdir-rmdir", mkdir_rmdir),
]:
    check(name, fn)
