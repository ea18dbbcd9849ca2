"""Rolling windows on packet time: slots, window merges, expiry, late transactions."""
from __future__ import annotations

import pytest

from netrum.live.windows import OVERALL, RollingWindows, WindowStats, completion_ts, table_rows
from netrum.records import Transaction

S = 1_000_000_000
T0 = 1_700_000_000 * S


def tx(end_s: float, route: str = "/a", status: int | None = 200, dur_ms: float = 10.0) -> Transaction:
    end = T0 + int(end_s * S)
    start = end - int(dur_ms * 1e6)
    return Transaction("C1", 1, "10.0.0.1", 1000, "10.0.0.2", 80, request_ts_ns=start, request_end_ts_ns=start,
                       response_ts_ns=end if status is not None else None,
                       response_end_ts_ns=end if status is not None else None,
                       method="GET", host="h", uri=route, status=status)


def test_windows_count_last_n_seconds_of_packet_time() -> None:
    w = RollingWindows((10, 60), slot_s=1)
    for i in range(120):  # one per second for two minutes, every 10th a 500
        w.add(tx(i + 0.5, status=500 if i % 10 == 0 else 200), "/a")
    ten = w.window(10)
    assert ten[OVERALL].requests == 10 and ten[("h", "GET", "/a")].errors_5xx == 1
    minute = w.window(60)
    assert minute[OVERALL].requests == 60 and minute[OVERALL].errors_5xx == 6
    assert len(w.slots) <= 60  # older slots dropped
    assert w.window(60)[OVERALL].duration_ms.count == 60


def test_late_and_out_of_order() -> None:
    w = RollingWindows((10,), slot_s=1)
    w.add(tx(100), "/a")
    w.add(tx(95), "/a")  # still inside the ring: its own slot
    w.add(tx(50), "/a")  # older than the longest window: late
    assert w.late == 1
    assert w.window(10)[OVERALL].requests == 2
    assert [i for i, _ in w.slots] == sorted(i for i, _ in w.slots)


def test_unmatched_response_is_not_an_endpoint() -> None:
    w = RollingWindows((10,))
    t = Transaction("C1", 1, "a", 1, "b", 2, response_ts_ns=T0, response_end_ts_ns=T0, status=200)
    w.add(t, "")
    assert w.window(10) == {}
    assert completion_ts(t) == T0


def test_rows_and_percentiles() -> None:
    st = WindowStats()
    for ms in range(1, 101):
        st.add(tx(1, dur_ms=float(ms)))
    row = st.row(("h", "GET", "/a"), 10.0)
    assert row["requests"] == 100 and row["rps"] == 10.0
    assert row["duration_p50_ms"] == pytest.approx(50, rel=0.01)
    assert row["duration_p99_ms"] == pytest.approx(99, rel=0.01)
    assert row["duration_max_ms"] == pytest.approx(100, rel=1e-6)
    rows = table_rows({("h", "GET", "/a"): st, OVERALL: st}, 10.0, overall=True)
    assert rows[0]["host"] == "*" and len(rows) == 2


def test_bad_windows_refused() -> None:
    with pytest.raises(ValueError):
        RollingWindows((0.5,), slot_s=1)
