"""Per-endpoint statistics: one row per (host, method, route), exact percentiles in batch mode.

Latencies are kept as arrays of float milliseconds (8 bytes each), so a million transactions cost
16 MB; aggregators merge by concatenation, so results split over workers combine exactly.
"""
from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from netrum.records import Transaction

ENDPOINT_COLUMNS = (
    "host", "method", "route", "requests", "responses", "errors_4xx", "errors_5xx", "error_rate",
    "no_response", "rps", "ttfb_p50_ms", "ttfb_p95_ms", "ttfb_p99_ms", "duration_p50_ms",
    "duration_p90_ms", "duration_p95_ms", "duration_p99_ms", "duration_max_ms", "request_bytes",
    "response_bytes", "first_seen", "last_seen", "flagged",
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Exact percentile with linear interpolation between closest ranks (numpy's default, "type 7")."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    pos = (n - 1) * q
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


@dataclass(slots=True)
class EndpointStats:
    host: str
    method: str
    route: str
    requests: int = 0
    responses: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    no_response: int = 0
    flagged: int = 0  # transactions with any note other than benign ones (gaps, resyncs, truncation...)
    request_bytes: int = 0
    response_bytes: int = 0
    first_seen_ns: int | None = None
    last_seen_ns: int | None = None
    ttfb_ms: array = field(default_factory=lambda: array("d"))
    duration_ms: array = field(default_factory=lambda: array("d"))

    def merge(self, other: EndpointStats) -> None:
        merge_outcome(self, other)
        for ts in (other.first_seen_ns, other.last_seen_ns):
            if ts is not None:
                self._seen(ts)
        self.ttfb_ms.extend(other.ttfb_ms)
        self.duration_ms.extend(other.duration_ms)

    def _seen(self, ts_ns: int) -> None:
        if self.first_seen_ns is None or ts_ns < self.first_seen_ns:
            self.first_seen_ns = ts_ns
        if self.last_seen_ns is None or ts_ns > self.last_seen_ns:
            self.last_seen_ns = ts_ns


# Notes that say nothing about the trustworthiness of the figures.
BENIGN_NOTES = frozenset({"close_delimited", "upgrade", "http09"})


class OutcomeCounts(Protocol):
    """The exchange counts an endpoint row has, whatever keeps its latencies (exact arrays or sketches)."""

    requests: int
    responses: int
    errors_4xx: int
    errors_5xx: int
    no_response: int
    flagged: int
    request_bytes: int
    response_bytes: int


def count_outcome(st: OutcomeCounts, tx: Transaction) -> None:
    """Add one exchange to the counts: a request, its response (if any) and error class, whether its notes
    limit trust, and its body bytes. Shared by batch endpoints and live windows, so they count alike."""
    st.requests += 1
    status = tx.status
    if status is None:
        st.no_response += 1
    else:
        st.responses += 1
        if 400 <= status < 500:
            st.errors_4xx += 1
        elif status >= 500:
            st.errors_5xx += 1
    if tx.notes and not BENIGN_NOTES.issuperset(tx.notes):
        st.flagged += 1
    st.request_bytes += tx.request_body_bytes or 0
    st.response_bytes += tx.response_body_bytes or 0


def merge_outcome(st: OutcomeCounts, other: OutcomeCounts) -> None:
    """Add another row's counts (the exact merge of counts: they are sums)."""
    st.requests += other.requests
    st.responses += other.responses
    st.errors_4xx += other.errors_4xx
    st.errors_5xx += other.errors_5xx
    st.no_response += other.no_response
    st.flagged += other.flagged
    st.request_bytes += other.request_bytes
    st.response_bytes += other.response_bytes


class EndpointAggregator:
    """Consumes transactions (with their route) and yields endpoint rows."""

    def __init__(self) -> None:
        self.stats: dict[tuple[str, str, str], EndpointStats] = {}
        self.unmatched_responses = 0

    def add(self, tx: Transaction, route: str) -> None:
        if tx.method is None:  # a response without its request: counted in health, not an endpoint
            self.unmatched_responses += 1
            return
        host = tx.host or f"{tx.server_ip}:{tx.server_port}"
        key = (host, tx.method, route)
        st = self.stats.get(key)
        if st is None:
            st = self.stats[key] = EndpointStats(host, tx.method, route)
        count_outcome(st, tx)
        ts = tx.request_ts_ns if tx.request_ts_ns is not None else tx.response_ts_ns
        if ts is not None:
            st._seen(ts)
        ttfb = tx.ttfb_ns
        if ttfb is not None:
            st.ttfb_ms.append(ttfb / 1e6)
        dur = tx.duration_ns
        if dur is not None:
            st.duration_ms.append(dur / 1e6)

    def merge(self, other: EndpointAggregator) -> None:
        self.unmatched_responses += other.unmatched_responses
        for key, st in other.stats.items():
            mine = self.stats.get(key)
            if mine is None:
                self.stats[key] = mine = EndpointStats(*key)
            mine.merge(st)

    def rows(self, capture_span_ns: int | None) -> list[dict[str, object]]:
        """One dict per endpoint, busiest first. ``rps`` is requests over the whole capture's span."""
        span_s = capture_span_ns / 1e9 if capture_span_ns else 0.0
        out: list[dict[str, object]] = []
        for st in sorted(self.stats.values(), key=lambda s: (-s.requests, s.host, s.method, s.route)):
            ttfb = sorted(st.ttfb_ms)
            dur = sorted(st.duration_ms)
            out.append({
                "host": st.host, "method": st.method, "route": st.route,
                "requests": st.requests, "responses": st.responses,
                "errors_4xx": st.errors_4xx, "errors_5xx": st.errors_5xx,
                "error_rate": (st.errors_4xx + st.errors_5xx) / st.responses if st.responses else None,
                "no_response": st.no_response,
                "rps": st.requests / span_s if span_s > 0 else None,
                "ttfb_p50_ms": _pct(ttfb, 0.50), "ttfb_p95_ms": _pct(ttfb, 0.95),
                "ttfb_p99_ms": _pct(ttfb, 0.99),
                "duration_p50_ms": _pct(dur, 0.50), "duration_p90_ms": _pct(dur, 0.90),
                "duration_p95_ms": _pct(dur, 0.95), "duration_p99_ms": _pct(dur, 0.99),
                "duration_max_ms": dur[-1] if dur else None,
                "request_bytes": st.request_bytes, "response_bytes": st.response_bytes,
                "first_seen": st.first_seen_ns, "last_seen": st.last_seen_ns,
                "flagged": st.flagged,
            })
        return out


def _pct(values: Sequence[float], q: float) -> float | None:
    return percentile(values, q) if values else None


def overall_row(rows: Iterable[dict[str, object]]) -> dict[str, int]:
    """Totals across endpoints (for the summary line)."""
    tot = {"requests": 0, "responses": 0, "errors_4xx": 0, "errors_5xx": 0, "no_response": 0}
    for r in rows:
        for k in tot:
            tot[k] += int(r[k])  # type: ignore[call-overload]
    return tot
