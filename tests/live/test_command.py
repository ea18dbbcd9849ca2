"""`netrum live` option parsing and dropping root (--user)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from netrum.live.command import parse_duration, parse_size, parse_speed

REPO = Path(__file__).resolve().parents[2]
PCAP = REPO / "pcaps" / "nginx-mix.pcap"


def test_parsers() -> None:
    assert parse_duration("10s") == 10 and parse_duration("500ms") == 0.5 and parse_duration("5m") == 300
    assert parse_duration("2.5") == 2.5 and parse_duration("1h") == 3600
    assert parse_size("64M") == 64 << 20 and parse_size("512k") == 512 << 10 and parse_size("100") == 100
    assert parse_speed("max") is None and parse_speed("2") == 2.0
    for bad, fn in (("0s", parse_duration), ("x", parse_duration), ("-1", parse_size), ("0", parse_speed),
                    ("fast", parse_speed)):
        with pytest.raises(ValueError):
            fn(bad)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="dropping root needs root")
def test_user_drops_root() -> None:
    base = Path(tempfile.mkdtemp(prefix="netrum-user-"))  # pytest's tmp_path is private to root
    try:
        _run_as_nobody(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run_as_nobody(base: Path) -> None:
    os.chmod(base, 0o777)
    out = base / "out"
    # Files are created after the drop: their owner tells who the process was by then.
    proc = subprocess.run([sys.executable, "-m", "netrum", "live", "--replay", str(PCAP), "--speed", "max",
                           "--metrics", "off", "--user", "nobody", "-o", str(out), "-q"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    import pwd

    nobody = pwd.getpwnam("nobody").pw_uid
    assert (out / "endpoints-rolling.csv").stat().st_uid == nobody
