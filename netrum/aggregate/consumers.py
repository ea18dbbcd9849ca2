"""Per-consumer statistics: which consumers get the errors and the slow responses.

A consumer is ``Transaction.consumer`` (netrum.http.consumer: the client address, the real client behind
trusted proxies, or ``id:`` + a salted hash of an identity header). Like the endpoint statistics, counts
add and latencies are kept as float arrays, so aggregators split over workers merge exactly.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from netrum.aggregate.endpoints import percentile
from netrum.export.privacy import DEFAULT_PRIVACY, Privacy
from netrum.records import Transaction

CONSUMER_COLUMNS = (
    "consumer", "requests", "responses", "errors_4xx", "errors_5xx", "error_rate", "no_response",
    "duration_p50_ms", "duration_p95_ms", "duration_p99_ms", "duration_max_ms", "endpoints",
    "first_seen", "last_seen", "top_error_endpoints",
)
TOP_ERROR_ENDPOINTS = 3  # endpoints listed in ``top_error_endpoints``

EndpointKey = tuple[str, str, str]  # (host, method, route), as EndpointAggregator keys


@dataclass(slots=True)
class ConsumerStats:
    consumer: str
    requests: int = 0
    responses: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    no_response: int = 0
    first_seen_ns: int | None = None
    last_seen_ns: int | None = None
    duration_ms: array = field(default_factory=lambda: array("d"))
    endpoints: set[EndpointKey] = field(default_factory=set)
    errors_by_endpoint: dict[EndpointKey, int] = field(default_factory=dict)  # 4xx + 5xx per endpoint

    def merge(self, other: ConsumerStats) -> None:
        self.requests += other.requests
        self.responses += other.responses
        self.errors_4xx += other.errors_4xx
        self.errors_5xx += other.errors_5xx
        self.no_response += other.no_response
        for ts in (other.first_seen_ns, other.last_seen_ns):
            if ts is not None:
                self._seen(ts)
        self.duration_ms.extend(other.duration_ms)
        self.endpoints |= other.endpoints
        errs = self.errors_by_endpoint
        for key, n in other.errors_by_endpoint.items():
            errs[key] = errs.get(key, 0) + n

    def _seen(self, ts_ns: int) -> None:
        if self.first_seen_ns is None or ts_ns < self.first_seen_ns:
            self.first_seen_ns = ts_ns
        if self.last_seen_ns is None or ts_ns > self.last_seen_ns:
            self.last_seen_ns = ts_ns


class ConsumerAggregator:
    """Consumes transactions (with their route) and yields consumer rows."""

    def __init__(self) -> None:
        self.stats: dict[str, ConsumerStats] = {}

    def add(self, tx: Transaction, route: str) -> None:
        if tx.method is None:  # a response without its request: no consumer called it (health.csv)
            return
        consumer = tx.consumer or tx.client_ip
        st = self.stats.get(consumer)
        if st is None:
            st = self.stats[consumer] = ConsumerStats(consumer)
        st.requests += 1
        key = (tx.host or f"{tx.server_ip}:{tx.server_port}", tx.method, route)
        st.endpoints.add(key)
        status = tx.status
        if status is None:
            st.no_response += 1
        else:
            st.responses += 1
            if status >= 400:
                if status < 500:
                    st.errors_4xx += 1
                else:
                    st.errors_5xx += 1
                errs = st.errors_by_endpoint
                errs[key] = errs.get(key, 0) + 1
        ts = tx.request_ts_ns
        if ts is not None:
            st._seen(ts)
        dur = tx.duration_ns
        if dur is not None:
            st.duration_ms.append(dur / 1e6)

    def merge(self, other: ConsumerAggregator) -> None:
        for consumer, st in other.stats.items():
            mine = self.stats.get(consumer)
            if mine is None:
                self.stats[consumer] = mine = ConsumerStats(consumer)
            mine.merge(st)

    def remap(self, mapping: dict[EndpointKey, EndpointKey]) -> None:
        """Endpoints renamed after the run (declared or learned routes): several may merge into one."""
        get = mapping.get
        for st in self.stats.values():
            st.endpoints = {get(k, k) for k in st.endpoints}
            errs: dict[EndpointKey, int] = {}
            for k, n in st.errors_by_endpoint.items():
                k = get(k, k)
                errs[k] = errs.get(k, 0) + n
            st.errors_by_endpoint = errs

    def rows(self, privacy: Privacy = DEFAULT_PRIVACY) -> list[dict[str, object]]:
        """One dict per consumer, busiest first. ``top_error_endpoints``: the endpoints that gave this
        consumer the most 4xx/5xx, as ``METHOD host route xN`` separated by ``; `` (its text already
        through ``privacy``; the writer passes the other text cells through it)."""
        out: list[dict[str, object]] = []
        for st in sorted(self.stats.values(), key=lambda s: (-s.requests, s.consumer)):
            dur = sorted(st.duration_ms)
            top = sorted(st.errors_by_endpoint.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ERROR_ENDPOINTS]
            out.append({
                "consumer": st.consumer, "requests": st.requests, "responses": st.responses,
                "errors_4xx": st.errors_4xx, "errors_5xx": st.errors_5xx,
                "error_rate": (st.errors_4xx + st.errors_5xx) / st.responses if st.responses else None,
                "no_response": st.no_response,
                "duration_p50_ms": percentile(dur, 0.50) if dur else None,
                "duration_p95_ms": percentile(dur, 0.95) if dur else None,
                "duration_p99_ms": percentile(dur, 0.99) if dur else None,
                "duration_max_ms": dur[-1] if dur else None,
                "endpoints": len(st.endpoints),
                "first_seen": st.first_seen_ns, "last_seen": st.last_seen_ns,
                "top_error_endpoints": format_top(top, privacy),
            })
        return out


def format_top(top: list[tuple[EndpointKey, int]], privacy: Privacy) -> str:
    """``METHOD host route xN; ...``, host and method through ``privacy.text``, the route ``privacy.uri``."""
    text = privacy.text
    return "; ".join(f"{text(method)} {text(host)} {privacy.uri(route)} x{n}" for (host, method, route), n in top)
