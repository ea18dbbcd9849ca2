"""Rolling windows on packet time: per endpoint and overall, over the last 10 s / 1 min / 5 min.

Time is cut into slots of ``slot_s`` seconds of packet time (1 s by default). Each slot holds, per
endpoint (host, method, route) and overall (``OVERALL``), the counts and two latency sketches
(``LogSketch``, relative accuracy 1%). A window of W seconds is the merge of the last W / slot_s slots up to
the newest packet time seen: merges are exact (bucket counts add), so a 5-minute p99 is as accurate as a
10-second one. Slots older than the longest window are dropped, so memory is bounded by
slots x endpoints x sketch buckets (and endpoints by the route budget upstream).

A transaction is placed by its completion time (the last byte of the response, else the last request
packet); one completing in a slot already dropped (flushed late, e.g. at idle expiry) is counted in
``late`` and left out of the windows.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from netrum.aggregate.endpoints import count_outcome, merge_outcome
from netrum.live.sketch import DEFAULT_ALPHA, LogSketch
from netrum.records import Transaction

EndpointKey = tuple[str, str, str]  # (host, method, route)
OVERALL: EndpointKey = ("*", "*", "*")
DEFAULT_WINDOWS_S: tuple[float, ...] = (10.0, 60.0, 300.0)

WINDOW_COLUMNS = (
    "host", "method", "route", "requests", "responses", "errors_4xx", "errors_5xx", "error_rate",
    "no_response", "rps", "ttfb_p50_ms", "ttfb_p95_ms", "ttfb_p99_ms", "duration_p50_ms",
    "duration_p90_ms", "duration_p95_ms", "duration_p99_ms", "duration_max_ms", "request_bytes",
    "response_bytes", "flagged",
)


def completion_ts(tx: Transaction) -> int | None:
    """When the exchange completed (packet time): last response byte, else the request's last packet."""
    for ts in (tx.response_end_ts_ns, tx.response_ts_ns, tx.request_end_ts_ns, tx.request_ts_ns):
        if ts is not None:
            return ts
    return None


def endpoint_key(tx: Transaction, route: str) -> EndpointKey | None:
    """The endpoint of a transaction (as in endpoints.csv), None for a response without its request."""
    if tx.method is None:
        return None
    return (tx.host or f"{tx.server_ip}:{tx.server_port}", tx.method, route)


@dataclass(slots=True)
class WindowStats:
    """Counts and latency sketches (milliseconds) of one endpoint over one slot, interval or window."""

    alpha: float = DEFAULT_ALPHA
    requests: int = 0
    responses: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    no_response: int = 0
    flagged: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    ttfb_ms: LogSketch = field(init=False)
    duration_ms: LogSketch = field(init=False)

    def __post_init__(self) -> None:
        self.ttfb_ms = LogSketch(self.alpha)
        self.duration_ms = LogSketch(self.alpha)

    def add(self, tx: Transaction) -> None:
        count_outcome(self, tx)
        ttfb = tx.ttfb_ns
        if ttfb is not None:
            self.ttfb_ms.add(ttfb / 1e6)
        dur = tx.duration_ns
        if dur is not None:
            self.duration_ms.add(dur / 1e6)

    def merge(self, other: WindowStats) -> None:
        merge_outcome(self, other)
        self.ttfb_ms.merge(other.ttfb_ms)
        self.duration_ms.merge(other.duration_ms)

    @property
    def errors(self) -> int:
        return self.errors_4xx + self.errors_5xx

    def row(self, key: EndpointKey, span_s: float) -> dict[str, object]:
        """A row with the columns of ``WINDOW_COLUMNS``; ``rps`` is requests over ``span_s``."""
        t, d = self.ttfb_ms, self.duration_ms
        return {
            "host": key[0], "method": key[1], "route": key[2],
            "requests": self.requests, "responses": self.responses,
            "errors_4xx": self.errors_4xx, "errors_5xx": self.errors_5xx,
            "error_rate": self.errors / self.responses if self.responses else None,
            "no_response": self.no_response,
            "rps": self.requests / span_s if span_s > 0 else None,
            "ttfb_p50_ms": t.quantile(0.50), "ttfb_p95_ms": t.quantile(0.95), "ttfb_p99_ms": t.quantile(0.99),
            "duration_p50_ms": d.quantile(0.50), "duration_p90_ms": d.quantile(0.90),
            "duration_p95_ms": d.quantile(0.95), "duration_p99_ms": d.quantile(0.99),
            "duration_max_ms": d.max if d.count else None,
            "request_bytes": self.request_bytes, "response_bytes": self.response_bytes,
            "flagged": self.flagged,
        }


