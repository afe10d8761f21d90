#!/usr/bin/env python3
"""IPaddr2 benchmark: ocf:rustha:IPaddr2 side by side with ocf:heartbeat:IPaddr2, one run.

    ipaddr2_bench.py --rustha PATH/IPaddr2 [--upstream PATH] [-n 30] [--json FILE]

Re-executes itself in private network and mount namespaces (unshare -n -m; state files
go to a tmpfs, as /run is on a production node) holding one veth pair
(vip0 <-> obs0) with TEST-NET addresses (192.0.2.0/24); the agents add 192.0.2.10 there,
so nothing reaches any other network. Both agents run with the same environment, the
same parameters and the same invocation (a direct exec, no `ip netns exec` in between).

Measured per agent (median over -n runs):
  * monitor (recurring, address present): CPU (user+sys of the agent and every process it
    waited for, from os.wait4 after posix_spawn: see agentrun.py), wall time, processes
    forked; beside it the exec floor (/bin/true started and measured the same way);
  * start+stop cycle (IPv4, background ARP as both default): wall, CPU, forks;
  * the share of one core that 100 VIPs monitored every 10 s would cost;
  * the background ARP sender's RSS while it runs (heartbeat's send_arp, rustha's
    announcer), and `nc -l -k`'s idle RSS for reference (azure-lb's helper upstream).
Forks are counted from the kernel's fork counter (/proc/stat `processes`) around each
run, minus the agent itself; other activity on the machine can only add to it, so the
minimum over runs is reported beside the median.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import agentrun
from agentrun import run, sh

UPSTREAM = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2"
VIP = "192.0.2.10"


def lab():
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "vip0", "type", "veth", "peer", "name", "obs0")
    sh("ip", "addr", "add", "192.0.2.1/24", "brd", "+", "dev", "vip0")
    sh("ip", "link", "set", "vip0", "up")
    sh("ip", "link", "set", "obs0", "up")


def env_for(tmp, interval_ms):
    return agentrun.ocf_env("benchvip", tmp, interval_ms, {"ip": VIP, "cidr_netmask": "24"})


def helpers_here():
    """Processes in our network namespace other than this one (we unshared it: each is a
    background helper an agent left running), by pid."""
    return agentrun.pids_in_netns(agentrun.netns_inode("self"))


def sample_helper_rss(limit_s=5.0, every_s=0.05):
    """RSS samples of the background sender while it runs (it ends on its own): the sum
    over every process in the namespace, i.e. heartbeat's send_arp with the subshell
    that waits for it, rustha's announcer alone."""
    samples, comms = [], set()
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        pids = helpers_here()
        if not pids:
            break
        rs = [r for r in map(agentrun.rss_kb, pids) if r and r["rss"] is not None]
        if rs:
            samples.append({k: sum(r[k] for r in rs) for k in ("rss", "anon", "file")})
            comms.update(agentrun.proc_comm(p) or "?" for p in pids)
        time.sleep(every_s)
    if not samples:
        return None
    med = lambda k: statistics.median(x[k] for x in samples)  # noqa: E731
    return {"comm": "+".join(sorted(comms)), "samples": len(samples),
            "rss_kB": med("rss"), "anon_kB": med("anon"), "file_kB": med("file"),
            "max_rss_kB": max(x["rss"] for x in samples)}


