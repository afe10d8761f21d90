#!/usr/bin/env python3
"""rustha drills: break a real Pacemaker + Corosync cluster on one machine and watch it.

    drill.py up [--nodes N] [--no-fencing] [--rustha BIN] [--aws]
    drill.py run [--stack S] [--providers rustha,heartbeat] [--quick] [--strict] [--out DIR] [DRILL ...]
    drill.py plan [--stack S] [--providers P] [--quick] [--nodes N] [DRILL ...]
    drill.py stacks
    drill.py selftest
    drill.py down
    drill.py node I start|stop|kill|poweroff|poweron|CMD...
    drill.py status

The lab: N nodes (2 by default, 3 supported), each in its own network, mount and UTS
namespaces with private Pacemaker/Corosync state, joined by a bridge on TEST-NET-1
(192.0.2.0/24: node I = .1I, the client = .100, the VIP = .50); a client namespace that
probes the VIP every 0.1 s (ICMP, ARP, TCP connect to the azure-lb port, HTTP GET); a
real fence device (drill/fence_rustha_drill: power cut = every process of the node
killed, its addresses flushed, its link down); fencing on by default. Nothing leaves the
machine: every address lives inside namespaces this tool creates and deletes.

Stacks: azure (IPaddr2 + azure-lb), web (IPaddr2 + nginx), db (IPaddr2 + Filesystem on a
shared loop disk + mysql with its datadir there + lighttpd; the drills also check that the
disk is never mounted on two nodes at once), classroom (a bare IPaddr2), aws (aws-eni against an emulated EC2: `up --aws`
starts moto + tests/aws/ec2sim.py; the client's "ping" is then "some node has the ENI's
address up" and the duplicate check "two nodes have it"). Drills: standby, move, graceful-stop, power-cut,
kill-link-up, service-kill, vip-deleted, responder-kill, stop-failure. Each stack declares
the drills that apply to it, its default set and a quick set (`stacks` lists them); a
drill that does not apply is refused before the lab is touched (`plan` checks a run
without touching anything). Each drill yields the outage gap, lost probes, time to
detection, fence time, start time, and a duplicate address check (ARP replies from two
MACs); a probe's numbers only when the probe answered during the baseline before the
injection (else the drill fails). `run` writes report.md, one SVG timeline per drill and
results.json to a results folder. `selftest` checks the planning and scoring rules.
Processes are only ever acted on inside a node (found by its namespaces and, for a
service, by the listening socket it holds), through pidfds.

Needs root and the Debian packages pacemaker, corosync, pcs, tini (and nginx, lighttpd,
mariadb-server for the web and db stacks); `.ci/run` installs them.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.environ.get("RUSTHA_DRILL_DIR", "/var/tmp/rustha-drill")
PFX = os.environ.get("RUSTHA_DRILL_PREFIX", "rdrill")
SW, CLIENT = f"{PFX}-sw", f"{PFX}-client"
NET = "192.0.2"
VIP = f"{NET}.50"
CLIENT_ADDR = f"{NET}.100"
LB_PORT = 61000
FENCE_LINK = "/usr/sbin/fence_rustha_drill"
TOKEN_MS = int(os.environ.get("RUSTHA_DRILL_TOKEN_MS", "1000"))


def node_ns(i):
    return f"{PFX}-n{i}"


def ndir(i):
    return os.path.join(LAB, f"node{i}")


def sh(*cmd, check=True, quiet=False, timeout=None, env=None, capture=True):
    r = subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} -> {r.returncode}: {r.stderr.strip()}")
    return r


def lab_conf():
    try:
        with open(os.path.join(LAB, "lab.json")) as f:
            return json.load(f)
    except OSError:
        return None


def read_pid(path):
    """The pid a pid file names, when that very process still lives: the file holds the
    pid and its start time (a reused pid has another)."""
    try:
        with open(path) as f:
            pid, started = (int(w) for w in f.read().split())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) and start_time(pid) == started else None


def signal_pidfile(path, sig):
    """Send sig to the process a pid file names, through a pidfd opened while its start
    time still matched the file's: never to a process that merely got the pid later.
    Returns the pid, or None when it was gone."""
    pid = read_pid(path)
    if pid is None:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        if read_pid(path) != pid:
            return None
        signal.pidfd_send_signal(fd, sig)
    except OSError:
        return None
    finally:
        os.close(fd)
    return pid


def write_pid(path, pid):
    with open(path, "w") as f:
        f.write(f"{pid} {start_time(pid)}\n")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def holder(i):
    return read_pid(os.path.join(ndir(i), "holder.pid"))


def in_node(i, *cmd, check=False, timeout=60):
    h = holder(i)
    if h is None:
        raise SystemExit(f"node{i} is not up")
    return sh("nsenter", "-t", str(h), "-m", "-u", "-n", "--", *cmd, check=check, timeout=timeout)


def netns_pids(ns):
    r = sh("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split()] if r.returncode == 0 else []


def kill_in_netns(ns, pid, sig=signal.SIGKILL):
    """Signal pid through a pidfd, if (checked on the pidfd's process) it is still in the
    lab's namespace ns. True when sent."""
    try:
        want = os.stat(f"/run/netns/{ns}").st_ino
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if ns_inode(pid, "net") != want:
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def preflight(stack=None):
    if os.geteuid() != 0:
        raise SystemExit("drill: needs root (network namespaces, a real Pacemaker cluster)")
    need = ["corosync", "pacemakerd", "pcs", "crm_mon", "crm_attribute", "tini", "nsenter",
            "unshare", "ip", "ping"]
    if stack == "web":
        need.append("nginx")
    if stack == "db":
        need += ["mariadbd", "mariadb-install-db", "lighttpd", "losetup", "mkfs.ext4"]
    missing = [t for t in need if not shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin")]
    if missing:
        raise SystemExit(f"drill: missing {', '.join(missing)}: install the packages with "
                         f"`.ci/run` (or apt-get install pacemaker corosync pcs tini ...)")


# ---------------------------------------------------------------- the lab

def corosync_conf(n):
    nodes = "\n".join(
        f"  node {{\n    ring0_addr: {NET}.{10 + i}\n    name: node{i}\n    nodeid: {i}\n  }}"
        for i in range(1, n + 1))
    two = "  two_node: 1\n" if n == 2 else ""
    return f"""totem {{
  version: 2
  cluster_name: rustha-drill
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: {TOKEN_MS}
}}
nodelist {{
{nodes}
}}
quorum {{
  provider: corosync_votequorum
{two}}}
system {{
  allow_knet_handle_fallback: yes
}}
logging {{
  to_logfile: yes
  logfile: /var/log/corosync/corosync.log
  to_stderr: no
  to_syslog: no
  timestamp: hires
}}
"""


def seed_cib(path, fencing):
    r = sh("cibadmin", "--empty")
    props = (
        '<crm_config><cluster_property_set id="cib-bootstrap-options">'
        '<nvpair id="o-dc" name="dc-deadtime" value="5s"/>'
        f'<nvpair id="o-st" name="stonith-enabled" value="{"true" if fencing else "false"}"/>'
        '</cluster_property_set></crm_config>')
    xml = r.stdout.replace("<crm_config/>", props)
    xml = xml.replace("<rsc_defaults/>", "")
    xml = xml.replace("</configuration>",
                      '<rsc_defaults><meta_attributes id="rsc-options">'
                      '<nvpair id="rsc-stick" name="resource-stickiness" value="100"/>'
                      '</meta_attributes></rsc_defaults></configuration>')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(xml)
    shutil.chown(os.path.dirname(path), "hacluster", "haclient")
    shutil.chown(path, "hacluster", "haclient")
    os.chmod(path, 0o600)


MOUNTS = [("lib-pacemaker", "/var/lib/pacemaker"), ("lib-corosync", "/var/lib/corosync"),
          ("log-pacemaker", "/var/log/pacemaker"), ("log-corosync", "/var/log/corosync"),
          ("etc-corosync", "/etc/corosync"), ("run-crm", "/run/crm"),
          ("run-ra", "/run/resource-agents"), ("run-rustha", "/run/rustha")]


def node_init(i):
    """Runs in the node's new namespaces: private mounts, then hold them."""
    sh("hostname", f"node{i}")
    sh("mount", "-t", "tmpfs", "tmpfs", "/dev/shm")
    # A /run of its own, as every machine has (corosync's lock file, sockets, pidfiles).
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")
    os.makedirs("/run/lock", exist_ok=True)
    for src, dst in MOUNTS:
        os.makedirs(dst, exist_ok=True)
        sh("mount", "--bind", os.path.join(ndir(i), src), dst)
    sh("mount", "--bind", os.path.join(LAB, "hosts"), "/etc/hosts")
    agents = os.path.join(LAB, "ocf-rustha")
    if os.path.isdir(agents):
        sh("mount", "--bind", agents, "/usr/lib/ocf/resource.d/rustha")
    write_pid(os.path.join(ndir(i), "holder.pid"), os.getpid())
    os.execvp("sleep", ["sleep", "infinity"])


def start_node(i):
    h = holder(i)
    d = ndir(i)
    with open(os.path.join(d, "corosync.out"), "w") as out:
        p = subprocess.Popen(["nsenter", "-t", str(h), "-m", "-u", "-n", "--", "corosync", "-f",
                              "-c", "/etc/corosync/corosync.conf"], stdin=subprocess.DEVNULL,
                             stdout=out, stderr=out, start_new_session=True)
    write_pid(os.path.join(d, "corosync.pid"), p.pid)
    env = dict(os.environ, PCMK_logfile="/var/log/pacemaker/pacemaker.log")
    with open(os.path.join(d, "pacemakerd.out"), "w") as out:
        p = subprocess.Popen(["nsenter", "-t", str(h), "-m", "-u", "-n", "--", "tini", "-s", "--",
                              "pacemakerd"], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             env=env, start_new_session=True)
    write_pid(os.path.join(d, "pacemakerd.pid"), p.pid)


def wait_gone(pid, secs):
    end = time.time() + secs
    while pid and alive(pid) and time.time() < end:
        time.sleep(0.05)
    return not (pid and alive(pid))


def stop_node(i):
    """Graceful: pacemakerd first (it stops the resources), then corosync."""
    pm = signal_pidfile(os.path.join(ndir(i), "pacemakerd.pid"), signal.SIGTERM)
    wait_gone(pm, 60)
    cs = signal_pidfile(os.path.join(ndir(i), "corosync.pid"), signal.SIGTERM)
    wait_gone(cs, 20)


def kill_node_daemons(i):
    """The stack dies (SIGKILL), the machine and its link stay up."""
    h = holder(i)
    for p in netns_pids(node_ns(i)):
        if p != h:
            kill_in_netns(node_ns(i), p)


def fence_agent(action, i):
    r = subprocess.run([os.path.join(HERE, "fence_rustha_drill")], input=f"action={action}\nplug=node{i}\nlab_dir={LAB}\n",
                       capture_output=True, text=True)
    return r.returncode


def crm_xml(i):
    r = in_node(i, "crm_mon", "-1", "--output-as=xml", timeout=20)
    try:
        return ET.fromstring(r.stdout) if r.returncode == 0 else None
    except ET.ParseError:
        return None


def live_nodes():
    conf = lab_conf() or {"nodes": 0}
    return [i for i in range(1, conf["nodes"] + 1)
            if holder(i) and read_pid(os.path.join(ndir(i), "pacemakerd.pid"))]


def cluster_view():
    """crm_mon from the first node that answers."""
    for i in live_nodes():
        x = crm_xml(i)
        if x is not None and x.find("summary/current_dc") is not None:
            return x
    return None


def online_nodes(x):
    return {n.get("name") for n in x.iter("node") if n.get("online") == "true"}


def placement(x, rid):
    """The node a started, non-failed primitive runs on, or None."""
    for r in x.iter("resource"):
        if r.get("id") == rid and r.get("role") == "Started" and r.get("failed") == "false":
            n = r.find("node")
            return n.get("name") if n is not None else None
    return None


def wait_until(what, secs, pred, step=0.2):
    end = time.time() + secs
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise SystemExit(f"drill: timed out after {secs} s waiting for {what}")


def start_aws(n):
    """moto (EC2 API, PyPI) on the host's loopback, behind tests/aws/ec2sim.py, which gives
    every node (an EC2 instance) its own EC2 endpoint and IMDSv2 on its loopback, and plugs
    the ENI into the node that has it attached."""
    for t in ("moto_server",):
        if not shutil.which(t):
            raise SystemExit("drill: moto_server is missing: pip install 'moto[ec2,server]' (.ci/run does)")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(os.path.join(LAB, "moto.log"), "w")
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)
    write_pid(os.path.join(LAB, "moto.pid"), moto.pid)
    wait_until("moto", 30, lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0)
    sim = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(HERE), "tests", "aws", "ec2sim.py"),
                            "--moto", f"http://127.0.0.1:{port}", "--attach-secs", "2", "--detach-secs", "2"]
                           + sum((["--ns", node_ns(i)] for i in range(1, n + 1)), []),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
                           start_new_session=True)
    write_pid(os.path.join(LAB, "ec2sim.pid"), sim.pid)
    line = sim.stdout.readline()
    if not line.startswith("ready "):
        raise SystemExit(f"drill: ec2sim did not start: {line!r}")
    fields = dict(w.split("=", 1) for w in line.split()[1:])
    with open(os.path.join(LAB, "aws.json"), "w") as f:
        json.dump(fields, f)


