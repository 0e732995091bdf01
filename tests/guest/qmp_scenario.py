#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Drive the guest test's QEMU over QMP, in step with the guest's console.

usage: qmp_scenario.py QMP_SOCKET CONSOLE_LOG SYNC_DIR PIDFILE TAG=EXPORT...

QEMU was started with -S.  The steps, each printed as `HOST ok NAME` or
`HOST FAIL NAME: why`:
  1. `migrate` before the guest mounted anything: accepted and completes;
     then `cont`.
  2. guest says `GUEST-SYNC mounted-1`: `migrate` is refused with the VirtFS
     blocker's error and the guest keeps running; answer in SYNC_DIR.
  3. guest says `GUEST-SYNC lock-host-holds`: take bytes 0-99 of
     qrs-passthrough/locked with fcntl(F_SETLK) and answer; guest says
     `GUEST-SYNC lock-guest-holds`: F_SETLK on bytes 200-299 (which the
     guest holds) must fail; release, answer.
  4. guest says `GUEST-SYNC budget-held` (2,000 files open on qrs-budget):
     QEMU's descriptors stay below its RLIMIT_NOFILE (1024); answer.
  5. guest says `GUEST-SYNC io-running`: `system_reset`; QEMU keeps running.
  6. guest (booted again) says `GUEST-SYNC mounted-2`: refused again.
  7. guest says `GUEST-SYNC unmounted`: `migrate` accepted and completes.
Then `quit`.  A guest that panics or a QEMU that dies ends the scenario.
"""
import fcntl
import os
import re
import sys
import time

from qmp import QMP

MIGRATE_URI = "exec:cat >/dev/null"
qmp_socket, console_log, sync_dir, pidfile = sys.argv[1:5]
exports = dict(arg.split("=", 1) for arg in sys.argv[5:])
failed = False


def report(name, problem):
    global failed
    if problem:
        failed = True
        print(f"HOST FAIL {name}: {problem}", flush=True)
    else:
        print(f"HOST ok {name}", flush=True)


class Aborted(Exception):
    """The scenario cannot go on (guest panic, QEMU gone, timeout)."""


def qemu_alive():
    try:
        with open(pidfile) as f:
            return os.path.exists(f"/proc/{int(f.read())}")
    except (OSError, ValueError):
        return False


class Console:
    """Follows the serial console log, line by line."""

    def __init__(self, path):
        self.path, self.offset, self.partial = path, 0, ""

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        text = self.partial + data.decode("utf-8", "replace").replace("\r", "")
        *complete, self.partial = text.split("\n")
        return complete

    def wait_for(self, wanted, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if line.strip() == wanted:
                    return
                if "Kernel panic" in line:
                    raise Aborted(f"guest: {line.strip()}")
            if not qemu_alive():
                raise Aborted(f"QEMU exited while waiting for '{wanted}'")
            time.sleep(0.2)
        raise Aborted(f"no '{wanted}' on the console within {timeout} s")


def run_state(qmp):
    reply = qmp.command("query-status")
    return reply.get("return", {}).get("status", f"query-status: {reply}")


def migration_done(qmp, timeout=300):
    """Wait for the current migration to end; returns its final status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = qmp.command("query-migrate").get("return", {})
        status = info.get("status")
        if status in ("completed", "failed", "cancelled"):
            return status, info.get("error-desc", "")
        time.sleep(0.2)
    qmp.command("migrate_cancel")
    return "timeout", f"not finished within {timeout} s"


def migrate_allowed(qmp):
    """`migrate` must be accepted and complete (the guest is left stopped)."""
    reply = qmp.command("migrate", uri=MIGRATE_URI)
    if "error" in reply:
        return f"refused: {reply['error'].get('desc')}"
    status, why = migration_done(qmp)
    return None if status == "completed" else f"migration {status}: {why}"


