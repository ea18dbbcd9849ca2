from netrum.aggregate.endpoints import EndpointAggregator
from netrum.counters import Counters
from netrum.export.summary import render
from netrum.records import Transaction

MS = 1_000_000


def _tx(uri: str, status: int | None, dur_ms: int) -> Transaction:
    return Transaction(conn_id="C", depth=1, client_ip="a", client_port=1, server_ip="b", server_port=80,
                       request_ts_ns=0, request_end_ts_ns=0, response_ts_ns=None if status is None else 0,
                       response_end_ts_ns=None if status is None else dur_ms * MS, method="GET", host="h",
                       uri=uri, status=status)


def test_summary_lists_busiest_slowest_and_health() -> None:
    agg = EndpointAggregator()
    for i in range(5):
        agg.add(_tx(f"/fast/{i}", 200, 1), "/fast/{id}")
    agg.add(_tx("/slow", 503, 900), "/slow")
    agg.add(_tx("/slow", None, 0), "/slow")
    c = Counters({"tcp_gap": 2, "tcp_gap_bytes": 3000, "capture_packets": 10, "http_no_response": 1})
    text = render(agg.rows(10 * 1000 * MS), agg, c, 10 * 1000 * MS, 5, ["x.pcap: cut"], "out")
    lines = text.splitlines()
    assert lines[0].startswith("7 requests on 2 endpoints over 10.000 s (0.7/s); 6 responses")
    assert "2 gaps (3000 B lost)" in text and "1 requests without response" in text
    busiest = lines.index(next(ln for ln in lines if ln.startswith("Busiest")))
    assert "/fast/{id}" in lines[busiest + 3]  # header, rule, then the busiest endpoint
    slowest = lines.index("Slowest endpoints by p95 duration")
    assert "/slow" in lines[slowest + 3] and "900.0" in lines[slowest + 3]
    assert "tcp_gap" in text and "capture_packets" in text
    assert "PARTIAL: x.pcap: cut" in text