def nc_rss():
    """The reference: `nc -l -k PORT` (what ocf:heartbeat:azure-lb runs), idle."""
    p = subprocess.Popen(["nc", "-l", "-k", "61999"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        return agentrun.rss_kb(p.pid)
    finally:
        p.kill()
        p.wait()


def measure(agent, n):
    # State and pid files on a tmpfs, as /run is on a production node (on this machine
    # /run is plain disk, where every fsync of a state file would be measured instead).
    tmp = tempfile.mkdtemp(prefix="rustha-bench-ipaddr2-")
    sh("mount", "-t", "tmpfs", "-o", "size=4m", "rustha-bench", tmp)
    env = env_for(tmp, 0)
    mon_env = env_for(tmp, 10000)
    # Start+stop cycles (background ARP: both agents' IPv4 default).
    cycles = []
    for _ in range(n):
        a = run(agent, "start", env)
        b = run(agent, "stop", env)
        cycles.append({k: a[k] + b[k] for k in a})
    # Forks of a start+stop that announces in the foreground (arp_bg=false, one ARP).
    fg = dict(env, OCF_RESKEY_arp_bg="false", OCF_RESKEY_arp_count="1")
    fg_cycles = []
    for _ in range(max(3, n // 3)):
        a = run(agent, "start", fg)
        b = run(agent, "stop", fg)
        fg_cycles.append({k: a[k] + b[k] for k in a})
    # Monitors with the address up; meanwhile the background sender's memory.
    run(agent, "start", env)
    sender = sample_helper_rss()
    time.sleep(0.5)  # the background sender has finished: it does not count as a monitor's
    mons, floor = [], []
    for _ in range(n):
        mons.append(run(agent, "monitor", mon_env))
        floor.append(agentrun.floor_ms(1))
    run(agent, "stop", env)
    sh("umount", tmp)
    os.rmdir(tmp)
    m_cpu = agentrun.summary(mons, "cpu")
    return {
        "monitor_cpu_ms": {k: v * 1000 for k, v in m_cpu.items()},
        "monitor_wall_ms": {k: v * 1000 for k, v in agentrun.summary(mons, "wall").items()},
        "monitor_forks": agentrun.summary(mons, "forks"),
        "exec_floor_cpu_ms": statistics.median(f["cpu_ms"] for f in floor),
        "sender_rss": sender,
        "start_stop_wall_ms": {k: v * 1000 for k, v in agentrun.summary(cycles, "wall").items()},
        "start_stop_cpu_ms": {k: v * 1000 for k, v in agentrun.summary(cycles, "cpu").items()},
        "start_stop_forks": agentrun.summary(cycles, "forks"),
        "start_stop_fg_forks": agentrun.summary(fg_cycles, "forks"),
        # 100 VIPs, one monitor each every 10 s: CPU seconds per second = share of a core.
        "core_share_100_vips_pct": 100 * 100 * m_cpu["median"] / 10.0,
    }


def table(up, us, nc):
    rows = [
        ("monitor CPU (median)", "monitor_cpu_ms", "ms", 30),
        ("monitor wall (median)", "monitor_wall_ms", "ms", None),
        ("start+stop wall (median)", "start_stop_wall_ms", "ms", 20),
        ("start+stop CPU (median)", "start_stop_cpu_ms", "ms", None),
    ]
    out = ["| metric | heartbeat | rustha | ratio | target |", "|---|---|---|---|---|"]
    out += agentrun.ratio_rows(up, us, rows)
    hs, rs = up.get("sender_rss"), us.get("sender_rss")
    if hs and rs:
        out.append(f"| background ARP sender RSS, median while it runs ({hs['comm']} / "
                   f"{rs['comm']}) | {hs['rss_kB']:.0f} kB | {rs['rss_kB']:.0f} kB "
                   f"(anon {rs['anon_kB']:.0f} + file {rs['file_kB']:.0f}) | "
                   f"{rs['rss_kB'] / hs['rss_kB']:.2f}× | |")
    if rs and nc and nc.get("rss"):
        r = rs["rss_kB"] / nc["rss"]
        out.append(f"| announcer RSS vs `nc -l -k` idle (azure-lb's reference helper) | "
                   f"nc {nc['rss']} kB | {rs['rss_kB']:.0f} kB (max {rs['max_rss_kB']}) | "
                   f"{r:.2f}× | ≤1× nc " + ("PASS" if r <= 1 else "FAIL") + " |")
    for name, key in (("forks per monitor", "monitor_forks"),
                      ("forks per start+stop, arp_bg=true (default)", "start_stop_forks"),
                      ("forks per start+stop, arp_bg=false", "start_stop_fg_forks")):
        a, b = up[key], us[key]
        if key == "start_stop_forks":
            verdict = "1 = the background announcer" if b["min"] == 1 else "?"
        else:
            verdict = "0 PASS" if b["min"] == 0 else "0 FAIL"
        out.append(f"| {name} (median, min) | {a['median']:.0f}, {a['min']} | {b['median']:.0f}, {b['min']} | | {verdict} |")
    out.append(f"| one core's share for 100 VIPs monitored every 10 s | "
               f"{up['core_share_100_vips_pct']:.2f} % | {us['core_share_100_vips_pct']:.3f} % | | |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rustha", required=True, help="a link named IPaddr2 to the rustha binary")
    ap.add_argument("--upstream", default=UPSTREAM)
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--json")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (a private network namespace)")
    if os.path.basename(a.rustha) != "IPaddr2":
        sys.exit("--rustha must be a link named IPaddr2 (the binary dispatches on its name)")
    if not os.path.exists(a.upstream):
        sys.exit(f"{a.upstream} is missing: install resource-agents")
    if not a.inner:
        os.execvp("unshare", ["unshare", "-n", "-m", "--propagation", "private", "--",
                              sys.executable, os.path.abspath(__file__),
                              "--inner"] + sys.argv[1:])
    lab()
    res = {}
    for key, agent in (("heartbeat", a.upstream), ("rustha", a.rustha)):
        print(f"measuring {key} ({agent}), n={a.n} ...", file=sys.stderr)
        res[key] = measure(agent, a.n)
    res["nc_rss"] = nc_rss()
    print(table(res["heartbeat"], res["rustha"], res["nc_rss"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
