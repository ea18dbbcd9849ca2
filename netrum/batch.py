"""Offline analysis of capture files into an output directory: the engine behind `netrum analyze`.

Sources and sinks live here, at the edge: capture readers feed the sans-IO Analyzer; every transaction
goes to the transactions.csv writer and the endpoint aggregator as soon as it is complete, so memory
holds only open connections and per-endpoint latency arrays, never the transaction list.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from netrum.aggregate.consumers import CONSUMER_COLUMNS, ConsumerAggregator
from netrum.aggregate.endpoints import ENDPOINT_COLUMNS, EndpointAggregator, EndpointStats
from netrum.aggregate.routes import (
    COVERAGE_COLUMNS,
    ROUTES_COLUMNS,
    DeclaredRoutes,
    RouteResolution,
    RouteTemplater,
    resolve_routes,
)
from netrum.capture.pcapfile import CaptureReader, open_capture, read_merged
from netrum.counters import Counters
from netrum.errors import CaptureError
from netrum.export.csvfiles import TransactionWriter, fmt_ts, rewrite_routes, write_endpoints, write_health
from netrum.export.privacy import DEFAULT_PRIVACY, Privacy
from netrum.http.consumer import ConsumerConfig
from netrum.limits import DEFAULT_LIMITS, Limits
from netrum.pipeline import Analyzer
from netrum.records import Frame, Transaction

if TYPE_CHECKING:
    from netrum.capture.spool import Spool

BATCH_FRAMES = 8192  # frames per hot-loop call; the progress bar is updated between batches


@dataclass
class RunResult:
    out_dir: Path
    counters: Counters
    endpoint_rows: list[dict[str, object]]
    aggregator: EndpointAggregator
    transactions: int
    span_ns: int | None
    first_ts_ns: int | None
    last_ts_ns: int | None
    problems: list[str] = field(default_factory=list)  # damage found in the inputs (partial results)
    interrupted: bool = False
    linktypes: set[int] = field(default_factory=set)
    routes: RouteResolution | None = None
    consumers: ConsumerAggregator = field(default_factory=ConsumerAggregator)
    consumer_rows: list[dict[str, object]] = field(default_factory=list)
    engine: str = "python"  # "lane": clean connections were analysed by the compiled lane (netrum.lane)
    lane_stats: dict[str, object] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.problems) or self.interrupted


@dataclass(frozen=True)
class AnalyzeOptions:
    limits: Limits = DEFAULT_LIMITS
    server_ports: frozenset[int] | None = None
    server_addrs: frozenset[bytes] | None = None
    # routes (netrum.aggregate.routes): declared routes first, then learned ones, at most route_budget per host
    declared_routes: DeclaredRoutes | None = None
    learn_routes: bool = True
    route_budget: int | None = 500
    consumer: ConsumerConfig | None = None  # identity header, trusted proxies, redacted headers
    privacy: Privacy = DEFAULT_PRIVACY  # query values and the user's patterns masked in every output
    # "auto": the compiled lane (netrum.lane) where it applies, else Python; "python": the pure-Python
    # reference only. The output is the same either way.
    engine: str = "auto"


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    while True:
        batch = list(itertools.islice(frames, size))
        if not batch:
            return
        yield batch


def _spool_for_lane(readers: list[CaptureReader], options: AnalyzeOptions) -> Spool | None:
    """gzip inputs decompressed into temporary files the lane can map (netrum.capture.spool); None when no
    input needs it or the lane is off. The Spool's ``reason`` says why nothing was spooled (standard input,
    damaged gzip data, no room)."""
    from netrum.lane import available

    if options.engine != "auto" or not available() or not any(r.format.endswith("+gzip") for r in readers):
        return None
    from netrum.capture.spool import spool_inputs

    return spool_inputs(readers)


def _spool_for_workers(paths: Sequence[str], options: AnalyzeOptions) -> Spool | None:
    """``_spool_for_lane`` before the workers start, so that ``--workers`` on compressed captures gets the
    lane as one process does; None when nothing is spooled."""
    readers: list[CaptureReader] = []
    try:
        for p in paths:
            readers.append(open_capture(p, Counters()))
        spool = _spool_for_lane(readers, options)
        if spool is not None and spool.reason:
            spool.close()
            return None
        return spool
    except CaptureError:
        return None
    finally:
        for r in readers:
            r.close()


def _scaled_progress(progress: Callable[[int], None], inputs: list[CaptureReader],
                     mapped: list[CaptureReader]) -> Callable[[int], None]:
    """The lane's progress (bytes of the files it maps: decompressed spools) in bytes of the inputs (what the
    progress bar's length counts)."""
    factor = sum(r.size_bytes or 0 for r in inputs) / max(1, sum(r.size_bytes or 0 for r in mapped))
    scaled = 0.0
    reported = 0

    def report(n: int) -> None:
        nonlocal scaled, reported
        scaled += n * factor
        step = int(scaled) - reported
        if step > 0:
            reported += step
            progress(step)

    return report