def up(n, fencing, rustha, aws=False):
    preflight()
    if n < 1 or n > 3:
        raise SystemExit("drill: 1 to 3 nodes")
    down(quiet=True)
    os.makedirs(LAB)
    with open(os.path.join(LAB, "lab.json"), "w") as f:
        json.dump({"nodes": n, "fencing": fencing, "token_ms": TOKEN_MS, "aws": aws}, f)
    with open(os.path.join(LAB, "hosts"), "w") as f:
        f.write("127.0.0.1 localhost\n::1 localhost\n")
        for i in range(1, n + 1):
            f.write(f"{NET}.{10 + i} node{i}\n")
    if rustha:
        d = os.path.join(LAB, "ocf-rustha")
        os.makedirs(d)
        os.chmod(LAB, 0o755)
        os.chmod(d, 0o755)
        out = sh(rustha, "list").stdout.split()
        for a in out:
            os.symlink(os.path.abspath(rustha), os.path.join(d, a))
        os.makedirs("/usr/lib/ocf/resource.d/rustha", exist_ok=True)
    # The switch, the client, the nodes.
    sh("ip", "netns", "add", SW)
    sh("ip", "-n", SW, "link", "add", "br0", "type", "bridge", "stp_state", "0")
    sh("ip", "-n", SW, "link", "set", "br0", "up")

    def wire(ns, addr, port):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port,
           "netns", SW)
        sh("ip", "-n", SW, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")

    wire(CLIENT, CLIENT_ADDR, "client")
    for i in range(1, n + 1):
        d = ndir(i)
        os.makedirs(d)
        wire(node_ns(i), f"{NET}.{10 + i}", f"n{i}")
        with open(os.path.join(d, "addr"), "w") as f:
            f.write(f"{NET}.{10 + i}/24\n")
        shutil.copytree("/var/lib/pacemaker", os.path.join(d, "lib-pacemaker"), symlinks=True)
        shutil.copytree("/var/lib/corosync", os.path.join(d, "lib-corosync"), symlinks=True)
        for sub in ("log-corosync", "etc-corosync", "run-ra", "run-rustha", "run-crm", "log-pacemaker"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for sub in ("run-crm", "log-pacemaker"):
            shutil.chown(os.path.join(d, sub), "hacluster", "haclient")
        os.chmod(os.path.join(d, "run-crm"), 0o750)
        with open(os.path.join(d, "etc-corosync", "corosync.conf"), "w") as f:
            f.write(corosync_conf(n))
        seed_cib(os.path.join(d, "lib-pacemaker", "cib", "cib.xml"), fencing)
        with open(os.path.join(d, "holder.log"), "w") as log:
            subprocess.Popen(["ip", "netns", "exec", node_ns(i), "unshare", "--mount", "--uts",
                              "--propagation", "private", "--", sys.executable,
                              os.path.abspath(__file__), "__node-init", str(i)],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True, env=dict(os.environ, RUSTHA_DRILL_DIR=LAB))
        wait_until(f"node{i}'s namespace holder", 10, lambda: holder(i))
    if aws:
        start_aws(n)
    t0 = time.time()
    for i in range(1, n + 1):
        start_node(i)
    want = {f"node{i}" for i in range(1, n + 1)}
    wait_until("all nodes online with a DC", 120,
               lambda: (x := cluster_view()) is not None and online_nodes(x) >= want)
    print(f"cluster of {n} up in {time.time() - t0:.1f} s")
    if fencing:
        if os.path.islink(FENCE_LINK) or not os.path.exists(FENCE_LINK):
            if os.path.islink(FENCE_LINK):
                os.unlink(FENCE_LINK)
            os.symlink(os.path.join(HERE, "fence_rustha_drill"), FENCE_LINK)
        hosts = " ".join(sorted(want))
        in_node(1, "pcs", "stonith", "create", "fence-lab", "fence_rustha_drill",
                f"pcmk_host_list={hosts}", f"lab_dir={LAB}", check=True)
        wait_until("the fence device started", 60,
                   lambda: (x := cluster_view()) is not None and placement(x, "fence-lab"))


def down(quiet=False):
    """Stop everything the lab started, by PID and by the lab's own namespaces."""
    conf = lab_conf()
    n = conf["nodes"] if conf else 3
    killed = []
    pms = [signal_pidfile(os.path.join(ndir(i), "pacemakerd.pid"), signal.SIGTERM)
           for i in range(1, n + 1)]
    for pm in pms:
        wait_gone(pm, 30)
    for i in range(1, n + 1):
        cs = signal_pidfile(os.path.join(ndir(i), "corosync.pid"), signal.SIGTERM)
        wait_gone(cs, 10)
    for name in ("ec2sim", "moto"):
        pid = signal_pidfile(os.path.join(LAB, f"{name}.pid"), signal.SIGTERM)
        if not wait_gone(pid, 5):
            signal_pidfile(os.path.join(LAB, f"{name}.pid"), signal.SIGKILL)
    existing = set(sh("ip", "netns", "list", check=False).stdout.split())
    for ns in [node_ns(i) for i in range(1, 4)] + [CLIENT, SW]:
        if ns not in existing:
            continue
        for _ in range(20):
            pids = netns_pids(ns)
            if not pids:
                break
            for p in pids:
                try:
                    comm = open(f"/proc/{p}/comm").read().strip()
                except OSError:
                    continue
                if kill_in_netns(ns, p) and comm != "sleep":
                    killed.append(f"{p} ({comm})")
            time.sleep(0.1)
        sh("ip", "netns", "del", ns, check=False)
    release_disk()
    if os.path.islink(FENCE_LINK) and os.readlink(FENCE_LINK).startswith(HERE):
        os.unlink(FENCE_LINK)
    if os.path.isdir(LAB):
        prev = LAB + ".prev"
        shutil.rmtree(prev, ignore_errors=True)
        os.rename(LAB, prev)
    if not quiet:
        print("lab down" + (f"; killed leftovers: {', '.join(killed)}" if killed else ""))
    return killed


# ---------------------------------------------------------------- stacks

def shared(*p):
    return os.path.join(LAB, "shared", *p)


def prepare_web():
    os.makedirs(shared("www"), exist_ok=True)
    with open(shared("www", "index.html"), "w") as f:
        f.write(PAGE.decode())
    os.chmod(shared(), 0o755)
    with open(shared("nginx.conf"), "w") as f:
        f.write(f"""worker_processes 2;
pid /run/resource-agents/nginx.pid;
error_log /run/resource-agents/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path /run/resource-agents/nginx-body;
    proxy_temp_path /run/resource-agents/nginx-proxy;
    fastcgi_temp_path /run/resource-agents/nginx-fastcgi;
    uwsgi_temp_path /run/resource-agents/nginx-uwsgi;
    scgi_temp_path /run/resource-agents/nginx-scgi;
    server {{
        listen 80;
        root {shared("www")};
        location /nginx_status {{
            stub_status on;
        }}
    }}
}}
""")


DISK_IMG = "shared-disk.img"


def disk_dev():
    """The lab's shared disk: the loop device recorded in LAB/shared-disk.dev, when that
    device is still backed by the lab's image (never some other loop device)."""
    try:
        with open(os.path.join(LAB, "shared-disk.dev")) as f:
            dev = f.read().strip()
        with open(f"/sys/block/{os.path.basename(dev)}/loop/backing_file") as f:
            backing = f.read().strip()
    except OSError:
        return None
    return dev if backing == os.path.join(LAB, DISK_IMG) else None


def disk_devno(dev):
    st = os.stat(dev)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def mounted_on(i, devno):
    """The mount points of the device devno in node i's mount namespace (its holder's)."""
    h = holder(i)
    if h is None:
        return []
    try:
        with open(f"/proc/{h}/mountinfo") as f:
            return [ln.split()[4] for ln in f if ln.split()[2] == devno]
    except OSError:
        return []


def prepare_disk():
    """The shared disk the db stack's Filesystem resource moves between the nodes: a loop
    device on an image in the lab (the nodes share /dev, each mounts it in its own mount
    namespace), ext4, with MariaDB's datadir installed on it. Made once per lab."""
    if disk_dev():
        return disk_dev()
    img = os.path.join(LAB, DISK_IMG)
    with open(img, "wb") as f:
        f.truncate(192 << 20)
    dev = sh("losetup", "--find", "--show", img).stdout.strip()
    with open(os.path.join(LAB, "shared-disk.dev"), "w") as f:
        f.write(dev + "\n")
    sh("mkfs.ext4", "-q", "-F", dev)
    # Installed in a mount namespace of its own: the mount dies with it, whatever happens.
    mnt = shared("disk")
    sh("unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
       'mount "$1" "$2" && mkdir -p "$2/data" "$2/tmp" && chown mysql:mysql "$2/data" "$2/tmp" '
       '&& mariadb-install-db --defaults-file="$3" --datadir="$2/data" --user=mysql >/dev/null',
       "sh", dev, mnt, shared("mysql", "my.cnf"))
    return dev


def release_disk():
    """Detach the lab's loop device (by its recorded name, checked against the image)."""
    dev = disk_dev()
    if dev:
        sh("losetup", "-d", dev, check=False)


def prepare_db():
    prepare_web()
    os.makedirs(shared("mysql"), exist_ok=True)
    os.makedirs(shared("disk"), exist_ok=True)
    with open(shared("mysql", "my.cnf"), "w") as f:
        f.write(f"[mysqld]\nskip-networking\ninnodb_buffer_pool_size=16M\n"
                f"innodb_log_file_size=16M\ntmpdir={shared('disk/tmp')}\n")
    prepare_disk()
    with open(shared("lighttpd.conf"), "w") as f:
        f.write(f"""server.document-root = "{shared('www')}"
server.port = 8080
server.pid-file = "/run/resource-agents/lighttpd.pid"
server.errorlog = "/run/resource-agents/lighttpd-error.log"
index-file.names = ( "index.html" )
""")
def stack_resources(stack, p):
    """(id, pcs create arguments) in group g, and the service the drills kill."""
    vip = ("vip", [f"ocf:{p}:IPaddr2", f"ip={VIP}", "cidr_netmask=24"])
    if stack == "classroom":
        return [vip], None
    if stack == "azure":
        return [vip, ("lb", [f"ocf:{p}:azure-lb", f"port={LB_PORT}"])], "lb"
    if stack == "web":
        return [vip, ("web", [f"ocf:{p}:nginx", f"configfile={shared('nginx.conf')}"])], "web"
    if stack == "db":
        disk = ("disk", [f"ocf:{p}:Filesystem", f"device={disk_dev()}",
                         f"directory={shared('disk')}", "fstype=ext4"])
        db = ("db", [f"ocf:{p}:mysql", f"config={shared('mysql/my.cnf')}",
                     f"datadir={shared('disk/data')}",
                     "pid=/run/resource-agents/mysql/mysqld.pid",
                     "socket=/run/resource-agents/mysql/mysqld.sock",
                     "log=/run/resource-agents/mysql-error.log", "op", "start", "timeout=120s"])
        # No heartbeat agent for lighttpd: both providers use rustha's.
        www = ("www", ["ocf:rustha:lighttpd", f"configfile={shared('lighttpd.conf')}"])
        return [vip, disk, db, www], "db"
    if stack == "aws":
        with open(os.path.join(LAB, "aws.json")) as f:
            aws = json.load(f)
        if p != "rustha":
            raise SystemExit("drill: the aws stack has no heartbeat counterpart here (awsvip needs "
                             "the AWS CLI and a real EC2); use --providers rustha")
        return [("eni", ["ocf:rustha:aws-eni", f"eni_id={aws['eni']}",
                         "endpoint_url=http://127.0.0.1:5000", "imds_endpoint=http://127.0.0.1:5001",
                         "auth_type=key", "access_key_id=AKIDDRILL0000000",
                         "secret_access_key=drill-secret-not-real",
                         "op", "start", "timeout=60s", "op", "stop", "timeout=60s"])], None
    raise SystemExit(f"unknown stack {stack}")


def create_stack(stack, p):
    if stack == "web":
        prepare_web()
    if stack == "db":
        prepare_db()
    rs, _ = stack_resources(stack, p)
    i = live_nodes()[0]
    for rid, args in rs:
        in_node(i, "pcs", "resource", "create", rid, *args, "op", "monitor", "interval=2s",
                "--group", "g", check=True)
    ids = [r for r, _ in rs]
    return wait_until("the stack started", 180, lambda: group_node(ids))


def group_node(ids):
    x = cluster_view()
    if x is None:
        return None
    where = {placement(x, r) for r in ids}
    return where.pop() if len(where) == 1 and None not in where else None


def delete_stack(stack=None):
    """Stop the group (a normal stop, with its parameters), then delete what is in the
    cluster besides the fence device (this stack's, or what an interrupted run left):
    deleting a running resource leaves Pacemaker an orphan to stop without parameters."""
    i = live_nodes()[0]
    have = in_node(i, "crm_resource", "--list-raw").stdout.split()
    rids = [r for r in have if r not in ("fence-lab", "g")]
    if not rids:
        return
    # (--list-raw names a group's members, not the group.)
    in_node(i, "pcs", "resource", "disable", "g", "--wait=120", check=False, timeout=150)
    for rid in reversed(rids):
        in_node(i, "pcs", "resource", "delete", rid, "--force", check=False)
    in_node(i, "crm_resource", "--wait", "--timeout=60s", check=False, timeout=90)


def offline_nodes():
    """The lab's nodes the cluster does not see online (fenced, crashed)."""
    x = cluster_view()
    n = (lab_conf() or {"nodes": 0})["nodes"]
    on = online_nodes(x) if x is not None else set()
    return [i for i in range(1, n + 1) if f"node{i}" not in on]


def heal():
    """Every node of the lab back online (as after a drill); returns those that were not."""
    lost = offline_nodes()
    for i in lost:
        restart(i)
    return lost


# ---------------------------------------------------------------- the client's probes

PAGE = b"rustha drill page\n"


def http_ok(resp):
    """A complete answer to GET /: status 200 (HTTP/1.0 or 1.1) and the drill's page."""
    head, sep, body = resp.partition(b"\r\n\r\n")
    return bool(sep) and re.match(rb"HTTP/1\.[01] 200 ", head) is not None and body == PAGE


def probe_main(out, tcp_port, http_port):
    """Runs in the client namespace: ICMP (ping -D -O -i 0.1), ARP who-has the VIP every
    0.1 s (every reply's MAC recorded), TCP connect and HTTP GET every 0.1 s."""
    lock = threading.Lock()
    f = open(out, "a", buffering=1)
    stop = threading.Event()

    def emit(**kv):
        with lock:
            f.write(json.dumps(kv) + "\n")

    def pinger():
        p = subprocess.Popen(["ping", "-D", "-O", "-n", "-i", "0.1", "-W", "1", VIP],
                             stdout=subprocess.PIPE, text=True)
        rx = re.compile(r"^\[(\d+\.\d+)\] (?:(\d+) bytes from .*icmp_seq=(\d+)|no answer yet for icmp_seq=(\d+))")
        for line in p.stdout:
            m = rx.match(line)
            if m:
                if m.group(3):
                    emit(k="ping", t=float(m.group(1)), seq=int(m.group(3)), ok=True)
                else:
                    emit(k="ping", t=float(m.group(1)), seq=int(m.group(4)), ok=False)
            if stop.is_set():
                break
        p.kill()

    def arper():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
        s.bind(("eth0", 0))
        mac = s.getsockname()[4]
        me = socket.inet_aton(CLIENT_ADDR)
        target = socket.inet_aton(VIP)
        req = (b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
               + mac + me + b"\x00" * 6 + target)
        s.settimeout(0.02)
        nxt = 0.0
        while not stop.is_set():
            now = time.time()
            if now >= nxt:
                s.send(req)
                emit(k="arpreq", t=now)
                nxt = now + 0.1
            try:
                pkt = s.recv(128)
            except socket.timeout:
                continue
            if len(pkt) >= 42 and struct.unpack("!H", pkt[20:22])[0] == 2 and pkt[28:32] == target:
                emit(k="arp", t=time.time(), mac=pkt[22:28].hex(":"))

    def tcp_probe(port, http):
        while not stop.is_set():
            t = time.time()
            ok = False
            try:
                c = socket.create_connection((VIP, port), timeout=0.3)
                if http:
                    # The page itself, whole: a 200 (HTTP/1.0 or 1.1: lighttpd answers a
                    # 1.0 request in 1.0, nginx in 1.1) that serves the drill's page.
                    c.settimeout(0.5)
                    c.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
                    got = b""
                    while len(got) < 65536:
                        b = c.recv(4096)
                        if not b:
                            break
                        got += b
                    ok = http_ok(got)
                else:
                    ok = True
                c.close()
            except OSError:
                pass
            emit(k="http" if http else "tcp", t=t, ok=ok)
            time.sleep(max(0.0, 0.1 - (time.time() - t)))

    threads = [threading.Thread(target=pinger, daemon=True),
               threading.Thread(target=arper, daemon=True)]
    if tcp_port:
        threads.append(threading.Thread(target=tcp_probe, args=(tcp_port, False), daemon=True))
    if http_port:
        threads.append(threading.Thread(target=tcp_probe, args=(http_port, True), daemon=True))
    for t in threads:
        t.start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        time.sleep(0.1)
    time.sleep(0.2)
    f.close()


def powered_off(i):
    try:
        return open(os.path.join(ndir(i), "power")).read().strip() == "off"
    except OSError:
        return False


class EniProbe:
    """For the aws stack: every 0.1 s, which powered nodes have the ENI's address up on its
    interface (eth1, the simulator's plug). Samples as `ping` (some node has it) and `arp` (one per node that
    has it, by node name), so the outage and duplicate checks apply unchanged."""

    def __init__(self, path, stack):
        self.path = path
        self.stop_ev = threading.Event()
        self.samples = []
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        n = (lab_conf() or {"nodes": 0})["nodes"]
        with open(os.path.join(LAB, "aws.json")) as f:
            ip = json.load(f)["ip"] + "/"
        seq = 0
        while not self.stop_ev.is_set():
            t = time.time()
            self.samples.append({"k": "arpreq", "t": t})
            # A powered-off instance's interface serves nobody, even while EC2 still has
            # the ENI attached to it.
            have = [i for i in range(1, n + 1) if not powered_off(i)
                    and ip in sh("ip", "-n", node_ns(i), "-o", "addr", "show", "dev", "eth1",
                                 check=False).stdout]
            for i in have:
                self.samples.append({"k": "arp", "t": t + 0.001, "mac": f"node{i}"})
            self.samples.append({"k": "ping", "t": t, "seq": seq, "ok": bool(have)})
            seq += 1
            time.sleep(max(0.0, 0.1 - (time.time() - t)))

    def peek(self):
        return list(self.samples)

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        with open(self.path, "w") as f:
            for s in self.samples:
                f.write(json.dumps(s) + "\n")
        return self.samples


MARKER = "drill-marker"


def write_marker(i, text):
    """Write the marker file on the shared disk as node i sees it (through its holder's
    root: /proc/<pid>/root is that process's view of the mounts)."""
    path = f"/proc/{holder(i)}/root{shared('disk', MARKER)}"
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read_marker(i):
    try:
        with open(f"/proc/{holder(i)}/root{shared('disk', MARKER)}") as f:
            return f.read()
    except OSError:
        return None


class DiskWatch:
    """For a stack with the shared disk: every 0.1 s, the nodes that have it mounted (by
    device number, in each node's mount namespace). Samples `disk` with the node list:
    the shared disk must never be mounted on two nodes at once."""

    def __init__(self):
        self.stop_ev = threading.Event()
        self.samples = []
        self.devno = disk_devno(disk_dev())
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        n = (lab_conf() or {"nodes": 0})["nodes"]
        while not self.stop_ev.is_set():
            t = time.time()
            have = [i for i in range(1, n + 1) if mounted_on(i, self.devno)]
            self.samples.append({"k": "disk", "t": t, "nodes": have})
            time.sleep(max(0.0, 0.1 - (time.time() - t)))

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        return self.samples


class Probe:
    def __init__(self, path, stack):
        self.path = path
        tcp = STACKS[stack]["probes"].get("tcp", 0)
        http = STACKS[stack]["probes"].get("http", 0)
        self.p = subprocess.Popen(["ip", "netns", "exec", CLIENT, sys.executable,
                                   os.path.abspath(__file__), "__probe", path, str(tcp), str(http)],
                                  stdin=subprocess.DEVNULL)

    def peek(self):
        out = []
        try:
            with open(self.path) as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return out

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        return self.peek()


# ---------------------------------------------------------------- cluster events

LOGTS = re.compile(r"^(\w{3} \d+ \d\d:\d\d:\d\d(?:\.\d+)?) ")
EVENTS = [
    ("node-lost", re.compile(r"Node (\S+) state is now lost|(?:Node|Member) (\S+) (?:left|is now lost)")),
    ("fence-request", re.compile(r"Requesting fencing \(\w+\) targeting node (\S+)|Client .* wants to fence \(\w+\) (\S+)")),
    ("fence-ok", re.compile(r"Operation '?\w+'? targeting (\S+) .*: OK|Peer (\S+) was terminated \(\w+\) by \S+ .*: OK")),
    ("monitor-failed", re.compile(r"Result of monitor operation for (\S+) on (\S+): (not running|error|\w+ error)")),
    ("stop-ok", re.compile(r"Result of stop operation for (\S+) on (\S+): ok")),
    ("stop-failed", re.compile(r"Result of stop operation for (\S+) on (\S+): (?!ok)")),
    ("start-ok", re.compile(r"Result of start operation for (\S+) on (\S+): ok")),
]


def log_time(stamp):
    year = time.localtime().tm_year
    frac = 0.0
    if "." in stamp:
        stamp, f = stamp.split(".")
        frac = float("0." + f)
    return time.mktime(time.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S")) + frac


def cluster_events(since):
    """Events from every node's pacemaker log (deduplicated by kind, subject and time)."""
    seen, out = set(), []
    conf = lab_conf() or {"nodes": 0}
    for i in range(1, conf["nodes"] + 1):
        path = os.path.join(ndir(i), "log-pacemaker", "pacemaker.log")
        try:
            lines = open(path, errors="replace").read().splitlines()
        except OSError:
            continue
        for line in lines:
            m = LOGTS.match(line)
            if not m:
                continue
            try:
                t = log_time(m.group(1))
            except ValueError:
                continue
            if t < since - 1:
                continue
            for kind, rx in EVENTS:
                e = rx.search(line)
                if e:
                    subj = next((g for g in e.groups() if g), "")
                    key = (kind, subj, round(t, 1))
                    if key not in seen:
                        seen.add(key)
                        out.append({"t": t, "kind": kind, "what": subj, "node": f"node{i}"})
                    break
    return sorted(out, key=lambda e: e["t"])


# ---------------------------------------------------------------- drills

DRILLS = ["standby", "move", "graceful-stop", "power-cut", "kill-link-up", "service-kill",
          "vip-deleted", "responder-kill", "stop-failure"]
# The drills that move the stack to another node (they need a second node).
MOVING = ["standby", "move", "graceful-stop", "power-cut", "kill-link-up", "stop-failure"]

# What each stack is made of, and so which drills apply to it. `service`: the daemon that
# service-kill kills and how it is found in the node (the process holding its listening
# socket); `probes`: what the client checks besides ICMP ping and ARP (a TCP connect or an
# HTTP GET on the VIP); `default`: `run` without drills (and `make drill`); `quick`: the
# short set `make test` runs (`run --quick`); `providers`: the default --providers.
_NODE = ["standby", "move", "graceful-stop", "power-cut", "kill-link-up"]
STACKS = {
    "azure": {
        "what": "IPaddr2 + azure-lb",
        "service": ("lb", ("tcp", 61000)),
        "probes": {"tcp": 61000},
        "applies": _NODE + ["service-kill", "responder-kill", "vip-deleted", "stop-failure"],
        "default": _NODE + ["responder-kill", "vip-deleted", "stop-failure"],
        "quick": ["standby", "service-kill", "power-cut", "kill-link-up"],
        "providers": ["rustha", "heartbeat"],
    },
    "web": {
        "what": "IPaddr2 + nginx",
        "service": ("web", ("tcp", 80)),
        "probes": {"http": 80},
        "applies": _NODE + ["service-kill", "vip-deleted", "stop-failure"],
        "default": _NODE + ["service-kill", "vip-deleted", "stop-failure"],
        "quick": ["service-kill", "standby"],
        "providers": ["rustha", "heartbeat"],
    },
    "db": {
        "what": "IPaddr2 + Filesystem (a shared loop disk) + mysql + lighttpd",
        "disk": True,
        "service": ("db", ("unix", "/run/resource-agents/mysql/mysqld.sock")),
        "probes": {"http": 8080},
        "applies": _NODE + ["service-kill", "vip-deleted", "stop-failure"],
        "default": _NODE + ["service-kill", "vip-deleted", "stop-failure"],
        "quick": ["service-kill", "standby"],
        "providers": ["rustha", "heartbeat"],
    },
    "classroom": {
        "what": "a bare IPaddr2",
        "service": None,
        "probes": {},
        "applies": _NODE + ["vip-deleted", "stop-failure"],
        "default": _NODE + ["vip-deleted", "stop-failure"],
        "quick": ["vip-deleted", "standby"],
        "providers": ["rustha", "heartbeat"],
    },
    "aws": {
        "what": "aws-eni against an emulated EC2",
        "service": None,
        "probes": {},
        # vip-deleted: the ENI's address removed from its interface behind Pacemaker's back.
        "applies": _NODE + ["vip-deleted", "stop-failure"],
        "default": _NODE + ["vip-deleted", "stop-failure"],
        "quick": ["move", "vip-deleted"],
        "providers": ["rustha"],
    },
}


class Refused(Exception):
    """A drill plan that cannot run; raised before anything of the lab is touched."""


def plan(stack, drills, providers=None, quick=False, conf=None):
    """The (drills, providers) to run, or Refused. Pure: reads nothing but `conf`
    (the lab's lab.json, when it is up) and touches nothing."""
    if stack not in STACKS:
        raise Refused(f"unknown stack {stack} (one of {', '.join(STACKS)})")
    st = STACKS[stack]
    if drills and quick:
        raise Refused("--quick or a list of drills, not both")
    drills = list(drills) or list(st["quick" if quick else "default"])
    unknown = [d for d in drills if d not in DRILLS]
    if unknown:
        raise Refused(f"unknown drill {', '.join(unknown)} (one of {', '.join(DRILLS)})")
    wrong = [d for d in drills if d not in st["applies"]]
    if wrong:
        raise Refused(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to the "
                      f"{stack} stack ({st['what']}); the drills that do: {', '.join(st['applies'])}")
    provs = providers.split(",") if providers else list(st["providers"])
    bad = [p for p in provs if p not in st["providers"]]
    if bad:
        why = (" (awsvip needs the AWS CLI and a real EC2)" if stack == "aws" else "")
        raise Refused(f"provider {', '.join(bad)} has no {stack} stack here{why}; "
                      f"the providers that do: {', '.join(st['providers'])}")
    if conf is not None:
        if conf.get("nodes", 0) < 2 and any(d in MOVING for d in drills):
            raise Refused(f"{', '.join(d for d in drills if d in MOVING)} need a second node "
                          f"(drill.py up --nodes 2)")
        if stack == "aws" and not conf.get("aws"):
            raise Refused("the aws stack needs the emulated EC2: drill.py up --aws")
    return drills, provs


def other_node(cur):
    for i in live_nodes():
        if f"node{i}" != cur:
            return i
    raise SystemExit("drill: needs a second node")


def node_index(name):
    return int(name.replace("node", ""))


def inject(drill, stack, active, provider):
    """Do the damage; returns what to undo afterwards."""
    a = node_index(active)
    b = other_node(active)
    if drill == "standby":
        in_node(b, "crm_attribute", "-N", active, "-n", "standby", "-v", "on", check=True)
        return lambda: in_node(b, "crm_attribute", "-N", active, "-n", "standby", "-v", "off")
    if drill == "move":
        in_node(b, "crm_resource", "--move", "-r", "g", "-N", f"node{b}", check=True)
        return lambda: in_node(b, "crm_resource", "--clear", "-r", "g")
    if drill == "graceful-stop":
        threading.Thread(target=stop_node, args=(a,), daemon=True).start()
        return lambda: restart(a)
    if drill == "power-cut":
        fence_agent("off", a)
        return lambda: (fence_agent("on", a), restart(a))
    if drill == "kill-link-up":
        kill_node_daemons(a)
        return lambda: (fence_agent("on", a), restart(a))
    if drill in ("service-kill", "responder-kill"):
        # plan() let only stacks with a service (responder-kill: azure's) get here.
        kill_service(a, STACKS[stack]["service"][1])
        return lambda: in_node(a, "crm_resource", "--cleanup", "-r", "g")
    if drill == "vip-deleted":
        if stack == "aws":
            # The ENI's address, on whichever interface of the node holds it.
            with open(os.path.join(LAB, "aws.json")) as f:
                ip = json.load(f)["ip"]
            dev, cidr = addr_holder(a, ip)
            in_node(a, "ip", "addr", "del", cidr, "dev", dev, check=True)
        else:
            in_node(a, "ip", "addr", "del", f"{VIP}/24", "dev", "eth0", check=True)
        return lambda: in_node(a, "crm_resource", "--cleanup", "-r", "g")
    if drill == "stop-failure":
        # The VIP's stop cannot succeed on the active node: in that node's private mount
        # namespace only, the provider's directory is replaced by one whose IPaddr2 fails
        # its stop (and runs the real agent for everything else). Then ask for a move.
        failing_agent_dir(provider, "aws-eni" if stack == "aws" else "IPaddr2")
        in_node(a, "mount", "--bind", os.path.join(LAB, f"failing-{provider}"),
                f"/usr/lib/ocf/resource.d/{provider}", check=True)
        open(os.path.join(ndir(a), "failing-mount"), "w").write(provider)
        in_node(b, "crm_resource", "--move", "-r", "g", "-N", f"node{b}", check=True)
        return lambda: (in_node(b, "crm_resource", "--clear", "-r", "g"), restart(a))
    raise SystemExit(f"unknown drill {drill}")


def failing_agent_dir(provider, agent):
    """LAB/failing-<provider>: the provider's agents, with an `agent` whose stop fails."""
    src = f"/usr/lib/ocf/resource.d/{provider}"
    if provider == "rustha" and os.path.isdir(os.path.join(LAB, "ocf-rustha")):
        src = os.path.join(LAB, "ocf-rustha")
    d = os.path.join(LAB, f"failing-{provider}")
    real = os.path.join(LAB, f"real-{provider}")
    for x in (d, real):
        shutil.rmtree(x, ignore_errors=True)
        os.makedirs(x)
        os.chmod(x, 0o755)
    for name in os.listdir(src):
        target = os.path.realpath(os.path.join(src, name))
        if name == agent:
            # The real agent, under its own name (rustha dispatches on it), outside the
            # directory that the mount hides.
            if provider == "rustha":
                os.symlink(target, os.path.join(real, name))
            else:
                shutil.copy2(target, os.path.join(real, name))
            with open(os.path.join(d, name), "w") as f:
                f.write("#!/bin/sh\n"
                        "if [ \"$1\" = stop ]; then\n"
                        "  echo 'ocf-exit-reason:drill: this stop fails on purpose' >&2\n"
                        "  exit 1\n"
                        "fi\n"
                        f"exec {os.path.join(real, name)} \"$@\"\n")
            os.chmod(os.path.join(d, name), 0o755)
        else:
            os.symlink(target, os.path.join(d, name))


def addr_holder(i, ip):
    """(device, address/prefix) of the interface of node i that has `ip`."""
    r = sh("ip", "-n", node_ns(i), "-o", "addr", "show", check=False)
    for line in r.stdout.splitlines():
        w = line.split()
        if len(w) > 3 and w[2] in ("inet", "inet6") and w[3].split("/")[0] == ip:
            return w[1], w[3]
    raise SystemExit(f"drill: node{i} has no address {ip}")


def ns_inode(pid, ns):
    try:
        return os.stat(f"/proc/{pid}/ns/{ns}").st_ino
    except OSError:
        return None


def start_time(pid):
    """The process's start time (clock ticks since boot): with the pid, its identity."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def node_procs(i):
    """Every live process of node i: in its holder's network AND mount namespaces (the
    nodes share the host's PID namespace, so a pid or a name alone says nothing)."""
    h = holder(i)
    if h is None:
        raise SystemExit(f"node{i} is not up")
    net, mnt = ns_inode(h, "net"), ns_inode(h, "mnt")
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != h and alive(int(p)) and \
                ns_inode(p, "net") == net and ns_inode(p, "mnt") == mnt:
            out.append(int(p))
    return out


def listening_inodes(i, listen):
    """Inodes of node i's sockets listening on ("tcp", port) or ("unix", path), from its
    network namespace's own tables."""
    kind, where = listen
    h = holder(i)
    inodes = set()
    if kind == "tcp":
        for table in ("tcp", "tcp6"):
            try:
                rows = open(f"/proc/{h}/net/{table}").read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                w = row.split()
                # local_address is HEX_IP:HEX_PORT, st 0A = LISTEN
                if int(w[1].rsplit(":", 1)[1], 16) == where and w[3] == "0A":
                    inodes.add(w[9])
    else:
        for row in open(f"/proc/{h}/net/unix").read().splitlines()[1:]:
            w = row.split()
            # Flags 00010000 = __SO_ACCEPTCON (listening); the path is the last field.
            if len(w) >= 8 and w[-1] == where and int(w[3], 16) & 0x10000:
                inodes.add(w[6])
    return inodes


def service_main(i, listen):
    """The pid of the service's main process on node i: of the node's processes, the ones
    holding its listening socket, and among those the one whose parent does not (nginx's
    master, not a worker). Exactly one, or the drill stops."""
    holders, main = service_mains(i, listen)
    if not holders:
        raise SystemExit(f"drill: nothing listens on {listen[0]} {listen[1]} in node{i}")
    if len(main) != 1:
        raise SystemExit(f"drill: in node{i}, {sorted(holders)} hold {listen[0]} {listen[1]}; "
                         f"not one main process among them: {sorted(main)}")
    return main[0]


def service_mains(i, listen):
    """(the processes of node i holding the listening socket, those whose parent does not)."""
    inodes = {f"socket:[{n}]" for n in listening_inodes(i, listen)}
    if not inodes:
        return set(), []
    holders = set()
    for p in node_procs(i):
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{p}/fd/{fd}") in inodes:
                    holders.add(p)
                    break
            except OSError:
                pass

    def ppid(p):
        try:
            return int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            return None

    return holders, [p for p in holders if ppid(p) not in holders]


def kill_node_proc(i, pid):
    """SIGKILL pid through a pidfd, after checking (on that pidfd) that it is still node
    i's: no pid reuse or other process in between."""
    fd = os.pidfd_open(pid)
    try:
        if pid not in node_procs(i):
            raise SystemExit(f"drill: pid {pid} is no process of node{i} any more")
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        os.close(fd)


KILLED = {}


def kill_service(a, listen):
    """SIGKILL the managed daemon: its main process, found in the node by its socket.
    Remembered (pid, start time) to tell a new main process from it."""
    pid = service_main(a, listen)
    KILLED.update(node=a, listen=listen, pid=pid, started=start_time(pid))
    kill_node_proc(a, pid)


def respawned():
    """After kill_service: a new main process holds the service's socket in that node
    (the service restarted itself, e.g. under mysqld_safe, or the cluster restarted it)."""
    try:
        _, main = service_mains(KILLED["node"], KILLED["listen"])
    except (OSError, SystemExit, KeyError):
        return False
    return len(main) == 1 and (main[0], start_time(main[0])) != (KILLED["pid"], KILLED["started"])


def restart(i):
    """Bring a node back after a drill: daemons gone, link up, cluster stack started."""
    if fence_agent("status", i) == 2:
        fence_agent("on", i)
    if read_pid(os.path.join(ndir(i), "pacemakerd.pid")):
        return
    # What is left of the old stack (corosync after pacemakerd died) goes first.
    kill_node_daemons(i)
    # A fenced node's mounts are intact (the holder survives); its /run state is not
    # from this boot any more: clear the agents' runtime state, as a reboot would.
    for sub in ("run-ra", "run-rustha"):
        d = os.path.join(ndir(i), sub)
        for e in os.listdir(d):
            p = os.path.join(d, e)
            if os.path.isdir(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
    flag = os.path.join(ndir(i), "failing-mount")
    if os.path.exists(flag):
        in_node(i, "umount", f"/usr/lib/ocf/resource.d/{open(flag).read().strip()}", check=False)
        os.unlink(flag)
    start_node(i)
    wait_until(f"node{i} back online", 120,
               lambda: (x := cluster_view()) is not None and f"node{i}" in online_nodes(x))


BASELINE_S = 1.5


def probe_kinds(stack):
    """The client's probes for a stack, each proven during the baseline or not reported."""
    return ["ping", "arp"] + list(STACKS[stack]["probes"])


def baseline(samples, kind, t0):
    """None when the probe `kind` was proven to work just before the injection (it answered
    during the baseline, and its last sample before t0 was an answer); else why not."""
    if kind == "arp":
        reqs = [s for s in samples if s["k"] == "arpreq" and t0 - BASELINE_S <= s["t"] < t0]
        replies = [s for s in samples if s["k"] == "arp" and t0 - BASELINE_S <= s["t"] < t0]
        if not reqs:
            return "the arp probe sent nothing during the baseline before the injection"
        if not replies:
            return ("the arp probe got no answer for the VIP during the baseline before the "
                    "injection: no duplicate-address check")
        return None
    w = [s for s in samples if s["k"] == kind and t0 - BASELINE_S <= s["t"] < t0]
    if not w:
        return f"the {kind} probe sent nothing during the baseline before the injection"
    if not any(s["ok"] for s in w):
        return (f"the {kind} probe never succeeded during the baseline before the injection "
                f"({len(w)} tries): its numbers are not reported")
    if not w[-1]["ok"]:
        return f"the {kind} probe failed just before the injection: its numbers are not reported"
    return None


def analyse(drill, stack, t0, t_end, samples, events, active):
    """The numbers of one drill. Pure: samples and events in, a result out. A probe's
    numbers (gap, lost) and the duplicate check are only there when that probe was proven
    to work during the baseline; otherwise res["unproven"] says why."""
    def window(kind):
        return [s for s in samples if s["k"] == kind and t0 <= s["t"] <= t_end]

    res = {"drill": drill, "stack": stack, "t0": t0, "t_end": t_end, "active_before": active,
           "unproven": []}
    for kind in probe_kinds(stack):
        why = baseline(samples, kind, t0)
        if why:
            res["unproven"].append(why)
            if kind != "arp":
                res[kind] = {"proven": False}
            continue
        if kind == "arp":
            continue
        w = window(kind)
        ok = sorted(s["t"] for s in w if s["ok"])
        lost = sum(1 for s in w if not s["ok"])
        # The last answer before the injection (proven above) starts the first interval.
        prev = max(s["t"] for s in samples if s["k"] == kind and s["ok"] and s["t"] < t0)
        gap = 0.0
        for t in ok + [t_end]:
            gap = max(gap, t - prev)
            prev = t
        res[kind] = {"proven": True, "gap_s": round(gap, 3), "lost": lost, "probes": len(w)}
    # Duplicate address: two MACs answering the same ARP request for the VIP (requests
    # go out every 0.1 s; an answer comes within a millisecond or two).
    arp_ok = not any("arp probe" in u for u in res["unproven"])
    arps = sorted((s["t"], s["mac"]) for s in samples if s["k"] == "arp" and t0 - BASELINE_S <= s["t"] <= t_end)
    reqs = sorted(s["t"] for s in samples if s["k"] == "arpreq" and t0 - BASELINE_S <= s["t"] <= t_end)
    macs = sorted({m for _, m in arps})
    dup = []
    for i, rt in enumerate(reqs):
        nxt = reqs[i + 1] if i + 1 < len(reqs) else rt + 0.1
        answered = {m for t, m in arps if rt <= t < min(nxt, rt + 0.09)}
        if len(answered) > 1:
            dup.append(round(rt - t0, 3))
    if STACKS[stack].get("disk"):
        # The shared disk: proven when it was mounted on exactly one node just before the
        # injection; a failure when two nodes had it at once at any time after.
        base = [s for s in samples if s["k"] == "disk" and t0 - BASELINE_S <= s["t"] < t0]
        if not base or len(base[-1]["nodes"]) != 1:
            res["unproven"].append("the shared disk was not mounted on exactly one node just "
                                   "before the injection: no double-mount check")
            res["disk_checked"] = False
        else:
            res["disk_checked"] = True
        twice = [round(s["t"] - t0, 3) for s in samples
                 if s["k"] == "disk" and t0 <= s["t"] <= t_end and len(s["nodes"]) > 1]
        res["double_mount"] = bool(twice)
        res["double_mount_at_s"] = twice[:5]
    res["arp_macs"] = macs
    res["duplicate_vip"] = bool(dup)
    res["duplicate_checked"] = arp_ok
    res["duplicate_at_s"] = dup[:5]
    rel = lambda e: round(e["t"] - t0, 3)
    first = lambda kinds: next((rel(e) for e in events if e["kind"] in kinds and e["t"] >= t0 - 0.2), None)
    res["detect_s"] = first({"monitor-failed", "node-lost", "fence-request", "stop-failed"})
    res["fence_s"] = first({"fence-ok"})
    starts = [e for e in events if e["kind"] == "start-ok" and e["what"] in ("vip", "eni") and e["t"] >= t0]
    res["vip_start_s"] = rel(starts[0]) if starts else None
    res["vip_node_after"] = starts[0]["node"] if starts else None
    res["events"] = [dict(e, t=rel(e)) for e in events if e["t"] >= t0 - 0.5]
    return res


def run_drill(drill, stack, provider, out):
    ids = [r for r, _ in stack_resources(stack, provider)[0]]
    active = wait_until("the stack running", 120, lambda: group_node(ids))
    probe_path = os.path.join(out, f"{drill}-{provider}.probe.jsonl")
    probe = (EniProbe if stack == "aws" else Probe)(probe_path, stack)
    disk = DiskWatch() if STACKS[stack].get("disk") else None
    try:
        return drill_with_probe(drill, stack, provider, out, ids, active, probe, disk)
    finally:
        probe.stop()
        if disk:
            disk.stop()


def drill_with_probe(drill, stack, provider, out, ids, active, probe, disk=None):
    # The baseline: every probe must answer before the damage is done (bounded; a probe
    # that never answers is reported as such, and the drill fails).
    t_probe = time.time()
    while True:
        now = time.time()
        if now - t_probe >= BASELINE_S:
            seen = probe.peek()
            if all(baseline(seen, k, now) is None for k in probe_kinds(stack)) or now - t_probe > 15:
                break
        time.sleep(0.1)
    token = None
    if disk:
        # Data on the shared disk, written (and fsync'ed) through the active node's own
        # mount before the damage: after the recovery it must be there on the node that
        # then runs the stack (the disk moved with the service, not an empty mount point).
        token = f"{drill}-{provider}-{time.time():.3f}\n"
        try:
            write_marker(node_index(active), token)
        except OSError as e:
            token = f"cannot write on the shared disk on {active} before the injection: {e}"
    t0 = time.time()
    undo = inject(drill, stack, active, provider)
    recovered = None
    deadline = t0 + 90
    moves = drill in MOVING
    # In place: recovered once the damaged resource was started again after the failure
    # was detected (the cluster's own view lags the damage by up to a monitor interval).
    broken = {"vip-deleted": ids[0], "responder-kill": "lb"}.get(drill, stack_resources(stack, provider)[1])
    while time.time() < deadline:
        where = group_node(ids)
        if where and moves and where != active:
            recovered = where
            break
        if where and not moves and any(e["kind"] == "start-ok" and e["what"] == broken
                                       for e in cluster_events(t0) if e["t"] >= t0):
            recovered = where
            break
        # A service that restarts itself (heartbeat's mysql runs mysqld_safe) recovers
        # without the cluster seeing a failure: recovered once a new main process holds
        # its socket in the node, the stack still started there.
        if where == active and drill in ("service-kill", "responder-kill") and respawned():
            recovered = where
            break
        time.sleep(0.2)
    t_rec = time.time()
    time.sleep(2.0)  # watch the client a little longer
    t_end = time.time()
    samples = probe.stop() + (disk.stop() if disk else [])
    events = cluster_events(t0)
    res = analyse(drill, stack, t0, t_end, samples, events, active)
    res.update(provider=provider, stack=stack, recovered=bool(recovered),
               recovered_on=recovered, recovered_s=round(t_rec - t0, 3) if recovered else None)
    if token and token.startswith("cannot write"):
        res["unproven"].append(token)
    elif token and recovered:
        res["data_on_disk"] = read_marker(node_index(recovered)) == token
    # Back to normal for the next drill.
    undo()
    in_node(live_nodes()[0], "crm_resource", "--cleanup", check=False)
    try:
        wait_until("the stack running again", 180, lambda: group_node(ids))
    except SystemExit as e:
        res["restore_error"] = str(e)
    with open(os.path.join(out, f"{drill}-{provider}.svg"), "w") as f:
        f.write(svg(res, samples))
    return res


# ---------------------------------------------------------------- report

def svg(res, samples):
    t0, t_end = res["t0"], res["t_end"]
    span = max(t_end - (t0 - 0.5), 1.0)
    W, L = 900, 120
    x = lambda t: L + (t - (t0 - 0.5)) / span * (W - L - 20)
    rows = [k for k in ("ping", "tcp", "http") if any(s["k"] == k for s in samples)] + ["arp"]
    H = 70 + 26 * len(rows) + 20 * len(res["events"][:14])
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<text x="10" y="18" font-size="13">{res["drill"]} ({res["provider"]}, {res["stack"]} stack): '
         f'recovered {res.get("recovered_s")} s, ping gap {res.get("ping", {}).get("gap_s", "unproven")} s, '
         f'duplicate VIP: {("YES" if res["duplicate_vip"] else "no") if res.get("duplicate_checked") else "unproven"}</text>']
    macs = {m: c for m, c in zip(res["arp_macs"], ["#1f77b4", "#d62728", "#9467bd"])}
    for r, kind in enumerate(rows):
        y = 40 + r * 26
        o.append(f'<text x="10" y="{y + 12}">{kind}</text>')
        for s in samples:
            if s["k"] != kind or not (t0 - 0.5 <= s["t"] <= t_end):
                continue
            if kind == "arp":
                col = macs.get(s["mac"], "#000")
            else:
                col = "#2ca02c" if s["ok"] else "#d62728"
            o.append(f'<rect x="{x(s["t"]):.1f}" y="{y}" width="2" height="16" fill="{col}"/>')
    base = 40 + len(rows) * 26
    # A time axis: whole seconds after the injection.
    o.append(f'<line x1="{L}" y1="{base - 4}" x2="{W - 20}" y2="{base - 4}" stroke="#999" stroke-width="0.5"/>')
    for sec in range(0, int(t_end - t0) + 1):
        o.append(f'<text x="{x(t0 + sec) - 4:.1f}" y="{base + 6}" fill="#999" font-size="9">{sec}s</text>')
    base += 8
    o.append(f'<line x1="{x(t0):.1f}" y1="30" x2="{x(t0):.1f}" y2="{H}" stroke="#000" stroke-dasharray="4"/>')
    for k, e in enumerate(res["events"][:14]):
        t = t0 + e["t"]
        col = "#d62728" if "fail" in e["kind"] or "fence" in e["kind"] or "lost" in e["kind"] else "#555"
        o.append(f'<line x1="{x(t):.1f}" y1="30" x2="{x(t):.1f}" y2="{base + 14 + 20 * k}" stroke="{col}" stroke-width="0.7"/>')
        o.append(f'<text x="{x(t) + 3:.1f}" y="{base + 14 + 20 * k}" fill="{col}">+{e["t"]:.2f} s {e["kind"]} {e["what"]} ({e["node"]})</text>')
    o.append("</svg>\n")
    return "\n".join(o)


def fmt(v, unit="s"):
    return "–" if v is None else f"{v:.2f} {unit}" if isinstance(v, float) else str(v)


def probe_cell(r, kind, field):
    """A probe's number, only when that probe was proven to work before the injection."""
    v = r.get(kind)
    if v is None:
        return "–"
    if not v.get("proven"):
        return "**unproven**"
    return fmt(v[field]) if field == "gap_s" else str(v[field])


def disk_cell(r):
    if not r.get("disk_checked"):
        return "**unproven**"
    data = {True: "ok", False: "**MISSING**"}.get(r.get("data_on_disk"), "–")
    return ("**YES**" if r.get("double_mount") else "no") + f"; data {data}"


def report(results, out, meta, problems):
    svc_kind = next(iter(STACKS[meta["stack"]]["probes"]), None)
    svc_head = {"tcp": "TCP gap", "http": "HTTP gap"}.get(svc_kind)
    has_disk = STACKS[meta["stack"]].get("disk", False)
    lines = ["# rustha drill report", "",
             f"{meta['nodes']} nodes, fencing {'on' if meta['fencing'] else 'off'}, corosync token "
             f"{meta['token_ms']} ms, stack `{meta['stack']}` ({STACKS[meta['stack']]['what']}), "
             f"{time.strftime('%Y-%m-%d %H:%M:%S')}.",
             "Times are seconds after the failure was injected. *gap* is the longest time without "
             "an answer to the client's 0.1 s ICMP ping; *lost* counts unanswered pings; *dup* is "
             "a duplicate-address check (one ARP request for the VIP answered by two MACs). "
             "A probe's numbers are only shown when that probe answered during the baseline "
             f"({BASELINE_S} s before the injection); otherwise it reads *unproven* and the drill fails.", "",
             "| drill | provider | result | recovered | on | detect | fence | VIP start | ping gap | lost | "
             + (f"{svc_head} | " if svc_head else "") + "dup | "
             + ("disk twice; data after | " if has_disk else "") + "timeline |",
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if svc_head else "")
             + ("---|" if has_disk else "") + "---|---|"]
    for r in results:
        name = f"{r['drill']} ({r['provider']}, {r['stack']})"
        mine = [p[len(name) + 2:] for p in problems if p.startswith(name + ": ")]
        dup = ("**YES**" if r["duplicate_vip"] else "no") if r.get("duplicate_checked") else "**unproven**"
        lines.append(
            f"| {r['drill']} | {r['provider']} | {'ok' if not mine else '**FAIL**: ' + '; '.join(mine)} | "
            f"{'yes' if r['recovered'] else '**NO**'} "
            f"({fmt(r['recovered_s'])}) | {r.get('recovered_on') or '–'} | {fmt(r['detect_s'])} | "
            f"{fmt(r['fence_s'])} | {fmt(r['vip_start_s'])} | {probe_cell(r, 'ping', 'gap_s')} | "
            f"{probe_cell(r, 'ping', 'lost')} | "
            + (f"{probe_cell(r, svc_kind, 'gap_s')} | " if svc_head else "")
            + f"{dup} | "
            + (f"{disk_cell(r)} | " if has_disk else "")
            + f"[svg]({r['drill']}-{r['provider']}.svg) |")
    provs = sorted({r["provider"] for r in results})
    if len(provs) > 1:
        lines += ["", "## Side by side (ping gap / recovered after, seconds)", "",
                  "| drill | " + " | ".join(provs) + " |", "|---|" + "---|" * len(provs)]
        for d in dict.fromkeys(r["drill"] for r in results):
            cells = []
            for p in provs:
                r = next((r for r in results if r["drill"] == d and r["provider"] == p), None)
                cells.append("–" if r is None else
                             f"{probe_cell(r, 'ping', 'gap_s')} / {fmt(r['recovered_s'])}")
            lines.append(f"| {d} | " + " | ".join(cells) + " |")
    if problems:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    lines += ["", "## How to read a timeline", "",
              "Each SVG has one row per client probe (green: answered, red: not), an ARP row "
              "coloured by the MAC that answered for the VIP (two colours at once = duplicate "
              "address), the injection as a dashed line, and the cluster's events (failed "
              "monitor, node lost, fencing, stop, start) as labelled lines, from the nodes' "
              "Pacemaker logs."]
    if has_disk:
        lines.insert(4, "db stack: *disk twice* checks every 0.1 s, in each node's mount namespace, "
                        "that the shared disk is never mounted on two nodes at once; *data after*: "
                        "a file written (fsync) on the disk through the active node before the "
                        "injection is read back through the node that runs the stack after it.")
    if meta["stack"] == "aws":
        lines.insert(4, "aws stack: *ping* here means \"some node has the ENI's address up\" "
                        "(sampled every 0.1 s), *dup* \"two nodes have it at once\".")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def score(results, conf):
    """What makes a drill fail, one line each: not recovered, a duplicate VIP, a stack that
    did not come back, a lost node without fencing, and any probe that was not proven to
    work during the baseline (its numbers are not reported, and the drill fails)."""
    problems = []
    for r in results:
        name = f"{r['drill']} ({r['provider']}, {r['stack']})"
        for why in r.get("unproven", []):
            problems.append(f"{name}: {why}")
        if not r["recovered"]:
            problems.append(f"{name}: not recovered")
        if r["duplicate_vip"]:
            problems.append(f"{name}: duplicate VIP at {r['duplicate_at_s']} s")
        if r.get("data_on_disk") is False:
            problems.append(f"{name}: the data written on the shared disk before the injection "
                            f"is not there on {r['recovered_on']} after the recovery")
        if r.get("double_mount"):
            problems.append(f"{name}: the shared disk mounted on two nodes at {r['double_mount_at_s']} s")
        if r.get("restore_error"):
            problems.append(f"{name}: {r['restore_error']}")
        if conf["fencing"] and r["drill"] in ("power-cut", "kill-link-up", "stop-failure") and r["fence_s"] is None:
            problems.append(f"{name}: no fencing recorded")
    return problems


def run(args):
    # The plan first: a drill that does not apply to the stack is refused before the lab
    # is touched (before the lab is even looked at when it is not up).
    conf = lab_conf()
    try:
        drills, providers = plan(args.stack, args.drills, args.providers, args.quick, conf)
    except Refused as e:
        raise SystemExit(f"drill: {e}")
    if not conf or not live_nodes():
        raise SystemExit("drill: the lab is not up (drill.py up)")
    preflight(args.stack)
    out = args.out or os.path.join(os.getcwd(), "drill-results", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    results = []
    teardown = []
    for p in providers:
        t_stack = time.time()
        lost = heal()
        if lost:
            print(f"nodes {lost} were not online: restarted", flush=True)
        delete_stack()  # what an interrupted run left behind
        create_stack(args.stack, p)
        for d in drills:
            print(f"drill {d} ({p}, {args.stack}) ...", flush=True)
            t_d = time.time()
            r = run_drill(d, args.stack, p, out)
            r["took_s"] = round(time.time() - t_d, 1)
            print(f"  recovered={r['recovered']} on {r.get('recovered_on')} after {r['recovered_s']} s; "
                  f"ping gap {r.get('ping', {}).get('gap_s')} s; duplicate={r['duplicate_vip']}; "
                  f"{r['took_s']} s with the restore", flush=True)
            for why in r.get("unproven", []):
                print(f"  {why}", flush=True)
            results.append({k: v for k, v in r.items() if k not in ("t0", "t_end")})
        delete_stack(args.stack)
        lost = offline_nodes()
        if lost:
            teardown.append(f"removing the {args.stack} stack ({p}) lost node{', node'.join(map(str, lost))} "
                            f"(a failed stop got it fenced?)")
            heal()
        print(f"stack {args.stack} ({p}): {len(drills)} drills in {time.time() - t_stack:.1f} s", flush=True)
    meta = dict(conf, stack=args.stack)
    problems = score(results, conf) + teardown
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results, "problems": problems}, f, indent=1)
    report(results, out, meta, problems)
    print(f"report: {os.path.join(out, 'report.md')}")
    for p in problems:
        print(f"PROBLEM: {p}")
    if args.strict and problems:
        return 1
    return 0


def selftest():
    """The planning and scoring rules on synthetic samples: no lab, no root."""
    import tempfile
    import unittest

    T0 = 1000.0

    def series(kind, start, end, ok, step=0.1):
        out, t = [], start
        while t < end:
            out.append({"k": kind, "t": round(t, 3), "ok": ok(t)})
            t += step
        return out

    def arp(start, end, macs=("aa",)):
        out, t = [], start
        while t < end:
            out.append({"k": "arpreq", "t": t})
            out += [{"k": "arp", "t": t + 0.001 * (n + 1), "mac": m} for n, m in enumerate(macs)]
            t += 0.1
        return out

    conf = {"nodes": 2, "fencing": True, "token_ms": 1000}

    def disk(start, end, nodes, step=0.1):
        out, t = [], start
        while t < end:
            out.append({"k": "disk", "t": round(t, 3), "nodes": nodes(t)})
            t += step
        return out

    def result(samples, stack="db", drill="service-kill"):
        if STACKS[stack].get("disk") and not any(s["k"] == "disk" for s in samples):
            samples = samples + disk(T0 - 2, T0 + 5, lambda t: [1])
        r = analyse(drill, stack, T0, T0 + 5, samples, [], "node1")
        r.update(provider="rustha", recovered=True, recovered_on="node1", recovered_s=1.0)
        return r

    class Plan(unittest.TestCase):
        def test_refuses_what_does_not_apply_naming_what_does(self):
            for stack, drill in [("db", "responder-kill"), ("classroom", "responder-kill"),
                                 ("classroom", "service-kill"), ("aws", "service-kill"),
                                 ("web", "responder-kill")]:
                with self.assertRaises(Refused) as e:
                    plan(stack, [drill])
                msg = str(e.exception)
                self.assertIn(f"{drill} does not apply to the {stack} stack", msg)
                for d in STACKS[stack]["applies"]:
                    self.assertIn(d, msg.split("the drills that do: ")[1])

        def test_default_and_quick_sets_apply(self):
            for stack, st in STACKS.items():
                self.assertEqual(plan(stack, [])[0], st["default"])
                self.assertEqual(plan(stack, [], quick=True)[0], st["quick"])
                self.assertEqual(plan(stack, [])[1], st["providers"])
                self.assertTrue(set(st["default"]) | set(st["quick"]) <= set(st["applies"]))
                self.assertTrue(set(st["applies"]) <= set(DRILLS))

        def test_refuses_unknown_drills_providers_and_a_lab_that_cannot(self):
            for args in [("azure", ["nope"]), ("aws", ["move"], "heartbeat"), ("zz", [])]:
                with self.assertRaises(Refused):
                    plan(*args)
            with self.assertRaisesRegex(Refused, "second node"):
                plan("azure", ["standby"], conf={"nodes": 1})
            with self.assertRaisesRegex(Refused, "up --aws"):
                plan("aws", ["move"], conf={"nodes": 2, "aws": False})
            self.assertEqual(plan("azure", ["service-kill"], conf={"nodes": 1})[0], ["service-kill"])

    class Score(unittest.TestCase):
        def test_a_probe_that_never_worked_fails_the_drill_and_reports_no_number(self):
            # The db stack's old failure: ping fine, HTTP red from before the injection on.
            smp = (series("ping", T0 - 2, T0 + 5, lambda t: True)
                   + series("http", T0 - 2, T0 + 5, lambda t: False) + arp(T0 - 2, T0 + 5))
            r = result(smp)
            self.assertEqual(r["http"], {"proven": False})
            self.assertTrue(r["ping"]["proven"])
            probs = score([r], conf)
            self.assertEqual(len(probs), 1, probs)
            self.assertIn("http probe never succeeded during the baseline before the injection", probs[0])
            with tempfile.TemporaryDirectory() as d:
                report([r], d, dict(conf, stack="db"), probs)
                row = [ln for ln in open(os.path.join(d, "report.md")) if ln.startswith("| service-kill")][0]
            self.assertIn("**FAIL**", row)
            cells = [c.strip() for c in row.split("|")]
            self.assertEqual(cells[11], "**unproven**", row)  # the HTTP gap column

        def test_a_probe_that_failed_just_before_the_injection_is_unproven(self):
            smp = (series("ping", T0 - 2, T0 + 5, lambda t: True)
                   + series("http", T0 - 2, T0 + 5, lambda t: t < T0 - 0.35) + arp(T0 - 2, T0 + 5))
            self.assertIn("failed just before the injection", " ".join(score([result(smp)], conf)))

        def test_a_working_probe_is_measured_from_its_last_answer(self):
            smp = (series("ping", T0 - 2, T0 + 5, lambda t: True)
                   + series("http", T0 - 2, T0 + 5, lambda t: not (T0 + 0.5 <= t < T0 + 1.5))
                   + arp(T0 - 2, T0 + 5))
            r = result(smp)
            self.assertEqual(score([r], conf), [])
            self.assertTrue(r["http"]["proven"])
            self.assertAlmostEqual(r["http"]["gap_s"], 1.1, delta=0.05)
            self.assertEqual(r["http"]["lost"], 10)
            self.assertFalse(r["duplicate_vip"])
            self.assertTrue(r["duplicate_checked"])

        def test_no_arp_answer_before_the_injection_means_no_duplicate_check(self):
            smp = series("ping", T0 - 2, T0 + 5, lambda t: True) + arp(T0 - 2, T0 + 5, macs=())
            r = result(smp, stack="classroom", drill="vip-deleted")
            self.assertFalse(r["duplicate_checked"])
            self.assertIn("no duplicate-address check", " ".join(score([r], conf)))

        def test_two_macs_answering_is_a_duplicate(self):
            smp = (series("ping", T0 - 2, T0 + 5, lambda t: True) + arp(T0 - 2, T0)
                   + arp(T0, T0 + 5, macs=("aa", "bb")))
            r = result(smp, stack="classroom", drill="kill-link-up")
            self.assertTrue(r["duplicate_vip"])
            self.assertIn("duplicate VIP", " ".join(score([r], conf)))

        def test_the_shared_disk_on_two_nodes_fails_and_needs_one_mount_before(self):
            ok = series("ping", T0 - 2, T0 + 5, lambda t: True) + arp(T0 - 2, T0 + 5)
            ok += series("http", T0 - 2, T0 + 5, lambda t: True)
            moved = disk(T0 - 2, T0 + 5, lambda t: [1] if t < T0 + 1 else [] if t < T0 + 2 else [2])
            r = result(ok + moved, drill="move")
            self.assertTrue(r["disk_checked"])
            self.assertFalse(r["double_mount"])
            self.assertEqual(score([r], conf), [])
            r["data_on_disk"] = False
            self.assertIn("is not there on node1 after the recovery", " ".join(score([r], conf)))
            twice = disk(T0 - 2, T0 + 5, lambda t: [1] if t < T0 + 1 else [1, 2])
            r = result(ok + twice, drill="move")
            self.assertTrue(r["double_mount"])
            self.assertIn("shared disk mounted on two nodes", " ".join(score([r], conf)))
            never = disk(T0 - 2, T0 + 5, lambda t: [])
            r = result(ok + never, drill="move")
            self.assertFalse(r["disk_checked"])
            self.assertIn("no double-mount check", " ".join(score([r], conf)))

        def test_http_check_accepts_1_0_and_1_1_and_wants_the_page(self):
            body = b"\r\n\r\n" + PAGE
            self.assertTrue(http_ok(b"HTTP/1.0 200 OK\r\nServer: lighttpd" + body))
            self.assertTrue(http_ok(b"HTTP/1.1 200 OK\r\nServer: nginx" + body))
            self.assertFalse(http_ok(b"HTTP/1.1 404 Not Found" + body))
            self.assertFalse(http_ok(b"HTTP/1.1 200 OK\r\n\r\nsomething else\n"))
            self.assertFalse(http_ok(b"HTTP/1.1 200 OK\r\nContent-Length: 18"))

    suite = unittest.TestSuite()
    for case in (Plan, Score):
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(case))
    return 0 if unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful() else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "__node-init":
        return node_init(int(sys.argv[2]))
    if len(sys.argv) > 1 and sys.argv[1] == "__probe":
        return probe_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--nodes", type=int, default=2)
    u.add_argument("--no-fencing", action="store_true")
    u.add_argument("--rustha", help="the rustha binary, linked as ocf:rustha:* inside the nodes")
    u.add_argument("--aws", action="store_true",
                   help="also an emulated EC2 (moto + tests/aws/ec2sim.py) for the aws stack")
    r = sub.add_parser("run")
    r.add_argument("--stack", default="azure", choices=list(STACKS))
    r.add_argument("--providers", help="comma-separated; default: the stack's (rustha,heartbeat; aws: rustha)")
    r.add_argument("--quick", action="store_true", help="the stack's short set (what make test runs)")
    r.add_argument("--out")
    r.add_argument("--strict", action="store_true",
                   help="exit 1 on an unrecovered drill, a duplicate VIP, a stack that does "
                        "not come back, a lost node without fencing, or a probe that did not "
                        "work before the injection")
    r.add_argument("drills", nargs="*", help="default: the stack's default set (see `drill.py stacks`)")
    pl = sub.add_parser("plan", help="check a run's drills against the stack and the lab; touches nothing")
    pl.add_argument("--stack", default="azure", choices=list(STACKS))
    pl.add_argument("--providers")
    pl.add_argument("--quick", action="store_true")
    pl.add_argument("--nodes", type=int, help="check against a lab of that many nodes (default: the lab that is up)")
    pl.add_argument("drills", nargs="*")
    sub.add_parser("stacks", help="each stack's drills: those that apply, the default and the quick set")
    sub.add_parser("selftest", help="the scoring and planning rules, on synthetic samples (no lab)")
    sub.add_parser("down")
    sub.add_parser("status")
    nd = sub.add_parser("node")
    nd.add_argument("i", type=int)
    nd.add_argument("what", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.cmd == "up":
        up(a.nodes, not a.no_fencing, a.rustha, a.aws)
    elif a.cmd == "down":
        if os.geteuid() != 0:
            raise SystemExit("drill: needs root")
        down()
    elif a.cmd == "run":
        return run(a)
    elif a.cmd == "plan":
        conf = lab_conf()
        if a.nodes is not None:
            conf = dict(conf or {}, nodes=a.nodes, aws=a.stack == "aws")
        try:
            drills, provs = plan(a.stack, a.drills, a.providers, a.quick, conf)
        except Refused as e:
            raise SystemExit(f"drill: {e}")
        print(f"{a.stack}: {' '.join(drills)} (providers {','.join(provs)})")
    elif a.cmd == "stacks":
        for name, st in STACKS.items():
            print(f"{name} ({st['what']}; providers {','.join(st['providers'])})\n"
                  f"  applies: {' '.join(st['applies'])}\n  default: {' '.join(st['default'])}\n"
                  f"  quick:   {' '.join(st['quick'])}")
    elif a.cmd == "selftest":
        return selftest()
    elif a.cmd == "status":
        x = cluster_view()
        if x is None:
            print("down")
            return 3
        print(in_node(live_nodes()[0], "crm_mon", "-1").stdout)
    elif a.cmd == "node":
        w = a.what
        if w == ["start"]:
            restart(a.i)
        elif w == ["stop"]:
            stop_node(a.i)
        elif w == ["kill"]:
            kill_node_daemons(a.i)
        elif w == ["poweroff"]:
            return fence_agent("off", a.i)
        elif w == ["poweron"]:
            return fence_agent("on", a.i)
        else:
            r = in_node(a.i, *w)
            sys.stdout.write(r.stdout)
            sys.stderr.write(r.stderr)
            return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
