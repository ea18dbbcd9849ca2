"""The task one scale-out worker runs: analyse the connections of partition k of n, return mergeable parts.

``run_partition(task)`` opens every capture of the task (merged into one stream by timestamp, exactly as
the single process does), feeds them to ``Analyzer(partition=(k, n))`` and returns a ``PartitionResult``:
its counters (capture counters only from partition 0, since every worker reads every frame), its
endpoint and consumer aggregators (mergeable by concatenation), the capture span and damage seen, and its transactions
as rows keyed by ``EmissionKey``, already formatted as transactions.csv lines.

Where the rows go: with ``task.part_dir`` set (a local process pool: the parent's temporary directory),
into a part file there; without it (a cluster whose workers share no directory with the client), the
part is returned inline as zlib-compressed bytes in the result. Either way the part is a stream of
pickled batches of ``(key, line)`` in key order, read back by ``read_part``. The captures themselves must
be readable at the same paths on every worker (shared storage on a real cluster).
"""
from __future__ import annotations

import itertools
import os
import pickle
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from netrum.aggregate.consumers import ConsumerAggregator
from netrum.aggregate.endpoints import EndpointAggregator
from netrum.aggregate.routes import RouteTemplater
from netrum.capture.pcapfile import CaptureReader, open_capture, read_merged
from netrum.counters import Counters
from netrum.export.csvfiles import transaction_formatter
from netrum.export.privacy import DEFAULT_PRIVACY, Privacy
from netrum.http.consumer import ConsumerConfig
from netrum.limits import DEFAULT_LIMITS, Limits
from netrum.pipeline import Analyzer, EmissionKey
from netrum.records import Transaction
from netrum.scale.scan import Overlap, can_scan, scan_pcap

BATCH_FRAMES = 8192  # frames per hot-loop call
PART_BATCH_ROWS = 4096  # rows per pickled batch of a part
PART_PICKLE_PROTOCOL = 5

Record = tuple[EmissionKey, str]


@dataclass(frozen=True)
class PartitionTask:
    paths: tuple[str, ...]
    k: int
    n: int
    limits: Limits = DEFAULT_LIMITS
    server_ports: frozenset[int] | None = None
    server_addrs: frozenset[bytes] | None = None
    part_dir: str | None = None  # write the part file here; None: return it inline (compressed)
    consumer: ConsumerConfig | None = None  # the same salt in every worker: consumer ids merge
    privacy: Privacy = DEFAULT_PRIVACY  # rows are formatted (and masked) in the worker
    engine: str = "auto"  # "auto": the compiled lane where it applies (netrum.lane); "python"


@dataclass
class PartitionResult:
    k: int
    counters: Counters
    aggregator: EndpointAggregator
    transactions: int
    first_ts_ns: int | None
    last_ts_ns: int | None
    frames: int
    linktypes: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # damage in the inputs (partition 0 only)
    internal_error: str = ""
    interrupted: bool = False
    part_path: str | None = None
    part_bytes: bytes | None = None  # zlib-compressed part when no part_dir was given
    consumers: ConsumerAggregator = field(default_factory=ConsumerAggregator)


