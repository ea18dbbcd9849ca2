"""One direction of a TCP connection as an in-order byte stream with packet timestamps.

``StreamReassembler`` receives the segments of one direction in capture order and calls

- ``deliver(data, ts_ns)`` with in-order bytes and the timestamp of the packet that carried them
  (bytes buffered out of order keep their own packet's timestamp),
- ``gap(nbytes, ts_ns)`` for bytes that were never captured (a hole given up on, or a tail cut by
  snaplen), after which delivery continues with the bytes that follow the hole,
- ``eof(ts_ns)`` once, when the direction ends (its FIN was reached, or ``flush`` was called).

Rules (RFC 9293):
- Sequence numbers are compared modulo 2**32 (section 3.4); internally every byte gets an unbounded
  stream offset (``off``), so wrap-around only matters where a sequence number is turned into an offset.
- A SYN occupies one sequence number: the first data byte is ISN+1 (section 3.4). Without a SYN the
  first payload seen sets the start (mid-stream pickup, no gap is reported before it); until anything
  is delivered, an earlier segment (within ``max_ooo_bytes``) moves that start back.
- ``in_capture``: the direction has no SYN of its own but its connection's opening was captured (the
  peer's SYN; its own SYN-ACK lost). Every byte of it was then sent while the capture ran, so it starts
  at the peer's lowest ACK however far before its first payload, and a hole before its first captured
  byte is a capture loss like any other: reported as a gap, not a later start.
- Retransmitted and overlapping bytes are trimmed; the first copy wins (what a passive monitor can
  know; RFC 9293 section 3.10.7.4 leaves overlap policy to the receiver). Differing overlaps are counted.
- A FIN occupies the sequence number after the last data byte (section 3.4): the direction ends once
  every byte before it has been delivered; bytes beyond it are counted and dropped.
- Out-of-order bytes are buffered up to ``limits.max_ooo_bytes`` / ``max_ooo_segments``; beyond that
  the oldest hole is declared a gap.

The common case (the next expected segment, nothing buffered) is the first block of ``segment``.
"""
from __future__ import annotations

from bisect import insort
from collections.abc import Callable
from operator import itemgetter

from netrum.counters import Counters
from netrum.flows.seq import SEQ_HALF, SEQ_MASK
from netrum.limits import Limits

DeliverFn = Callable[[bytes, int], None]
GapFn = Callable[[int, int], None]
EofFn = Callable[[int], None]

# A buffered out-of-order piece: (start offset, end offset, captured bytes, ts_ns, ack). The captured
# bytes may be shorter than end - start: the rest was cut by snaplen and is delivered as a gap. ``ack`` is
# the acknowledgment number of the packet that carried it (-1 if none): the flow table reads it as
# ``cur_ack`` while the piece is delivered.
_Piece = tuple[int, int, bytes, int, int]
_START = itemgetter(0)

# Peer ACKs beyond a hole (with bytes buffered after it) before the hole is declared a gap. A mirror
# port reorders within a few packets, so a copy of the missing segment would have arrived by then.
ACK_STRIKES = 8


