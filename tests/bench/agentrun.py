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
"""
import os
import select
import signal
import statistics
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
    timed_out = False
    if timeout is not None:
        # A pidfd becomes readable when the child exits; nothing polls meanwhile.
        pidfd = os.pidfd_open(pid)
        try:
            if not select.select([pidfd], [], [], timeout)[0]:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                timed_out = True
        finally:
            os.close(pidfd)
    while True:
        try:
            _, status, ru = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    wall = time.perf_counter() - t0
    rc = None if timed_out else os.waitstatus_to_exitcode(status)
    return rc, wall, ru.ru_utime + ru.ru_stime


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


def rss_kb(pid):
    """VmRSS, RssAnon, RssFile of `pid` in kB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return None
    val = lambda k: int(st[k].split()[0]) if k in st else None  # noqa: E731
    return {"rss": val("VmRSS"), "anon": val("RssAnon"), "file": val("RssFile")}
