#!/usr/bin/env python3
"""Side-by-side benchmark of the upstream heartbeat `azure-lb` OCF agent and
rustha's `azure-lb` agent.

Usage (must run as root):

    python3 tests/bench/azure_lb_bench.py --rustha /path/to/rustha-azure-lb \
        [--json bench-results.json] [-n 30] [--cycles 30] [--noreap-cycles 5]

Everything runs inside a private network namespace `rustha-bench-<pid>` that
this script creates (the measuring part re-executes this script under
`ip netns exec`).  Traffic goes only to 127.0.0.1 inside that namespace.

Metrics (both agents, medians):
  1. `monitor` on a running resource: CPU (user+sys incl. descendants, from
     os.wait4 rusage) and wall time. The agent is started with posix_spawn from this
     process, which is inside the namespace already (see agentrun.py): none of the
     bench's own process start-up is counted. Beside it, the exec floor: /bin/true
     started and measured the same way, interleaved with the monitors.
  2. `start && stop` wall time, (a) under `tini -s` (prompt zombie reaper) and
     (b) without (orphans go to PID 1, which may reap slowly).
  3. Probes under load: hold N (1000) idle TCP connections to the responder,
     then 200 fresh connects with a 50 ms handshake timeout, ~5 ms apart.
  4. Responder RSS (the process(es) owning the LISTEN socket), idle and with
     the connections held; for upstream that process is `nc`.

Output: a table on stdout (progress on stderr) and all raw numbers as JSON.
Exit status: 0 if the benchmark ran (even if targets FAIL), 1 if it could not
run, 2 on usage / environment errors (not root, missing tools), 130 if
interrupted.  Only the Python standard library is used (Python >= 3.9).
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import platform
import re
import resource
import select
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentrun  # noqa: E402
from agentrun import (HAVE_PIDFD, mem_info, proc_alive, proc_cmdline,  # noqa: E402
                      proc_comm, proc_stat, read_text, run_cmd)

UPSTREAM_DEFAULT = "/usr/lib/ocf/resource.d/heartbeat/azure-lb"
OCF_ROOT = "/usr/lib/ocf"
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OCF_SUCCESS, OCF_NOT_RUNNING = 0, 7
NS_PREFIX = "rustha-bench-"
# stderr patterns that mean "the shell could not run this script"
SHELL_FAIL_RE = re.compile(
    r"bad substitution|syntax error|unexpected|: not found|illegal option",
    re.I)
BASHISM_RE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(,,|\^\^)\}")

TARGET_MONITOR_CPU_RATIO = 15.0
TARGET_PROBE_OK_PCT = 100.0
TARGET_RSS_RATIO = 1.0


class BenchError(Exception):
    """The benchmark itself could not run."""


class Interrupted(BaseException):
    """SIGINT/SIGTERM/SIGHUP received."""


def _raise_interrupt(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def _note_signal(signum, _frame):
    log(f"got {signal.Signals(signum).name} during cleanup; still cleaning up")


def install_signals(handler):
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr,
          flush=True)


def tcp_rows():
    """Rows of /proc/net/tcp and tcp6 in this netns, split into fields, with the
    local and remote ports decoded: (parts, lport, rport)."""
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10:
                continue
            yield (parts, int(parts[1].rsplit(":", 1)[1], 16),
                   int(parts[2].rsplit(":", 1)[1], 16))


def listen_inodes(port):
    """Socket inodes of TCP LISTEN (state 0A) sockets on `port` in this netns."""
    return {parts[9] for parts, lport, _ in tcp_rows()
            if lport == port and parts[3] == "0A" and parts[9] != "0"}


def socket_owners(inodes):
    """PIDs having an fd on one of the socket inodes (scans /proc/*/fd)."""
    if not inodes:
        return []
    targets = {f"socket:[{i}]" for i in inodes}
    owners = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{d}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{d}/fd/{fd}") in targets:
                    owners.append(int(d))
                    break
            except OSError:
                continue
    return sorted(owners)


def responder_info(port):
    """Describe the process(es) owning the LISTEN socket on `port`."""
    procs = []
    for pid in socket_owners(listen_inodes(port)):
        st = proc_stat(pid)
        if st is None:
            continue
        procs.append({
            "pid": pid, "comm": proc_comm(pid), "cmdline": proc_cmdline(pid),
            "ppid": st[1], "ppid_comm": proc_comm(st[1]), "starttime": st[2],
            "mem": mem_info(pid),
        })
    rss = [p["mem"]["VmRSS_kB"] for p in procs
           if p["mem"] and "VmRSS_kB" in p["mem"]]
    return {"procs": procs, "rss_kB": sum(rss) if rss else None,
            "nprocs": len(procs)}


TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV",
              "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
              "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK",
              "0A": "LISTEN", "0B": "CLOSING", "0C": "NEW_SYN_RECV"}
# server-side states of a connection the server actually holds a socket for
SERVER_HELD = ("ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT",
               "LAST_ACK", "CLOSING")


def tcp_view(port):
    """State histograms (this netns) of sockets with local port == port
    (server side) and remote port == port (client side), plus the LISTEN
    socket's current accept-queue length and max backlog."""
    server, client, listen = {}, {}, []
    for parts, lport, rport in tcp_rows():
        st = TCP_STATES.get(parts[3], parts[3])
        if lport == port and st == "LISTEN":
            listen.append({"accept_queue": int(parts[4].split(":")[1], 16)})
        elif lport == port:
            server[st] = server.get(st, 0) + 1
        elif rport == port:
            client[st] = client.get(st, 0) + 1
    try:  # max backlog is only exposed via inet_diag (ss Send-Q)
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"],
                             capture_output=True, text=True, timeout=5,
                             stdin=subprocess.DEVNULL).stdout.split()
        backlog = int(out[2]) if len(out) >= 3 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        backlog = None
    return {"server": server, "client": client, "listen": listen,
            "backlog": backlog,
            "server_held": sum(server.get(k, 0) for k in SERVER_HELD)}


NETSTAT_KEYS = ("ListenOverflows", "ListenDrops", "SyncookiesSent",
                "SyncookiesRecv", "SyncookiesFailed", "TCPReqQFullDoCookies",
                "TCPReqQFullDrop", "TCPBacklogDrop")


def tcp_counters():
    """Selected TcpExt counters of this netns from /proc/net/netstat."""
    t = read_text("/proc/net/netstat", 1 << 16) or ""
    rows = [l.split() for l in t.splitlines() if l.startswith("TcpExt:")]
    if len(rows) < 2:
        return {}
    d = dict(zip(rows[0][1:], rows[1][1:]))
    return {k: int(d[k]) for k in NETSTAT_KEYS if k in d}


def counters_delta(a, b):
    return {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0)}


def wait_listen(port, present, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if bool(listen_inodes(port)) == present:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def kill_procs(idents, grace=3.0):
    """Kill (pid, starttime) identities by PID: SIGTERM, wait, SIGKILL."""
    report = []
    alive = [(p, s) for p, s in idents if proc_alive(p, s)]
    for p, s in alive:
        try:
            os.kill(p, signal.SIGTERM)
            report.append({"pid": p, "signal": "TERM"})
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(proc_alive(p, s)
                                              for p, s in alive):
        time.sleep(0.05)
    for p, s in alive:
        if proc_alive(p, s):
            try:
                os.kill(p, signal.SIGKILL)
                report.append({"pid": p, "signal": "KILL"})
            except ProcessLookupError:
                pass
    return report


# --------------------------------------------------------------------------
# Agents
# --------------------------------------------------------------------------

def read_shebang(path):
    try:
        with open(path, "rb") as f:
            first = f.readline(256)
    except OSError:
        return None
    if first.startswith(b"#!"):
        return first[2:].strip().decode(errors="replace")
    return None


def is_posix_sh(shebang):
    if not shebang:
        return False
    interp = os.path.basename(shebang.split()[0])
    if interp == "env" and len(shebang.split()) > 1:
        interp = shebang.split()[1]
    return interp in ("sh", "dash")


class Agent:
    def __init__(self, key, path, port, instance, meta_timeout_ms):
        self.key, self.path, self.port = key, path, port
        self.instance = instance
        self.meta_timeout_ms = meta_timeout_ms
        self.cmd = [path]
        self.shebang = read_shebang(path)
        self.is_sh_script = is_posix_sh(self.shebang)
        self.interpreter = (f"shebang ({self.shebang} -> "
                            f"{os.path.realpath(self.shebang.split()[0])})"
                            if self.shebang else "native executable")
        self.interpreter_note = None
        self.observed = set()  # (pid, starttime) of responders seen
        try:
            with open(path, "rb") as f:
                m = BASHISM_RE.findall(f.read(1 << 20).decode(errors="replace"))
            self.static_bashisms = len(m)
        except OSError:
            self.static_bashisms = None

    def env(self, action):
        return {
            "PATH": SAFE_PATH, "LANG": "C", "LC_ALL": "C",
            "OCF_ROOT": OCF_ROOT,
            "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "1",
            "OCF_RESOURCE_INSTANCE": self.instance,
            "OCF_RESOURCE_TYPE": "azure-lb",
            "OCF_RESOURCE_PROVIDER": "heartbeat",
            "OCF_RESKEY_port": str(self.port),
            "OCF_RESKEY_CRM_meta_timeout": str(self.meta_timeout_ms),
            # a recurring monitor on a running resource; 0 for start/stop
            "OCF_RESKEY_CRM_meta_interval":
                "10000" if action == "monitor" else "0",
        }

    def observe(self):
        info = responder_info(self.port)
        for p in info["procs"]:
            self.observed.add((p["pid"], p["starttime"]))
        return info

    def pidfile_pid(self):
        """Upstream's pidfile /var/run/<instance>.pid (if any)."""
        t = read_text(f"/var/run/{self.instance}.pid")
        m = re.search(r"\d+", t or "")
        return int(m.group()) if m else None


# --------------------------------------------------------------------------
# TCP load / probes (client side, inside the netns, 127.0.0.1 only)
# --------------------------------------------------------------------------

def ensure_nofile(n):
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = old
    if soft != resource.RLIM_INFINITY and soft >= n:
        return old
    if hard != resource.RLIM_INFINITY and hard < n:
        hard = n  # root may raise the hard limit
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
    return old


class HeldConns:
    def __init__(self):
        self.socks = []
        self.sel = selectors.DefaultSelector()
        self.connected = 0
        self.errors = {}
        self.open_s = None
        self.settle_s = None

    def _err(self, code):
        name = errno.errorcode.get(code, str(code))
        self.errors[name] = self.errors.get(name, 0) + 1

    def open(self, port, n, wait_s):
        t0 = time.perf_counter()
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            self.socks.append(s)
            rc = s.connect_ex(("127.0.0.1", port))
            if rc == 0:
                self.connected += 1
            elif rc == errno.EINPROGRESS:
                self.sel.register(s, selectors.EVENT_WRITE)
            else:
                self._err(rc)
        self.open_s = time.perf_counter() - t0
        self.poll(wait_s)
        self.settle_s = time.perf_counter() - t0

    def poll(self, wait_s):
        deadline = time.monotonic() + wait_s
        while self.sel.get_map():
            rem = deadline - time.monotonic()
            for key, _ in self.sel.select(timeout=max(0.0, rem)):
                s = key.fileobj
                self.sel.unregister(s)
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e == 0:
                    self.connected += 1
                else:
                    self._err(e)
            if rem <= 0:
                break

    @property
    def pending(self):
        return len(self.sel.get_map())

    def close(self):
        try:
            self.sel.close()
        except Exception:
            pass
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []


def probe_once(port, timeout_s):
    """Fresh TCP connect; ok iff the handshake completes within timeout_s."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        t0 = time.perf_counter()
        rc = s.connect_ex(("127.0.0.1", port))
        if rc == errno.EINPROGRESS:
            p = select.poll()
            p.register(s, select.POLLOUT)
            ev = p.poll(timeout_s * 1000.0)
            t1 = time.perf_counter()
            if not ev:
                return False, None, "timeout"
            rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        else:
            t1 = time.perf_counter()
        if rc != 0:
            return False, None, errno.errorcode.get(rc, str(rc))
        lat = t1 - t0
        if lat > timeout_s:
            return False, lat * 1000.0, "late"
        return True, lat * 1000.0, None
    finally:
        s.close()


def pct(xs, q):
    """Nearest-rank percentile."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(1, math.ceil(q / 100.0 * len(s))) - 1]


# --------------------------------------------------------------------------
# Inner part: runs inside the netns
# --------------------------------------------------------------------------

class Inner:
    def __init__(self, args):
        self.a = args
        self.deadline = time.monotonic() + args.timeout
        tag = args._tag
        self.agents = {
            "upstream": Agent("upstream", args.upstream, args.port_upstream,
                              f"rustha-bench-upstream-{tag}",
                              args.meta_timeout_ms),
            "rustha": Agent("rustha", args.rustha, args.port_rustha,
                            f"rustha-bench-rustha-{tag}",
                            args.meta_timeout_ms),
        }
        self.R = {"errors": [], "warnings": [], "phases_done": []}
        self.op_timeout = args.meta_timeout_ms / 1000.0 + 10.0

    # -- helpers ----------------------------------------------------------
    def check_deadline(self):
        if time.monotonic() > self.deadline:
            raise BenchError(f"overall timeout ({self.a.timeout}s) exceeded")

    def err(self, msg):
        log("ERROR: " + msg)
        self.R["errors"].append(msg)

    def warn(self, msg):
        log("warning: " + msg)
        self.R["warnings"].append(msg)

    def op(self, ag, action):
        self.check_deadline()
        r = run_cmd(ag.cmd + [action], ag.env(action), self.op_timeout)
        if r.timed_out:
            self.err(f"{ag.key} {action} timed out after {self.op_timeout}s")
        return r

    def force_stop(self, ag):
        """Best-effort: agent stop, then kill listener owners by PID."""
        rep = {}
        try:
            r = run_cmd(ag.cmd + ["stop"], ag.env("stop"), self.op_timeout)
            rep["stop"] = r.brief()
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            rep["stop_exc"] = repr(e)
        ag.observe()
        left = [(p, s) for p, s in ag.observed if proc_alive(p, s)]
        if left:
            rep["killed"] = kill_procs(left)
        return rep

    # -- phases -------------------------------------------------------------
    def sanity(self):
        a = self.a
        self.R["meta_inner"] = {
            "pid": os.getpid(),
            "netns_inode": os.stat("/proc/self/ns/net").st_ino,
            # the parent is the outer part (ip netns exec execs, no fork)
            "outer_netns_inode": os.stat(f"/proc/{os.getppid()}/ns/net").st_ino,
            "pidfd": HAVE_PIDFD,
        }
        if self.R["meta_inner"]["netns_inode"] == \
                self.R["meta_inner"]["outer_netns_inode"]:
            raise BenchError("inner part is not inside a private netns")
        for ag in self.agents.values():
            if listen_inodes(ag.port):
                raise BenchError(f"port {ag.port} already has a listener in "
                                 "the fresh netns?!")
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", 0))
        except OSError as e:
            raise BenchError(f"cannot bind 127.0.0.1 in netns: {e}") from e
        finally:
            s.close()
        old = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.R["meta_inner"]["nofile_inherited"] = list(old)
        if a.agent_nofile > 0:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (a.agent_nofile, old[1]))
        self.agents_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.R["meta_inner"]["nofile_for_agents"] = list(self.agents_nofile)

    def preflight_once(self, ag):
        steps = []
        ok = True

        def step(action, expect):
            r = self.op(ag, action)
            d = r.brief()
            d["expect"] = sorted(expect)
            bad = (SHELL_FAIL_RE.search(r.stderr + r.stdout)
                   if ag.is_sh_script else None)
            d["shell_error"] = bad.group(0) if bad else None
            steps.append(d)
            return r.rc in expect and not bad

        try:
            ok = step("monitor", {OCF_NOT_RUNNING})
            ok = ok and step("start", {OCF_SUCCESS})
            if ok:
                ok = wait_listen(ag.port, True, 5.0)
                steps.append({"check": "listener appeared", "ok": ok})
                ag.observe()
            ok = ok and step("monitor", {OCF_SUCCESS})
            ok = ok and step("stop", {OCF_SUCCESS})
            if ok:
                ok = wait_listen(ag.port, False, 5.0)
                steps.append({"check": "listener gone", "ok": ok})
            ok = ok and step("monitor", {OCF_NOT_RUNNING})
        finally:
            if not ok:
                steps.append({"cleanup": self.force_stop(ag)})
        return ok, steps

    def preflight(self):
        res = {}
        for ag in self.agents.values():
            mode = self.a.upstream_interpreter if ag.key == "upstream" \
                else "auto"
            info = {"path": ag.path, "shebang": ag.shebang,
                    "bin_sh": os.path.realpath("/bin/sh"),
                    "static_bashisms": ag.static_bashisms}
            tries = []
            if mode == "bash":
                ag.cmd = ["/bin/bash", ag.path]
                ag.interpreter = "bash (forced by --upstream-interpreter)"
            log(f"preflight {ag.key}: {' '.join(ag.cmd)} (port {ag.port})")
            ok, steps = self.preflight_once(ag)
            tries.append({"cmd": list(ag.cmd), "ok": ok, "steps": steps})
            if not ok and mode == "auto" and ag.is_sh_script \
                    and shutil.which("bash"):
                bash = shutil.which("bash")
                shell_err = next((s.get("shell_error") for s in steps
                                  if s.get("shell_error")), None)
                log(f"preflight {ag.key} FAILED under {ag.shebang} "
                    f"({shell_err or 'unexpected rc'}); retrying with bash")
                ag.cmd = [bash, ag.path]
                ok, steps = self.preflight_once(ag)
                tries.append({"cmd": list(ag.cmd), "ok": ok, "steps": steps})
                if ok:
                    ag.interpreter = (f"bash (explicit interpreter; failed "
                                      f"under {ag.shebang}: "
                                      f"{shell_err or 'unexpected rc'})")
                    ag.interpreter_note = ag.interpreter
                    self.warn(f"{ag.key}: agent fails under {ag.shebang} -> "
                              f"{os.path.realpath('/bin/sh')} "
                              f"({shell_err or 'unexpected rc'}); "
                              f"measured as `bash {ag.path}`")
            info.update({"tries": tries, "ok": ok, "cmd": list(ag.cmd),
                         "interpreter": ag.interpreter})
            res[ag.key] = info
            if not ok:
                self.R["preflight"] = res
                last = [s for s in steps if "rc" in s]
                raise BenchError(
                    f"{ag.key} agent failed preflight "
                    f"(monitor/start/monitor/stop/monitor): "
                    + json.dumps(last[-1] if last else steps, indent=None)[:1500])
            log(f"preflight {ag.key}: OK, interpreter: {ag.interpreter}")
        self.R["preflight"] = res

    def order(self, i):
        ks = ["upstream", "rustha"]
        return ks if i % 2 == 0 else ks[::-1]

    def cycles(self, name, n, reaper):
        tini = shutil.which("tini")
        res = {k: {"wall_ms": [], "rc": [], "fail": []} for k in self.agents}
        log(f"{name}: {n} x start&&stop per agent "
            f"({'tini -s reaper' if reaper else 'no reaper, orphans -> PID 1'})")
        for i in range(n):
            for k in self.order(i):
                ag = self.agents[k]
                self.check_deadline()
                argv = ["/bin/sh", "-c", '"$@" start && "$@" stop', "sh",
                        *ag.cmd]
                if reaper:
                    argv = [tini, "-s", "--", *argv]
                r = run_cmd(argv, ag.env("start"), 2 * self.op_timeout)
                res[k]["rc"].append(r.rc)
                res[k]["wall_ms"].append(r.wall_ms)
                gone = wait_listen(ag.port, False, 5.0)
                if r.rc != 0 or not gone:
                    d = r.brief()
                    d["listener_left"] = not gone
                    d["cleanup"] = self.force_stop(ag)
                    res[k]["fail"].append(d)
                    self.err(f"{name} {k} run {i}: rc={r.rc} "
                             f"listener_left={not gone}")
        for k in res:
            ok = [w for w, rc in zip(res[k]["wall_ms"], res[k]["rc"])
                  if rc == 0]
            res[k]["median_ms_ok"] = statistics.median(ok) if ok else None
            med = res[k]["median_ms_ok"]
            log(f"{name} {k}: median "
                f"{'n/a' if med is None else f'{med:.1f}'} ms "
                f"({len(ok)}/{n} ok, max {max(res[k]['wall_ms']):.0f} ms)")
        self.R[name] = res

    def start_persistent(self):
        res = {}
        for k, ag in self.agents.items():
            r = self.op(ag, "start")
            self.started.add(k)
            up = wait_listen(ag.port, True, 5.0)
            res[k] = {"start": r.brief(), "listening": up}
            if r.rc != 0 or not up:
                raise BenchError(f"{k}: start for the load phases failed: "
                                 f"rc={r.rc} listening={up} "
                                 f"stderr={r.stderr[-500:]!r}")
            info = ag.observe()
            res[k]["responder_at_start"] = info
            if info["nprocs"] != 1:
                self.warn(f"{k}: {info['nprocs']} processes own the listening "
                          f"socket: {[p['pid'] for p in info['procs']]}")
            if k == "upstream":
                res[k]["pidfile_pid"] = ag.pidfile_pid()
        self.R["persistent"] = res

    def spawn_measured(self, argv, env):
        """posix_spawn + wait4 (agentrun.spawn): a RunResult-like brief, stderr kept."""
        with tempfile.TemporaryFile() as err:
            rc, wall, cpu = agentrun.spawn(argv, env, err.fileno(),
                                           timeout=self.op_timeout)
            err.seek(0)
            e = err.read(65536).decode(errors="replace")
        if rc is None:
            self.err(f"{' '.join(argv)} timed out after {self.op_timeout}s")
        return rc, wall * 1000.0, cpu * 1000.0, e

    def monitor_phase(self):
        n = self.a.runs
        res = {k: {"cpu_ms": [], "wall_ms": [], "rc": []} for k in self.agents}
        base = {"cpu_ms": [], "wall_ms": []}
        log(f"monitor: {n} runs per agent (posix_spawn + wait4; "
            f"+ /bin/true exec floor the same way)")
        for i in range(n):
            for k in self.order(i):
                ag = self.agents[k]
                self.check_deadline()
                rc, wall, cpu, err = self.spawn_measured(
                    ag.cmd + ["monitor"], ag.env("monitor"))
                res[k]["cpu_ms"].append(cpu)
                res[k]["wall_ms"].append(wall)
                res[k]["rc"].append(rc)
                if rc != 0:
                    self.err(f"monitor {k} run {i}: rc={rc} "
                             f"stderr={err[-300:]!r}")
            rc, wall, cpu, _ = self.spawn_measured([agentrun.TRUE],
                                                   {"PATH": SAFE_PATH})
            base["cpu_ms"].append(cpu)
            base["wall_ms"].append(wall)
        for k in res:
            for f in ("cpu_ms", "wall_ms"):
                v = [x for x in res[k][f] if x is not None]
                res[k]["median_" + f] = statistics.median(v) if v else None
            log(f"monitor {k}: cpu {fnum(res[k]['median_cpu_ms'])} ms, "
                f"wall {fnum(res[k]['median_wall_ms'])} ms (median)")
        base["median_cpu_ms"] = statistics.median(base["cpu_ms"])
        base["median_wall_ms"] = statistics.median(base["wall_ms"])
        self.R["monitor"] = res
        self.R["spawn_floor_true"] = base

    def rss_running(self):
        res = {}
        for k, ag in self.agents.items():
            res[k] = ag.observe()
            log(f"RSS {k} (idle): {res[k]['rss_kB']} kB "
                f"{[(p['pid'], p['comm']) for p in res[k]['procs']]}")
        self.R["rss_running"] = res

    def probe_phase(self, k):
        a = self.a
        ag = self.agents[k]
        self.check_deadline()
        need = a.hold + 256
        before = ag.observe()
        old = ensure_nofile(need)
        held = HeldConns()
        res = {"hold": a.hold, "probes": a.probes,
               "probe_timeout_ms": a.probe_timeout_ms,
               "probe_interval_ms": a.probe_interval_ms,
               "client_nofile": list(resource.getrlimit(
                   resource.RLIMIT_NOFILE))}
        try:
            log(f"probe {k}: opening {a.hold} connections to "
                f"127.0.0.1:{ag.port}")
            c0 = tcp_counters()
            held.open(ag.port, a.hold, a.hold_wait)
            c1 = tcp_counters()
            view = tcp_view(ag.port)
            res.update({"tcp_after_hold": view,
                        "server_held": view["server_held"],
                        "kernel_counters_hold": counters_delta(c0, c1)})
            res.update({"held_connected": held.connected,
                        "held_pending": held.pending,
                        "held_errors": dict(held.errors),
                        "held_open_s": held.open_s,
                        "held_settle_s": held.settle_s})
            log(f"probe {k}: client view {held.connected}/{a.hold} "
                f"connected, {held.pending} still in SYN-SENT after "
                f"{held.settle_s:.2f}s; server holds {view['server_held']} "
                f"sockets, accept queue {view['listen']}, backlog "
                f"{view['backlog']}, kernel {res['kernel_counters_hold']}; "
                f"running {a.probes} probes")
            lat, fails = [], {}
            t0 = time.perf_counter()
            for _ in range(a.probes):
                self.check_deadline()
                ok, ms, why = probe_once(ag.port, a.probe_timeout_ms / 1000.0)
                if ok:
                    lat.append(ms)
                else:
                    fails[why] = fails.get(why, 0) + 1
                time.sleep(a.probe_interval_ms / 1000.0)
            res["probe_duration_s"] = time.perf_counter() - t0
            res["kernel_counters_probes"] = counters_delta(c1, tcp_counters())
            held.poll(0)
            res["held_connected_at_end"] = held.connected
            res["latencies_ms"] = lat
            res["ok"] = len(lat)
            res["ok_pct"] = 100.0 * len(lat) / a.probes if a.probes else None
            res["fail_reasons"] = fails
            res["p50_ms"] = pct(lat, 50)
            res["p99_ms"] = pct(lat, 99)
            res["max_ms"] = max(lat) if lat else None
            res["rss_under_load"] = ag.observe()
            log(f"probe {k}: {len(lat)}/{a.probes} ok "
                f"({res['ok_pct']:.1f}%), fails={fails}, p50={res['p50_ms']} "
                f"p99={res['p99_ms']} max={res['max_ms']}; RSS under load "
                f"{res['rss_under_load']['rss_kB']} kB")
        finally:
            held.close()
            resource.setrlimit(resource.RLIMIT_NOFILE, old)
        time.sleep(0.2)
        after = ag.observe()
        res["rss_after_close"] = after
        bp = {p["pid"] for p in before["procs"]}
        ap = {p["pid"] for p in after["procs"]}
        res["responder_pids_before"] = sorted(bp)
        res["responder_pids_after"] = sorted(ap)
        if bp != ap:
            self.warn(f"probe {k}: responder changed during load: "
                      f"{sorted(bp)} -> {sorted(ap)}")
        m = self.op(ag, "monitor")
        res["monitor_after_load"] = m.brief()
        if m.rc != 0:
            self.err(f"{k}: monitor after load rc={m.rc}")
        self.R.setdefault("probe", {})[k] = res

    def stop_persistent(self):
        res = {}
        for k, ag in self.agents.items():
            r = self.op(ag, "stop")
            gone = wait_listen(ag.port, False, 5.0)
            res[k] = {"stop": r.brief(), "listener_gone": gone}
            if r.rc == 0 and gone:
                self.started.discard(k)
            else:
                self.err(f"{k}: final stop rc={r.rc} listener_gone={gone}")
            # responder processes must be gone (zombies count as gone)
            t_end = time.monotonic() + 5
            while time.monotonic() < t_end and any(
                    proc_alive(p, s) for p, s in ag.observed):
                time.sleep(0.05)
            left = [p for p, s in ag.observed if proc_alive(p, s)]
            res[k]["responders_left"] = left
            if left:
                self.err(f"{k}: responder(s) still alive after stop: {left}")
        self.R["final_stop"] = res

    def cleanup(self):
        rep = {}
        for k, ag in self.agents.items():
            d = {}
            ag.observe()
            if k in self.started or listen_inodes(ag.port):
                d["force_stop"] = self.force_stop(ag)
            pp = ag.pidfile_pid()
            if pp is not None:
                st = proc_stat(pp)
                if st and proc_alive(pp):
                    ag.observed.add((pp, st[2]))
            left = [(p, s) for p, s in ag.observed if proc_alive(p, s)]
            if left:
                d["killed"] = kill_procs(left)
            pf = f"/var/run/{ag.instance}.pid"
            if os.path.exists(pf):
                try:
                    os.unlink(pf)
                    d["removed_pidfile"] = pf
                except OSError as e:
                    d["pidfile_error"] = repr(e)
            rr = []  # report only: rustha owns /run/rustha
            for root, dirs, files in os.walk("/run/rustha"):
                if root.count(os.sep) > 6:
                    dirs[:] = []
                rr += [os.path.join(root, f) for f in dirs + files
                       if ag.instance in f]
            if rr:
                d["run_rustha_leftovers"] = rr
                self.warn(f"{k}: files left under /run/rustha for instance "
                          f"{ag.instance}: {rr}")
            d["observed_responders"] = sorted(ag.observed)
            rep[k] = d
        return rep

    def run(self):
        self.started = set()
        status = 0
        try:
            self.sanity()
            self.preflight()
            self.R["phases_done"].append("preflight")
            self.cycles("cycle_reaper", self.a.cycles, reaper=True)
            self.R["phases_done"].append("cycle_reaper")
            self.cycles("cycle_noreap", self.a.noreap_cycles, reaper=False)
            self.R["phases_done"].append("cycle_noreap")
            self.start_persistent()
            self.monitor_phase()
            self.R["phases_done"].append("monitor")
            self.rss_running()
            for k in ("upstream", "rustha"):
                self.probe_phase(k)
            self.R["phases_done"].append("probe")
            self.stop_persistent()
            self.R["phases_done"].append("stop")
        except Interrupted as e:
            self.err(f"interrupted by {e}")
            status = 130
        except BenchError as e:
            self.err(f"benchmark could not run: {e}")
            status = 1
        except Exception:  # noqa: BLE001
            self.err("internal error:\n" + traceback.format_exc())
            status = 1
        finally:
            install_signals(_note_signal)
            log("inner cleanup")
            try:
                self.R["cleanup_inner"] = self.cleanup()
            except Exception:  # noqa: BLE001
                self.err("cleanup error:\n" + traceback.format_exc())
                status = status or 1
            self.R["agents"] = {k: {"path": ag.path, "cmd": ag.cmd,
                                    "port": ag.port, "instance": ag.instance,
                                    "interpreter": ag.interpreter,
                                    "interpreter_note": ag.interpreter_note,
                                    "static_bashisms": ag.static_bashisms}
                                for k, ag in self.agents.items()}
            self.R["inner_status"] = status
            with open(self.a._out, "w") as f:
                json.dump(self.R, f, indent=1, default=str)
        return status


def inner_main(args):
    install_signals(_raise_interrupt)
    return Inner(args).run()


# --------------------------------------------------------------------------
# Outer part: root check, netns lifecycle, report
# --------------------------------------------------------------------------

def sh(argv, timeout=15):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def fnum(v):
    if v is None:
        return "n/a"
    if isinstance(v, int):
        return str(v)
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fratio(r):
    if r is None:
        return "-"
    if r == math.inf:
        return "inf"
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def cost_ratio(up, rs):
    if up is None or rs is None:
        return None
    if rs == 0:
        return math.inf if up > 0 else None
    return up / rs


def _g(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def build_rows(R, args):
    rows = []

    def med_ok(section, k):
        s = _g(R, section, k)
        if not s:
            return None
        v = [w for w, rc in zip(s["wall_ms"], s["rc"]) if rc == 0]
        return statistics.median(v) if v else None

    def mon(k, f):
        s = _g(R, "monitor", k)
        if not s:
            return None
        v = [x for x, rc in zip(s[f], s["rc"]) if rc == 0 and x is not None]
        return statistics.median(v) if v else None

    up, rs = mon("upstream", "cpu_ms"), mon("rustha", "cpu_ms")
    r = cost_ratio(up, rs)
    fl = _g(R, "spawn_floor_true", "median_cpu_ms")
    rows.append(("monitor cpu (ms, median)", up, rs, r,
                 f">={TARGET_MONITOR_CPU_RATIO:g}x less",
                 None if r is None and up is None else
                 (r is not None and r >= TARGET_MONITOR_CPU_RATIO)))
    rows.append(("  exec floor /bin/true, same spawn (ms)", fl, fl, None, "-",
                 None))
    rows.append(("  monitor cpu above the floor (ms)",
                 None if up is None or fl is None else up - fl,
                 None if rs is None or fl is None else rs - fl,
                 None if up is None or rs is None or fl is None else
                 cost_ratio(up - fl, rs - fl), "-", None))
    up, rs = mon("upstream", "wall_ms"), mon("rustha", "wall_ms")
    rows.append(("monitor wall (ms, median)", up, rs, cost_ratio(up, rs),
                 "-", None))
    for sec, label in (("cycle_reaper", "start+stop wall, tini -s (ms, med)"),
                       ("cycle_noreap", "start+stop wall, no reaper (ms, med)")):
        up, rs = med_ok(sec, "upstream"), med_ok(sec, "rustha")
        rows.append((label, up, rs, cost_ratio(up, rs), "-", None))
    P = R.get("probe", {})
    rows.append((f"held conns connected, client view (/{args.hold})",
                 _g(P, "upstream", "held_connected"),
                 _g(P, "rustha", "held_connected"), None, "-", None))
    rows.append(("held conns the server has a socket for",
                 _g(P, "upstream", "server_held"),
                 _g(P, "rustha", "server_held"), None, "-", None))
    up, rs = _g(P, "upstream", "ok_pct"), _g(P, "rustha", "ok_pct")
    rows.append((f"probes ok % ({args.probes} @{args.probe_timeout_ms:g}ms)",
                 up, rs, None, "100% (rustha)",
                 None if rs is None and up is None else
                 (rs is not None and rs >= TARGET_PROBE_OK_PCT)))
    for f, label in (("p50_ms", "probe p50 latency (ms)"),
                     ("p99_ms", "probe p99 latency (ms)"),
                     ("max_ms", "probe max latency (ms)")):
        up, rs = _g(P, "upstream", f), _g(P, "rustha", f)
        rows.append((label, up, rs, cost_ratio(up, rs), "-", None))
    for label, upv, rsv in (
            ("responder RSS kB, idle (rustha/nc)",
             _g(R, "rss_running", "upstream", "rss_kB"),
             _g(R, "rss_running", "rustha", "rss_kB")),
            (f"responder RSS kB, {args.hold} held (rustha/nc)",
             _g(P, "upstream", "rss_under_load", "rss_kB"),
             _g(P, "rustha", "rss_under_load", "rss_kB"))):
        r = rsv / upv if (upv and rsv is not None) else None
        rows.append((label, upv, rsv, r, f"<={TARGET_RSS_RATIO:g}x nc",
                     None if r is None and upv is None else
                     (r is not None and r <= TARGET_RSS_RATIO)))
    return rows


def render(R, args, rows):
    lines = []
    ag = R.get("agents", {})
    m = R.get("meta", {})
    lines.append("azure-lb benchmark: upstream vs rustha "
                 f"(netns {m.get('netns')}, 127.0.0.1 only)")
    for k in ("upstream", "rustha"):
        a = ag.get(k, {})
        lines.append(f"  {k:8s} {a.get('path')}  port {a.get('port')}  "
                     f"run as: {' '.join(a.get('cmd') or [])}  "
                     f"[{a.get('interpreter')}]")
    pf = R.get("preflight", {})
    for k in ("upstream", "rustha"):
        tries = _g(pf, k, "tries") or []
        if len(tries) > 1:
            lines.append(f"  NOTE: {k} failed under its #! shell and was run "
                         f"with bash explicitly: {ag.get(k, {}).get('interpreter')}")
    lines.append(f"  runs: monitor N={args.runs}, tini cycles={args.cycles}, "
                 f"no-reaper cycles={args.noreap_cycles}, held={args.hold}, "
                 f"probes={args.probes} @{args.probe_timeout_ms:g}ms every "
                 f"{args.probe_interval_ms:g}ms; agents' RLIMIT_NOFILE="
                 f"{_g(R, 'meta_inner', 'nofile_for_agents')}")
    sf = R.get("spawn_floor_true")
    if sf:
        lines.append(f"  exec floor (/bin/true via posix_spawn+wait4, median): "
                     f"cpu {sf['median_cpu_ms']:.2f} ms, "
                     f"wall {sf['median_wall_ms']:.2f} ms")
    for k in ("upstream", "rustha"):
        procs = _g(R, "persistent", k, "responder_at_start", "procs") or []
        if procs:
            p = procs[0]
            lines.append(f"  {k} responder: pid {p['pid']} ({p['comm']}: "
                         f"{p['cmdline']}), parent after start: "
                         f"{p['ppid']} ({p['ppid_comm']})"
                         + (f" [+{len(procs) - 1} more]" if len(procs) > 1
                            else ""))
    lines.append("")
    hdr = (f"{'metric':44s} {'upstream':>10s} {'rustha':>10s} "
           f"{'ratio':>8s}   {'target':16s} result")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for label, up, rs, r, target, ok in rows:
        res = "-" if ok is None else ("PASS" if ok else "FAIL")
        lines.append(f"{label:44s} {fnum(up):>10s} {fnum(rs):>10s} "
                     f"{fratio(r):>8s}   {target:16s} {res}")
    lines.append("")
    lines.append("ratio = upstream/rustha for costs (higher = rustha better); "
                 "rustha/nc for RSS (lower = rustha better).")
    for k in ("upstream", "rustha"):
        p = _g(R, "probe", k)
        if p:
            v = p.get("tcp_after_hold") or {}
            lines.append(
                f"  {k} load: client view {p.get('held_connected')}/"
                f"{p.get('hold')} connected ({p.get('held_pending')} stuck in "
                f"SYN-SENT, {p.get('held_connected_at_end')} by end); server "
                f"holds {p.get('server_held')} (states {v.get('server')}), "
                f"listen backlog {v.get('backlog')}, accept queue "
                f"{[x['accept_queue'] for x in v.get('listen', [])]}; kernel "
                f"hold {p.get('kernel_counters_hold')} probes "
                f"{p.get('kernel_counters_probes')}; probe failures "
                f"{p.get('fail_reasons')}")
    for k, label in (("upstream", "nc"), ("rustha", "rustha")):
        procs = _g(R, "rss_running", k, "procs") or []
        if procs:
            mm = procs[0].get("mem") or {}
            lines.append(f"  idle RSS detail {k} ({label}, pid "
                         f"{procs[0]['pid']}): VmRSS {mm.get('VmRSS_kB')} = "
                         f"anon {mm.get('RssAnon_kB')} + file "
                         f"{mm.get('RssFile_kB')} kB, Pss {mm.get('Pss_kB')} "
                         f"kB, threads {mm.get('Threads')}")
    for w in R.get("warnings", []):
        lines.append(f"WARNING: {w}")
    for e in R.get("errors", []):
        el = e.strip().splitlines() or [""]
        tail = f" ... {el[-1][:200]}" if len(el) > 1 else ""
        lines.append(f"ERROR: {el[0][:300]}{tail}")
    lines.append(f"total runtime {R.get('meta', {}).get('runtime_s', 0):.1f} s;"
                 f" raw numbers: {os.path.abspath(args.json)}")
    return "\n".join(lines)


def outer_main(args, argv):
    if os.geteuid() != 0:
        print("ERROR: this benchmark must be run as root (it creates a network "
              "namespace with `ip netns` and the OCF agents need root).",
              file=sys.stderr)
        return 2
    missing = [t for t in ("ip", "tini", "sh") if not shutil.which(t)]
    for p in (args.upstream, args.rustha):
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            missing.append(f"{p} (not an executable file)")
    if missing:
        print(f"ERROR: missing: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.hold < 0 or args.probes < 1 or args.runs < 1:
        print("ERROR: bad counts", file=sys.stderr)
        return 2

    t0 = time.time()
    tag = str(os.getpid())
    ns = NS_PREFIX + tag
    R = {}
    meta = {"netns": ns, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": argv, "python": sys.version.split()[0],
            "kernel": platform.release(), "nproc": os.cpu_count(),
            "loadavg_start": read_text("/proc/loadavg", 200).strip(),
            "pid1": proc_comm(1), "bin_sh": os.path.realpath("/bin/sh"),
            "tini": shutil.which("tini"),
            "ports": {"upstream": args.port_upstream,
                      "rustha": args.port_rustha},
            "monitor_interval_env_ms": 10000,
            "meta_timeout_ms": args.meta_timeout_ms}
    try:
        v = sh(["dpkg-query", "-W", "-f", "${Version}", "resource-agents"])
        meta["resource_agents_version"] = v.stdout.strip() or None
    except Exception:  # noqa: BLE001
        pass
    # stale namespaces from crashed runs (report only)
    try:
        stale = [l.split()[0] for l in sh(["ip", "netns", "list"]).stdout
                 .splitlines() if l.startswith(NS_PREFIX)]
        stale = [s for s in stale if s[len(NS_PREFIX):].isdigit()
                 and not os.path.exists(f"/proc/{s[len(NS_PREFIX):]}")]
        if stale:
            log(f"warning: stale namespaces from earlier runs: {stale} "
                f"(remove with `ip netns del NAME`)")
            meta["stale_netns"] = stale
    except Exception:  # noqa: BLE001
        pass

    tmpdir = tempfile.mkdtemp(prefix="rustha-bench-")
    inner_out = os.path.join(tmpdir, "inner.json")
    status = 1
    ns_created = False
    p = None
    cleanup = {}
    install_signals(_raise_interrupt)
    try:
        r = sh(["ip", "netns", "add", ns])
        if r.returncode != 0:
            raise BenchError(f"ip netns add {ns} failed: {r.stderr.strip()}")
        ns_created = True
        r = sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        if r.returncode != 0:
            raise BenchError(f"ip -n {ns} link set lo up: {r.stderr.strip()}")
        cmd = ["ip", "netns", "exec", ns, sys.executable,
               os.path.abspath(__file__), *argv,
               "--_inner", "--_out", inner_out, "--_tag", tag]
        log(f"netns {ns} created; running measurements inside it")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            status = p.wait(timeout=args.timeout + 120)
        except subprocess.TimeoutExpired:
            log("inner part exceeded its time budget; interrupting it")
            os.kill(p.pid, signal.SIGTERM)
            status = 1
    except Interrupted as e:
        log(f"interrupted ({e}); cleaning up")
        status = 130
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    except BenchError as e:
        log(f"ERROR: {e}")
        R.setdefault("errors", []).append(str(e))
        status = 1
    finally:
        install_signals(_note_signal)
        if p is not None and p.poll() is None:
            try:
                p.wait(timeout=90)  # inner stops agents itself
            except subprocess.TimeoutExpired:
                log(f"inner pid {p.pid} did not finish cleanup; SIGKILL")
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        if ns_created:
            # anything still running in our private netns was started by us
            try:
                pids = [int(x) for x in sh(["ip", "netns", "pids", ns])
                        .stdout.split() if x.isdigit()]
            except Exception:  # noqa: BLE001
                pids = []
            idents = []
            for pid in pids:
                st = proc_stat(pid)
                if st:
                    idents.append((pid, st[2]))
                    log(f"leftover process in netns: {pid} "
                        f"({proc_cmdline(pid)}); killing by PID")
            cleanup["netns_leftovers"] = [
                {"pid": pid, "cmdline": proc_cmdline(pid)} for pid, _ in idents]
            if idents:
                cleanup["netns_killed"] = kill_procs(idents)
            r = sh(["ip", "netns", "del", ns])
            cleanup["netns_deleted"] = r.returncode == 0
            if r.returncode != 0:
                log(f"ERROR: ip netns del {ns}: {r.stderr.strip()}")
        try:
            with open(inner_out) as f:
                inner = json.load(f)
        except (OSError, ValueError):
            inner = None
        shutil.rmtree(tmpdir, ignore_errors=True)

    if inner is None:
        R.setdefault("errors", []).append("inner part produced no results")
        if status == 0:
            status = 1
    else:
        errs = R.get("errors", []) + inner.get("errors", [])
        R.update(inner)
        R["errors"] = errs
        if status == 0 and inner.get("inner_status"):
            status = inner["inner_status"]
    meta["runtime_s"] = time.time() - t0
    meta["loadavg_end"] = read_text("/proc/loadavg", 200).strip()
    R["meta"] = meta
    R["cleanup_outer"] = cleanup
    rows = build_rows(R, args)
    R["summary"] = [{"metric": l, "upstream": u, "rustha": rs, "ratio":
                     (None if r is None or r == math.inf else r),
                     "ratio_inf": r == math.inf, "target": t,
                     "pass": ok} for l, u, rs, r, t, ok in rows]
    R["exit_status"] = status
    try:
        with open(args.json, "w") as f:
            json.dump(R, f, indent=1, default=str)
    except OSError as e:
        log(f"ERROR: cannot write {args.json}: {e}")
        status = status or 1
    print(render(R, args, rows), flush=True)
    if status not in (0, 130):
        print("\nbenchmark did NOT complete (see errors above)", flush=True)
    return status


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Benchmark upstream heartbeat azure-lb vs rustha azure-lb "
                    "(needs root; runs in a private netns)")
    ap.add_argument("--rustha", required=True, metavar="PATH",
                    help="rustha azure-lb OCF agent executable")
    ap.add_argument("--upstream", default=UPSTREAM_DEFAULT, metavar="PATH",
                    help=f"upstream agent (default {UPSTREAM_DEFAULT})")
    ap.add_argument("--upstream-interpreter", choices=("auto", "bash"),
                    default="auto",
                    help="auto: run via #! and fall back to bash if the "
                         "script fails under /bin/sh; bash: always bash")
    ap.add_argument("--json", default="bench-results.json", metavar="PATH",
                    help="raw results (default ./bench-results.json)")
    ap.add_argument("-n", "--runs", type=int, default=30,
                    help="monitor runs per agent (default 30)")
    ap.add_argument("--cycles", type=int, default=30,
                    help="start&&stop runs under tini -s (default 30)")
    ap.add_argument("--noreap-cycles", type=int, default=5,
                    help="start&&stop runs without reaper (default 5)")
    ap.add_argument("--hold", type=int, default=1000,
                    help="idle connections held open (default 1000)")
    ap.add_argument("--hold-wait", type=float, default=3.0,
                    help="seconds to let held connects complete (default 3)")
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--probe-timeout-ms", type=float, default=50.0)
    ap.add_argument("--probe-interval-ms", type=float, default=5.0)
    ap.add_argument("--port-upstream", type=int, default=61000)
    ap.add_argument("--port-rustha", type=int, default=61001)
    ap.add_argument("--meta-timeout-ms", type=int, default=20000,
                    help="OCF_RESKEY_CRM_meta_timeout given to the agents")
    ap.add_argument("--agent-nofile", type=int, default=1024,
                    help="soft RLIMIT_NOFILE the agents/responders inherit "
                         "(systemd default 1024; 0 = inherit unchanged)")
    ap.add_argument("--timeout", type=float, default=900,
                    help="overall time budget in seconds (default 900)")
    ap.add_argument("--_inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_out", help=argparse.SUPPRESS)
    ap.add_argument("--_tag", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.rustha = os.path.abspath(a.rustha)
    a.upstream = os.path.abspath(a.upstream)
    if a.port_upstream == a.port_rustha:
        ap.error("--port-upstream and --port-rustha must differ")
    return a


def main():
    argv = sys.argv[1:]
    args = parse_args(argv)
    if args._inner:
        return inner_main(args)
    return outer_main(args, argv)


if __name__ == "__main__":
    sys.exit(main())
