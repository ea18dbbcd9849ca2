"""The live loop: a capture source's frame batches -> the sans-IO Analyzer -> the live sinks.

Runs on the calling (main) thread, so that signal handlers (which Python runs on the main thread) only
set flags that the loop sees within ``POLL_S``. Per transaction (on this thread): its rule-based route,
the rolling windows, the current interval's table, the Prometheus metrics, the transaction log buffer.

Time: packet time drives the windows and the intervals (an interval closes when a transaction or packet
at or past its end is seen). The wall clock is used only for the refresh timer (dashboard, metrics
snapshot) and, for a live interface whose packet time is the host's clock, to close intervals while
the wire is silent.
"""
from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from netrum.aggregate.routes import RouteTemplater
from netrum.capture.live import LiveSource, ReplaySource
from netrum.counters import Counters
from netrum.export.csvfiles import TRANSACTION_COLUMNS, transaction_row, write_health
from netrum.limits import DEFAULT_LIMITS, Limits
from netrum.live.dashboard import render_dashboard
from netrum.live.metrics import DEFAULT_ROUTE_BUDGET, MetricsExporter
from netrum.live.rolling import DEFAULT_ROTATE_BYTES, ROLLING_COLUMNS, RollingCsvFile, rolling_rows
from netrum.live.windows import (
    DEFAULT_WINDOWS_S,
    RollingWindows,
    Table,
    add_to,
    completion_ts,
    endpoint_key,
    table_rows,
)
from netrum.pipeline import Analyzer
from netrum.records import Transaction

POLL_S = 0.1  # the loop wakes at least this often (stop flags, refresh timer)
DRAIN_S = 3.0  # after a stop, queued frames are still analysed for at most this long


@dataclass
class LiveOptions:
    out_dir: Path | None = None  # rolling CSV files go here (None: no files)
    interval_s: float = 10.0
    windows_s: tuple[float, ...] = DEFAULT_WINDOWS_S
    transactions: bool = False  # also write transactions-live.csv
    rotate_bytes: int | None = DEFAULT_ROTATE_BYTES
    rotate_s: float | None = None
    route_budget: int = DEFAULT_ROUTE_BUDGET
    metrics: MetricsExporter | None = None
    limits: Limits = DEFAULT_LIMITS
    server_ports: frozenset[int] | None = None
    server_addrs: frozenset[bytes] | None = None
    dashboard: bool = False
    refresh_s: float = 1.0
    top: int = 10
    out: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class LiveResult:
    counters: Counters
    transactions: int
    intervals: int
    problems: list[str]


