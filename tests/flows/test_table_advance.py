"""FlowTable.advance: the packet clock of a scale-out worker, moved by segments another worker owns."""
from __future__ import annotations

from netrum.counters import Counters
from netrum.flows.table import FlowTable
from netrum.limits import SECOND_NS, Limits

SYN, ACK, PSH = 0x02, 0x10, 0x08
A, B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


class Recorder:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.done = False

    def client_data(self, data: bytes, ts_ns: int, ack_offset: int = -1) -> None:
        self.log.append("client_data")

    def server_data(self, data: bytes, ts_ns: int) -> None:
        self.log.append("server_data")

    def client_gap(self, nbytes: int, ts_ns: int) -> None: ...
    def server_gap(self, nbytes: int, ts_ns: int) -> None: ...
    def client_eof(self, ts_ns: int) -> None: ...
    def server_eof(self, ts_ns: int) -> None: ...

    def close(self, ts_ns: int) -> None:
        self.log.append(f"close@{ts_ns}")


def table(log: list[str]) -> tuple[FlowTable, Counters]:
    c = Counters()
    lim = Limits(flow_idle_timeout_ns=10 * SECOND_NS)
    return FlowTable(c, lim, lambda info: Recorder(log), lambda data: 1 if data.startswith(b"GET") else 0), c


def open_flow(t: FlowTable, ts: int) -> None:
    t.packet(ts, A, B, 40000, 80, 100, 0, SYN, b"", 0)
    t.packet(ts + 1, B, A, 80, 40000, 500, 101, SYN | ACK, b"", 0)
    t.packet(ts + 2, A, B, 40000, 80, 101, 501, ACK | PSH, b"GET / HTTP/1.1\r\n\r\n", 18)


def test_advance_expires_an_idle_flow_at_the_same_packet_time_as_a_packet_would() -> None:
    log: list[str] = []
    t, c = table(log)
    open_flow(t, 0)
    nxt = t.advance(5 * SECOND_NS)
    assert nxt == 6 * SECOND_NS and c["flow_expired_idle"] == 0
    assert t.advance(10 * SECOND_NS + 2) == 11 * SECOND_NS + 2
    assert c["flow_expired_idle"] == 1 and log[-1] == "close@2"
    assert len(t) == 0


def test_advance_never_moves_the_clock_back_and_sweeps_only_when_due() -> None:
    log: list[str] = []
    t, c = table(log)
    open_flow(t, 0)
    first = t.advance(3 * SECOND_NS)
    assert t.advance(SECOND_NS) == first  # earlier time: nothing moves
    assert t.advance(3 * SECOND_NS + 5) == first  # not due yet
    # a packet after advance() does not sweep again before the returned time
    log_len = len(log)
    t.packet(3 * SECOND_NS + 6, B, A, 80, 40000, 501, 119, ACK | PSH, b"HTTP/1.1 200 OK\r\n\r\n", 19)
    assert len(log) == log_len + 1 and c["flow_expired_idle"] == 0
