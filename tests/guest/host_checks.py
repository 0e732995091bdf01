#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Check, from the host, what the guest workload did to the exports.

usage: host_checks.py snapshot WORKDIR          before boot: record the read-only export
       host_checks.py check WORKDIR BUSYBOX     after: print `HOST ok NAME` / `HOST FAIL NAME: why`

WORKDIR holds one export per mount tag (passthrough, mapped-xattr,
mapped-file, none, dotu, ro, remap, and qrs-MODEL for each model on the
qrs driver); BUSYBOX is the file the guest copied
into passthrough/reset/io.* while QEMU was reset.

The mapped security models of 9p-local keep what the guest sees aside:
mapped-xattr in the user.virtfs.{mode,uid,gid} xattrs (little-endian
32-bit), mapped-file in .virtfs_metadata/NAME (`virtfs.mode=DECIMAL`
lines) next to NAME; the host file itself is created with mode 0600
(directories 0700) and owned by QEMU's user.
"""
import hashlib
import json
import os
import stat
import struct
import sys

MODELS = ("passthrough", "mapped-xattr", "mapped-file", "none")
# The host permission bits of what the mapped models create: 9p-local's
# defaults for fmode/dmode, but mapped-file's shares (local and qrs) give
# fmode=0604,dmode=0705 (run-guest-test.sh).
HOST_MODES = {"mapped-xattr": (0o600, 0o700), "mapped-file": (0o604, 0o705)}
META = ".virtfs_metadata"


def sha256(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check(name, fn, *args):
    try:
        problem = fn(*args)
    except Exception as e:  # a missing file is a failed check, not a crash
        problem = f"{type(e).__name__}: {e}"
    print(f"HOST ok {name}" if not problem else f"HOST FAIL {name}: {problem}")


def mapped_file_meta(path):
    """The attributes mapped-file keeps for path, as {key: int}."""
    meta = os.path.join(os.path.dirname(path), META, os.path.basename(path))
    with open(meta) as f:
        return {k.removeprefix("virtfs."): int(v)
                for k, v in (line.strip().split("=", 1) for line in f if "=" in line)}


def guest_view(model, path):
    """(mode, uid, gid) as the guest sees path under this security model."""
    st = os.lstat(path)
    if model == "mapped-xattr":
        def attr(name):
            return struct.unpack("<I", os.getxattr(path, f"user.virtfs.{name}",
                                                   follow_symlinks=False))[0]
        return attr("mode"), attr("uid"), attr("gid")
    if model == "mapped-file":
        meta = mapped_file_meta(path)
        return meta["mode"], meta["uid"], meta["gid"]
    return st.st_mode, st.st_uid, st.st_gid


def expect_modes(model, path, guest_mode, host_mode_if_mapped):
    """Guest-visible mode is guest_mode (with the type bits); the host file's
    permission bits are the same (passthrough, none) or 9p-local's fmode/dmode
    (mapped models)."""
    mode, _, _ = guest_view(model, path)
    if mode != guest_mode:
        return f"guest-visible mode {mode:o}, expected {guest_mode:o}"
    host = stat.S_IMODE(os.lstat(path).st_mode)
    want = host_mode_if_mapped if model.startswith("mapped") else stat.S_IMODE(guest_mode)
    return None if host == want else f"host mode {host:o}, expected {want:o}"


def model_checks(root, model, tag=None):
    """The workload's results under one security model; the checks are
    named after the share's tag (the model's name, or qrs-MODEL for the
    same model on the qrs driver, which keeps 9p-local's on-disk format)."""
    def p(*names):
        return os.path.join(root, *names)

    mapped = model.startswith("mapped")
    FMODE, DMODE = HOST_MODES.get(model, (None, None))

    def written():
        want = open(p("results", "written.sha256")).read().strip()
        got = sha256(p("written.bin"))
        return None if want == got else f"guest wrote {want}, host reads {got}"

    def mode_and_size():
        size = os.lstat(p("written.bin")).st_size
        if size != 1048576:
            return f"size {size}"
        return expect_modes(model, p("written.bin"), stat.S_IFREG | 0o640, FMODE)

    def owner():
        _, uid, gid = guest_view(model, p("owned"))
        if (uid, gid) != (1234, 5678):
            return f"guest-visible owner {uid}:{gid}"
        st = os.lstat(p("owned"))
        # Mapped models leave the host file to QEMU's user.
        want = (os.getuid(), os.getgid()) if mapped else (1234, 5678)
        got = (st.st_uid, st.st_gid)
        return None if got == want else f"host owner {got}, expected {want}"

    def dir_mode():
        return expect_modes(model, p("dmode"), stat.S_IFDIR | 0o750, DMODE)

    def readdir():
        names = [n for n in os.listdir(p("many")) if n != META]
        if len(names) != 1000:
            return f"{len(names)} entries"
        if model == "mapped-file" and len(os.listdir(p("many", META))) != 1000:
            return f"{len(os.listdir(p('many', META)))} metadata files, expected 1000"
        return None

    def rename():
        if os.path.lexists(p("before")):
            return "old name still exists"
        if open(p("after")).read() != "rename-me\n":
            return "content differs"
        if model == "mapped-file":
            if os.path.lexists(p(META, "before")) or not os.path.exists(p(META, "after")):
                return "metadata file not renamed with the file"
        return None

    def symlink():
        if mapped:
            # A regular file holding the target; the guest's mode says link.
            if os.path.islink(p("link")):
                return "a host symlink, expected a regular file"
            target = open(p("link")).read()
            if target != "written.bin":
                return f"target {target!r}"
            return expect_modes(model, p("link"), stat.S_IFLNK | 0o777, FMODE)
        if not os.path.islink(p("link")):
            return "not a symlink"
        target = os.readlink(p("link"))
        return None if target == "written.bin" else f"target {target}"

    def hardlink():
        a, b = os.stat(p("written.bin")), os.lstat(p("hard"))
        if a.st_ino != b.st_ino:
            return "different inodes"
        if b.st_nlink != 2:
            return f"nlink {b.st_nlink}"
        if model == "mapped-file":
            if os.stat(p(META, "written.bin")).st_ino != os.stat(p(META, "hard")).st_ino:
                return "metadata files are not linked"
        return None

    def xattr():
        got = os.getxattr(p("written.bin"), "user.qemurs")
        return None if got == b"hello-xattr" else f"value {got!r}"

    def truncate():
        data = open(p("trunc"), "rb").read()
        head = open(p("written.bin"), "rb").read(1000)
        if len(data) != 5000:
            return f"size {len(data)}"
        if data[:1000] != head or data[1000:] != bytes(4000):
            return "content is not the first 1000 bytes then zeros"
        return None

    def gone(*names):
        left = [n for n in names if os.path.lexists(p(n))]
        return f"still there: {', '.join(left)}" if left else None

    def unlink():
        return gone("unlinked", *([os.path.join(META, "unlinked")] if model == "mapped-file" else []))

    def mkdir_rmdir():
        if not os.path.isdir(p("d1", "d2")):
            return "d1/d2 missing"
        return gone(os.path.join("d1", "d2", "d3"),
                    *([os.path.join("d1", "d2", META, "d3")] if model == "mapped-file" else []))

    def open_unlink():
        return gone("open-unlink", *([os.path.join(META, "open-unlink")] if model == "mapped-file" else []))

    for name, fn in [
        ("written-data", written), ("mode-and-size", mode_and_size), ("owner", owner),
        ("dir-mode", dir_mode), ("readdir", readdir), ("rename", rename),
        ("symlink", symlink), ("hardlink", hardlink), ("xattr", xattr),
        ("truncate", truncate), ("unlink", unlink), ("mkdir-rmdir", mkdir_rmdir),
        ("open-unlink-gone", open_unlink),
    ]:
        check(f"{tag or model}/{name}", fn)


