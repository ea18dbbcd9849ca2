"""The Analyzer: frames in, transactions out. Wires decode -> flows -> http; opens nothing itself.

    analyzer = Analyzer(sink=transactions.append)
    analyzer.feed(frames)        # any iterable of (ts_ns, linktype, data, wire_len)
    analyzer.finish()            # end of capture: flush every open connection

The same object serves a file, a live interface or a cluster worker: only the frame source differs.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from netrum.counters import Counters
from netrum.decode.frames import Decoder
from netrum.flows.table import FlowTable
from netrum.http.connection import HttpConnection
from netrum.http.parser import classify_start
from netrum.limits import DEFAULT_LIMITS, Limits
from netrum.records import ConnInfo, Frame, Transaction


class Analyzer:
    def __init__(
        self,
        sink: Callable[[Transaction], None],
        limits: Limits = DEFAULT_LIMITS,
        server_ports: frozenset[int] | None = None,
        server_addrs: frozenset[bytes] | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.counters = counters if counters is not None else Counters()
        self.limits = limits
        self._sink = sink
        self.decoder = Decoder(self.counters, limits)
        self.flows = FlowTable(self.counters, limits, self._make_handler, classify_start,
                               server_ports, server_addrs)
        self.first_ts_ns: int | None = None
        self.last_ts_ns: int | None = None
        self.linktypes: set[int] = set()

    def _make_handler(self, info: ConnInfo) -> HttpConnection:
        return HttpConnection(info, self.counters, self.limits, self._sink)

    def feed(self, frames: Iterable[Frame]) -> None:
        """Process frames in capture order. The hot loop: one decode call and one flow-table call per
        frame, nothing else."""
        decode = self.decoder.decode
        packet = self.flows.packet
        last = -1 if self.last_ts_ns is None else self.last_ts_ns
        first = self.first_ts_ns
        linktype_seen = -1
        for ts_ns, linktype, data, _wire_len in frames:
            if ts_ns > last:
                last = ts_ns
                if first is None:
                    first = ts_ns
            elif first is not None and ts_ns < first:
                first = ts_ns
            if linktype != linktype_seen:
                linktype_seen = linktype
                self.linktypes.add(linktype)
            seg = decode(ts_ns, linktype, data)
            if seg is not None:
                packet(ts_ns, *seg)
        self.first_ts_ns = first
        self.last_ts_ns = last if last >= 0 else None

    def finish(self) -> None:
        """End of capture: every connection still open is closed at the last packet's time."""
        self.flows.close_all(self.last_ts_ns or 0)

    @property
    def span_ns(self) -> int | None:
        if self.first_ts_ns is None or self.last_ts_ns is None:
            return None
        return self.last_ts_ns - self.first_ts_ns
