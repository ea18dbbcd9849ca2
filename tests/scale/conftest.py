"""Fixtures of the scale-out tests: synthetic captures (see synth.py) and the shared corpus."""
from __future__ import annotations

from pathlib import Path

import pytest

from .synth import mixed_capture, split_rotated, write_pcap_exact

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "pcaps"


@pytest.fixture(scope="session")
def mixed_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pcap_exact(tmp_path_factory.mktemp("synth") / "mixed.pcap", mixed_capture(seed=1))


@pytest.fixture(scope="session")
def rotated_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    """(the whole capture, a directory of 11 tcpdump -C style pieces of it, the pieces in order)."""
    base = tmp_path_factory.mktemp("rotated")
    packets = mixed_capture(seed=2)
    whole = write_pcap_exact(base / "whole.pcap", packets)
    pieces = split_rotated(packets, base / "dir", 11)
    return whole, base / "dir", pieces