def qrs_checks(work):
    """The qrs driver: the special files and the directory outside the
    export that the guest could see were never opened, read or written
    on the host (watch_opens.py logged every such event)."""
    def nothing_opened():
        log = os.path.join(work, "opens.log")
        if not os.path.exists(os.path.join(work, "opens.ready")):
            return "the inotify watcher never started"
        events = open(log).read().split("\n") if os.path.exists(log) else []
        events = [e for e in events if e]
        return f"opened on the host: {events[:5]}" if events else None

    def special_intact():
        sp = os.path.join(work, "qrs-passthrough", "special")
        kinds = {n: stat.S_IFMT(os.lstat(os.path.join(sp, n)).st_mode) for n in os.listdir(sp)}
        want = {"root-link": stat.S_IFLNK, "etc-link": stat.S_IFLNK, "up-link": stat.S_IFLNK,
                "outside-link": stat.S_IFLNK, "fifo": stat.S_IFIFO, "null": stat.S_IFCHR}
        return None if kinds == want else f"special/ holds {kinds}"

    def setid(model):
        def fn():
            got = [stat.S_IMODE(guest_view(model, os.path.join(work, f"qrs-{model}", f"setid.{who}"))[0])
                   for who in ("user", "root")]
            return None if got == [0o777, 0o6777] else f"modes {[oct(m) for m in got]}, expected 0o777 0o6777"
        return fn

    check("qrs/special-files-never-opened", nothing_opened)
    check("qrs-passthrough/setid-on-host", setid("passthrough"))
    check("qrs-mapped-xattr/setid-on-host", setid("mapped-xattr"))
    check("qrs/special-files-intact", special_intact)


