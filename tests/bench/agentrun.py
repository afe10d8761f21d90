"""Shared by the benchmark scripts: run one agent action and measure it.

How an action is measured: the bench process itself is already in the namespace the
agent must run in (it re-executed itself there, or entered it with setns(2) just before),
and starts the agent with posix_spawn(3) -- glibc's clone(CLONE_VM|CLONE_VFORK) + exec, so
the child inherits that namespace and none of the bench's own process start-up is charged
to it: no `ip netns exec` or shell in between, no fork of the Python process (a forked
child pays for tearing down its copy of the interpreter's address space at exec). The
figure is the rusage os.wait4 returns for exactly that child and every descendant it
reaped. The same measurement of `/bin/true` is the exec floor printed beside each figure:
what any program costs to be started this way.

Also here, for every bench: /proc reading (a process's state and start time, name,
command line, memory, network namespace) and a bounded run of any command with its
rusage (`run_cmd`).
"""
import math
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TRUE = "/bin/true"


def forks():
    """The kernel's fork counter (/proc/stat `processes`)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("processes "):
                return int(line.split()[1])
    return 0


def spawn(argv, env, errfd, timeout=None):
    """posix_spawn `argv` (stdin, stdout /dev/null; stderr `errfd`), wait for it:
    (exit code, wall seconds, CPU seconds of it and the descendants it waited for).
    With `timeout` (s): past it the child is SIGKILLed and the exit code is None."""
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
               (os.POSIX_SPAWN_DUP2, errfd, 2)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    r = wait_pid(pid, timeout)
    if r is None:
        os.kill(pid, signal.SIGKILL)
        _, _, ru = os.wait4(pid, 0)
        return None, time.perf_counter() - t0, ru.ru_utime + ru.ru_stime
    status, ru = r
    wall = time.perf_counter() - t0
    return os.waitstatus_to_exitcode(status), wall, ru.ru_utime + ru.ru_stime


def run(agent, action, env, what=None):
    """Exec `agent action` with exactly `env`: wall time, CPU of it and every process it
    waited for, and processes forked besides the agent itself.
    stderr goes to a file, not a pipe: a pipe would make us wait for EOF, i.e. for a
    background helper that inherited it, and charge its lifetime to the action."""
    f0 = forks()
    with tempfile.TemporaryFile() as errf:
        rc, wall, cpu = spawn([agent, action], env, errf.fileno())
        errf.seek(0)
        err = errf.read()
    f1 = forks()
    if rc != 0:
        sys.exit(f"{what or agent} {action} -> {rc}: {err.decode(errors='replace')}")
    return {"wall": wall, "cpu": cpu, "forks": f1 - f0 - 1}


def floor(n, env=None):
    """The exec floor: `/bin/true` started and measured exactly like an action, n times.
    {"cpu": [...], "wall": [...]} in seconds."""
    env = env if env is not None else {"PATH": "/usr/bin:/bin"}
    out = {"cpu": [], "wall": []}
    with open(os.devnull, "wb") as null:
        for _ in range(n):
            rc, wall, cpu = spawn([TRUE], env, null.fileno())
            if rc != 0:
                sys.exit(f"{TRUE} -> {rc}")
            out["cpu"].append(cpu)
            out["wall"].append(wall)
    return out


def floor_ms(n, env=None):
    """Median CPU and wall of the exec floor, in ms."""
    f = floor(n, env)
    return {"cpu_ms": statistics.median(f["cpu"]) * 1000,
            "wall_ms": statistics.median(f["wall"]) * 1000}


def ocf_env(instance, state, interval_ms, params):
    """What Pacemaker's executor gives an agent: OCF 1.1, a 'timeout' (params may set
    another), the state directories of both providers on `state`, the `params` as
    OCF_RESKEY_*; a recurring monitor's interval when `interval_ms`."""
    e = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "1",
        "OCF_RESOURCE_INSTANCE": instance,
        "OCF_RESKEY_CRM_meta_timeout": "20000",
        "HA_RSCTMP": state,
        "RUSTHA_STATE_DIR": state,
    }
    e.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    if interval_ms:
        e["OCF_RESKEY_CRM_meta_interval"] = str(interval_ms)
    return e


def summary(xs, key):
    """Median, min and max of `key` over the runs `xs`."""
    v = [x[key] for x in xs]
    return {"median": statistics.median(v), "min": min(v), "max": max(v)}


def ratio_rows(up, us, rows):
    """Table rows heartbeat | rustha | ratio | target for (name, key, unit, target) of
    medians; the monitor's CPU row names the exec floor measured beside it."""
    out = []
    for name, key, unit, target in rows:
        a, b = up[key]["median"], us[key]["median"]
        ratio = a / b if b > 0 else float("inf")
        verdict = "" if target is None else (f"≥{target}× " + ("PASS" if ratio >= target else "FAIL"))
        if key == "monitor_cpu_ms":
            # What any program costs to be started the same way (posix_spawn + wait4).
            name += (f" [exec floor /bin/true: {up['exec_floor_cpu_ms']:.2f} / "
                     f"{us['exec_floor_cpu_ms']:.2f} ms]")
        out.append(f"| {name} | {a:.2f} {unit} | {b:.2f} {unit} | {ratio:.1f}× | {verdict} |")
    return out


