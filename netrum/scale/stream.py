"""`netrum analyze --workers N` on one machine with the compiled lane: N-1 processes analyse, this one writes
while they do.

The analysis of a partition (``netrum.scale.partition.analyse``: the compiled lane, or the Python
analyzer, on the connections ``FlowAssigner``'s rule gives to worker k of N-1) runs in a child process;
its transactions are streamed through a pipe to the parent (the lane's packed in C, 64 kB at a time, and
rebuilt in C on the other side; the Python analyzer's as marshal'd field tuples), which does exactly what
the single process does with them (route, transactions.csv line, endpoint and consumer statistics) while
the children go on. With one analysing child (``--workers 2``) its stream is already the single
run's order; with several, the parent merges their streams on the emission keys (the single run's order,
see netrum.pipeline). The output is the single process's, byte for byte (tests/scale).

Why not N independent partitions merged at the end (netrum.scale.runner, kept for Dask)? Once the
compiled lane analyses the clean connections, what remains per transaction is the parent's work
(formatting, aggregation), and every partition still walks the whole file: splitting the work by stage
(analysis | output) is what lets two cores do twice the work.
"""
from __future__ import annotations

import heapq
import marshal
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from netrum.batch import AnalyzeOptions, RunResult, new_sinks, write_results
from netrum.capture.pcapfile import CaptureReader, open_capture
from netrum.counters import Counters
from netrum.errors import CaptureError, UsageError
from netrum.pipeline import Analyzer
from netrum.records import Transaction
from netrum.scale.partition import PartitionTask, analyse

STREAM_BATCH = 2048  # transactions per message
_FIELDS = attrgetter(*Transaction.__slots__)  # type: ignore[attr-defined]  # a Transaction as a field tuple


PIPE_BYTES = 1 << 20  # the pipe to the writer holds this much (Linux F_SETPIPE_SZ; the default is 64 kB)
_F_SETPIPE_SZ = 1031


def _widen_pipe(conn: Connection) -> None:
    """Let the analysing process run ahead of the writer by many messages: with the default 64 kB pipe
    the two take turns (one waits while the other works), which costs most of what the second core gives."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size: the default stays
        pass


def _interrupt_once(signum: int, frame: object) -> None:
    """An analysing process's Ctrl-C (from the terminal, or passed on by the parent): the reading stops as
    in one process (the analysis ends marked interrupted); any further one is ignored, so that what was
    found and the run's figures still reach the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _child(task: PartitionTask, conn: Connection) -> None:
    """The analysing process: transactions to ``conn``, each message tagged by its first byte: ``P`` the
    lane's, packed (netrum.lane.unpack_transactions reads them), ``M`` the Python analyzer's, a marshal'd
    list of field tuples (with several children, (emission key, fields) pairs), ``M`` + None at the end;
    then the run's figures (pickled). Messages keep the order in which the transactions were emitted.
    Ctrl-C ends the analysis where it is (``_interrupt_once``); it is held off while a message is written,
    so that no message is cut."""
    signal.signal(signal.SIGINT, _interrupt_once)
    _widen_pipe(conn)
    keyed = task.n > 1
    batch: list[object] = []
    raw_send = conn.send_bytes
    hold = {signal.SIGINT}

    def send(data: bytes) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, hold)
        try:
            raw_send(data)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, hold)

    def send_batch() -> None:
        send(b"M" + marshal.dumps(batch))
        batch.clear()

    def make_sink(analyzer: Analyzer) -> Callable[[Transaction], None]:
        def sink(tx: Transaction) -> None:
            fields = _FIELDS(tx)
            batch.append((analyzer.emission_key, fields) if keyed else fields)
            if len(batch) >= STREAM_BATCH:
                send_batch()
        return sink

    def lane_packed(data: bytes) -> None:
        # The lane's transactions, packed; what the Python analyzer emitted before them goes first.
        if batch:
            send_batch()
        send(b"P" + data)

    figures: dict[str, object]
    try:
        # Several files are read as one merged stream (not file after file, which may have to start again
        # when files overlap in time: what was streamed could not be taken back).
        done = analyse(task, False, make_sink, packed_sink=lane_packed)
        a = done.analyzer
        figures = {"counters": dict(done.counters), "first": a.first_ts_ns, "last": a.last_ts_ns, "frames": a.frames,
                   "linktypes": sorted(a.linktypes), "problems": done.problems, "error": done.internal_error,
                   "interrupted": done.interrupted, "lane": done.lane_stats}
    except KeyboardInterrupt:  # outside the reading (which ends interrupted): between steps of the analysis
        figures = {"fatal": "interrupted before it could report its figures", "interrupted": True}
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which writes what it has
        figures = {"fatal": f"{type(e).__name__}: {e}"}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # from here on, only what was found is sent
    if batch:
        send_batch()
    send(b"M" + marshal.dumps(None))
    conn.send(figures)
    conn.close()


def _stream(conn: Connection, keyed: bool, figures: list[dict[str, object]]) -> Iterator[Any]:
    """One child's transactions (with keys when ``keyed``), as Transaction objects message by message; its
    figures are appended to ``figures`` at the end."""
    from netrum.lane import unpack_transactions

    while True:
        try:
            raw = conn.recv_bytes()
        except EOFError:
            figures.append({"fatal": "an analysing process ended without its results"})
            return
        if raw[:1] == b"P":
            yield from unpack_transactions(raw, 1, keyed)
            continue
        msg = marshal.loads(raw[1:])
        if msg is None:
            break
        if keyed:
            for key, fields in msg:
                yield key, Transaction(*fields)
        else:
            for fields in msg:
                yield Transaction(*fields)
    try:
        figures.append(conn.recv())
    except EOFError:
        figures.append({"fatal": "an analysing process ended without its results"})


