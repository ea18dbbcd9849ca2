"""Packet time drives the live figures: the windows and the sketch never read the clock nor do I/O."""
from __future__ import annotations

import ast
from pathlib import Path

LIVE = Path(__file__).resolve().parents[2] / "netrum" / "live"
CLOCK_OR_IO = ("time", "datetime", "os", "socket", "io", "threading")


def test_windows_and_sketch_read_no_clock() -> None:
    for name in ("windows.py", "sketch.py"):
        tree = ast.parse((LIVE / name).read_text())
        mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        bad = sorted(m for m in mods if m.split(".")[0] in CLOCK_OR_IO)
        assert not bad, f"{name} imports {bad}"
