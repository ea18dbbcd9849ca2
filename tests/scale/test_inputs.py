"""Directories of rotated captures (netrum.scale.inputs)."""
from __future__ import annotations

from pathlib import Path

import pytest

from netrum.errors import CaptureError
from netrum.scale.inputs import expand_captures, natural_key

PCAP_HEAD = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")


def test_natural_order_of_tcpdump_names() -> None:
    names = ["cap10", "cap", "cap2", "cap1", "cap9"]
    assert sorted(names, key=natural_key) == ["cap", "cap1", "cap2", "cap9", "cap10"]
    g = ["web-2026-11-23_01.10.pcap", "web-2026-11-23_00.55.pcap", "web-2026-11-23_01.05.pcap"]
    assert sorted(g, key=natural_key) == sorted(g)  # strftime names: chronological


def test_directory_expands_to_its_captures_only(tmp_path: Path) -> None:
    for name in ("cap", "cap1", "cap10", "cap2"):
        (tmp_path / name).write_bytes(PCAP_HEAD)
    (tmp_path / "z.pcapng").write_bytes(bytes.fromhex("0a0d0d0a") + bytes(24))
    (tmp_path / "y.pcap.gz").write_bytes(b"\x1f\x8b" + bytes(10))
    (tmp_path / "README").write_text("notes\n")
    (tmp_path / ".hidden").write_bytes(PCAP_HEAD)
    (tmp_path / "sub").mkdir()
    got = expand_captures([str(tmp_path), "-", "other.pcap"])
    assert [Path(p).name for p in got[:-2]] == ["cap", "cap1", "cap2", "cap10", "y.pcap.gz", "z.pcapng"]
    assert got[-2:] == ["-", "other.pcap"]


def test_directory_without_captures_is_a_capture_error(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("notes\n")
    with pytest.raises(CaptureError, match="without a pcap"):
        expand_captures([str(tmp_path)])