def lane_applies(paths: Sequence[str], options: AnalyzeOptions, workers: int) -> bool:
    """The compiled lane would take this run (netrum.lane.takes, on readers opened just to look): then one
    process writing while the others analyse pays (``analyze_streamed``); without the lane the analysis
    dominates and N partitions merged at the end do better (netrum.scale.runner). --port/--server with
    several analysing processes (``workers`` > 2) is the lane's to refuse (netrum.lane.run_lane)."""
    from netrum.lane import takes

    filtered = options.server_ports is not None or options.server_addrs is not None
    if "-" in paths or (filtered and workers > 2):
        return False
    readers: list[CaptureReader] = []
    try:
        for p in paths:
            readers.append(open_capture(p, Counters()))
        return takes(readers, options.engine)
    except CaptureError:
        return False
    finally:
        for r in readers:
            r.close()


def analyze_streamed(paths: Sequence[str], out_dir: Path, options: AnalyzeOptions, workers: int,
                     progress: Callable[[int], None] | None = None,
                     read_paths: Sequence[str] | None = None) -> RunResult:
    """``analyze_files`` with ``workers`` - 1 analysing processes and this one writing (module docstring).
    ``read_paths``: where the inputs are read from when not ``paths`` (decompressed spools of gzip inputs,
    netrum.capture.spool); problems name the inputs as given."""
    read_paths = list(paths if read_paths is None else read_paths)
    renamed = {r: p for r, p in zip(read_paths, paths) if r != p}
    for p in paths:  # fail before writing anything, as the single process does
        if p == "-":
            raise UsageError("standard input cannot be read by several workers; give a file")
        open_capture(p, Counters()).close()
    n = max(1, workers - 1)
    ctx: Any = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    out_dir.mkdir(parents=True, exist_ok=True)
    children = []
    conns: list[Connection] = []
    for k in range(n):
        task = PartitionTask(tuple(read_paths), k, n, options.limits, options.server_ports, options.server_addrs, None,
                             options.consumer, options.privacy, options.engine)
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(task, send), daemon=True)
        proc.start()
        send.close()
        children.append(proc)
        conns.append(recv)
    sinks = new_sinks(out_dir, options)
    sink = sinks.sink
    figures: list[dict[str, object]] = []
    interrupted = False
    problems: list[str] = []
    asked_to_stop = [False]

    def on_ctrl_c(signum: int, frame: object) -> None:
        # The first Ctrl-C stops the analysing processes (the terminal's reaches them too; this one is for a
        # signal sent to this process alone); what they found and their figures are still written. A second
        # one stops the writing at once.
        if asked_to_stop[0]:
            raise KeyboardInterrupt
        asked_to_stop[0] = True
        for proc in children:
            if proc.pid is not None:
                try:
                    os.kill(proc.pid, signal.SIGINT)
                except OSError:
                    pass

    try:
        previous: Any = signal.signal(signal.SIGINT, on_ctrl_c)
    except ValueError:  # not the main thread: Ctrl-C is not ours to handle
        previous = None
    try:
        if n == 1:
            for tx in _stream(conns[0], False, figures):
                sink(tx)
        else:
            streams = [_stream(c, True, figures) for c in conns]
            for _key, tx in heapq.merge(*streams, key=itemgetter(0)):
                sink(tx)
    except KeyboardInterrupt:
        interrupted = True
        for proc in children:
            proc.terminate()
    except Exception as e:  # noqa: BLE001 - keep what was written, marked partial
        problems.append(f"internal error while writing: {type(e).__name__}: {e}")
        for proc in children:
            proc.terminate()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        for c in conns:
            c.close()
        for proc in children:
            proc.join()
    interrupted = interrupted or asked_to_stop[0]
    sinks.writer.close()
    counters = Counters()
    linktypes: set[int] = set()
    first: int | None = None
    last: int | None = None
    lane_used = bool(figures)
    for i, f in enumerate(figures):
        if "fatal" in f:
            if f.get("interrupted"):
                interrupted = True
                problems.append(f"an analysing process was {f['fatal']}")
            else:
                problems.append(f"internal error in an analysing process: {f['fatal']}")
            lane_used = False
            continue
        counters.merge(f["counters"])  # type: ignore[arg-type]
        linktypes.update(f["linktypes"])  # type: ignore[arg-type]
        for msg in f["problems"]:  # type: ignore[attr-defined]
            for r, p in renamed.items():
                msg = msg.replace(r, p)
            problems.append(msg)
        if f["error"]:
            problems.append(str(f["error"]))
        interrupted = interrupted or bool(f["interrupted"])
        lane_used = lane_used and f["lane"] is not None
        if i == 0 or first is None:
            first, last = f["first"], f["last"]  # type: ignore[assignment]
    if len(figures) < n and not interrupted:
        problems.append(f"{n - len(figures)} analysing process(es) returned nothing")
    if progress is not None:
        progress(sum(os.path.getsize(p) for p in paths))
    result = write_results(out_dir, paths, counters, sinks.aggregator, sinks.writer.rows, first, last, problems,
                           interrupted, linktypes, options, sinks.consumers)
    result.engine = "lane" if lane_used else "python"
    return result
