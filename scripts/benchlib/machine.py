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
