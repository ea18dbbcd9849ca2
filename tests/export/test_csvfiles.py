import csv

from netrum.counters import COUNTER_DOCS, Counters
from netrum.export.csvfiles import (
    TRANSACTION_COLUMNS,
    TransactionWriter,
    fmt_ms,
    fmt_ts,
    write_health,
)
from netrum.records import Transaction


def test_fmt_ts_is_exact_microseconds() -> None:
    assert fmt_ts(1_700_000_000_123_456_789) == "1700000000.123456"
    assert fmt_ts(5) == "0.000000"
    assert fmt_ts(None) == ""


def test_fmt_ms() -> None:
    assert fmt_ms(1_234_567) == "1.234"
    assert fmt_ms(-1_500_000) == "-1.500"
    assert fmt_ms(999) == "0.000"
    assert fmt_ms(None) == ""


def test_transaction_row_roundtrip(tmp_path) -> None:
    w = TransactionWriter(tmp_path / "t.csv")
    t = Transaction(conn_id="Cabc", depth=2, client_ip="::1", client_port=40000, server_ip="::1",
                    server_port=8080, request_ts_ns=1_000_000_000, request_end_ts_ns=1_000_500_000,
                    response_ts_ns=1_002_000_000, response_end_ts_ns=1_003_000_000, method="GET",
                    host="h", uri="/a,\"b\"\xff", version="HTTP/1.1", status=200, reason="OK",
                    interim_statuses=(100,), notes=("gap_response", "resync"))
    w.write(t, "/a")
    assert not (tmp_path / "t.csv").exists()  # written under a temporary name until closed
    w.close()
    with open(tmp_path / "t.csv", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(TRANSACTION_COLUMNS)
    r = rows[0]
    assert r["uri"] == "/a,\"b\"\xff"
    assert r["ttfb_ms"] == "1.500" and r["duration_ms"] == "3.000"
    assert r["request_ts"] == "1.000000" and r["response_end_ts"] == "1.003000"
    assert r["status"] == "200" and r["interim_statuses"] == "100"
    assert r["notes"] == "gap_response;resync"
    assert r["response_body_bytes"] == ""


def test_health_lists_every_counter_and_run_facts(tmp_path) -> None:
    c = Counters()
    c["tcp_gap"] += 2
    c["made_up_counter"] += 1
    write_health(tmp_path / "h.csv", c, {"partial": 1})
    with open(tmp_path / "h.csv") as fh:
        rows = list(csv.DictReader(fh))
    by = {r["counter"]: r for r in rows}
    assert by["partial"]["group"] == "run" and by["partial"]["value"] == "1"
    assert by["tcp_gap"]["value"] == "2"
    assert set(COUNTER_DOCS) <= set(by)
    assert by["made_up_counter"]["group"] == "other"
