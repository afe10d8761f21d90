#!/usr/bin/env python3
"""Service agents benchmark: ocf:rustha:{nginx,mysql,lighttpd} side by side with
ocf:heartbeat:{nginx,mysql} (there is no heartbeat lighttpd agent), one run.

    services_bench.py --rustha-dir DIR [-n 30] [--cycles 5] [--json FILE]

DIR holds links named nginx, mysql and lighttpd to the rustha binary. Re-executes itself
in private network and mount namespaces (unshare -n -m): the servers listen on the
loopback of that namespace only; state files go to a tmpfs, as /run is on a production
node. Each server gets its own directory (configuration, document root or datadir,
pidfile, logs), the same for both agents, and the same parameters.

Measured per agent (median over the runs):
  * recurring monitor at depth 0 and at depth 10 (OCF_CHECK_LEVEL=10): CPU (user+sys of
    the agent and every process it waited for, from os.wait4 after posix_spawn: see
    agentrun.py), wall time, forks; beside each CPU figure the exec floor (/bin/true
    started and measured the same way, interleaved with the monitors);
  * start and stop: wall time each (and CPU), over --cycles start+stop cycles.
Depth 10 is each agent's own check: nginx fetches the stub_status page (heartbeat forks
curl, rustha makes the request itself); mysql: heartbeat runs `SELECT COUNT(*) FROM
mysql.user` through the client, rustha reads the server's protocol greeting.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import agentrun
from agentrun import run, sh

UPSTREAM = "/usr/lib/ocf/resource.d/heartbeat"
PAGE = "<html><body>rustha bench page</body></html>\n"


def nginx_site(d):
    os.makedirs(f"{d}/www")
    os.makedirs(f"{d}/tmp")
    with open(f"{d}/www/index.html", "w") as f:
        f.write(PAGE)
    # `stub_status on;` on a line of its own: the form heartbeat's parser finds.
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(f"""worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:8080;
        root {d}/www;
        location /nginx_status {{
            stub_status on;
        }}
    }}
}}
""")
    return {"OCF_RESKEY_configfile": f"{d}/nginx.conf"}


def lighttpd_site(d):
    os.makedirs(f"{d}/www")
    with open(f"{d}/www/index.html", "w") as f:
        f.write(PAGE)
    with open(f"{d}/lighttpd.conf", "w") as f:
        f.write(f"""server.document-root = "{d}/www"
