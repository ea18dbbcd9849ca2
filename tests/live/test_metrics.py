"""The Prometheus exporter: replay a capture through the live path, scrape /metrics over HTTP, and check
the counts per route and status against the batch analysis of the same capture."""
from __future__ import annotations

import csv
import urllib.request
from collections import Counter as Tally
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from netrum.batch import AnalyzeOptions, analyze_files
from netrum.capture.live import ReplaySource
from netrum.live.metrics import MetricsExporter, otel_method, parse_listen, serve, server_address
from netrum.live.runner import LiveOptions, LiveRunner
from netrum.records import Transaction

REPO = Path(__file__).resolve().parents[2]
PCAP = REPO / "pcaps" / "nginx-mix.pcap"


def _scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _by_route_status(samples: list[tuple[dict[str, str], float]]) -> Tally[tuple[str, str, str]]:
    out: Tally[tuple[str, str, str]] = Tally()
    for lb, v in samples:  # summed over server_address
        out[lb["http_request_method"], lb["http_route"], lb["http_response_status_code"]] += int(v)
    return out


def test_scrape_matches_batch(tmp_path: Path) -> None:
    exporter = MetricsExporter()
    server, thread = serve(exporter, "127.0.0.1", 0)
    try:
        runner = LiveRunner(ReplaySource([str(PCAP)], None), LiveOptions(out_dir=None, metrics=exporter))
        result = runner.run()
        port = server.server_port  # type: ignore[attr-defined]
        m = _scrape(port)
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        thread.join(5)  # type: ignore[attr-defined]
    batch = analyze_files([str(PCAP)], tmp_path, AnalyzeOptions(learn_routes=False, route_budget=None))
    with open(tmp_path / "transactions.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["method"]]
    want = Tally((otel_method(r["method"]), r["route"], r["status"]) for r in rows)
    got = _by_route_status(m["netrum_http_server_requests_total"])
    assert sum(want.values()) > 100
    assert +got == want
    hist = _by_route_status(m["http_server_request_duration_seconds_count"])
    want_hist = Tally((otel_method(r["method"]), r["route"], r["status"]) for r in rows
                      if r["status"] and r["duration_ms"])
    assert +hist == want_hist
    errors = sum(v for lb, v in m["netrum_http_server_errors_total"])
    assert errors == sum(1 for r in rows if not r["status"] or int(r["status"]) >= 400)
    assert m["netrum_capture_packets_total"][0][1] == batch.counters["capture_packets"] == 1675
    assert m["netrum_http_transactions_total"][0][1] == batch.counters["http_transactions"]
    assert result.transactions == batch.transactions


def _tx(host: str | None, uri: str, method: str = "GET", status: int | None = 200) -> Transaction:
    return Transaction("C1", 1, "10.0.0.1", 1000, "10.0.0.2", 80, request_ts_ns=1, request_end_ts_ns=1,
                       response_ts_ns=2, response_end_ts_ns=3, method=method, host=host, uri=uri, status=status)


def test_label_budget_and_bounded_labels() -> None:
    ex = MetricsExporter(route_budget=3, server_budget=2)
    for i in range(10):
        ex.observe(_tx("api.test:8080", f"/r{i}"), f"/r{i}")
    assert ex.labels(_tx("api.test", "/r1"), "/r1") == ("GET", "/r1", "200", "api.test")
    assert ex.labels(_tx("api.test", "/r9"), "/r9") == ("GET", "{overflow}", "200", "api.test")
    assert ex.labels(_tx("x", "/", method="BREW"), "/")[0] == "_OTHER"  # type: ignore[index]
    ex.labels(_tx("b", "/"), "/")
    assert ex.labels(_tx("c", "/"), "/")[3] == "{overflow}"  # type: ignore[index]
    assert ex.labels(_tx(None, "/", status=None), "/")[2] == ""  # type: ignore[index]
    assert server_address(_tx("[::1]:80", "/")) == "::1"
    assert server_address(_tx(None, "/")) == "10.0.0.2"


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9109") == ("127.0.0.1", 9109)
    assert parse_listen(":9109") == ("127.0.0.1", 9109)
    assert parse_listen("[::1]:9") == ("::1", 9)
    for bad in ("9109", "host:x", "h:99999"):
        try:
            parse_listen(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