def analyze_files(
    paths: Sequence[str],
    out_dir: Path,
    options: AnalyzeOptions = AnalyzeOptions(),
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
) -> RunResult:
    """Read every capture (merged in time order), write the three CSV files, return the figures.

    A directory stands for the captures inside it (``netrum.scale.inputs``). ``workers`` > 1 partitions the
    analysis by flow: where the compiled lane applies, ``workers`` - 1 processes analyse while this one
    writes (``netrum.scale.stream``); otherwise, and with a Dask ``scheduler`` address ("local" for a local
    cluster), ``workers`` partitions are merged at the end (``netrum.scale.runner``). The output is
    identical to the single process's either way.

    Raises CaptureError before writing anything when an input cannot be opened at all. Damage found
    while reading (a file cut mid-record, a corrupt record) and Ctrl-C end the reading early: whatever
    was found so far is still written, and the result says it is partial.
    """
    from netrum.scale.inputs import expand_captures

    paths = expand_captures(paths)
    if workers > 1 or scheduler:
        from netrum.scale.runner import analyze_partitioned
        from netrum.scale.stream import analyze_streamed, lane_applies

        if not scheduler:
            try:
                spooled = _spool_for_workers(paths, options)
            except KeyboardInterrupt:  # Ctrl-C while decompressing: an interrupted run, nothing found yet
                out_dir.mkdir(parents=True, exist_ok=True)
                sinks = new_sinks(out_dir, options)
                sinks.writer.close()
                return write_results(out_dir, paths, Counters(), sinks.aggregator, 0, None, None, [], True, set(),
                                     options, sinks.consumers)
            try:
                read_paths = paths if spooled is None else [r.path for r in spooled.readers]
                if lane_applies(read_paths, options, workers):
                    return analyze_streamed(paths, out_dir, options, workers, progress, read_paths)
            finally:
                if spooled is not None:
                    spooled.close()
        return analyze_partitioned(paths, out_dir, options, workers, scheduler, progress)
    counters = Counters()
    readers: list[CaptureReader] = []
    try:
        for p in paths:
            readers.append(open_capture(p, counters))
    except CaptureError:
        for r in readers:
            r.close()
        raise
    out_dir.mkdir(parents=True, exist_ok=True)
    sinks = new_sinks(out_dir, options)
    sink, writer, aggregator, consumers = sinks.sink, sinks.writer, sinks.aggregator, sinks.consumers
    interrupted = False
    internal_error = ""
    engine = "python"
    lane_stats: dict[str, object] = {}
    analyzer: Analyzer | None = None
    from netrum.lane import LaneOutcome, run_lane, takes

    spool: Spool | None = None
    lane_readers = readers
    lane_progress = progress
    interrupted_early = False
    try:
        try:
            spool = _spool_for_lane(readers, options)
        except KeyboardInterrupt:  # Ctrl-C while decompressing: an interrupted run, nothing found yet
            interrupted_early = True
            lane_stats["spool"] = "interrupted while decompressing"
        if spool is not None:
            lane_readers = spool.readers
            lane_stats["spool"] = spool.reason or f"{len(spool.own)} gzip input(s) decompressed for the lane"
            if progress is not None and spool.own:
                lane_progress = _scaled_progress(progress, readers, lane_readers)
        if interrupted_early:
            analyzer = Analyzer(sink, options.limits, counters=counters, partition=(0, 1))
            outcome = LaneOutcome(False, "interrupted while decompressing", interrupted=True)
        elif takes(lane_readers, options.engine):
            analyzer = Analyzer(sink, options.limits, options.server_ports, options.server_addrs, counters,
                                partition=(0, 1), consumer=options.consumer)
            outcome = run_lane(lane_readers, analyzer, options.limits, lane_progress, report_to=readers)
            lane_stats = {**lane_stats, **outcome.stats, "reason": outcome.reason}
        else:
            outcome = None
    except BaseException:
        for r in readers:
            r.close()
        raise
    finally:
        if spool is not None:
            spool.close()
    if outcome is not None:
        if outcome.used or outcome.interrupted:  # (Ctrl-C in the first pass: an interrupted run, nothing found)
            engine = "lane"
            interrupted = outcome.interrupted
            if outcome.error:
                internal_error = f"internal error in the compiled lane: {outcome.error}"
            for r in readers:
                r.close()
        else:
            analyzer = None
    if analyzer is None:
        analyzer = Analyzer(sink, options.limits, options.server_ports, options.server_addrs, counters,
                            consumer=options.consumer)
    try:
        frames = read_merged(readers) if engine == "python" else iter(())
        done_bytes = 0
        for batch in _batches(frames, BATCH_FRAMES):
            analyzer.feed(batch)
            if progress is not None:
                now = sum(r.bytes_read for r in readers)
                progress(now - done_bytes)
                done_bytes = now
    except KeyboardInterrupt:
        interrupted = True
    except Exception as e:  # noqa: BLE001 - a bug must not cost the results already found: write them, marked partial
        internal_error = f"internal error after {counters['capture_packets']} frames: {type(e).__name__}: {e}"
    finally:
        for r in readers:
            r.close()
    analyzer.finish()
    writer.close()
    problems = [msg for r in readers for msg in r.problems]
    if internal_error:
        problems.append(internal_error)
    result = write_results(out_dir, paths, counters, aggregator, writer.rows, analyzer.first_ts_ns,
                           analyzer.last_ts_ns, problems, interrupted, analyzer.linktypes, options, consumers)
    result.engine = engine
    result.lane_stats = lane_stats
    return result


