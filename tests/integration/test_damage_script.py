"""scripts/damage.py does exactly the damage it claims (checked on the committed nginx capture)."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .groundtruth import COMMITTED_PCAP, SCRIPTS, load_script

damage_mod = load_script("damage")


def _run(tmp_path: Path, *options: str) -> tuple[Any, bytes]:
    out = tmp_path / "out.pcap"
    cmd = [sys.executable, str(SCRIPTS / "damage.py"), str(COMMITTED_PCAP), str(out), *options]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    raw = out.read_bytes()
    return (damage_mod.PcapFile(raw) if "--cut-at" not in options else None), raw


@pytest.fixture(scope="module")
def original() -> Any:
    return damage_mod.PcapFile(COMMITTED_PCAP.read_bytes())


def test_window_of_one_is_the_identity(tmp_path: Path) -> None:
    _, raw = _run(tmp_path, "--reorder-window", "1")
    assert raw == COMMITTED_PCAP.read_bytes()


def test_reorder_keeps_timestamps_in_file_order_and_moves_packets_within_windows(tmp_path: Path,
                                                                                 original: Any) -> None:
    out, _ = _run(tmp_path, "--reorder-window", "8", "--seed", "4")
    a, b = original.records, out.records
    assert [(r[0], r[1]) for r in b] == [(r[0], r[1]) for r in a]  # the clock does not move
    moved = 0
    for i in range(0, len(a), 8):
        assert Counter(r[2:] for r in a[i:i + 8]) == Counter(r[2:] for r in b[i:i + 8])
        moved += sum(x[3] != y[3] for x, y in zip(a[i:i + 8], b[i:i + 8]))
    assert moved > len(a) // 2


def test_duplicate_inserts_identical_copies_right_after(tmp_path: Path, original: Any) -> None:
    out, _ = _run(tmp_path, "--duplicate", "0.05", "--seed", "4")
    a, b = original.records, out.records
    extra = len(b) - len(a)
    assert 0.03 * len(a) < extra < 0.07 * len(a)
    i = j = 0
    dups = 0
    while i < len(a):
        assert b[j] == a[i]
        j += 1
        if j < len(b) and b[j] == a[i] and (i + 1 == len(a) or b[j] != a[i + 1]):
            dups += 1
            j += 1
        i += 1
    assert j == len(b) and dups == extra


def test_drop_removes_about_the_share_asked(tmp_path: Path, original: Any) -> None:
    out, _ = _run(tmp_path, "--drop", "0.01", "--seed", "4")
    a, b = original.records, out.records
    assert 0 < len(a) - len(b) < 0.03 * len(a)
    it = iter(a)
    assert all(any(r == x for x in it) for r in b)  # an ordered subsequence


def test_snaplen_cuts_frames_and_keeps_wire_length(tmp_path: Path, original: Any) -> None:
    out, _ = _run(tmp_path, "--snaplen", "96")
    assert out.file_hdr.snaplen == 96
    for x, y in zip(original.records, out.records, strict=True):
        assert y[:3] == x[:3] and y[3] == x[3][:96]
    assert any(len(x[3]) > 96 for x in original.records)


@pytest.mark.parametrize("at", [24 + 16 + 50, 1_000_000])
def test_cut_lands_inside_a_record(tmp_path: Path, original: Any, at: int) -> None:
    _, raw = _run(tmp_path, "--cut-at", str(at))
    assert len(raw) in (at, at + 10)
    assert raw == COMMITTED_PCAP.read_bytes()[:len(raw)]
    assert len(raw) not in set(original.offsets) | {COMMITTED_PCAP.stat().st_size}
    with pytest.raises(ValueError, match="cut inside"):
        damage_mod.PcapFile(raw)


def test_cut_on_a_boundary_moves_into_the_record(tmp_path: Path, original: Any) -> None:
    boundary = original.offsets[10]
    _, raw = _run(tmp_path, "--cut-at", str(boundary))
    assert len(raw) == boundary + 10
