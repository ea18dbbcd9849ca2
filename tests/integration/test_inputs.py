"""The same capture given in other forms gives the same transactions: on stdin ("-"), gzip-compressed,
as pcapng, and split in two files given in the wrong order (merged back in time order)."""
from __future__ import annotations

import gzip
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .groundtruth import COMMITTED_PCAP, Run, RunNetrum, analyze, load_script


@pytest.fixture(scope="module")
def plain(analyzed: Callable[..., Run]) -> Run:
    run = analyzed(COMMITTED_PCAP)
    assert run.returncode == 0, run.stderr
    assert len(run.transactions) > 100
    return run


def _same(a: Run, b: Run) -> None:
    assert b.returncode == 0, b.stderr
    assert "Traceback" not in b.stderr
    ta = (a.out_dir / "transactions.csv").read_text()
    tb = (b.out_dir / "transactions.csv").read_text()
    assert tb == ta, "transactions.csv differs from the plain file's"
    assert (b.out_dir / "endpoints.csv").read_text() == (a.out_dir / "endpoints.csv").read_text()


def test_stdin_gives_the_same_transactions(plain: Run, tmp_path: Path, run_netrum: RunNetrum) -> None:
    _same(plain, analyze(run_netrum, ["-"], tmp_path / "out", stdin=COMMITTED_PCAP.read_bytes()))


def test_gzip_file_gives_the_same_transactions(plain: Run, tmp_path: Path, run_netrum: RunNetrum) -> None:
    gz = tmp_path / "nginx-mix.pcap.gz"
    gz.write_bytes(gzip.compress(COMMITTED_PCAP.read_bytes()))
    _same(plain, analyze(run_netrum, [gz], tmp_path / "out"))


def test_gzip_on_stdin_gives_the_same_transactions(plain: Run, tmp_path: Path, run_netrum: RunNetrum) -> None:
    data = gzip.compress(COMMITTED_PCAP.read_bytes())
    _same(plain, analyze(run_netrum, ["-"], tmp_path / "out", stdin=data))


def test_pcapng_gives_the_same_transactions(plain: Run, tmp_path: Path, run_netrum: RunNetrum) -> None:
    editcap = shutil.which("editcap")
    if editcap is None:
        pytest.skip("editcap (wireshark-common) is not installed")
    ng = tmp_path / "nginx-mix.pcapng"
    subprocess.run([editcap, "-F", "pcapng", str(COMMITTED_PCAP), str(ng)], check=True, capture_output=True)
    _same(plain, analyze(run_netrum, [ng], tmp_path / "out"))


def test_two_files_are_merged_in_time_order(plain: Run, tmp_path: Path, run_netrum: RunNetrum) -> None:
    """Split where the timestamps strictly increase; give the later half first."""
    damage = load_script("damage")
    pcap = damage.PcapFile(COMMITTED_PCAP.read_bytes())
    recs = pcap.records
    mid = len(recs) // 2
    while (recs[mid - 1][0], recs[mid - 1][1]) >= (recs[mid][0], recs[mid][1]):
        mid += 1
    first, second = tmp_path / "first.pcap", tmp_path / "second.pcap"
    first.write_bytes(pcap.encode(recs[:mid]))
    second.write_bytes(pcap.encode(recs[mid:]))
    _same(plain, analyze(run_netrum, [second, first], tmp_path / "out"))
