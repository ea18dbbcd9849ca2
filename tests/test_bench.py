"""scripts/bench: a quick run on the repository's own capture (netrum only, --workers 2) writes a report whose
ratios and ceilings are computed from its own rows."""
from __future__ import annotations

import gzip
import importlib.machinery
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO / "pcaps" / "api-routes.pcap"


def load_bench():  # type: ignore[no-untyped-def]
    loader = importlib.machinery.SourceFileLoader("bench_script", str(REPO / "scripts" / "bench"))
    spec = importlib.util.spec_from_loader("bench_script", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_script"] = module  # (its dataclasses look their module up)
    loader.exec_module(module)
    return module


def test_workers_row_has_its_ratio_to_one_process_and_the_ceilings(tmp_path: Path) -> None:
    cap = shutil.copy(CAPTURE, tmp_path / CAPTURE.name)  # the bench caches the capture's facts beside it
    report = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench"), "--capture", str(cap), "--no-tshark",
                           "--workers", "2", "--ceiling-rounds", "1", "--repeat", "2", "--report", str(report)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(report.with_suffix(".json").read_text())
    rows = {r["tool"]: r for r in data["rows"]}
    one, two = rows["netrum"], rows["netrum --workers 2"]
    assert one["transactions"] == two["transactions"] == 600
    assert one["ratio_to_one_process"] is None
    # the runs alternate (one process, --workers 2, one process, ...); each --workers run over the one before it
    assert "x 1 process round by round " in two["note"] and "round by round" not in one["note"]
    assert proc.stdout.index("netrum --workers 2 api-routes.pcap (run 1 of 2)") < proc.stdout.index(
        "netrum api-routes.pcap (run 2 of 2)")
    assert two["ratio_to_one_process"] == round(two["transactions_per_s"] / one["transactions_per_s"], 2)
    cpu = [c for c in data["parallel_ceiling"] if "capture" not in c]
    work = [c for c in data["parallel_ceiling"] if "capture" in c]
    assert [c["when"] for c in cpu] == ["before", "after"]
    assert [c["capture"] for c in work] == [CAPTURE.name]
    for c in cpu + work:
        assert c["processes"] == 2 and len(c["rounds"]) == 1 and c["median"] == c["rounds"][0] > 0
    (ceiling,) = work
    assert ceiling["one_process_s"] == one["wall_s"]
    assert 0 < ceiling["serial_s"]
    bench = load_bench()
    assert ceiling["bound"] == bench.amdahl_bound(one["wall_s"], ceiling["serial_s"], ceiling["median"])
    assert two["workers_bound"] == ceiling["bound"] and one["workers_bound"] is None
    text = report.read_text()
    assert "x 1 process" in text and "Parallel ceiling of this machine" in text and "Workload ceiling" in text
    assert f"at most x{ceiling['bound']:.2f} the one-process throughput" in text
    assert "serial part: netrum analyze on api-routes.pcap without its packets takes" in proc.stdout


def test_amdahl_bound() -> None:
    bound = load_bench().amdahl_bound
    assert bound(2.0, 0.0, 1.8) == 1.8  # nothing serial: the machine's yield
    assert bound(1.8, 0.2, 1.69) == round(1.8 / (0.2 + 1.6 / 1.69), 2) == 1.57
    assert bound(1.0, 1.0, 2.0) == bound(0.5, 1.0, 2.0) == 1.0  # all serial (a tiny capture)


def read_frames(path: Path) -> tuple[int, list[str]]:
    from netrum.capture.pcapfile import open_capture
    from netrum.counters import Counters

    reader = open_capture(str(path), Counters())
    try:
        return sum(1 for _ in reader), reader.problems
    finally:
        reader.close()


def test_empty_twin_keeps_the_header_and_no_packet(tmp_path: Path) -> None:
    from tests.capture.test_pcapfile import pcapng_bytes

    bench = load_bench()
    twin = bench.empty_twin(CAPTURE, tmp_path / "twin.pcap")
    assert twin.read_bytes() == CAPTURE.read_bytes()[:24]
    assert read_frames(twin) == (0, [])
    for order in "<>":  # two sections, two interfaces, every kind of packet block; a name block after them
        data, frames = pcapng_bytes(order)
        src = tmp_path / f"in{order == '<'}.pcapng"
        src.write_bytes(data)
        assert read_frames(src)[0] == len(frames) == 5
        twin = bench.empty_twin(src, tmp_path / "twin.pcapng")
        assert data.startswith(twin.read_bytes()) and len(twin.read_bytes()) > 28
        assert read_frames(twin) == (0, [])
    damaged = tmp_path / "short-shb.pcapng"  # a section header shorter than any: nothing after it is read
    damaged.write_bytes(b"\x0a\x0d\x0d\x0a" + (12).to_bytes(4, "little") + b"\x4d\x3c\x2b\x1a" + b"\0" * 64)
    assert bench.empty_twin(damaged, tmp_path / "twin2.pcapng").read_bytes() == b""
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(CAPTURE.read_bytes()))
    assert bench.empty_twin(gz, tmp_path / "twin.gz") is None


def test_a_serial_part_run_that_fails_gives_no_figure(tmp_path: Path) -> None:
    """A run that stops early (here: an interpreter that is not one) would pass for a tiny serial part."""
    assert load_bench().serial_part(CAPTURE, tmp_path, "false", 2, 30.0) is None
    assert not list(tmp_path.iterdir())  # the twin and the output directories are gone
