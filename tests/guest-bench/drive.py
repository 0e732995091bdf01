#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The host's side of one guest benchmark run.

usage: drive.py CONSOLE SYNC_DIR PIDFILE TIMEOUT_S

Follows the guest's console, answers its BENCH-BEGIN/BENCH-END handshakes
(see init), samples the CPU time of the QEMU process (all its threads) at
each, and prints one line per workload:
    RESULT NAME WALL_S CPU_S SWITCHES SERVER_CPU_S
(SWITCHES: voluntary context switches of QEMU's threads, i.e. how many
times one of them waited: a proxy for the wake-ups a request costs;
SERVER_CPU_S: the CPU time of every thread but the vCPUs)
or FAIL NAME for a workload the guest reported as failed.  Exits 1 if the
guest did not reach BENCH-DONE within TIMEOUT_S.
"""
import os
import sys
import time

console, sync, pidfile, limit = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
ticks = os.sysconf("SC_CLK_TCK")


def qemu_pid():
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            return int(open(pidfile).read().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    sys.exit("drive.py: no QEMU pid file")


def cpu_seconds(pid):
    # utime and stime of the whole process (fields 14 and 15).
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def server_cpu_seconds(pid):
    """CPU time of QEMU's threads but its vCPU threads ("CPU n/TCG"): the
    9P server's own cost (main loop, I/O and worker threads), without the
    guest's emulation, which is the same for both binaries."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue  # a thread that exited meanwhile
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm.startswith("CPU "):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def thread_cpu(pid):
    """CPU seconds by thread name (diagnostics: BENCH_THREADS=1)."""
    by = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        by[comm] = by.get(comm, 0) + (int(fields[11]) + int(fields[12])) / ticks
    return by


def switches(pid):
    """Context switches of every thread of the process (voluntary: waits)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in open(f"/proc/{pid}/task/{tid}/status"):
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        except OSError:
            pass  # a thread that exited meanwhile
    return total


def lines(path):
    """The console's lines as they come (the file grows)."""
    deadline = time.monotonic() + limit
    pos, partial = 0, ""
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
        except OSError:
            data = b""
        if data:
            pos += len(data)
            partial += data.decode(errors="replace").replace("\r", "")
            *done, partial = partial.split("\n")
            for line in done:
                yield line
        else:
            time.sleep(0.002)
    sys.exit("drive.py: the guest did not finish in time")


pid = qemu_pid()
begin = {}
for line in lines(console):
    words = line.split()
    if not words:
        continue
    if words[0] == "BENCH-BEGIN":
        begin[words[1]] = (cpu_seconds(pid), server_cpu_seconds(pid), switches(pid))
        if os.environ.get("BENCH_THREADS"):
            threads_before = thread_cpu(pid)
        open(os.path.join(sync, words[1] + ".b"), "w").close()
    elif words[0] == "BENCH-END":
        cpu0, srv0, sw0 = begin.pop(words[1])
        cpu, srv = cpu_seconds(pid) - cpu0, server_cpu_seconds(pid) - srv0
        sw = switches(pid) - sw0
        if os.environ.get("BENCH_THREADS"):
            after = thread_cpu(pid)
            for name in sorted(after):
                d = after[name] - threads_before.get(name, 0)
                if d >= 0.01:
                    print(f"# {words[1]} thread {name}: {d:.2f} s", file=sys.stderr)
        print(f"RESULT {words[1]} {int(words[2]) / 100:.2f} {cpu:.2f} {sw} {srv:.2f}",
              flush=True)
        open(os.path.join(sync, words[1] + ".e"), "w").close()
    elif words[0] == "BENCH-FAIL":
        print(f"FAIL {words[1]}", flush=True)
    elif words[0] == "BENCH-DONE":
        sys.exit(0)
    elif "Kernel panic" in line:
        sys.exit("drive.py: the guest kernel panicked: " + line)