server.port = 8081
server.bind = "127.0.0.1"
server.pid-file = "{d}/lighttpd.pid"
server.errorlog = "{d}/error.log"
server.modules += ( "mod_status" )
status.status-url = "/server-status"
index-file.names = ( "index.html" )
""")
    return {"OCF_RESKEY_configfile": f"{d}/lighttpd.conf"}


def mysql_site(d):
    for sub in ("data", "tmp", "log"):
        os.makedirs(f"{d}/{sub}")
        shutil.chown(f"{d}/{sub}", "mysql", "mysql")
    with open(f"{d}/my.cnf", "w") as f:
        f.write(f"[mysqld]\nskip-networking\ninnodb_buffer_pool_size=16M\ntmpdir={d}/tmp\n")
    sh("mariadb-install-db", f"--defaults-file={d}/my.cnf", f"--datadir={d}/data",
       "--user=mysql", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {
        "OCF_RESKEY_config": f"{d}/my.cnf",
        "OCF_RESKEY_datadir": f"{d}/data",
        "OCF_RESKEY_pid": f"{d}/run/mysqld.pid",
        "OCF_RESKEY_socket": f"{d}/run/mysqld.sock",
        "OCF_RESKEY_log": f"{d}/log/error.log",
    }


SITES = {"nginx": nginx_site, "mysql": mysql_site, "lighttpd": lighttpd_site}


def base_env(state, params, instance):
    """`params` are whole OCF_RESKEY_* names (what the site functions return)."""
    e = agentrun.ocf_env(instance, state, 0, {"CRM_meta_timeout": "120000"})
    e.update(params)
    return e


def ms(xs, key):
    v = [x[key] * 1000 for x in xs]
    return {"median": statistics.median(v), "min": min(v), "max": max(v)}


def measure(agent, params, state, n, cycles, instance):
    env = base_env(state, params, instance)
    mon = dict(env, OCF_RESKEY_CRM_meta_interval="10000")
    mon10 = dict(mon, OCF_CHECK_LEVEL="10")
    starts, stops = [], []
    try:
        for _ in range(cycles):
            starts.append(run(agent, "start", env))
            stops.append(run(agent, "stop", env))
        run(agent, "start", env)
        d0, d10, floor = [], [], []
        for _ in range(n):
            d0.append(run(agent, "monitor", mon))
            floor.append(agentrun.floor_ms(1)["cpu_ms"])
        for _ in range(n):
            d10.append(run(agent, "monitor", mon10))
            floor.append(agentrun.floor_ms(1)["cpu_ms"])
    finally:
        # Whatever happened, the server this run started is stopped.
        subprocess.run([agent, "stop"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    return {
        "exec_floor_cpu_ms": statistics.median(floor),
        "monitor0_cpu_ms": ms(d0, "cpu"),
        "monitor0_wall_ms": ms(d0, "wall"),
        "monitor0_forks": statistics.median(x["forks"] for x in d0),
        "monitor10_cpu_ms": ms(d10, "cpu"),
        "monitor10_wall_ms": ms(d10, "wall"),
        "monitor10_forks": statistics.median(x["forks"] for x in d10),
        "start_wall_ms": ms(starts, "wall"),
        "start_cpu_ms": ms(starts, "cpu"),
        "stop_wall_ms": ms(stops, "wall"),
        "stop_cpu_ms": ms(stops, "cpu"),
    }


ROWS = [
    ("monitor depth 0, CPU", "monitor0_cpu_ms", 15),
    ("monitor depth 0, wall", "monitor0_wall_ms", None),
    ("monitor depth 10, CPU", "monitor10_cpu_ms", None),
    ("monitor depth 10, wall", "monitor10_wall_ms", None),
    ("start, wall", "start_wall_ms", None),
    ("stop, wall", "stop_wall_ms", None),
]


def table(name, up, us):
    out = [f"### {name}", "",
           "| metric (median) | heartbeat | rustha | ratio | target |", "|---|---|---|---|---|"]
    for label, key, target in ROWS:
        b = us[key]["median"]
        if up is None:
            if key.endswith("cpu_ms"):
                label += f" [exec floor /bin/true: {us['exec_floor_cpu_ms']:.2f} ms]"
            out.append(f"| {label} | (no agent) | {b:.2f} ms | | |")
            continue
        a = up[key]["median"]
        ratio = a / b if b > 0 else float("inf")
        verdict = "" if target is None else (f"≥{target}× " + ("PASS" if ratio >= target else "FAIL"))
        if key.endswith("cpu_ms"):
            # What any program costs to be started the same way (posix_spawn + wait4).
            label += (f" [exec floor /bin/true: {up['exec_floor_cpu_ms']:.2f} / "
                      f"{us['exec_floor_cpu_ms']:.2f} ms]")
        out.append(f"| {label} | {a:.2f} ms | {b:.2f} ms | {ratio:.1f}× | {verdict} |")
    for label, key in (("forks per monitor, depth 0", "monitor0_forks"),
                       ("forks per monitor, depth 10", "monitor10_forks")):
        a = "(no agent)" if up is None else f"{up[key]:.0f}"
        out.append(f"| {label} | {a} | {us[key]:.0f} | | |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rustha-dir", required=True, help="links named nginx, mysql, lighttpd")
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (private namespaces, servers)")
    for s in ("nginx", "mysql"):
        if not os.path.exists(f"{UPSTREAM}/{s}"):
            sys.exit(f"{UPSTREAM}/{s} is missing: install resource-agents")
    for tool in ("nginx", "lighttpd", "mariadbd", "mariadb-install-db", "curl"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin"):
            sys.exit(f"{tool} is missing: run .ci/run (it installs the servers)")
    if not a.inner:
        os.execvp("unshare", ["unshare", "-n", "-m", "--propagation", "private", "--",
                              sys.executable, os.path.abspath(__file__),
                              "--inner"] + sys.argv[1:])
    sh("ip", "link", "set", "lo", "up")
    top = tempfile.mkdtemp(prefix="rustha-bench-svc-")
    os.chmod(top, 0o755)
    res = {}
    try:
        for svc in ("nginx", "mysql", "lighttpd"):
            res[svc] = {}
            sides = [("rustha", os.path.join(a.rustha_dir, svc))]
            if svc != "lighttpd":
                sides.insert(0, ("heartbeat", f"{UPSTREAM}/{svc}"))
            for key, agent in sides:
                d = os.path.join(top, f"{svc}-{key}")
                os.makedirs(d)
                os.chmod(d, 0o755)
                params = SITES[svc](d)
                state = os.path.join(d, "state")
                os.makedirs(state)
                sh("mount", "-t", "tmpfs", "-o", "size=4m", "rustha-bench", state)
                print(f"measuring {key} {svc}, n={a.n}, cycles={a.cycles} ...", file=sys.stderr)
                try:
                    res[svc][key] = measure(agent, params, state, a.n, a.cycles, f"bench-{svc}")
                finally:
                    sh("umount", state)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    for svc in ("nginx", "mysql", "lighttpd"):
        print(table(svc, res[svc].get("heartbeat"), res[svc]["rustha"]))
        print()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