class _PartWriter:
    """Keyed transaction rows -> a part file of pickled batches."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._batch: list[Record] = []
        self.rows = 0

    def add(self, key: EmissionKey, line: str) -> None:
        self._batch.append((key, line))
        self.rows += 1
        if len(self._batch) >= PART_BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            pickle.dump(self._batch, self._fh, protocol=PART_PICKLE_PROTOCOL)
            self._batch = []


def read_part(path: str | None = None, data: bytes | None = None) -> Iterator[Record]:
    """The rows of one part in key order, from its file or its inline compressed bytes."""
    if data is not None:
        import io

        fh: IO[bytes] = io.BytesIO(zlib.decompress(data))
    else:
        assert path is not None
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    with fh:
        while True:
            try:
                batch: list[Record] = pickle.load(fh)
            except EOFError:
                return
            yield from batch


def run_partition(task: PartitionTask) -> PartitionResult:
    """Analyse partition k of n of the task's captures (see the module docstring). Damage in the inputs
    and Ctrl-C end the reading early, as in the single process; the result then says so.

    Several plain pcap files (rotated captures) are first tried one after another through the fast
    ``scan_pcap``: when no file holds a packet earlier than the latest one of the files before it, that is
    exactly the timestamp-merged stream. A file that does overlap makes the worker start again on the
    merged stream (``read_merged``), so the result is the same either way.
    """
    try:
        return _run_partition(task, sequential=len(task.paths) > 1)
    except Overlap:
        return _run_partition(task, sequential=False)


@dataclass
class Analysed:
    """What one worker's analysis left (``analyse``): the analyzer (finished), its counters, the damage seen
    in the inputs, and how the reading ended."""

    analyzer: Analyzer
    counters: Counters
    problems: list[str]
    internal_error: str
    interrupted: bool
    lane_stats: dict[str, object] | None  # None: the compiled lane did not run


SinkFactory = Callable[[Analyzer], Callable[[Transaction], None]]


def analyse(task: PartitionTask, sequential: bool, make_sink: SinkFactory,
            packed_sink: Callable[[bytes], None] | None = None) -> Analysed:
    """Analyse partition k of n of the task's captures, every transaction to ``make_sink(analyzer)`` (which
    reads ``analyzer.emission_key``). The compiled lane takes uncompressed pcap and pcapng files (its own
    transactions to ``packed_sink`` as bytes when given: see netrum.lane.run_lane); otherwise the fast scan
    or the merged stream. Raises
    ``Overlap`` (readers closed) when ``sequential`` files turn out to overlap in time. The capture counters
    and the damage are partition 0's alone (every worker reads every frame)."""
    counters = Counters()
    readers: list[CaptureReader] = []
    try:
        for p in task.paths:
            readers.append(open_capture(p, counters))
    except BaseException:
        for r in readers:
            r.close()
        raise
    analyzer = Analyzer(_no_sink, task.limits, task.server_ports, task.server_addrs, counters,
                        partition=(task.k, task.n), consumer=task.consumer)
    analyzer._sink = make_sink(analyzer)
    interrupted = False
    internal_error = ""
    lane_stats: dict[str, object] | None = None
    from netrum.lane import run_lane, takes

    if takes(readers, task.engine):
        outcome = run_lane(readers, analyzer, task.limits, packed_sink=packed_sink)
        if outcome.used:
            lane_stats = outcome.stats
        interrupted = outcome.interrupted
        if outcome.error:
            internal_error = f"internal error in the compiled lane (partition {task.k} of {task.n}): {outcome.error}"
    try:
        if lane_stats is not None or interrupted:  # (Ctrl-C in the lane's first pass: nothing more is read)
            pass
        elif sequential and all(can_scan([r]) for r in readers):
            for r in readers:
                scan_pcap(r, analyzer, floor_ts_ns=analyzer.last_ts_ns)
        elif can_scan(readers):
            scan_pcap(readers[0], analyzer)
        else:
            frames = read_merged(readers)
            while True:
                batch = list(itertools.islice(frames, BATCH_FRAMES))
                if not batch:
                    break
                analyzer.feed(batch)
    except KeyboardInterrupt:
        interrupted = True
    except Overlap:
        raise
    except Exception as e:  # noqa: BLE001 - as in batch.analyze_files: keep what was found, marked partial
        internal_error = (f"internal error in partition {task.k} of {task.n} after {analyzer.frames} frames: "
                          f"{type(e).__name__}: {e}")
    finally:
        for r in readers:
            r.close()
    analyzer.finish()
    problems = [msg for r in readers for msg in r.problems] if task.k == 0 else []
    if task.k != 0:  # every worker read every frame: the capture counters are partition 0's alone
        for name in [n for n in counters if n.startswith("capture_")]:
            del counters[name]
    return Analysed(analyzer, counters, problems, internal_error, interrupted, lane_stats)


def _no_sink(tx: Transaction) -> None:  # replaced by the SinkFactory's sink before anything is emitted
    raise AssertionError("no sink")


def _run_partition(task: PartitionTask, sequential: bool) -> PartitionResult:
    if task.part_dir is not None:
        fd, part_path = tempfile.mkstemp(prefix=f"part{task.k:04d}-", suffix=".pickle", dir=task.part_dir)
    else:
        fd, part_path = tempfile.mkstemp(prefix=f"netrum-part{task.k:04d}-", suffix=".pickle")
    fh = os.fdopen(fd, "wb")
    part = _PartWriter(fh)
    templater = RouteTemplater()
    aggregator = EndpointAggregator()
    consumers = ConsumerAggregator()
    line_of = transaction_formatter(task.privacy)  # the exact transactions.csv line (C when built)
    route_of = templater.route
    add = aggregator.add
    add_consumer = consumers.add

    def make_sink(analyzer: Analyzer) -> Callable[[Transaction], None]:
        def sink(tx: Transaction) -> None:
            route = route_of(tx.method, tx.uri)
            part.add(analyzer.emission_key, line_of(tx, route))
            add(tx, route)
            add_consumer(tx, route)
        return sink

    try:
        done = analyse(task, sequential, make_sink)
    except Overlap:
        fh.close()
        os.unlink(part_path)
        raise
    part.flush()
    fh.close()
    a = done.analyzer
    result = PartitionResult(task.k, done.counters, aggregator, part.rows, a.first_ts_ns, a.last_ts_ns, a.frames,
                             a.linktypes, done.problems, done.internal_error, done.interrupted)
    result.consumers = consumers
    if task.part_dir is not None:
        result.part_path = part_path
    else:
        with open(part_path, "rb") as f:
            result.part_bytes = zlib.compress(f.read(), 1)
        os.unlink(part_path)
    return result