@dataclass
class Sinks:
    """Where every transaction goes (``sink``): its route, its transactions.csv line, the endpoint and
    consumer statistics."""

    writer: TransactionWriter
    aggregator: EndpointAggregator
    consumers: ConsumerAggregator
    sink: Callable[[Transaction], None]


def new_sinks(out_dir: Path, options: AnalyzeOptions) -> Sinks:
    templater = RouteTemplater()
    aggregator = EndpointAggregator()
    consumers = ConsumerAggregator()
    writer = TransactionWriter(out_dir / "transactions.csv", options.privacy)
    route_of = templater.route
    write = writer.write
    add = aggregator.add
    add_consumer = consumers.add

    def sink(tx: Transaction) -> None:
        route = route_of(tx.method, tx.uri)
        write(tx, route)
        add(tx, route)
        add_consumer(tx, route)

    return Sinks(writer, aggregator, consumers, sink)


def write_results(out_dir: Path, paths: Sequence[str], counters: Counters, aggregator: EndpointAggregator,
                  transactions: int, first_ts_ns: int | None, last_ts_ns: int | None, problems: list[str],
                  interrupted: bool, linktypes: set[int], options: AnalyzeOptions = AnalyzeOptions(),
                  consumers: ConsumerAggregator | None = None) -> RunResult:
    """endpoints.csv and health.csv once transactions.csv is written (by one process or merged from many).

    First the routes are resolved (``apply_routes``): the endpoints become declared or learned routes and
    transactions.csv is rewritten to match."""
    span_ns = None if first_ts_ns is None or last_ts_ns is None else last_ts_ns - first_ts_ns
    resolution = apply_routes(out_dir, aggregator, options)
    rows = aggregator.rows(span_ns)
    ops = {(k[0], k[1], route): op for k, (route, op) in resolution.mapping.items()}
    for r in rows:
        r["operation_id"] = ops.get((str(r["host"]), str(r["method"]), str(r["route"])), "")
    columns = list(ENDPOINT_COLUMNS)
    columns.insert(columns.index("route") + 1, "operation_id")
    write_endpoints(out_dir / "endpoints.csv", rows, tuple(columns), options.privacy)
    if consumers is None:
        consumers = ConsumerAggregator()
    if not resolution.identity:
        consumers.remap({k: (k[0], k[1], route) for k, (route, _op) in resolution.mapping.items()})
    consumer_rows = consumers.rows(options.privacy)
    write_endpoints(out_dir / "consumers.csv", consumer_rows, CONSUMER_COLUMNS, options.privacy)
    counters["http_transactions"] = transactions
    facts: dict[str, object] = {
        "partial": int(bool(problems) or interrupted),
        "interrupted": int(interrupted),
        "inputs": " ".join(paths),
        "first_packet": fmt_ts(first_ts_ns),
        "last_packet": fmt_ts(last_ts_ns),
        "transactions": transactions,
        "endpoints": len(rows),
    }
    for i, msg in enumerate(problems, 1):
        facts[f"problem_{i}"] = msg
    write_health(out_dir / "health.csv", counters, facts, options.privacy)
    return RunResult(out_dir, counters, rows, aggregator, transactions, span_ns, first_ts_ns, last_ts_ns,
                     problems, interrupted, linktypes, resolution, consumers, consumer_rows)


def apply_routes(out_dir: Path, aggregator: EndpointAggregator, options: AnalyzeOptions) -> RouteResolution:
    """Resolve the rule-based routes the run keyed by into declared/learned routes (in the parent, after
    any merge of workers, so the result does not depend on --workers): merge the endpoint statistics
    exactly into them, rewrite transactions.csv's route and operation_id columns (one streaming pass),
    write routes.csv (what was merged into what) and, with declared routes, api_coverage.csv."""
    counts = {key: st.requests for key, st in aggregator.stats.items()}
    res = resolve_routes(counts, options.declared_routes, options.route_budget, options.learn_routes)
    if not res.identity:
        merged: dict[tuple[str, str, str], EndpointStats] = {}
        for key, st in aggregator.stats.items():
            route = res.mapping[key][0]
            if route == key[2]:
                new_key = key
            else:
                new_key = (key[0], key[1], route)
            mine = merged.get(new_key)
            if mine is None:
                merged[new_key] = mine = EndpointStats(*new_key)
            mine.merge(st)
        aggregator.stats = merged
        tx_path = out_dir / "transactions.csv"
        if tx_path.exists():
            rewrite_routes(tx_path, res.mapping, options.privacy)
    write_endpoints(out_dir / "routes.csv", res.report, ROUTES_COLUMNS, options.privacy)
    if options.declared_routes is not None:
        write_endpoints(out_dir / "api_coverage.csv", res.coverage, COVERAGE_COLUMNS, options.privacy)
    return res