def migrate_refused(qmp):
    """`migrate` must fail with the VirtFS blocker, the guest running on."""
    reply = qmp.command("migrate", uri=MIGRATE_URI)
    if "return" in reply:
        # Let it end and resume the guest, so the rest of the test can run.
        status, _ = migration_done(qmp)
        qmp.command("cont")
        return f"migrate accepted while mounted (migration {status})"
    desc = reply["error"].get("desc", "")
    print(f"HOST info migrate refused: {desc}", flush=True)
    # The error names the mounted export and its tag.
    named = re.search(r"VirtFS export path '([^']*)' is mounted in the guest "
                      r"using mount_tag '([^']*)'", desc)
    if not named:
        return f"error does not name a mounted VirtFS export: {desc!r}"
    path, tag = named.groups()
    if exports.get(tag) != path:
        return f"error names tag '{tag}' and path '{path}', not one of ours"
    state = run_state(qmp)
    return None if state == "running" else f"guest is {state} after the refusal"


def answer(name):
    open(os.path.join(sync_dir, name), "w").close()


def host_lock(fd, start, length):
    """fcntl(F_SETLK, F_WRLCK) on [start, start + length): None, or why not."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start)
        return None
    except OSError as e:
        return f"{os.strerror(e.errno)}"


def locks(console):
    """Byte-range locks on the qrs driver exclude host processes and back."""
    fd = os.open(os.path.join(exports["qrs-passthrough"], "locked"), os.O_RDWR)
    try:
        console.wait_for("GUEST-SYNC lock-host-holds", 900)
        report("locks/host-takes-lock", host_lock(fd, 0, 100))
        answer("lock-host-holds")
        console.wait_for("GUEST-SYNC lock-guest-holds", 300)
        why = host_lock(fd, 200, 100)
        report("locks/guest-excludes-host",
               "the host got bytes 200-299 the guest holds" if why is None else None)
    finally:
        os.close(fd)  # drops every lock this process has on the file
    answer("lock-guest-holds")


def open_files_limit(pid):
    """RLIMIT_NOFILE (soft) of process PID."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise OSError(f"no 'Max open files' in /proc/{pid}/limits")


def budget(console):
    """The guest holds 2,000 files open on qrs-budget: QEMU stays below its
    descriptor limit (the native backend's budget and the engine's reclaim)."""
    console.wait_for("GUEST-SYNC budget-held", 900)
    with open(pidfile) as f:
        pid = int(f.read())
    held = len(os.listdir(f"/proc/{pid}/fd"))
    limit = open_files_limit(pid)
    print(f"HOST info budget: QEMU holds {held} descriptors, "
          f"RLIMIT_NOFILE {limit}, the guest 2000 open files", flush=True)
    report("budget/qemu-below-descriptor-limit",
           None if held < limit else f"{held} descriptors, limit {limit}")
    report("budget/qemu-limit-is-1024",
           None if limit == 1024 else f"RLIMIT_NOFILE {limit}")
    answer("budget-held")


def scenario(qmp, console):
    report("migrate-before-mount", migrate_allowed(qmp))
    reply = qmp.command("cont")
    report("cont-after-migrate", None if "return" in reply else f"{reply}")

    console.wait_for("GUEST-SYNC mounted-1", 300)
    report("migrate-refused-while-mounted", migrate_refused(qmp))
    answer("mounted-1")

    locks(console)
    budget(console)

    # Generous: the whole boot-1 workload runs before this.
    console.wait_for("GUEST-SYNC io-running", 900)
    reply = qmp.command("system_reset")
    report("system-reset-during-io", None if "return" in reply else f"{reply}")
    time.sleep(1)
    state = run_state(qmp)
    report("qemu-running-after-reset",
           None if state == "running" and qemu_alive() else f"state {state}")

    console.wait_for("GUEST-SYNC mounted-2", 300)
    report("migrate-refused-after-reset-and-remount", migrate_refused(qmp))
    answer("mounted-2")

    console.wait_for("GUEST-SYNC unmounted", 300)
    report("migrate-after-unmount", migrate_allowed(qmp))


def main():
    try:
        qmp = QMP(qmp_socket)
    except Exception as e:
        report("qmp-connect", f"{type(e).__name__}: {e}")
        return 1
    try:
        scenario(qmp, Console(console_log))
    except (Aborted, OSError, EOFError) as e:
        report("qmp-scenario", f"{type(e).__name__}: {e}")
    try:
        qmp.command("quit")
    except (OSError, EOFError):
        pass  # already gone
    qmp.close()
    return 1 if failed else 0


sys.exit(main())
