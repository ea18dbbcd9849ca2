"""ConsumerAggregator: per-consumer figures, exact merge across any split, remapped routes."""
from __future__ import annotations

import random

from netrum.aggregate.consumers import CONSUMER_COLUMNS, ConsumerAggregator
from netrum.export.privacy import make_privacy
from netrum.records import Transaction

MS = 1_000_000


def _tx(consumer: str | None, route: str, status: int | None, dur_ms: float, ts: int = 0,
        client: str = "192.0.2.1") -> Transaction:
    return Transaction(conn_id="C", depth=1, client_ip=client, client_port=1, server_ip="s", server_port=80,
                       request_ts_ns=ts, request_end_ts_ns=ts,
                       response_ts_ns=None if status is None else ts,
                       response_end_ts_ns=None if status is None else ts + int(dur_ms * MS),
                       method="GET", host="h", uri=route, status=status, consumer=consumer)


def test_rows() -> None:
    agg = ConsumerAggregator()
    for i in range(10):
        agg.add(_tx("id:a", "/ok", 200, i + 1, ts=i), "/ok")
    agg.add(_tx("id:a", "/bad", 500, 100, ts=50), "/bad")
    agg.add(_tx("id:a", "/bad", 502, 100, ts=51), "/bad")
    agg.add(_tx("id:a", "/nf", 404, 1, ts=52), "/nf")
    agg.add(_tx(None, "/ok", None, 0, client="192.0.2.7"), "/ok")  # no consumer: the client address
    agg.add(Transaction("C", 1, "192.0.2.8", 1, "s", 80, status=200), "")  # a response without request
    rows = agg.rows()
    assert [r["consumer"] for r in rows] == ["id:a", "192.0.2.7"]
    a = rows[0]
    assert set(a) == set(CONSUMER_COLUMNS)
    assert (a["requests"], a["errors_4xx"], a["errors_5xx"], a["endpoints"]) == (13, 1, 2, 3)
    assert abs(a["error_rate"] - 3 / 13) < 1e-12  # type: ignore[operator]
    assert a["duration_max_ms"] == 100.0 and a["first_seen"] == 0 and a["last_seen"] == 52
    assert a["top_error_endpoints"] == "GET h /bad x2; GET h /nf x1"
    b = rows[1]
    assert b["no_response"] == 1 and b["duration_p50_ms"] is None and b["error_rate"] is None


def test_merge_is_exact_for_any_split() -> None:
    rng = random.Random(7)
    txs = [_tx(f"id:{rng.randrange(5)}", f"/r{rng.randrange(4)}", rng.choice([200, 404, 500, None]),
               rng.random() * 100, ts=rng.randrange(10**6)) for _ in range(500)]
    whole = ConsumerAggregator()
    for t in txs:
        whole.add(t, t.uri or "")
    for _ in range(5):
        parts = [ConsumerAggregator() for _ in range(3)]
        for t in txs:
            rng.choice(parts).add(t, t.uri or "")
        merged = ConsumerAggregator()
        for p in parts:
            merged.merge(p)
        assert merged.rows() == whole.rows()


def test_remap_and_privacy() -> None:
    agg = ConsumerAggregator()
    agg.add(_tx("c", "/u/1", 404, 1), "/u/1")
    agg.add(_tx("c", "/u/2", 404, 1), "/u/2")
    agg.add(_tx("c", "/x?k=v", 500, 1), "/x?k=v")
    agg.remap({("h", "GET", "/u/1"): ("h", "GET", "/u/{id}"), ("h", "GET", "/u/2"): ("h", "GET", "/u/{id}")})
    row = agg.rows(make_privacy())[0]
    assert row["endpoints"] == 2
    assert row["top_error_endpoints"] == "GET h /u/{id} x2; GET h /x?k=* x1"