class LiveRunner:
    def __init__(self, source: LiveSource, options: LiveOptions) -> None:
        self.source = source
        self.o = options
        self.counters = Counters()
        self.analyzer = Analyzer(self._sink, options.limits, options.server_ports, options.server_addrs,
                                 self.counters)
        self.route_of = RouteTemplater().route
        self.windows = RollingWindows(options.windows_s)
        self.interval_ns = int(options.interval_s * 1e9)
        self.interval_start: int | None = None
        self.interval: Table = {}
        self.intervals = 0
        self.transactions = 0
        self.tx_rows: list[list[str]] = []
        self.metrics = options.metrics
        self._stop = False
        self._reopen = False
        self.rolling: RollingCsvFile | None = None
        self.txlog: RollingCsvFile | None = None
        if options.out_dir is not None:
            options.out_dir.mkdir(parents=True, exist_ok=True)
            self.rolling = RollingCsvFile(options.out_dir / "endpoints-rolling.csv", ROLLING_COLUMNS,
                                          options.rotate_bytes, options.rotate_s)
            if options.transactions:
                self.txlog = RollingCsvFile(options.out_dir / "transactions-live.csv", TRANSACTION_COLUMNS,
                                            options.rotate_bytes, options.rotate_s)
        self._last_packets = 0
        self._last_refresh = time.monotonic()
        self.pps = 0.0

    # -- signals (set flags only: called from signal handlers) ---------------------------------------

    def request_stop(self, *_args: object) -> None:
        self._stop = True

    def request_reopen(self, *_args: object) -> None:
        self._reopen = True

    # -- transactions --------------------------------------------------------------------------------

    def _sink(self, tx: Transaction) -> None:
        route = self.route_of(tx.method, tx.uri)
        ts = completion_ts(tx)
        if ts is not None:
            if self.interval_start is None:
                self.interval_start = ts - ts % self.interval_ns
            elif ts >= self.interval_start + self.interval_ns:
                self._close_intervals(ts)
        self.transactions += 1
        self.windows.add(tx, route)
        key = endpoint_key(tx, route)
        if key is not None:
            add_to(self.interval, key, tx)
        if self.metrics is not None:
            self.metrics.observe(tx, route)
        if self.txlog is not None:
            self.tx_rows.append(transaction_row(tx, route))

    def _close_intervals(self, now_ns: int) -> None:
        """Write the current interval when packet time ``now_ns`` is at or past its end (the empty
        intervals in between write no rows), and start the one holding now_ns."""
        start = self.interval_start
        if start is None or now_ns < start + self.interval_ns:
            return
        self._write_interval(start, start + self.interval_ns)
        self.interval_start = now_ns - now_ns % self.interval_ns

    def _write_interval(self, start_ns: int, end_ns: int) -> None:
        table, self.interval = self.interval, {}
        rows, self.tx_rows = self.tx_rows, []
        self.intervals += 1
        if self._reopen:
            self._reopen = False
            for f in (self.rolling, self.txlog):
                if f is not None:
                    f.reopen()
        if self.rolling is not None and table:
            span_s = max(end_ns - start_ns, 1) / 1e9
            self.rolling.append(rolling_rows(start_ns, end_ns, table_rows(table, span_s, overall=True)), end_ns)
        if self.txlog is not None and rows:
            self.txlog.append(rows, end_ns)
        if self.o.out_dir is not None:
            self._sync_drops()
            write_health(self.o.out_dir / "health-live.csv", self.counters,
                         {"interval_start": f"{start_ns / 1e9:.6f}", "interval_end": f"{end_ns / 1e9:.6f}",
                          "transactions": self.transactions})

    # -- the loop --------------------------------------------------------------------------------------

    def _sync_drops(self) -> None:
        c = self.counters
        c["capture_queue_drops"] = self.source.queue_drops
        c["capture_kernel_drops"] = self.source.kernel_drops

    def _refresh(self) -> None:
        now = time.monotonic()
        dt = now - self._last_refresh
        packets = self.counters["capture_packets"]
        if dt > 0:
            self.pps = (packets - self._last_packets) / dt
        self._last_packets = packets
        self._last_refresh = now
        self._sync_drops()
        if self.source.clock_follows_wall:  # a live interface: packet time is this host's clock
            wall = time.time_ns()
            self.windows.advance(wall)
            self._close_intervals(wall)
        if self.metrics is not None:
            self.metrics.publish(self.counters, len(self.analyzer.flows), self.source.queue.qsize())
        if self.o.dashboard:
            self.o.out.write(render_dashboard(self))
            self.o.out.flush()

    def _feed(self, batch: list[tuple[int, int, bytes, int]]) -> None:
        c = self.counters
        c["capture_packets"] += len(batch)
        c["capture_bytes"] += sum(f[3] for f in batch)
        self.analyzer.feed(batch)
        last = self.analyzer.last_ts_ns
        if last is not None:
            self.windows.advance(last)
            if self.interval_start is None:
                self.interval_start = last - last % self.interval_ns
            else:
                self._close_intervals(last)

    def run(self, on_start: Callable[[], None] | None = None) -> LiveResult:
        """Capture until the source ends or ``request_stop``; then drain, finish, flush a final
        interval."""
        src = self.source
        q = src.queue
        src.start()
        if on_start is not None:
            on_start()
        next_refresh = time.monotonic() + self.o.refresh_s
        try:
            while not self._stop:
                try:
                    batch = q.get(timeout=POLL_S)
                except queue.Empty:
                    if src.done.is_set() and q.empty():
                        break
                    batch = None
                if batch:
                    self._feed(batch)
                if time.monotonic() >= next_refresh:
                    self._refresh()
                    next_refresh = time.monotonic() + self.o.refresh_s
        finally:
            src.stop()
            src.join()
            # What was captured before the stop is analysed, for at most DRAIN_S of wall time (a stop must
            # be prompt even when the analysis was behind); what is left is counted as queue drops.
            drain_until = time.monotonic() + DRAIN_S
            while True:
                try:
                    batch = q.get_nowait()
                except queue.Empty:
                    break
                if time.monotonic() < drain_until:
                    self._feed(batch)
                else:
                    src.queue_drops += len(batch)
            src.close()
            self.analyzer.finish()
            if isinstance(src, ReplaySource):
                extra = src.reader_counters
                for k, v in extra.items():
                    if k not in ("capture_packets", "capture_bytes"):
                        self.counters[k] += v
            self._final_interval()
            self._sync_drops()
            if self.metrics is not None:
                self.metrics.publish(self.counters, len(self.analyzer.flows), 0)
        problems = list(src.problems)
        if isinstance(src, ReplaySource):
            problems += src.problems_found
        return LiveResult(self.counters, self.transactions, self.intervals, problems)

    def _final_interval(self) -> None:
        start = self.interval_start
        if start is None:
            return
        last = self.analyzer.last_ts_ns or start
        end = max(last, start + 1)
        self._write_interval(start, min(end, start + self.interval_ns) if end > start else end)


def drop_privileges(user: str) -> None:
    """Become ``user`` (its primary group, no supplementary groups) after opening the capture."""
    import pwd

    pw = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
