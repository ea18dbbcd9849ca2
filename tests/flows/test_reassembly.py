"""StreamReassembler: in-order bytes with per-packet timestamps, gaps, eof (RFC 9293 sequence space)."""
from __future__ import annotations

import itertools
import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from netrum.counters import Counters
from netrum.flows.reassembly import ACK_STRIKES, StreamReassembler
from netrum.flows.seq import SEQ_MASK, seq_add, seq_diff, seq_le, seq_lt
from netrum.limits import Limits

# NETRUM_EXAMPLES=1000 runs the property tests ten times longer
EXAMPLES = int(os.environ.get("NETRUM_EXAMPLES", "100"))


class Rec:
    """Records the reassembler's output; ``per_byte`` rebuilds it with None for gap bytes."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def deliver(self, data: bytes, ts_ns: int) -> None:
        assert data, "empty deliveries are never made"
        self.events.append(("data", data, ts_ns))

    def gap(self, nbytes: int, ts_ns: int) -> None:
        assert nbytes > 0
        self.events.append(("gap", nbytes, ts_ns))

    def eof(self, ts_ns: int) -> None:
        assert not any(e[0] == "eof" for e in self.events), "eof twice"
        self.events.append(("eof", ts_ns))

    def data(self) -> bytes:
        return b"".join(e[1] for e in self.events if e[0] == "data")

    def per_byte(self) -> list[tuple[int, int] | None]:
        """(byte, ts) per stream position; None where a gap was declared."""
        out: list[tuple[int, int] | None] = []
        for e in self.events:
            if e[0] == "data":
                out.extend((b, e[2]) for b in e[1])
            elif e[0] == "gap":
                out.extend([None] * e[1])
        return out

    def gaps(self) -> list[tuple[int, int]]:
        """(offset, nbytes) of each gap."""
        pos, out = 0, []
        for e in self.events:
            if e[0] == "data":
                pos += len(e[1])
            elif e[0] == "gap":
                out.append((pos, e[1]))
                pos += e[1]
        return out


def make(limits: Limits | None = None) -> tuple[StreamReassembler, Rec, Counters]:
    rec = Rec()
    c = Counters()
    r = StreamReassembler(c, limits or Limits(), rec.deliver, rec.gap, rec.eof)
    return r, rec, c


# -- sequence arithmetic ------------------------------------------------------------------------------

def test_seq_arithmetic_wraps() -> None:
    assert seq_diff(5, 0xFFFFFFFB) == 10
    assert seq_diff(0xFFFFFFFB, 5) == -10
    assert seq_add(0xFFFFFFFF, 2) == 1
    assert seq_lt(0xFFFFFFF0, 0x10) and not seq_lt(0x10, 0xFFFFFFF0)
    assert seq_le(7, 7)
    assert seq_diff(0, 1 << 31) == -(1 << 31)


# -- transcripts --------------------------------------------------------------------------------------

def test_in_order_fast_path_delivers_each_segment_with_its_ts() -> None:
    r, rec, c = make()
    r.start(1001, by_syn=True)
    r.segment(1001, b"GET ", 4, 10)
    r.segment(1005, b"/ HTTP/1.1\r\n", 12, 11)
    assert rec.events == [("data", b"GET ", 10), ("data", b"/ HTTP/1.1\r\n", 11)]
    assert r.nxt == 1017 and not c.nonzero()


def test_out_of_order_is_buffered_and_keeps_its_own_ts() -> None:
    r, rec, c = make()
    r.start(0, True)
    r.segment(3, b"def", 3, 2)
    assert rec.events == [] and r.buffered_bytes == 3
    r.segment(0, b"abc", 3, 1)
    assert rec.events == [("data", b"abc", 1), ("data", b"def", 2)]
    assert c["tcp_out_of_order"] == 1 and r.buffered_bytes == 0


def test_retransmit_is_a_duplicate_and_conflict_is_counted() -> None:
    r, rec, c = make()
    r.start(0, True)
    r.segment(0, b"abcdef", 6, 1)
    r.segment(0, b"abcdef", 6, 2)
    assert c["tcp_duplicate"] == 1 and c["tcp_overlap_conflict"] == 0
    r.segment(2, b"XY", 2, 3)
    assert c["tcp_duplicate"] == 2 and c["tcp_overlap_conflict"] == 1
    assert rec.data() == b"abcdef"


def test_overlap_is_trimmed_first_copy_wins() -> None:
    r, rec, c = make()
    r.start(0, True)
    r.segment(0, b"abcd", 4, 1)
    r.segment(2, b"cdef", 4, 2)  # overlaps 2 delivered bytes
    assert rec.events == [("data", b"abcd", 1), ("data", b"ef", 2)]
    assert c["tcp_overlap"] == 1
    # overlap against buffered data, with different bytes: first copy kept
    r.segment(10, b"klmn", 4, 3)
    r.segment(8, b"ijKLm", 5, 4)
    assert c["tcp_overlap"] == 2 and c["tcp_overlap_conflict"] == 1
    r.segment(6, b"gh", 2, 5)
    assert rec.data() == b"abcdefghijklmn"
    assert [e[2] for e in rec.events if e[0] == "data"] == [1, 2, 5, 4, 3]


def test_segment_spanning_several_buffered_pieces_fills_the_holes() -> None:
    r, rec, _c = make()
    r.start(0, True)
    r.segment(2, b"cd", 2, 1)
    r.segment(6, b"gh", 2, 2)
    r.segment(1, b"bcdefghi", 8, 3)
    assert r.buffered_segments == 5
    r.segment(0, b"a", 1, 4)
    assert rec.data() == b"abcdefghi"
    assert rec.per_byte() == [(ord(ch), ts) for ch, ts in zip("abcdefghi", [4, 3, 1, 1, 3, 3, 2, 2, 3])]


def test_fin_ends_the_direction_once_every_byte_before_it_is_delivered() -> None:
    r, rec, c = make()
    r.start(100, True)
    r.segment(103, b"def", 3, 2)
    r.fin(106, 3)
    assert not r.ended
    r.segment(100, b"abc", 3, 4)
    assert rec.events == [("data", b"abc", 4), ("data", b"def", 2), ("eof", 4)]
    r.segment(106, b"late", 4, 5)
    assert c["tcp_data_after_close"] == 1 and rec.data() == b"abcdef"


def test_data_beyond_a_fin_is_dropped_and_counted() -> None:
    r, rec, c = make()
    r.start(0, True)
    r.fin(4, 1)
    r.segment(0, b"abcdef", 6, 2)
    assert rec.events == [("data", b"abcd", 2), ("eof", 2)]
    assert c["tcp_data_after_close"] == 1


def test_flush_turns_holes_into_gaps_then_eof() -> None:
    r, rec, c = make()
    r.start(0, True)
    r.segment(0, b"ab", 2, 1)
    r.segment(5, b"fg", 2, 2)
    r.fin(10, 3)
    r.flush(9)
    assert rec.events == [("data", b"ab", 1), ("gap", 3, 2), ("data", b"fg", 2), ("gap", 3, 9),
                          ("eof", 9)]
    assert c["tcp_gap"] == 2 and c["tcp_gap_bytes"] == 6
    r.flush(10)  # idempotent
    assert rec.events[-1] == ("eof", 9)


def test_snaplen_cut_tail_is_a_gap_in_place() -> None:
    r, rec, _c = make()
    r.start(0, True)
    r.segment(0, b"abc", 10, 1)  # 7 bytes cut by snaplen
    r.segment(10, b"klm", 3, 2)
    assert rec.events == [("data", b"abc", 1), ("gap", 7, 1), ("data", b"klm", 2)]
    # a cut segment buffered out of order
    r.segment(20, b"uv", 5, 3)
    r.segment(13, b"nopqrst", 7, 4)
    assert rec.gaps() == [(3, 7), (22, 3)]
    assert rec.data() == b"abcklmnopqrstuv"


def test_midstream_pickup_starts_at_first_payload_without_gap() -> None:
    r, rec, _c = make()
    r.segment(5000, b"xyz", 3, 1)
    assert rec.events == [("data", b"xyz", 1)] and r.midstream


def test_midstream_start_moves_back_while_nothing_is_delivered() -> None:
    r, rec, _c = make()
    r.start(5000, by_syn=False)
    r.segment(5003, b"def", 3, 1)
    r.segment(5000, b"abc", 3, 2)
    r.segment(4997, b"xyz", 3, 3)  # before the start, but bytes were delivered: an old copy
    assert rec.data() == b"abcdef"
    r2, rec2, _ = make()
    r2.start(5000, by_syn=False)
    r2.segment(5003, b"def", 3, 1)
    r2.segment(4997, b"xyz", 3, 2)  # nothing delivered yet: the stream starts earlier
    r2.segment(5000, b"abc", 3, 3)
    assert rec2.data() == b"xyzabcdef"


def test_peer_ack_hint_sets_a_midstream_start() -> None:
    r, rec, _c = make()
    r.acked(5000, 1, 7)  # the peer had received up to 5000
    r.acked(5003, 1, 8)
    r.segment(5003, b"def", 3, 2)  # reordered: 5000..5002 still to come
    assert rec.events == []
    r.segment(5000, b"abc", 3, 3)
    assert rec.data() == b"abcdef"
    # a FIN first, then its data
    r2, rec2, _ = make()
    r2.acked(100, 1, 1)
    r2.fin(103, 2)
    assert not r2.ended
    r2.segment(100, b"xyz", 3, 3)
    assert rec2.events == [("data", b"xyz", 3), ("eof", 3)]
    # the hinted bytes never come: no gap before a mid-stream direction's first byte
    r3, rec3, c3 = make()
    r3.acked(100, 1, 1)
    r3.segment(110, b"late", 4, 2)
    r3.flush(3)
    assert rec3.events == [("data", b"late", 2), ("eof", 3)] and c3["tcp_gap"] == 0


def test_in_capture_direction_reports_its_leading_hole_as_a_gap() -> None:
    # The peer's SYN was captured, this direction's SYN-ACK was not: every byte of it was sent during the
    # capture, so the hole between the peer's first ACK and the first captured byte is a loss (a gap),
    # whatever its size, and not a later start. A plain mid-stream pickup keeps its silent start.
    for in_capture, far in ((True, False), (True, True), (False, False)):
        r, rec, c = make()
        r.in_capture = in_capture
        r.acked(100, 1, 1)
        first = 100 + (Limits().max_ooo_bytes + 10 if far else 10)
        r.segment(first, b"late", 4, 2)
        r.flush(3)
        if in_capture:
            assert rec.events == [("gap", first - 100, 2), ("data", b"late", 2), ("eof", 3)]
            assert c["tcp_gap"] == 1 and c["tcp_gap_bytes"] == first - 100
        else:
            assert rec.events == [("data", b"late", 2), ("eof", 3)] and c["tcp_gap"] == 0


def test_syn_start_does_not_move_back() -> None:
    r, rec, c = make()
    r.start(100, by_syn=True)
    r.segment(97, b"abc", 3, 1)
    assert rec.events == [] and c["tcp_duplicate"] == 1


def test_sequence_wrap() -> None:
    r, rec, _c = make()
    isn = SEQ_MASK - 4
    r.start(seq_add(isn, 1), True)
    data = bytes(range(20))
    segs = [(seq_add(isn, 1 + i), data[i:i + 4]) for i in range(0, 20, 4)]
    for s, d in reversed(segs):
        r.segment(s, d, len(d), 1)
    assert rec.data() == data and r.nxt == seq_add(isn, 21)


def test_ooo_limits_declare_a_gap_and_bound_memory() -> None:
    lim = Limits(max_ooo_bytes=10, max_ooo_segments=3)
    r, rec, c = make(lim)
    r.start(0, True)
    for i in range(1, 6):  # offset 0..1 never arrives
        r.segment(2 * i, b"zz", 2, i)
        assert r.buffered_segments <= 3 and r.buffered_bytes <= 10
    assert c["tcp_ooo_overflow"] == 1 and rec.gaps() == [(0, 2)]
    assert rec.data() == b"zz" * 5


def test_peer_acks_beyond_a_hole_declare_it_lost() -> None:
    r, rec, _c = make()
    r.start(0, True)
    r.segment(0, b"ab", 2, 1)
    r.segment(4, b"ef", 2, 2)  # bytes 2..3 missing
    for i in range(ACK_STRIKES - 1):
        r.acked(6, 3, 100 + i)
        r.acked(6, 3, 100 + i)  # a duplicated packet is no new strike
    assert rec.data() == b"ab"
    r.acked(6, 4, 200)
    assert rec.events[1:] == [("gap", 2, 2), ("data", b"ef", 2)]
    r.acked(1, 5)  # old ACKs are no strikes
    assert r.strikes == 0


def test_lost_before_declares_holes_up_to_an_acknowledged_offset() -> None:
    r, rec, c = make()
    r.start(0, True)
    r.segment(0, b"ab", 2, 1)
    r.segment(4, b"ef", 2, 2)
    r.segment(8, b"ij", 2, 3)
    r.lost_before(12, 9)
    assert rec.events[1:] == [("gap", 2, 2), ("data", b"ef", 2), ("gap", 2, 3), ("data", b"ij", 3),
                              ("gap", 2, 9)]
    assert c["tcp_gap_bytes"] == 6 and r.nxt == 12
    r.fin(14, 10)
    r.lost_before(20, 11)  # never beyond the FIN
    assert rec.events[-2:] == [("gap", 2, 11), ("eof", 11)]


# -- properties ---------------------------------------------------------------------------------------

def _segments(stream: bytes, cuts: list[int]) -> list[tuple[int, int]]:
    pts = sorted({0, len(stream), *[c % (len(stream) + 1) for c in cuts]})
    return [(a, b) for a, b in itertools.pairwise(pts) if b > a]


def _shuffle_windows(items: list, window: int, rnd: random.Random) -> list:
    out = []
    for i in range(0, len(items), window):
        chunk = items[i:i + window]
        rnd.shuffle(chunk)
        out.extend(chunk)
    return out


@settings(max_examples=EXAMPLES * 300 // 100, deadline=None)
@given(stream=st.binary(min_size=1, max_size=300), cuts=st.lists(st.integers(0, 300), max_size=30),
       isn=st.integers(0, SEQ_MASK), seed=st.integers(0, 2**32), window=st.integers(1, 8),
       dup=st.floats(0, 0.5), overlaps=st.integers(0, 5))
def test_property_permuted_duplicated_overlapping_segments_give_the_exact_stream(
        stream: bytes, cuts: list[int], isn: int, seed: int, window: int, dup: float,
        overlaps: int) -> None:
    rnd = random.Random(seed)
    segs = _segments(stream, cuts)
    for _ in range(overlaps):  # retransmits that straddle segment boundaries, same bytes
        a = rnd.randrange(len(stream))
        segs.append((a, min(len(stream), a + rnd.randint(1, 40))))
    segs += [s for s in segs if rnd.random() < dup]
    order = _shuffle_windows(segs, window, rnd)
    r, rec, c = make()
    r.start(seq_add(isn, 1), True)
    first_ts: dict[int, int] = {}
    for ts, (a, b) in enumerate(order):
        for i in range(a, b):
            first_ts.setdefault(i, ts)
        r.segment(seq_add(isn, 1 + a), stream[a:b], b - a, ts)
    r.fin(seq_add(isn, 1 + len(stream)), len(order))
    assert rec.data() == stream
    assert rec.per_byte() == [(stream[i], first_ts[i]) for i in range(len(stream))]
    assert rec.events[-1][0] == "eof" and c["tcp_gap"] == 0 and c["tcp_overlap_conflict"] == 0
    assert r.buffered_bytes == 0


@settings(max_examples=EXAMPLES * 300 // 100, deadline=None)
@given(stream=st.binary(min_size=1, max_size=300), cuts=st.lists(st.integers(0, 300), max_size=30),
       isn=st.integers(0, SEQ_MASK), seed=st.integers(0, 2**32), window=st.integers(1, 8),
       drop=st.floats(0, 0.6))
def test_property_dropped_segments_become_gaps_at_the_right_offsets(
        stream: bytes, cuts: list[int], isn: int, seed: int, window: int, drop: float) -> None:
    rnd = random.Random(seed)
    segs = _segments(stream, cuts)
    kept = [s for s in segs if rnd.random() >= drop]
    order = _shuffle_windows(kept, window, rnd)
    r, rec, c = make()
    r.start(seq_add(isn, 1), True)
    for ts, (a, b) in enumerate(order):
        r.segment(seq_add(isn, 1 + a), stream[a:b], b - a, ts)
    r.fin(seq_add(isn, 1 + len(stream)), 10_000)
    r.flush(10_001)
    got = rec.per_byte()
    assert len(got) == len(stream)
    covered: set[int] = set()
    for a, b in kept:
        covered.update(range(a, b))
    for i, x in enumerate(got):
        if i in covered:
            assert x is not None and x[0] == stream[i], i
        else:
            assert x is None, i
    assert sum(n for _, n in rec.gaps()) == c["tcp_gap_bytes"] == len(stream) - len(covered)


@settings(max_examples=EXAMPLES * 200 // 100, deadline=None)
@given(stream=st.binary(min_size=1, max_size=400), cuts=st.lists(st.integers(0, 400), max_size=40),
       seed=st.integers(0, 2**32), drop=st.floats(0, 0.5), max_bytes=st.integers(1, 64),
       max_segs=st.integers(1, 6))
def test_property_limits_bound_memory_and_account_for_every_byte(
        stream: bytes, cuts: list[int], seed: int, drop: float, max_bytes: int, max_segs: int) -> None:
    rnd = random.Random(seed)
    segs = _segments(stream, cuts)
    kept = [s for s in segs if rnd.random() >= drop]
    order = _shuffle_windows(kept, 16, rnd)
    lim = Limits(max_ooo_bytes=max_bytes, max_ooo_segments=max_segs)
    r, rec, c = make(lim)
    r.start(7, True)
    for ts, (a, b) in enumerate(order):
        r.segment(7 + a, stream[a:b], b - a, ts)
        assert r.buffered_segments <= max_segs
        assert r.buffered_bytes <= max_bytes + (b - a)
    r.fin(7 + len(stream), 10_000)
    r.flush(10_001)
    got = rec.per_byte()
    assert len(got) == len(stream)  # delivered + gaps = stream length
    assert all(x is None or x[0] == stream[i] for i, x in enumerate(got))
    if c["tcp_ooo_overflow"] == 0:
        covered = {i for a, b in kept for i in range(a, b)}
        assert [x is not None for x in got] == [i in covered for i in range(len(stream))]
