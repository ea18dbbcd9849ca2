"""The lane's spool of gzip inputs (netrum.capture.spool): decompressed copies, the same frames as the
streaming reader's, cleaned up; damaged data, standard input and a full disk leave the inputs as they are."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

import netrum.capture.spool as spool_mod
from netrum.capture.pcapfile import open_capture
from netrum.capture.spool import spool_inputs
from netrum.counters import Counters

REPO = Path(__file__).resolve().parents[2]
PCAP = REPO / "pcaps" / "api-routes.pcap"


def _frames(path: Path) -> list[tuple[int, int, bytes, int]]:
    with open_capture(str(path), Counters()) as r:
        return list(r)


def test_gzip_input_is_spooled_to_a_mapped_copy(tmp_path: Path) -> None:
    gz = tmp_path / "a.pcap.gz"
    gz.write_bytes(gzip.compress(PCAP.read_bytes()))
    counters = Counters()
    readers = [open_capture(str(gz), counters), open_capture(str(PCAP), counters)]
    s = spool_inputs(readers)
    try:
        assert s.reason == "" and len(s.own) == 1
        assert s.readers[1] is readers[1]  # plain inputs are their own
        copy = s.readers[0]
        assert copy.format == "pcap" and copy.mmap_buffer() is not None
        assert Path(copy.path).read_bytes() == PCAP.read_bytes()
        assert counters["capture_files"] == 2  # the spool's readers count elsewhere
        directory = s.directory
        assert directory is not None and os.path.isdir(directory)
    finally:
        s.close()
        for r in readers:
            r.close()
    assert not os.path.exists(directory)


def test_concatenated_members_are_one_capture(tmp_path: Path) -> None:
    data = PCAP.read_bytes()
    gz = tmp_path / "two-members.pcap.gz"
    gz.write_bytes(gzip.compress(data[:5000]) + gzip.compress(data[5000:]))
    r = open_capture(str(gz), Counters())
    s = spool_inputs([r])
    try:
        assert s.reason == ""
        assert _frames(Path(s.readers[0].path)) == _frames(PCAP)
    finally:
        s.close()
        r.close()


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_damaged_gzip_is_not_spooled(damage: str, tmp_path: Path) -> None:
    z = gzip.compress(PCAP.read_bytes())
    gz = tmp_path / "bad.pcap.gz"
    gz.write_bytes(z[: len(z) // 2] if damage == "cut" else z[:2000] + b"\xff" * 64 + z[2064:])
    r = open_capture(str(gz), Counters())
    s = spool_inputs([r])
    try:
        assert "damaged gzip" in s.reason and s.readers == [r] and s.directory is None
    finally:
        s.close()
        r.close()


def test_no_spool_when_the_disk_would_fill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_mod, "SPOOL_MIN_FREE_BYTES", 1 << 62)
    gz = tmp_path / "a.pcap.gz"
    gz.write_bytes(gzip.compress(PCAP.read_bytes()))
    r = open_capture(str(gz), Counters())
    s = spool_inputs([r])
    try:
        assert "MB would be left free" in s.reason and s.readers == [r] and s.directory is None
    finally:
        s.close()
        r.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_while_decompressing_is_an_interrupted_run(workers: int, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the spool: the run ends interrupted (files written, marked partial), nothing left in
    $TMPDIR, no second run in the Python engine."""
    from netrum.batch import AnalyzeOptions, analyze_files
    from netrum.lane import available

    if not available():
        pytest.skip("the spool serves the compiled lane only")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)

    def interrupted(path: str, dst: str) -> str:
        Path(dst).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(spool_mod, "_spool_one", interrupted)
    gz = tmp_path / "a.pcap.gz"
    gz.write_bytes(gzip.compress(PCAP.read_bytes()))
    got = analyze_files([str(gz)], tmp_path / "out", AnalyzeOptions(), workers=workers)
    assert got.interrupted and got.transactions == 0
    assert (tmp_path / "out" / "health.csv").exists()
    assert list((tmp_path / "tmp").iterdir()) == []