def xcompat_checks(work):
    """One export per mapped model written through local and through qrs
    (by-xl, by-xq): both wrote 9p-local's format, read here directly."""
    want = {"": (stat.S_IFDIR | 0o2750, 1234, 5678), "f": (stat.S_IFREG | 0o4751, 4321, 8765),
            "l": (stat.S_IFLNK | 0o777, 0, 5678), "p": (stat.S_IFIFO | 0o600, 0, 5678),
            "c": (stat.S_IFCHR | 0o640, 0, 5678)}  # the set-group-ID directory's group
    for model in ("mapped-xattr", "mapped-file"):
        for by in ("by-xl", "by-xq"):
            d = os.path.join(work, f"x-{model}", by)

            def fmt():
                for name, (mode, uid, gid) in want.items():
                    p = os.path.join(d, name) if name else d
                    got = guest_view(model, p)
                    if got != (mode, uid, gid):
                        return f"{name or '.'}: {got[0]:o} {got[1]} {got[2]}, expected {mode:o} {uid} {gid}"
                    # Every entry is a plain file or directory on the host.
                    host = stat.S_IFMT(os.lstat(p).st_mode)
                    if host != (stat.S_IFDIR if name == "" else stat.S_IFREG):
                        return f"{name}: host type {host:o}"
                return None
            check(f"xcompat/{model}/{by}-format", fmt)


def dotu_checks(root):
    def p(*names):
        return os.path.join(root, *names)

    def written():
        want = open(p("written.sha256")).read().strip()
        st = os.lstat(p("written.bin"))
        if stat.S_IMODE(st.st_mode) != 0o640:
            return f"mode {stat.S_IMODE(st.st_mode):o}"
        return None if sha256(p("written.bin")) == want else "content differs"

    def renamed():
        if os.path.lexists(p("before")):
            return "old name still exists"
        return None if open(p("dir", "after")).read() == "moved\n" else "content differs"

    check("dotu/written-data", written)
    check("dotu/rename", renamed)
    check("dotu/unlink", lambda: "still exists" if os.path.lexists(p("unlinked")) else None)


