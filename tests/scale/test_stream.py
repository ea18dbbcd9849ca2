"""netrum.scale.stream: `--workers N` with the compiled lane (one process writes while the others analyse).

Byte-identity with the single process is held by tests/scale/test_runner.py and the lane's equivalence
suite; here, what Ctrl-C does to a streamed run."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import netrum.batch
from netrum.batch import AnalyzeOptions, analyze_files
from netrum.lane import available
from netrum.scale import stream

from .synth import T0, Conn, write_pcap_exact

pytestmark = pytest.mark.skipif(not available(), reason="the compiled lane is not built")


def busy_capture(path: Path) -> tuple[Path, int]:
    """12 clean keep-alive connections side by side, 150 exchanges each: many 64 kB messages of packed
    transactions. Returns the file and its frame count."""
    packets = []
    for k in range(12):
        c = Conn(f"10.0.3.{k + 1}", 44000 + k, "10.0.0.80")
        t = c.handshake(T0 + k * 53_000)
        for i in range(150):
            t = c.exchange(t + 300_000, f"/w{k}/{i}", body_bytes=120 + i % 40)
        c.fin(t)
        packets += c.packets
    packets.sort(key=lambda p: p[0])
    return write_pcap_exact(path, packets), len(packets)


@pytest.mark.parametrize("whom", ["group", "writer only"])
def test_ctrl_c_stops_the_analysis_and_keeps_what_was_found_with_its_figures(
        whom: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first Ctrl-C stops the analysing process where it is, as in one process; the writer goes on
    until it has written what was found and received the run's figures, so that health.csv counts the
    frames read (before, the writer ended its children and the capture's figures were lost: zero packets
    beside thousands of transactions). Ctrl-C as the terminal sends it (to the process group) and as
    `kill -INT` sends it (to the writer alone, which passes it on).

    Made deterministic: the analysing process (forked, so it inherits the patches) waits after its first
    message until the Ctrl-C reaches it; the writer sends the signal when the first transaction arrives."""
    pcap, frames = busy_capture(tmp_path / "busy.pcap")
    real_analyse = stream.analyse

    def analyse(task: Any, *args: Any, packed_sink: Any = None, **kw: Any) -> Any:
        sent = [0]

        def slow_sink(data: bytes) -> None:
            packed_sink(data)
            sent[0] += 1
            if sent[0] == 1:
                time.sleep(30)  # ended by the Ctrl-C (KeyboardInterrupt from the handler)

        return real_analyse(task, *args, packed_sink=slow_sink, **kw)

    monkeypatch.setattr(stream, "analyse", analyse)
    real_new_sinks = stream.new_sinks

    def new_sinks(out_dir: Path, options: AnalyzeOptions) -> netrum.batch.Sinks:
        sinks = real_new_sinks(out_dir, options)
        inner = sinks.sink
        fired = [False]

        def sink(tx: Any) -> None:
            if not fired[0]:
                fired[0] = True
                # (the terminal's Ctrl-C reaches every process of the group; a killpg here would reach the
                # test runner's too)
                targets = [*children_of(os.getpid()), os.getpid()] if whom == "group" else [os.getpid()]
                for pid in targets:
                    os.kill(pid, signal.SIGINT)
            inner(tx)

        sinks.sink = sink
        return sinks

    monkeypatch.setattr(stream, "new_sinks", new_sinks)
    started = time.monotonic()
    got = analyze_files([str(pcap)], tmp_path / "out", AnalyzeOptions(), workers=2)
    assert time.monotonic() - started < 20, "the analysing process was not stopped by the Ctrl-C"
    assert got.engine == "lane" and got.interrupted and got.partial
    read = got.counters["capture_packets"]
    assert 0 < read < frames, (read, frames)
    assert got.counters["tcp_packets"] == read  # every frame is a TCP segment of the lane's, counted once
    assert 0 < got.transactions < 12 * 150
    assert got.first_ts_ns == T0 and got.last_ts_ns is not None


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc), as the terminal's Ctrl-C reaches them."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out
