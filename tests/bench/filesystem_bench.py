#!/usr/bin/env python3
"""Filesystem benchmark: ocf:rustha:Filesystem side by side with ocf:heartbeat:Filesystem,
one run.

    filesystem_bench.py --rustha PATH/Filesystem [--upstream PATH] [-n 30] [--users 100,1000] [--json FILE]

Re-executes itself in a private mount namespace (unshare -m, every mount private: nothing
it mounts reaches the host). Each agent gets a loop device of its own over a sparse file
(ext4, 64 MiB), made and detached (by its own name) here; both run with the same
environment and parameters and the same invocation (a direct posix_spawn, see
agentrun.py).

Measured per agent:
  * monitor depth 0 (recurring, mounted): CPU of the agent and every process it waited
    for, wall, processes forked (median over -n); beside it the exec floor;
  * start+stop cycle, no users: wall, CPU, forks (median over -n / 3);
  * stop with U users (for each U of --users): U processes holding the mount, a third
    each by their cwd, by an open file and by a mapped file (python's mmap, one process per
    mapping, started before the clock); the stop's wall and CPU, and how many of the U
    users it found: a user counts as found when it was signalled to death by the stop
    (every one is reaped here; one still alive after the stop was missed, and is killed).
    A stop that leaves the filesystem mounted fails the bench.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import agentrun
from agentrun import run, sh

UPSTREAM = "/usr/lib/ocf/resource.d/heartbeat/Filesystem"

MMAP_USER = ("import mmap,sys,time\n"
             "f=open(sys.argv[1],'rb'); m=mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ)\n"
             "f.close(); print('ok', flush=True); time.sleep(3600)\n")


class Disk:
    """A loop device with ext4 over a sparse file in `tmp`; detached by its own name."""

    def __init__(self, tmp, tag):
        self.img = os.path.join(tmp, f"{tag}.img")
        with open(self.img, "wb") as f:
            f.truncate(64 << 20)
        self.dev = subprocess.run(["losetup", "--find", "--show", self.img], check=True,
                                  capture_output=True, text=True).stdout.strip()
        self.point = os.path.join(tmp, f"{tag}-mnt")

    def mkfs(self):
        sh("mkfs.ext4", "-q", "-F", self.dev)

    def mounted(self):
        st = os.stat(self.dev)
        devno = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        with open("/proc/self/mountinfo") as f:
            return any(ln.split()[2] == devno for ln in f)

    def close(self):
        if self.mounted():
            subprocess.run(["umount", self.point], check=False)
        subprocess.run(["losetup", "-d", self.dev], check=False)
        os.unlink(self.img)


def env_for(disk, state, interval_ms):
    return agentrun.ocf_env("benchfs", state, interval_ms, {
        "CRM_meta_timeout": "60000", "device": disk.dev, "directory": disk.point,
        "fstype": "ext4"})


def users(point, n):
    """n processes holding the mount: cwd, an open file (stdin), a mapped file."""
    work = os.path.join(point, "work")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(point, "data")
    with open(data, "wb") as f:
        f.write(b"x" * 8192)
    procs = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            p = subprocess.Popen(["sleep", "3600"], cwd=work, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL)
        elif kind == 1:
            with open(data, "rb") as f:
                p = subprocess.Popen(["sleep", "3600"], cwd="/", stdin=f,
                                     stdout=subprocess.DEVNULL)
        else:
            p = subprocess.Popen([sys.executable, "-c", MMAP_USER, data], cwd="/",
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        procs.append(p)
    # Every mapping in place before the clock starts.
    for p in procs:
        if p.stdout is not None:
            if p.stdout.readline().strip() != b"ok":
                sys.exit("a mmap user did not start")
            p.stdout.close()
    return procs


def reap(procs):
    """(found, missed): users the stop killed, users still alive (then killed here)."""
    found = missed = 0
    for p in procs:
        try:
            rc = p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        if rc is not None and rc < 0:
            found += 1
        else:
            missed += 1
            p.kill()
            p.wait()
    return found, missed


def measure(agent, disk, state, n, user_counts):
    env = env_for(disk, state, 0)
    mon_env = env_for(disk, state, 10000)
    cycles = []
    for _ in range(max(3, n // 3)):
        a = run(agent, "start", env)
        b = run(agent, "stop", env)
        cycles.append({k: a[k] + b[k] for k in a})
    run(agent, "start", env)
    mons, floor = [], []
    for _ in range(n):
        mons.append(run(agent, "monitor", mon_env))
        floor.append(agentrun.floor_ms(1))
    run(agent, "stop", env)
    stops = {}
    for u in user_counts:
        run(agent, "start", env)
        procs = users(disk.point, u)
        try:
            s = run(agent, "stop", env, what=f"{agent} with {u} users")
        finally:
            found, missed = reap(procs)
        if disk.mounted():
            sys.exit(f"{agent}: stop with {u} users returned 0 and left it mounted")
        stops[str(u)] = dict(s, users=u, found=found, missed=missed)
    m_cpu = agentrun.summary(mons, "cpu")
    return {
        "monitor_cpu_ms": {k: v * 1000 for k, v in m_cpu.items()},
        "monitor_wall_ms": {k: v * 1000 for k, v in agentrun.summary(mons, "wall").items()},
        "monitor_forks": agentrun.summary(mons, "forks"),
        "exec_floor_cpu_ms": statistics.median(f["cpu_ms"] for f in floor),
        "start_stop_wall_ms": {k: v * 1000 for k, v in agentrun.summary(cycles, "wall").items()},
        "start_stop_cpu_ms": {k: v * 1000 for k, v in agentrun.summary(cycles, "cpu").items()},
        "start_stop_forks": agentrun.summary(cycles, "forks"),
        "stop_with_users": stops,
    }


def table(up, us):
    out = ["| metric | heartbeat | rustha | ratio | target |", "|---|---|---|---|---|"]
    out += agentrun.ratio_rows(up, us, (
        ("monitor depth 0 CPU (median)", "monitor_cpu_ms", "ms", 30),
        ("monitor depth 0 wall (median)", "monitor_wall_ms", "ms", None),
        ("start+stop wall (median)", "start_stop_wall_ms", "ms", None),
        ("start+stop CPU (median)", "start_stop_cpu_ms", "ms", None)))
    for u, a in up["stop_with_users"].items():
        b = us["stop_with_users"][u]
        ratio = a["wall"] / b["wall"] if b["wall"] > 0 else float("inf")
        target = "≥10× " + ("PASS" if ratio >= 10 else "FAIL") if u == "1000" else ""
        out.append(f"| stop wall, {u} users | {a['wall'] * 1000:.0f} ms | {b['wall'] * 1000:.0f} ms "
                   f"| {ratio:.1f}× | {target} |")
        out.append(f"| stop CPU, {u} users | {a['cpu'] * 1000:.0f} ms | {b['cpu'] * 1000:.0f} ms "
                   f"| {a['cpu'] / b['cpu'] if b['cpu'] else float('inf'):.1f}× | |")
        ok = "PASS" if b["found"] == b["users"] else "FAIL"
        out.append(f"| users found of {u} (missed) | {a['found']} ({a['missed']}) | "
                   f"{b['found']} ({b['missed']}) | | all {ok} |")
        out.append(f"| forks of that stop | {a['forks']} | {b['forks']} | | |")
    a, b = up["monitor_forks"], us["monitor_forks"]
    out.append(f"| forks per monitor (median, min) | {a['median']:.0f}, {a['min']} | "
               f"{b['median']:.0f}, {b['min']} | | {'0 PASS' if b['min'] == 0 else '0 FAIL'} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rustha", required=True, help="a link named Filesystem to the rustha binary")
    ap.add_argument("--upstream", default=UPSTREAM)
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--users", default="100,1000")
    ap.add_argument("--json")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (a private mount namespace, loop devices)")
    if os.path.basename(a.rustha) != "Filesystem":
        sys.exit("--rustha must be a link named Filesystem (the binary dispatches on its name)")
    if not os.path.exists(a.upstream):
        sys.exit(f"{a.upstream} is missing: install resource-agents")
    if not a.inner:
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "--",
                              sys.executable, os.path.abspath(__file__),
                              "--inner"] + sys.argv[1:])
    counts = [int(x) for x in a.users.split(",") if x]
    tmp = tempfile.mkdtemp(prefix="rustha-bench-fs-")
    # State files on a tmpfs, as /run is on a production node.
    state = os.path.join(tmp, "state")
    os.makedirs(state)
    sh("mount", "-t", "tmpfs", "-o", "size=4m", "rustha-bench", state)
    res = {}
    disks = []
    try:
        for key, agent in (("heartbeat", a.upstream), ("rustha", a.rustha)):
            print(f"measuring {key} ({agent}), n={a.n}, users {counts} ...", file=sys.stderr)
            d = Disk(tmp, key)
            disks.append(d)
            d.mkfs()
            res[key] = measure(agent, d, state, a.n, counts)
    finally:
        for d in disks:
            d.close()
        subprocess.run(["umount", state], check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", tmp], check=False)
    print(table(res["heartbeat"], res["rustha"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
