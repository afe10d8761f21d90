"""Shared by the benchmark scripts: run one agent action and measure it."""
import resource
import subprocess
import sys
import tempfile
import time


def forks():
    """The kernel's fork counter (/proc/stat `processes`)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("processes "):
                return int(line.split()[1])
    return 0


def run(agent, action, env, what=None):
    """Exec `agent action` with exactly `env`: wall time, CPU of it and every process it
    waited for (RUSAGE_CHILDREN), and processes forked besides the agent itself.
    stderr goes to a file, not a pipe: a pipe would make us wait for EOF, i.e. for a
    background helper that inherited it, and charge its lifetime to the action."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    f0 = forks()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as errf:
        p = subprocess.run([agent, action], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=errf)
        wall = time.perf_counter() - t0
        errf.seek(0)
        err = errf.read()
    f1 = forks()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{what or agent} {action} -> {p.returncode}: {err.decode(errors='replace')}")
    return {"wall": wall, "cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
            "forks": f1 - f0 - 1}