def snapshot(root):
    """Everything a guest write could change in root (atime aside)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            entry = {k: getattr(st, k) for k in
                     ("st_mode", "st_uid", "st_gid", "st_size", "st_nlink",
                      "st_ino", "st_mtime_ns", "st_ctime_ns")}
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                entry["sha256"] = sha256(path)
            entry["xattrs"] = {x: os.getxattr(path, x, follow_symlinks=False).hex()
                               for x in sorted(os.listxattr(path, follow_symlinks=False))}
            out[os.path.relpath(path, root)] = entry
    st = os.lstat(root)
    out["."] = {"st_mode": st.st_mode, "st_mtime_ns": st.st_mtime_ns,
                "st_ctime_ns": st.st_ctime_ns, "st_nlink": st.st_nlink}
    return out


def ro_checks(root, before_file):
    def unchanged():
        before = json.load(open(before_file))
        after = json.loads(json.dumps(snapshot(root)))
        if before == after:
            return None
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        return f"changed: {', '.join(changed)}"

    check("ro/host-unchanged", unchanged)


def remap_checks(root):
    def collide():
        # Without remap the guest would see these pairs as one inode.
        top = {os.lstat(os.path.join(root, n)).st_ino for n in os.listdir(root) if n != "sub"}
        sub = {os.lstat(os.path.join(root, "sub", n)).st_ino for n in os.listdir(os.path.join(root, "sub"))}
        if os.lstat(root).st_dev == os.lstat(os.path.join(root, "sub")).st_dev:
            return "sub is not another filesystem"
        if len(top) < 40 or len(sub) < 40:
            return f"{len(top)} and {len(sub)} files, expected the guest's 40 and 40"
        return None if top & sub else "no raw inode number is shared between the two filesystems"

    check("remap/raw-inodes-collide", collide)


def reset_checks(pt, busybox):
    z = os.path.join(pt, "reset")

    def marker():
        got = open(os.path.join(z, "marker")).read()
        return None if got == "boot1\n" else f"marker {got!r}"

    def io_prefixes():
        whole = open(busybox, "rb").read()
        names = sorted(n for n in os.listdir(z) if n.startswith("io."))
        if not names:
            return "no io.* files"
        bad = [n for n in names if not whole.startswith(open(os.path.join(z, n), "rb").read())]
        return f"not a prefix of what was written: {', '.join(bad)}" if bad else None

    def after_reset():
        want = open(os.path.join(z, "after-reset.sha256")).read().strip()
        return None if sha256(os.path.join(z, "after-reset.bin")) == want else "content differs"

    def earlier_data():
        want = open(os.path.join(pt, "results", "written.sha256")).read().strip()
        return None if sha256(os.path.join(pt, "written.bin")) == want else "content differs"

    def hammer_clean():
        d = os.path.join(pt, "hammer")
        workers = sorted(os.listdir(d))
        if workers != ["w0", "w1", "w2", "w3"]:
            return f"worker directories {workers}"
        left = [w for w in workers if os.listdir(os.path.join(d, w))]
        return f"files left in {', '.join(left)}" if left else None

    check("reset/marker", marker)
    check("reset/io-prefixes", io_prefixes)
    check("reset/write-after-reset", after_reset)
    check("reset/earlier-data-intact", earlier_data)
    check("hammer/directories-empty", hammer_clean)


def main():
    mode, work = sys.argv[1], sys.argv[2]
    if mode == "snapshot":
        with open(os.path.join(work, "ro.snapshot.json"), "w") as f:
            json.dump(snapshot(os.path.join(work, "ro")), f)
        return
    for model in MODELS:
        model_checks(os.path.join(work, model), model)
        model_checks(os.path.join(work, f"qrs-{model}"), model, f"qrs-{model}")
    qrs_checks(work)
    xcompat_checks(work)
    dotu_checks(os.path.join(work, "dotu"))
    ro_checks(os.path.join(work, "ro"), os.path.join(work, "ro.snapshot.json"))
    remap_checks(os.path.join(work, "remap"))
    reset_checks(os.path.join(work, "passthrough"), sys.argv[3])


main()
