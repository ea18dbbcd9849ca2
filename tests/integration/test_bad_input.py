"""Inputs that are not captures at all: one line on stderr (`netrum: error: ...`), exit 2, no traceback.

Contract: 2 = the capture cannot be read at all (missing path, empty file, not a capture, only frames of
an unknown link type).
"""
from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import dpkt
import pytest

from .groundtruth import Run, RunNetrum, analyze


def _empty(p: Path) -> Path:
    p.write_bytes(b"")
    return p


def _random_bytes(p: Path) -> Path:
    p.write_bytes(random.Random(5).randbytes(4096))
    return p


def _text(p: Path) -> Path:
    p.write_text("GET / HTTP/1.1\r\nHost: example.com\r\n\r\nthis is a text file, not a capture\n" * 20)
    return p


def _missing(p: Path) -> Path:
    return p.with_name("does-not-exist.pcap")


def _unknown_linktype(p: Path) -> Path:
    """A valid pcap whose frames are all of link type 147 (LINKTYPE_USER0): nothing netrum decodes."""
    buf = io.BytesIO()
    w = dpkt.pcap.Writer(buf, snaplen=65535, linktype=147)
    rng = random.Random(6)
    for i in range(10):
        w.writepkt(rng.randbytes(60 + i), ts=1_700_000_000 + i / 10)
    p.write_bytes(buf.getvalue())
    return p


def _directory(p: Path) -> Path:
    p.mkdir()
    return p


def _pcap_header_cut(p: Path) -> Path:
    p.write_bytes(bytes.fromhex("d4c3b2a1020004000000"))  # 10 bytes of a 24-byte pcap header
    return p


BAD_INPUTS: dict[str, Callable[[Path], Path]] = {
    "empty file": _empty,
    "random bytes": _random_bytes,
    "text file": _text,
    "missing path": _missing,
    "unknown link type 147": _unknown_linktype,
    "a directory": _directory,
    "pcap header cut short": _pcap_header_cut,
}


def assert_one_line_error(run: Run) -> None:
    assert "Traceback" not in run.stderr + run.stdout
    lines = run.stderr_lines()
    assert len(lines) == 1, f"expected one line on stderr, got {run.stderr!r}"
    assert lines[0].startswith("netrum: error:"), lines[0]


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_one_line_error_exit_2(kind: str, tmp_path: Path, run_netrum: RunNetrum) -> None:
    path = BAD_INPUTS[kind](tmp_path / "input.pcap")
    run = analyze(run_netrum, [path], tmp_path / "out")
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert_one_line_error(run)


def test_bad_input_on_stdin(tmp_path: Path, run_netrum: RunNetrum) -> None:
    run = analyze(run_netrum, ["-"], tmp_path / "out", stdin=b"not a capture\n" * 10)
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert_one_line_error(run)


def test_empty_stdin(tmp_path: Path, run_netrum: RunNetrum) -> None:
    run = analyze(run_netrum, ["-"], tmp_path / "out", stdin=b"")
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert_one_line_error(run)


def test_one_bad_file_among_good_ones_fails_before_writing(tmp_path: Path, run_netrum: RunNetrum) -> None:
    from .groundtruth import COMMITTED_PCAP

    run = analyze(run_netrum, [COMMITTED_PCAP, _text(tmp_path / "notes.txt")], tmp_path / "out")
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert_one_line_error(run)
    assert "notes.txt" in run.stderr, "the message names the file that cannot be read"


def test_output_that_cannot_be_made_is_exit_1_one_line(tmp_path: Path, run_netrum: RunNetrum) -> None:
    from .groundtruth import COMMITTED_PCAP

    blocker = tmp_path / "file"
    blocker.write_text("a file where the output directory should go")
    run = analyze(run_netrum, [COMMITTED_PCAP], blocker / "out")
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert_one_line_error(run)
