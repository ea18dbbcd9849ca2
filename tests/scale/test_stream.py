"""netrum.scale.stream: `--workers N` with the compiled lane (one process writes while the others analyse).

Byte-identity with the single process is held by tests/scale/test_runner.py and the lane's equivalence
suite; here, what Ctrl-C does to a streamed run."""
from __future__ import annotations

import marshal
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import netrum.batch
from netrum.batch import AnalyzeOptions, analyze_files
from netrum.export.privacy import make_privacy
from netrum.lane import available
from netrum.limits import SECOND_NS, Limits
from netrum.scale import stream
from netrum.scale.partition import PartitionTask

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


ALL_OUTPUTS = ("transactions.csv", "endpoints.csv", "health.csv", "consumers.csv", "routes.csv")


def assert_same_as_one_process(pcap: Path, tmp_path: Path, options: AnalyzeOptions, workers: int) -> tuple[Any, Any]:
    one = analyze_files([str(pcap)], tmp_path / "one", options)
    many = analyze_files([str(pcap)], tmp_path / "many", options, workers=workers)
    assert many.engine == "lane"
    for name in ALL_OUTPUTS:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "many" / name).read_bytes(), name
    return one, many


TAKE_OVER_OPTIONS = {
    "defaults": AnalyzeOptions(),
    "short idle, masks": AnalyzeOptions(Limits(flow_idle_timeout_ns=2 * SECOND_NS),
                                        privacy=make_privacy(keep_query_values=True, masks=("ipv4",))),
}


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("options", TAKE_OVER_OPTIONS.values(), ids=TAKE_OVER_OPTIONS.keys())
def test_an_analysing_process_that_writes_everything_gives_the_single_output(
        workers: int, options: AnalyzeOptions, mixed_pcap: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer always behind (MAX_BACKLOG_BYTES below zero): every batch, the lane's packed ones and the
    Python analyzer's, is routed, formatted and counted by the analysing processes, and the writer only
    copies lines and merges statistics. The five outputs are the single process's, byte for byte."""
    monkeypatch.setattr(stream, "MAX_BACKLOG_BYTES", -1)  # (the children are forked: they see it)
    one, many = assert_same_as_one_process(mixed_pcap, tmp_path, options, workers)
    assert one.transactions > 50
    assert many.lane_stats["written_by_analysing_processes"] == one.transactions


@pytest.mark.parametrize("workers", [2, 3])
def test_taking_over_every_other_batch_keeps_the_order_and_the_figures(
        workers: int, mixed_pcap: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines written by the analysing process between transactions the writer formats itself (every other
    message, whatever the real backlog): each lands in its place, and the statistics of both halves add up
    to the single run's."""
    calls = [0]

    def waiting(self: stream.Backlog) -> int:
        calls[0] += 1
        return stream.MAX_BACKLOG_BYTES + 1 if calls[0] % 2 else 0

    monkeypatch.setattr(stream.Backlog, "waiting", waiting)
    one, many = assert_same_as_one_process(mixed_pcap, tmp_path, TAKE_OVER_OPTIONS["short idle, masks"], workers)
    assert 0 < many.lane_stats["written_by_analysing_processes"] < one.transactions


def test_the_writer_counts_what_it_has_written(tmp_path: Path) -> None:
    """The backlog an analysing process sees is what it sent less what the writer has written: the writer
    advances the shared counter by every message of transactions it has written (not by the lines it only
    copies, nor the end marker), so at the end of a run it holds exactly their bytes."""
    pcap, _ = busy_capture(tmp_path / "busy.pcap")
    ctx = multiprocessing.get_context("fork")
    backlog = stream.Backlog(ctx)
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=stream._child, args=(PartitionTask((str(pcap),), 0, 1), send, backlog, AnalyzeOptions()))
    proc.start()
    send.close()
    work = [0]
    real_recv = recv.recv_bytes

    def recv_bytes() -> bytes:
        raw = real_recv()
        if raw[:1] == b"P" or (raw[:1] == b"M" and raw != b"M" + marshal.dumps(None)):
            work[0] += len(raw)
        return raw

    recv.recv_bytes = recv_bytes  # type: ignore[method-assign]
    figures: list[dict[str, object]] = []
    items = list(stream._stream(recv, False, figures, backlog))
    proc.join()
    assert proc.exitcode == 0 and len(figures) == 1 and "fatal" not in figures[0]
    taken = int(figures[0].get("taken_over", 0))  # type: ignore[call-overload]
    assert len(items) == 12 * 150 and sum(type(x) is str for x in items) == taken
    assert backlog.written.value == work[0] > 0