def rss_kb(pid):
    """VmRSS, RssAnon, RssFile of `pid` in kB (None once it is gone)."""
    m = mem_info(pid, pss=False)
    if m is None:
        return None
    return {"rss": m.get("VmRSS_kB"), "anon": m.get("RssAnon_kB"),
            "file": m.get("RssFile_kB")}


# --------------------------------------------------------------------------
# /proc helpers
# --------------------------------------------------------------------------

def proc_stat(pid):
    """(state, ppid, starttime) or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data.rsplit(")", 1)[1].split()
    return rest[0], int(rest[1]), int(rest[19])


def proc_alive(pid, starttime=None):
    st = proc_stat(pid)
    if st is None:
        return False
    if starttime is not None and st[2] != starttime:
        return False  # pid reused by another process
    return st[0] not in ("Z", "X")


def read_text(path, limit=4096):
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode(errors="replace")
    except OSError:
        return None


def proc_comm(pid):
    t = read_text(f"/proc/{pid}/comm")
    return t.strip() if t else None


def proc_cmdline(pid):
    t = read_text(f"/proc/{pid}/cmdline")
    return t.replace("\0", " ").strip() if t else None


def mem_info(pid, pss=True):
    """VmRSS etc. in kB from /proc/<pid>/status; with `pss`, Pss from smaps_rollup."""
    out = {}
    t = read_text(f"/proc/{pid}/status", 16384)
    if t is None:
        return None
    for line in t.splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "VmSize", "RssAnon", "RssFile",
                 "RssShmem"):
            out[k + "_kB"] = int(v.split()[0])
        elif k == "Threads":
            out["Threads"] = int(v)
    t = read_text(f"/proc/{pid}/smaps_rollup", 16384) if pss else None
    if t:
        for line in t.splitlines():
            if line.startswith("Pss:"):
                out["Pss_kB"] = int(line.split()[1])
    return out


def netns_inode(pid):
    """The inode of `pid`'s network namespace ("self" for this process), None once gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def pids_in_netns(ns):
    """Live processes (not zombies) in the network namespace with inode `ns`, other than
    this one, by pid."""
    me = os.getpid()
    return [int(d) for d in os.listdir("/proc")
            if d.isdigit() and int(d) != me and netns_inode(d) == ns
            and proc_alive(int(d))]


def sh(*args, **kw):
    """Run a set-up command (argv, never a shell); fail the bench if it fails."""
    subprocess.run(args, check=True, **kw)


# --------------------------------------------------------------------------
# Child execution with rusage, always bounded
# --------------------------------------------------------------------------

HAVE_PIDFD = hasattr(os, "pidfd_open")


def wait_pid(pid, timeout):
    """Wait for child `pid`; returns (status, rusage), or None on timeout (the child is
    left running). `timeout` None waits as long as it takes."""
    if timeout is None:
        while True:
            try:
                _, status, ru = os.wait4(pid, 0)
                return status, ru
            except InterruptedError:
                continue
    deadline = time.monotonic() + timeout
    fd = None
    if HAVE_PIDFD:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            fd = None
    try:
        if fd is not None:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while True:
                rem = deadline - time.monotonic()
                if rem <= 0:
                    return None
                if poller.poll(max(1, math.ceil(rem * 1000))):
                    break
            _, status, ru = os.wait4(pid, 0)
            return status, ru
        while True:  # fallback: poll with WNOHANG
            wpid, status, ru = os.wait4(pid, os.WNOHANG)
            if wpid == pid:
                return status, ru
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.0005)
    finally:
        if fd is not None:
            os.close(fd)


def _kill_and_reap(p):
    # The child runs in its own session, so its pgid == its pid.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        wait_pid(p.pid, 5)
    except ChildProcessError:
        pass
    p.returncode = -9


class RunResult:
    def __init__(self, argv, rc, wall, ru, out, err, timed_out):
        self.argv, self.rc, self.timed_out = argv, rc, timed_out
        self.wall_ms = wall * 1000.0
        self.user_ms = ru.ru_utime * 1000.0 if ru else None
        self.sys_ms = ru.ru_stime * 1000.0 if ru else None
        self.cpu_ms = (self.user_ms + self.sys_ms) if ru else None
        self.stdout, self.stderr = out, err

    def brief(self):
        return {"argv": self.argv, "rc": self.rc, "timed_out": self.timed_out,
                "wall_ms": self.wall_ms, "cpu_ms": self.cpu_ms,
                "stdout": self.stdout[-1500:], "stderr": self.stderr[-1500:]}


def run_cmd(argv, env, timeout):
    """Popen + os.wait4: rc, wall time and rusage (child + its reaped
    descendants).  stdin=/dev/null, stdout/stderr to temp files (never pipes,
    so a daemonised grandchild holding them cannot block us)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, env=env, cwd="/", stdin=subprocess.DEVNULL,
                             stdout=out, stderr=err, start_new_session=True,
                             close_fds=True)
        try:
            r = wait_pid(p.pid, timeout)
            t1 = time.perf_counter()
        except BaseException:
            _kill_and_reap(p)
            raise
        if r is None:
            _kill_and_reap(p)
            rc, ru, timed_out = None, None, True
        else:
            status, ru = r
            rc = os.waitstatus_to_exitcode(status)
            p.returncode = rc
            timed_out = False
        out.seek(0)
        err.seek(0)
        o = out.read(65536).decode(errors="replace")
        e = err.read(65536).decode(errors="replace")
    return RunResult(argv, rc, t1 - t0, ru, o, e, timed_out)