class StreamReassembler:
    __slots__ = (
        "base",
        "counters",
        "cur_ack",
        "deliver",
        "ended",
        "eof",
        "fast",
        "fin_off",
        "gap",
        "hint",
        "in_capture",
        "last",
        "limits",
        "midstream",
        "nxt",
        "off",
        "ooo",
        "ooo_bytes",
        "start_off",
        "strike_ack",
        "strike_nxt",
        "strike_seq",
        "strikes",
    )

    def __init__(self, counters: Counters, limits: Limits, deliver: DeliverFn, gap: GapFn,
                 eof: EofFn) -> None:
        self.counters = counters
        self.limits = limits
        self.deliver = deliver
        self.gap = gap
        self.eof = eof
        self.cur_ack = -1  # during deliver(): the ACK number of the packet that carried the bytes
        self.nxt = -1  # next expected sequence number; -1 while the start is unknown
        self.off = 0  # stream offset of nxt (bytes delivered or declared lost so far, from the start)
        self.base = 0  # sequence number of stream offset 0
        self.start_off = 0  # offset where delivery started (moves back on mid-stream pickup)
        self.fast = False  # nxt known, nothing buffered, no FIN seen, not ended: the fast path applies
        self.ooo: list[_Piece] = []  # sorted, non-overlapping, all beyond off
        self.ooo_bytes = 0
        self.fin_off: int | None = None  # stream offset of the FIN
        self.ended = False  # eof was called
        self.midstream = False  # started without a SYN
        self.last = b""  # the last bytes delivered (they end at off): to tell conflicting retransmits
        self.strikes = 0  # peer ACKs seen beyond the hole at nxt (see ``acked``)
        self.strike_nxt = -1
        self.strike_ack = -1  # the peer's last striking (ack, seq): a duplicated packet is no new strike
        self.strike_seq = -1
        self.hint = -1  # before the start is known: the lowest ACK the peer sent (where we stood)
        # Set by the flow table: sent wholly during the capture although started without a SYN (see the
        # module docstring): bytes before the first captured one are lost, not from before the capture.
        self.in_capture = False

    # -- public API ---------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self.nxt >= 0

    @property
    def buffered_bytes(self) -> int:
        return self.ooo_bytes

    @property
    def buffered_segments(self) -> int:
        return len(self.ooo)

    def start(self, seq: int, by_syn: bool) -> None:
        """Set the sequence number of the first byte (ISN+1 after a SYN, or a mid-stream start).
        Ignored once the start is known."""
        if self.nxt >= 0:
            return
        self.nxt = self.base = seq & SEQ_MASK
        self.off = self.start_off = 0
        self.midstream = not by_syn
        self._refresh()

    def segment(self, seq: int, payload: bytes, payload_len: int, ts_ns: int, ack: int = -1) -> None:
        """Take one segment's payload. ``payload_len`` >= len(payload): the tail beyond the captured
        bytes was cut by snaplen and is delivered as a gap at its position."""
        if seq == self.nxt and self.fast and len(payload) == payload_len and payload_len:
            # Fast path: the next expected bytes, nothing buffered.
            self.nxt = (seq + payload_len) & SEQ_MASK
            self.off += payload_len
            self.last = payload
            self.cur_ack = ack
            self.deliver(payload, ts_ns)
            return
        self._segment(seq, payload, payload_len, ts_ns, ack)

    def fin(self, seq: int, ts_ns: int) -> None:
        """A FIN occupying sequence number ``seq`` (segment seq + payload length)."""
        if self.ended or self.fin_off is not None:
            return
        if self.nxt < 0:
            self.start(self._hinted_start(seq), False)
        f = self.off + self._rel(seq)
        f = max(f, self.off)  # a FIN inside bytes already delivered: end where we are
        self.fin_off = f
        dropped = False
        while self.ooo and self.ooo[-1][1] > f:
            s, _e, d, t, k = self.ooo.pop()
            self.ooo_bytes -= len(d)
            if s < f:
                d = d[: f - s]
                self.ooo.append((s, f, d, t, k))
                self.ooo_bytes += len(d)
                dropped = True
                break
            dropped = True
        if dropped:
            self.counters["tcp_data_after_close"] += 1
        self._refresh()
        self._check_fin(ts_ns)

    def acked(self, ack: int, ts_ns: int, peer_end: int = -1) -> None:
        """The peer acknowledged ``ack`` (RFC 9293 section 3.4: every byte before it was received).
        Before the start is known, the lowest ACK is kept as a hint: a direction picked up mid-stream
        starts there if its first segment lies a little beyond (the earlier one was reordered).
        While bytes are buffered behind a hole, each peer packet (``ack``, and ``peer_end``: its seq + length) that acknowledges
        bytes beyond the hole is a strike (a duplicated packet is not); after
        ACK_STRIKES the hole is declared a gap: the bytes reached the peer but not the capture, and a
        reordered copy would have shown up within that many packets."""
        if self.nxt < 0:
            if self.hint < 0 or ((ack - self.hint + SEQ_HALF) & SEQ_MASK) - SEQ_HALF < 0:
                self.hint = ack
            return
        if not self.ooo or self.ended:
            return
        if ((ack - self.nxt + SEQ_HALF) & SEQ_MASK) - SEQ_HALF <= 0:
            return
        if self.strike_nxt != self.nxt:
            self.strike_nxt = self.nxt
            self.strikes = 0
        elif ack == self.strike_ack and peer_end == self.strike_seq:
            return
        self.strike_ack = ack
        self.strike_seq = peer_end
        self.strikes += 1
        if self.strikes >= ACK_STRIKES:
            self.strikes = 0
            self._skip_to(self.ooo[0][0], self.ooo[0][3])
            self._drain()
            self._refresh()
            self._check_fin(ts_ns)

    def outside(self, seq: int) -> bool:
        """A segment starting at ``seq`` cannot belong to this stream: it starts after the stream's end (its
        FIN, or its last byte once ended) or, for a stream started by a SYN, before its first byte. Such
        bytes on a finished 4-tuple open the next connection (port reuse)."""
        if self.nxt < 0:
            return False
        s = self.off + self._rel(seq)
        end = self.fin_off if self.fin_off is not None else self.off
        return s > end or (not self.midstream and s < self.start_off)

    def lost_before(self, target_off: int, ts_ns: int) -> None:
        """Every byte before stream offset ``target_off`` reached the peer (it acknowledged them): the
        holes before it are capture losses. Declare them gaps (buffered bytes in between are delivered)."""
        if self.ended or self.nxt < 0:
            return
        if self.fin_off is not None:
            target_off = min(target_off, self.fin_off)
        while self.off < target_off:
            if self.ooo and self.ooo[0][0] <= target_off:
                self._skip_to(self.ooo[0][0], self.ooo[0][3])
            else:
                self._skip_to(target_off, ts_ns)
            self._drain()
        self._refresh()
        self._check_fin(ts_ns)

    def flush(self, ts_ns: int) -> None:
        """The direction is over (RST, close, idle, end of capture): declare every hole a gap, deliver
        what was buffered, then eof (a hole before a FIN becomes a gap before the eof)."""
        if self.ended:
            return
        while self.ooo:
            s = self.ooo[0][0]
            self._skip_to(s, self.ooo[0][3])
            self._drain()
        if self.fin_off is not None and self.off < self.fin_off:
            self._skip_to(self.fin_off, ts_ns)
        self.ended = True
        self.fast = False
        self.eof(ts_ns)

    # -- general path -------------------------------------------------------------------------------

    def _rel(self, seq: int) -> int:
        return ((seq - self.nxt + SEQ_HALF) & SEQ_MASK) - SEQ_HALF

    def _hinted_start(self, seq: int) -> int:
        """Where a direction picked up mid-stream starts, given its first segment: at the peer's lowest
        ACK if that is a little earlier (earlier bytes may still arrive, reordered), else at seq. A direction
        sent wholly during the capture (``in_capture``) starts at the peer's lowest ACK however far back:
        the bytes in between were sent and missed by the capture."""
        h = self.hint
        if h >= 0:
            d = ((seq - h + SEQ_HALF) & SEQ_MASK) - SEQ_HALF
            if 0 < d and (self.in_capture or d <= self.limits.max_ooo_bytes):
                return h
        return seq

    def _refresh(self) -> None:
        self.fast = self.nxt >= 0 and not self.ooo and self.fin_off is None and not self.ended

    def _segment(self, seq: int, payload: bytes, plen: int, ts: int, ack: int = -1) -> None:
        if plen <= 0:
            return
        c = self.counters
        if self.nxt < 0:
            if self.ended:
                c["tcp_data_after_close"] += 1
                return
            self.start(self._hinted_start(seq), False)
        rel = self._rel(seq)
        s = self.off + rel
        if (rel < 0 and self.midstream and self.off == self.start_off and not self.ended
                and -rel <= self.limits.max_ooo_bytes):
            # Mid-stream pickup and nothing delivered yet: this segment was sent before the one that set
            # the start (reordered), so the stream starts earlier.
            self.off = self.start_off = s
            self.nxt = seq & SEQ_MASK
        e = s + plen
        if self.ended:
            c["tcp_duplicate" if e <= self.off else "tcp_data_after_close"] += 1
            return
        fin = self.fin_off
        if fin is not None and e > fin:
            c["tcp_data_after_close"] += 1
            if s >= fin:
                return
            payload = payload[: fin - s]
            e = fin
        off = self.off
        if e <= off:
            c["tcp_duplicate"] += 1
            if self._conflicts_with_last(s, payload):
                c["tcp_overlap_conflict"] += 1
            return
        trimmed = False
        if s < off:
            trimmed = True
            if self._conflicts_with_last(s, payload):
                c["tcp_overlap_conflict"] += 1
            payload = payload[off - s:]
            s = off
        if s == off and not self.ooo:
            if trimmed:
                c["tcp_overlap"] += 1
            self._emit(s, e, payload, ts, ack)
        else:
            inserted = self._insert(s, e, payload, ts, ack)
            if not inserted:
                c["tcp_duplicate"] += 1
            elif trimmed or inserted < 0:
                c["tcp_overlap"] += 1
            if inserted and s > self.off:
                c["tcp_out_of_order"] += 1
            self._drain()
            self._enforce_limits()
        self._refresh()
        self._check_fin(ts)

    def _conflicts_with_last(self, s: int, payload: bytes) -> bool:
        """Do the captured bytes of a segment starting at offset s differ from the last delivered bytes
        where they overlap? (Older delivered bytes are not kept.)"""
        last = self.last
        ls = self.off - len(last)
        a = max(s, ls)
        b = min(s + len(payload), self.off)
        if a >= b:
            return False
        return payload[a - s: b - s] != last[a - ls: b - ls]

    def _insert(self, s: int, e: int, data: bytes, ts: int, ack: int = -1) -> int:
        """Buffer the parts of [s, e) not buffered yet. Returns 0 if nothing was new, 1 if all of it was,
        -1 if only some of it was (an overlap)."""
        ooo = self.ooo
        lo, hi = 0, len(ooo)
        while lo < hi:  # first piece ending after s
            mid = (lo + hi) // 2
            if ooo[mid][1] <= s:
                lo = mid + 1
            else:
                hi = mid
        i = lo
        pos = s
        gaps: list[tuple[int, int]] = []
        overlapped = conflict = False
        while i < len(ooo) and ooo[i][0] < e:
            bs, be, bd, _, _ = ooo[i]
            if bs > pos:
                gaps.append((pos, bs))
            a, b = max(pos, bs), min(e, be)
            if a < b:
                overlapped = True
                x = data[a - s: b - s]
                y = bd[a - bs: b - bs]
                m = min(len(x), len(y))
                if x[:m] != y[:m]:
                    conflict = True
            pos = max(pos, be)
            i += 1
        if pos < e:
            gaps.append((pos, e))
        if conflict:
            self.counters["tcp_overlap_conflict"] += 1
        if not gaps:
            return 0
        for a, b in gaps:
            d = data[a - s: b - s] if (a != s or b != e) else data
            insort(ooo, (a, b, d, ts, ack), key=_START)
            self.ooo_bytes += len(d)
        return -1 if overlapped else 1

    def _emit(self, s: int, e: int, data: bytes, ts: int, ack: int = -1) -> None:
        """Deliver [s, e) (s == off): the captured bytes, then the snaplen-cut tail as a gap."""
        n = len(data)
        cut = e - s - n
        self.off = e
        self.nxt = (self.base + e) & SEQ_MASK
        self.last = b"" if cut else data
        if n:
            self.cur_ack = ack
            self.deliver(data, ts)
        if cut > 0:
            c = self.counters
            c["tcp_gap"] += 1
            c["tcp_gap_bytes"] += cut
            self.gap(cut, ts)

    def _drain(self) -> None:
        ooo = self.ooo
        while ooo and ooo[0][0] <= self.off:
            s, e, d, t, k = ooo.pop(0)
            self.ooo_bytes -= len(d)
            if e <= self.off:
                continue
            if s < self.off:
                d = d[self.off - s:]
                s = self.off
            self._emit(s, e, d, t, k)

    def _skip_to(self, target: int, ts: int) -> None:
        n = target - self.off
        if n <= 0:
            return
        if self.midstream and self.off == self.start_off and not self.in_capture:
            # Nothing delivered yet in a direction picked up mid-stream: it simply starts later (the
            # bytes before may have been sent before the capture began). Not when the direction was sent
            # wholly during the capture: its leading hole is a loss, reported as a gap, so that the
            # handler knows whole messages may be missing there (and the client's ACK offsets, already
            # computed from this start, keep their meaning).
            self.off = self.start_off = target
            self.nxt = (self.base + target) & SEQ_MASK
            return
        self.off = target
        self.nxt = (self.base + target) & SEQ_MASK
        self.last = b""
        c = self.counters
        c["tcp_gap"] += 1
        c["tcp_gap_bytes"] += n
        self.gap(n, ts)

    def _enforce_limits(self) -> None:
        lim = self.limits
        if self.ooo_bytes <= lim.max_ooo_bytes and len(self.ooo) <= lim.max_ooo_segments:
            return
        self.counters["tcp_ooo_overflow"] += 1
        while self.ooo and (self.ooo_bytes > lim.max_ooo_bytes or len(self.ooo) > lim.max_ooo_segments):
            self._skip_to(self.ooo[0][0], self.ooo[0][3])
            self._drain()

    def _check_fin(self, ts: int) -> None:
        if self.fin_off is not None and not self.ended and self.off >= self.fin_off:
            self.ended = True
            self.fast = False
            self.eof(ts)
