"""Prometheus exporter for ``netrum live``: OpenTelemetry-named HTTP metrics and the capture's health.

Metrics (https://opentelemetry.io/docs/specs/semconv/http/http-metrics/, names as the OpenTelemetry
Prometheus exporter writes them):

- ``http_server_request_duration_seconds`` (histogram; the OTel default boundaries), labels
  ``http_request_method``, ``http_route``, ``http_response_status_code``, ``server_address``: one
  observation per exchange with a response (duration = last response byte - first request byte).
- ``netrum_http_server_requests_total`` (counter, same labels; status ``""`` when no response was seen).
- ``netrum_http_server_errors_total`` (counter, same labels): status >= 400, or no response (status ``""``).
- ``netrum_<counter>_total`` for every counter of the ledger (``COUNTER_DOCS``: packets, drops, gaps,
  flows, resyncs...), and gauges ``netrum_flows_open``, ``netrum_capture_queue_batches``.

Cardinality is bounded: methods outside the registry set become ``_OTHER`` (as OTel says); the route is
the rule-based template (``RouteTemplater``) and beyond ``route_budget`` distinct (server, method, route)
the route label becomes ``{overflow}``; beyond ``server_budget`` distinct server addresses the address is
``{overflow}`` too.

Thread-safety: observations happen on the analysis thread (prometheus_client metrics lock internally);
the ledger is read from a snapshot the analysis thread publishes (``publish``), never the live dict.
"""
from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from netrum.aggregate.routes import OVERFLOW_ROUTE
from netrum.counters import COUNTER_DOCS
from netrum.records import Transaction

# OpenTelemetry's advised boundaries for http.server.request.duration (seconds).
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# RFC 9110 section 9 methods plus PATCH (RFC 5789): the OTel "known methods"; others are _OTHER.
KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
LABELS = ("http_request_method", "http_route", "http_response_status_code", "server_address")
DEFAULT_ROUTE_BUDGET = 500
DEFAULT_SERVER_BUDGET = 100


def otel_method(method: str) -> str:
    return method if method in KNOWN_METHODS else "_OTHER"


def server_address(tx: Transaction) -> str:
    """OTel server.address: the Host header without its port, else the server's IP address."""
    host = tx.host
    if not host:
        return tx.server_ip
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


class HealthCollector(Collector):
    """The ledger's counters and a few gauges, from the last published snapshot."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.gauges: dict[str, tuple[str, float]] = {}

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        counters = self.counters  # one reference: the publisher replaces the dict, never mutates it
        for name, (_group, doc) in COUNTER_DOCS.items():
            yield CounterMetricFamily(f"netrum_{name}", doc, value=counters.get(name, 0))
        for name, (doc, value) in self.gauges.items():
            yield GaugeMetricFamily(f"netrum_{name}", doc, value=value)


class MetricsExporter:
    """Owns a registry with the HTTP metrics and the health collector; ``observe`` per transaction."""

    def __init__(self, route_budget: int = DEFAULT_ROUTE_BUDGET, server_budget: int = DEFAULT_SERVER_BUDGET,
                 registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.route_budget = route_budget
        self.server_budget = server_budget
        self.duration = Histogram("http_server_request_duration_seconds",
                                  "Duration of HTTP server requests (last response byte - first request byte)",
                                  LABELS, buckets=DURATION_BUCKETS_S, registry=self.registry)
        self.requests = Counter("netrum_http_server_requests", "HTTP requests seen (status empty: no response)",
                                LABELS, registry=self.registry)
        self.errors = Counter("netrum_http_server_errors", "HTTP requests answered >= 400 or not answered",
                              LABELS, registry=self.registry)
        self.health = HealthCollector()
        self.registry.register(self.health)
        self._routes: set[tuple[str, str, str]] = set()
        self._servers: set[str] = set()
        self._children: dict[tuple[str, str, str, str], tuple[Counter, Histogram, Counter | None]] = {}
        self.overflowed = 0  # transactions whose route or server label became {overflow}

    def labels(self, tx: Transaction, route: str) -> tuple[str, str, str, str] | None:
        """The bounded label values of a transaction, None for a response without its request."""
        if tx.method is None:
            return None
        server = server_address(tx)
        if server not in self._servers:
            if len(self._servers) < self.server_budget:
                self._servers.add(server)
            else:
                server = OVERFLOW_ROUTE
                self.overflowed += 1
        method = otel_method(tx.method)
        rkey = (server, method, route)
        if rkey not in self._routes:
            if len(self._routes) < self.route_budget:
                self._routes.add(rkey)
            else:
                route = OVERFLOW_ROUTE
                self.overflowed += 1
        status = "" if tx.status is None else str(tx.status)
        return method, route, status, server

    def observe(self, tx: Transaction, route: str) -> None:
        values = self.labels(tx, route)
        if values is None:
            return
        children = self._children.get(values)
        if children is None:
            err = self.errors.labels(*values) if values[2] == "" or int(values[2]) >= 400 else None
            children = (self.requests.labels(*values), self.duration.labels(*values), err)
            self._children[values] = children
        req, hist, errs = children
        req.inc()
        if errs is not None:
            errs.inc()
        dur = tx.duration_ns
        if dur is not None and tx.status is not None:
            hist.observe(dur / 1e9)

    def publish(self, counters: dict[str, int], flows_open: int, queue_batches: int) -> None:
        """Called on the analysis thread: hand the scraper a copy of the ledger and the gauges."""
        self.health.counters = dict(counters)
        self.health.gauges = {
            "flows_open": ("connections tracked now", float(flows_open)),
            "capture_queue_batches": ("frame batches waiting in the analysis queue", float(queue_batches)),
        }


def parse_listen(addr: str) -> tuple[str, int]:
    """'127.0.0.1:9109', '[::1]:9109' or ':9109' (loopback) -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--metrics {addr!r}: expected HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def serve(exporter: MetricsExporter, host: str, port: int) -> tuple[object, object]:
    """Start the /metrics HTTP server in a daemon thread; returns (server, thread) (server.shutdown())."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=exporter.registry)  # type: ignore[return-value]
