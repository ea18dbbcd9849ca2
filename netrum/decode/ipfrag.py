"""IP fragment reassembly for IPv4 (RFC 791 section 3.2) and IPv6 (RFC 8200 section 4.5).

Fragments are keyed by (version, src, dst, protocol, id). Overlapping fragments keep the bytes that
arrived first (first-wins, the usual choice of passive analyzers; RFC 5722 tells IPv6 hosts to drop such
datagrams, but a tap should still see what the receiver most likely saw). Time is the packet time: a
datagram not completed within ``limits.ip_fragment_timeout_ns`` of its first fragment is given up, and the
table holds at most ``limits.max_ip_fragment_datagrams`` datagrams (the oldest is given up beyond it).
Both count ``decode_ip_fragment_expired``.
"""
from __future__ import annotations

from netrum.counters import Counters
from netrum.limits import DEFAULT_LIMITS, Limits

# (ip version, src, dst, protocol / next header, identification)
FragKey = tuple[int, bytes, bytes, int, int]

MAX_DATAGRAM_BYTES = 65535  # RFC 791 total length / RFC 8200 payload length are 16-bit fields
MAX_PIECES = 512  # fragments kept per datagram; a datagram needing more is given up


class _Datagram:
    __slots__ = ("first_ts_ns", "pieces", "total_bytes")

    def __init__(self, first_ts_ns: int) -> None:
        self.first_ts_ns = first_ts_ns
        self.total_bytes: int | None = None  # known once the last fragment (M=0) arrived
        self.pieces: list[tuple[int, bytes]] = []  # (offset, data) in arrival order


class FragmentReassembler:
    """Collects fragments; ``add`` returns the rebuilt payload (bytes after the IP header) when complete."""

    __slots__ = ("_counters", "_max_datagrams", "_table", "_timeout_ns")

    def __init__(self, counters: Counters, limits: Limits = DEFAULT_LIMITS) -> None:
        self._counters = counters
        self._timeout_ns = limits.ip_fragment_timeout_ns
        self._max_datagrams = limits.max_ip_fragment_datagrams
        self._table: dict[FragKey, _Datagram] = {}

    def __len__(self) -> int:
        return len(self._table)

    def add(self, key: FragKey, ts_ns: int, offset: int, more: bool, data: bytes) -> bytes | None:
        counters = self._counters
        counters["decode_ip_fragment"] += 1
        table = self._table
        self._expire(ts_ns)
        end = offset + len(data)
        if end > MAX_DATAGRAM_BYTES:
            return None  # impossible fragment (RFC 791: offset * 8 + length fits 16 bits): ignored
        dg = table.get(key)
        if dg is None:
            if len(table) >= self._max_datagrams:
                del table[next(iter(table))]  # oldest first fragment first (dict insertion order)
                counters["decode_ip_fragment_expired"] += 1
            dg = table[key] = _Datagram(ts_ns)
        if not more and dg.total_bytes is None:
            dg.total_bytes = end  # the last fragment fixes the size; a conflicting later one is ignored
        dg.pieces.append((offset, data))
        if len(dg.pieces) > MAX_PIECES:
            del table[key]
            counters["decode_ip_fragment_expired"] += 1
            return None
        total = dg.total_bytes
        if total is None:
            return None
        # Complete when the pieces cover [0, total) without a hole.
        covered = 0
        for p_off, p_data in sorted(dg.pieces, key=lambda p: p[0]):
            if p_off > covered:
                return None
            covered = max(covered, p_off + len(p_data))
            if covered >= total:
                break
        if covered < total:
            return None
        buf = bytearray(total)
        for p_off, p_data in reversed(dg.pieces):  # earlier arrivals written last: first wins
            if p_off < total:
                piece = p_data[: total - p_off]
                buf[p_off : p_off + len(piece)] = piece
        del table[key]
        counters["decode_ip_reassembled"] += 1
        return bytes(buf)

    def _expire(self, ts_ns: int) -> None:
        table = self._table
        deadline = ts_ns - self._timeout_ns
        while table:
            key = next(iter(table))
            if table[key].first_ts_ns >= deadline:
                break
            del table[key]
            self._counters["decode_ip_fragment_expired"] += 1
