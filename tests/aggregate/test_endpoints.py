import math

import pytest

from netrum.aggregate.endpoints import EndpointAggregator, percentile
from netrum.records import Transaction

MS = 1_000_000


def tx(status: int | None, dur_ms: int, ttfb_ms: int, method: str = "GET", host: str | None = "api",
       start_ms: int = 0, body: int = 10) -> Transaction:
    t0 = 1_700_000_000_000_000_000 + start_ms * MS
    return Transaction(
        conn_id="C1", depth=1, client_ip="10.0.0.1", client_port=5000, server_ip="10.0.0.2",
        server_port=80, request_ts_ns=t0, request_end_ts_ns=t0,
        response_ts_ns=None if status is None else t0 + ttfb_ms * MS,
        response_end_ts_ns=None if status is None else t0 + dur_ms * MS,
        method=method, host=host, uri="/x", status=status, request_body_bytes=1,
        response_body_bytes=None if status is None else body,
    )


def test_percentile_matches_numpy_linear() -> None:
    np = pytest.importorskip("numpy")
    vals = sorted([5.0, 1.0, 9.5, 3.25, 7.0, 2.0, 100.0])
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert percentile(vals, q) == pytest.approx(float(np.percentile(vals, q * 100)))
    assert math.isnan(percentile([], 0.5))


def test_endpoint_row_counts_and_exact_percentiles() -> None:
    agg = EndpointAggregator()
    for i, (status, dur) in enumerate([(200, 10), (200, 20), (404, 30), (500, 40), (None, 0)]):
        agg.add(tx(status, dur, dur // 2, start_ms=i * 1000), "/x")
    agg.add(tx(200, 5, 1, method="POST"), "/x")
    rows = agg.rows(capture_span_ns=10_000 * MS)
    get = next(r for r in rows if r["method"] == "GET")
    assert get["requests"] == 5
    assert get["responses"] == 4
    assert get["errors_4xx"] == 1 and get["errors_5xx"] == 1
    assert get["error_rate"] == 0.5
    assert get["no_response"] == 1
    assert get["rps"] == pytest.approx(0.5)
    assert get["duration_p50_ms"] == pytest.approx(25.0)
    assert get["duration_max_ms"] == 40.0
    assert get["ttfb_p50_ms"] == pytest.approx(12.5)
    assert get["response_bytes"] == 40
    assert rows[0] is get  # busiest first


def test_merge_equals_single_pass() -> None:
    items = [tx(200 + (i % 3) * 100, i % 17, i % 5, start_ms=i) for i in range(100)]
    whole = EndpointAggregator()
    parts = [EndpointAggregator(), EndpointAggregator()]
    for i, t in enumerate(items):
        whole.add(t, "/x")
        parts[i % 2].add(t, "/x")
    parts[0].merge(parts[1])
    assert parts[0].rows(10**9) == whole.rows(10**9)


def test_response_without_request_is_not_an_endpoint() -> None:
    agg = EndpointAggregator()
    agg.add(Transaction(conn_id="C", depth=1, client_ip="a", client_port=1, server_ip="b", server_port=2,
                        status=200, notes=("no_request",)), "")
    assert agg.rows(None) == []
    assert agg.unmatched_responses == 1
