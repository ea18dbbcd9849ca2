"""What machine a benchmark ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not available"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def machine_info(python: str) -> dict[str, str]:
    mem_kib = _first("/proc/meminfo", "MemTotal").split()[0]
    py_code = "import sys, platform; print(platform.python_implementation(), sys.version.split()[0])"
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _first("/proc/cpuinfo", "model name"),
        "nproc": str(os.cpu_count()),
        "ram": f"{int(mem_kib) / 1024 / 1024:.1f} GiB" if mem_kib.isdigit() else "?",
        "kernel": platform.release(),
        "python": _version([python, "-c", py_code]),
        "tshark": _version(["tshark", "--version"]),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# A fixed piece of pure CPU work in the interpreter that runs netrum (about 0.5 s here): no I/O, no shared
# data, so N copies at once could each run as fast as one alone if the machine had N free cores.
_SPIN = "s = 0\nfor i in range(10_000_000):\n    s += i * i\n"


def parallel_ceiling(python: str, n: int, reps: int = 5) -> dict[str, object]:
    """What N processes give on this machine when nothing limits them but the machine: the same CPU-bound
    work run alone, then N copies at once, ``reps`` times in turn. The ceiling of one round is
    N x (time alone) / (time of the slowest copy at once): 2.0 on two free cores; less when the cores are
    shared (a VM's vCPUs on busy hosts, SMT siblings). ``--workers N`` cannot beat it."""
    import statistics

    def timed(copies: int) -> float:
        start = time.perf_counter()
        procs = [subprocess.Popen([python, "-c", _SPIN]) for _ in range(copies)]
        for p in procs:
            p.wait()
        return time.perf_counter() - start

    rounds = []
    for _ in range(reps):
        alone = timed(1)
        together = timed(n)
        rounds.append(round(n * alone / together, 2))
    return {"processes": n, "rounds": rounds, "median": statistics.median(rounds), "min": min(rounds),
            "max": max(rounds)}