Table = dict[EndpointKey, WindowStats]


def add_to(table: Table, key: EndpointKey, tx: Transaction, alpha: float = DEFAULT_ALPHA) -> None:
    """Count tx under its endpoint and under OVERALL."""
    for k in (key, OVERALL):
        st = table.get(k)
        if st is None:
            st = table[k] = WindowStats(alpha)
        st.add(tx)


def table_rows(table: Table, span_s: float, overall: bool = False) -> list[dict[str, object]]:
    """Rows of a table, busiest first (the OVERALL row only when asked, first)."""
    keys = sorted((k for k in table if k != OVERALL), key=lambda k: (-table[k].requests, k))
    if overall and OVERALL in table:
        keys.insert(0, OVERALL)
    return [table[k].row(k, span_s) for k in keys]


class RollingWindows:
    """Slots of packet time, merged on demand into windows of the last N seconds."""

    def __init__(self, windows_s: Sequence[float] = DEFAULT_WINDOWS_S, slot_s: float = 1.0,
                 alpha: float = DEFAULT_ALPHA) -> None:
        if slot_s <= 0 or not windows_s or min(windows_s) < slot_s:
            raise ValueError("windows must be at least one slot long")
        self.windows_s = tuple(sorted(windows_s))
        self.slot_ns = int(slot_s * 1e9)
        self.alpha = alpha
        self.keep = max(1, -(-int(max(windows_s) * 1e9) // self.slot_ns))  # slots in the longest window
        self.slots: deque[tuple[int, Table]] = deque()  # (slot index, table), oldest first
        self.now_ns: int | None = None  # newest packet time seen
        self.first_ns: int | None = None
        self.late = 0

    def advance(self, ts_ns: int) -> None:
        """Move packet time forward (never back); drop slots that left the longest window."""
        if self.now_ns is not None and ts_ns <= self.now_ns:
            return
        self.now_ns = ts_ns
        if self.first_ns is None:
            self.first_ns = ts_ns
        oldest = ts_ns // self.slot_ns - self.keep + 1
        slots = self.slots
        while slots and slots[0][0] < oldest:
            slots.popleft()

    def add(self, tx: Transaction, route: str) -> None:
        key = endpoint_key(tx, route)
        ts = completion_ts(tx)
        if key is None or ts is None:
            return
        self.advance(ts)
        idx = ts // self.slot_ns
        now_idx = self.now_ns // self.slot_ns  # type: ignore[operator]
        if idx <= now_idx - self.keep:
            self.late += 1
            return
        slots = self.slots
        table: Table | None = None
        if slots and slots[-1][0] == idx:
            table = slots[-1][1]
        elif not slots or slots[-1][0] < idx:
            table = {}
            slots.append((idx, table))
        else:  # an older slot still in the ring (transactions complete a little out of order)
            for i, t in reversed(slots):
                if i == idx:
                    table = t
                    break
                if i < idx:
                    break
            if table is None:
                table = {}
                pos = next(p for p, (i, _) in enumerate(slots) if i > idx)
                slots.insert(pos, (idx, table))
        add_to(table, key, tx, self.alpha)

    def window(self, seconds: float) -> Table:
        """Merged stats of the slots within the last ``seconds`` of packet time (the current slot
        included)."""
        out: Table = {}
        if self.now_ns is None:
            return out
        n = max(1, -(-int(seconds * 1e9) // self.slot_ns))
        lowest = self.now_ns // self.slot_ns - n + 1
        for idx, table in self.slots:
            if idx < lowest:
                continue
            for k, st in table.items():
                mine = out.get(k)
                if mine is None:
                    mine = out[k] = WindowStats(self.alpha)
                mine.merge(st)
        return out

    def span_s(self, seconds: float) -> float:
        """The time a window of ``seconds`` actually covers so far (shorter at the start of a run)."""
        if self.now_ns is None or self.first_ns is None:
            return 0.0
        return min(seconds, (self.now_ns - self.first_ns) / 1e9 + self.slot_ns / 1e9)

    def rows(self, seconds: float, overall: bool = True) -> list[dict[str, object]]:
        return table_rows(self.window(seconds), self.span_s(seconds), overall)
