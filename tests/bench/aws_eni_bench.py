#!/usr/bin/env python3
"""aws-eni benchmark against the emulated EC2 (moto + tests/aws/ec2sim.py), one run.

    aws_eni_bench.py --rustha PATH/aws-eni [--moves 6] [-n 30] [--json FILE]

Two simulated instances (network namespaces A and B, loopback-only endpoints), EC2
attach and detach transitions of 2 s each (--secs). Measured:
  * move time: `start` on the node that does not hold the ENI (detach there, attach here,
    interface and address up), median over --moves moves back and forth; target: at most
    the transitions (detach + attach) plus one ~1 s poll interval (our polls are 200-250
    ms). The home-made script this replaces sleeps 15 s + 10 s = 25 s (anchors §3.4);
  * EC2 API calls per move (counted by the simulator);
  * monitor CPU at depth 0 (no API call), median over -n, and its forks.
Everything it starts (moto, the simulator) it stops by PID; namespaces are removed.
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import agentrun

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "..", "aws", "ec2sim.py")
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def setns(ns):
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)


def run(agent, action, env, ns):
    """Run the agent inside `ns` (this process enters it for the exec: no `ip` in between)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns(ns)
    try:
        return agentrun.run(agent, action, env, what=f"{action} in {ns}")
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)


def calls(ctl):
    with urllib.request.urlopen(f"http://127.0.0.1:{ctl}/_sim/calls") as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rustha", required=True)
    ap.add_argument("--moves", type=int, default=6)
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--secs", type=float, default=2.0)
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (network namespaces)")
    if os.path.basename(a.rustha) != "aws-eni":
        sys.exit("--rustha must be a link named aws-eni")
    tag = f"rh-awsbench-{os.getpid()}"
    ns = [f"{tag}-a", f"{tag}-b"]
    procs = []
    tmp = tempfile.mkdtemp(prefix="rustha-bench-aws-")
    try:
        for n in ns:
            subprocess.run(["ip", "netns", "add", n], check=True)
            subprocess.run(["ip", "-n", n, "link", "set", "lo", "up"], check=True)
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(moto)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        sim = subprocess.Popen([sys.executable, SIM, "--moto", f"http://127.0.0.1:{port}",
                                "--ns", ns[0], "--ns", ns[1], "--attach-secs", str(a.secs),
                                "--detach-secs", str(a.secs)], stdout=subprocess.PIPE)
        procs.append(sim)
        line = sim.stdout.readline().decode()
        if not line.startswith("ready "):
            sys.exit(f"ec2sim did not start: {line!r}")
        f = dict(w.split("=", 1) for w in line.split()[1:])
        ctl = int(f["ctl"])
        envs = []
        for i in range(2):
            d = os.path.join(tmp, str(i))
            os.makedirs(d)
            envs.append({
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf",
                "OCF_RESOURCE_INSTANCE": "eni", "OCF_RESKEY_CRM_meta_timeout": "60000",
                "RUSTHA_STATE_DIR": d, "OCF_RESKEY_eni_id": f["eni"],
                "OCF_RESKEY_endpoint_url": "http://127.0.0.1:5000",
                "OCF_RESKEY_imds_endpoint": "http://127.0.0.1:5001",
                "OCF_RESKEY_auth_type": "key", "OCF_RESKEY_access_key_id": "AKIDBENCH0000000",
                "OCF_RESKEY_secret_access_key": "bench-secret",
            })
        run(a.rustha, "start", envs[0], ns[0])  # the ENI starts on A
        moves, api = [], []
        for m in range(a.moves):
            dst = (m + 1) % 2
            c0 = len(calls(ctl))
            r = run(a.rustha, "start", envs[dst], ns[dst])
            api.append(len(calls(ctl)) - c0)
            moves.append(r["wall"])
            run(a.rustha, "stop", envs[1 - dst], ns[1 - dst])  # the old holder's stop: a no-op
        holder = a.moves % 2
        mon_env = dict(envs[holder], OCF_RESKEY_CRM_meta_interval="10000")
        mons = [run(a.rustha, "monitor", mon_env, ns[holder]) for _ in range(a.n)]
        run(a.rustha, "stop", envs[holder], ns[holder])
        res = {
            "transitions_s": 2 * a.secs,
            "move_s": {"median": statistics.median(moves), "min": min(moves), "max": max(moves)},
            "api_calls_per_move": {"median": statistics.median(api), "min": min(api), "max": max(api)},
            "monitor_cpu_ms": statistics.median(m["cpu"] for m in mons) * 1000,
            "monitor_wall_ms": statistics.median(m["wall"] for m in mons) * 1000,
            "monitor_forks": statistics.median(m["forks"] for m in mons),
            # /bin/true started and measured the same way: what any exec costs here.
            "exec_floor_cpu_ms": agentrun.floor_ms(a.n)["cpu_ms"],
        }
        # The target: transitions + one poll interval of its suggested ~1 s. Our
        # polls are 200-250 ms, so each of the two transitions ends at most ~250 ms before
        # we see it; the simulator's own `ip link` work adds a little on each.
        target = 2 * a.secs + 1.0
        over = res["move_s"]["median"] - 2 * a.secs
        print("| metric | rustha | reference | target |\n|---|---|---|---|")
        print(f"| move time (median of {a.moves}; min–max) | {res['move_s']['median']:.2f} s "
              f"({res['move_s']['min']:.2f}–{res['move_s']['max']:.2f}); {over:.2f} s over the "
              f"{2 * a.secs:.0f} s of transitions | home-made script: the transitions + 25 s of sleeps "
              f"| ≤ {target:.1f} s ({'PASS' if res['move_s']['median'] <= target else 'FAIL'}) |")
        print(f"| EC2 API calls per move (median; min–max) | {res['api_calls_per_move']['median']:.0f} "
              f"({res['api_calls_per_move']['min']}–{res['api_calls_per_move']['max']}) | | |")
        print(f"| monitor depth 0 CPU (median of {a.n}) | {res['monitor_cpu_ms']:.2f} ms "
              f"(exec floor {res['exec_floor_cpu_ms']:.2f} ms) | awsvip: an API call per monitor | |")
        print(f"| monitor depth 0 wall | {res['monitor_wall_ms']:.2f} ms | | |")
        print(f"| monitor depth 0 forks | {res['monitor_forks']:.0f} | | 0 |")
        if a.json:
            with open(a.json, "w") as fh:
                json.dump(res, fh, indent=2)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for n in ns:
            subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
