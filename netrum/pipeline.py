"""The Analyzer: frames in, transactions out. Wires decode -> flows -> http; opens nothing itself.

    analyzer = Analyzer(sink=transactions.append)
    analyzer.feed(frames)        # any iterable of (ts_ns, linktype, data, wire_len)
    analyzer.finish()            # end of capture: flush every open connection

The same object serves a file, a live interface or a cluster worker: only the frame source differs.

Scale-out by flow affinity (``partition=(k, n)``): worker k of n reads every frame but analyses only the
connections given to k (``FlowAssigner``: each new 4-tuple to the least-loaded worker, a choice every
worker computes alike from the frames it reads), as Zeek clusters and NIC receive-side scaling do. Each
connection is then analysed whole, by one worker, with the very code of the single process, so the union
of the workers' outputs is the single run's output. What a worker must still do for
the frames it skips, to stay exact:

- the flow table's packet clock and its once-a-second lifecycle sweep advance on every TCP segment the
  table would take (``FlowTable.advance``), so that idle expiry happens at the same packet time;
- frames the fast prefilter cannot place are decoded in full (IP fragments, tunnels, VLANs...) into a
  scratch ledger that is kept only when the frame is this worker's; frames that decode to nothing
  (not TCP, unknown, truncated) belong to worker 0;
- every transaction gets an ``EmissionKey`` that sorts the workers' outputs back into the single run's
  order (see ``EmissionKey``).

Order of transactions. Within one frame a single connection emits, in its own order; except when the
lifecycle sweep (once per second of packet time) or the end of the capture closes many connections at
once. Those batches are written in a canonical order, by the first timestamp of each connection's first
transaction in the batch, then connection id (stable, so a connection's own order is kept), in the single
run as in every worker: the flow table's internal order depends on how all flows interleave, which a
worker that sees only its own flows cannot reproduce.
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from netrum.counters import Counters
from netrum.decode.frames import Decoder, Segment
from netrum.flows.table import FlowTable
from netrum.http.connection import HttpConnection
from netrum.http.consumer import ConsumerConfig
from netrum.http.parser import classify_start
from netrum.limits import DEFAULT_LIMITS, SECOND_NS, Limits
from netrum.records import ConnInfo, Frame, Transaction

# (global frame index, group, batch order timestamp, connection id, sequence number in this analyzer).
# group 0: a batch closed by the sweep that ran at that frame (or, with frame index = frames + 1, by the
# end of the capture), ordered by (timestamp, connection id); group 1: the frame's own connection, whose
# transactions come after the sweep's. Sequence numbers keep each connection's order; keys are unique
# across workers (a connection belongs to one worker), so a k-way merge on them is the single run's order.
EmissionKey = tuple[int, int, int, str, int]

_NEVER = -(1 << 63)  # before any packet time (a sweep is due at the first segment)
# Fast prefilter: the decoder fast path's conditions, reading addresses as integers and no payload.
_PEEK_IPV4_TCP = struct.Struct("!BxHxxHxBxxIIHHxxxxxxxxB").unpack_from  # vihl total frag proto src dst ports doff
_PEEK_IPV6_TCP = struct.Struct("!IHBx16s16sHHxxxxxxxxB").unpack_from  # vtcfl plen nxt src dst ports doff
_FAST_ETHERTYPE = {b"\x08\x00": 4, b"\x86\xdd": 6}
_FAST_NULL_AF = {
    **{struct.pack("<I", af): 6 for af in (24, 28, 30)},
    **{struct.pack(">I", af): 6 for af in (24, 28, 30)},
    struct.pack("<I", 2): 4,
    struct.pack(">I", 2): 4,
}


# A connection's key for FlowAssigner: its two endpoints as integers (address << 16 | port), lower first.
FlowKey = tuple[int, int]


class FlowAssigner:
    """Which worker owns each connection: the least-loaded worker (in TCP segments so far) when the
    connection's 4-tuple is first seen, ties to the lowest number. The choice is a pure function of the
    frame stream, which every worker reads whole, so all workers compute the same owners without talking.
    On a capture dominated by a hundred long keep-alive connections a hash of the 4-tuple splits the work
    55/45 or worse (the long ones fall where they fall); this splits it within a few percent.

    A 4-tuple keeps its owner until it has been silent for ``forget_ns`` of packet time, longer than the
    flow table can remember it (idle timeout, closed-flow linger, the sweep's grace periods); entries are
    dropped a whole generation at a time (two dicts), so the table holds the 4-tuples seen within the last
    two periods.
    """

    __slots__ = ("cur", "forget_ns", "load", "old", "rotate_at")

    def __init__(self, n: int, forget_ns: int) -> None:
        self.load = [0] * n  # TCP segments given to each worker so far
        self.cur: dict[FlowKey, int] = {}
        self.old: dict[FlowKey, int] = {}
        self.forget_ns = forget_ns
        self.rotate_at: int | None = None

    def owner(self, a: int, b: int, ts_ns: int) -> int:
        """The owner of a segment between endpoints a and b (``endpoint``), counted in its load. The hot
        loops inline this: ``cur.get(key)``, ``assign`` on a miss, ``load[owner] += 1``."""
        key = (a, b) if a < b else (b, a)
        o = self.cur.get(key)
        if o is None:
            o = self.assign(key, ts_ns)
        self.load[o] += 1
        return o

    def assign(self, key: FlowKey, ts_ns: int) -> int:
        """A 4-tuple not in the current generation: rotate generations when due, then take its owner from
        the previous one or give it to the least-loaded worker. Refresh any local copy of ``cur`` after."""
        if self.rotate_at is None:
            self.rotate_at = ts_ns + self.forget_ns
        elif ts_ns >= self.rotate_at:
            self.old = self.cur
            self.cur = {}
            self.rotate_at = ts_ns + self.forget_ns
        o = self.old.pop(key, None)
        if o is None:
            load = self.load
            o = load.index(min(load))
        self.cur[key] = o
        return o


def endpoint(addr: bytes, port: int) -> int:
    return (int.from_bytes(addr, "big") << 16) | port


def peek_endpoints(linktype: int, data: bytes) -> FlowKey | None:
    """The two endpoints of a frame read straight from its headers (``endpoint`` of source, then of
    destination), or None when the frame is not one the decoder's fast path takes (then decode it). Must
    agree with ``Decoder.decode``; the hot loops inline its Ethernet/IPv4 case."""
    if linktype == 1:
        version = _FAST_ETHERTYPE.get(data[12:14], 0)
        off = 14
    elif linktype == 0:
        version = _FAST_NULL_AF.get(data[:4], 0)
        off = 4
    elif linktype == 101:
        version = data[0] >> 4 if data else 0
        off = 0
    elif linktype == 113:
        version = _FAST_ETHERTYPE.get(data[14:16], 0)
        off = 16
    else:
        return None
    size = len(data)
    if version == 4 and size - off >= 40:
        vihl, total, frag, proto, srci, dsti, sport, dport, doff = _PEEK_IPV4_TCP(data, off)
        if vihl == 0x45 and proto == 6 and not frag & 0x3FFF and total >= 40 and doff >= 0x50 \
                and off + 20 + ((doff >> 4) << 2) <= min(off + total, size):
            return (srci << 16) | sport, (dsti << 16) | dport
    elif version == 6 and size - off >= 60:
        vtcfl, plen, nxt, src, dst, sport, dport, doff = _PEEK_IPV6_TCP(data, off)
        if nxt == 6 and vtcfl >> 28 == 6 and plen >= 20 and doff >= 0x50 \
                and off + 40 + ((doff >> 4) << 2) <= min(off + 40 + plen, size):
            return endpoint(src, sport), endpoint(dst, dport)
    return None


def _batch_order(batch: list[Transaction]) -> list[tuple[int, str, Transaction]]:
    """A batch closed at once, in canonical order: (first timestamp of the connection's first transaction
    in the batch, connection id), stable within a connection."""
    first: dict[str, int] = {}
    keyed = []
    for tx in batch:
        ts = first.get(tx.conn_id)
        if ts is None:
            t = tx.request_ts_ns if tx.request_ts_ns is not None else tx.response_ts_ns
            ts = first[tx.conn_id] = t if t is not None else -1
        keyed.append((ts, tx.conn_id, tx))
    keyed.sort(key=lambda e: (e[0], e[1]))
    return keyed


class Analyzer:
    def __init__(
        self,
        sink: Callable[[Transaction], None],
        limits: Limits = DEFAULT_LIMITS,
        server_ports: frozenset[int] | None = None,
        server_addrs: frozenset[bytes] | None = None,
        counters: Counters | None = None,
        partition: tuple[int, int] | None = None,
        consumer: ConsumerConfig | None = None,
    ) -> None:
        """``partition=(k, n)``: analyse only the connections that ``FlowAssigner`` gives to worker k of n
        (see the module docstring); ``emission_key`` then holds the key of the transaction being sunk.
        ``consumer``: how each transaction's consumer is decided (identity header, trusted proxies)."""
        self.consumer = consumer
        self.counters = counters if counters is not None else Counters()
        self.limits = limits
        self._sink = sink
        self.server_ports = server_ports
        self.server_addrs = server_addrs
        if partition is not None:
            k, n = partition
            if not 0 <= k < n:
                raise ValueError(f"partition {k} of {n}: need 0 <= k < n")
        self.partition = partition
        self._filtered = server_ports is not None or server_addrs is not None
        # Partitioned: who owns each connection. A 4-tuple keeps its owner while the flow table could still
        # hold state for it: idle timeout, closed-flow linger, FIN grace, pending span and sweep periods.
        self.assigner = FlowAssigner(partition[1] if partition is not None else 1,
                                     limits.flow_idle_timeout_ns + limits.closed_flow_linger_ns + 4 * SECOND_NS)
        # Partitioned: the decoder counts into a scratch ledger, kept only for this worker's frames.
        self._scratch = Counters()
        self.decoder = Decoder(self.counters if partition is None else self._scratch, limits)
        self._peek_decoder = Decoder(Counters(), limits)  # stateless use only (fast-path frames)
        self.flows = FlowTable(self.counters, limits, self._make_handler, classify_start,
                               server_ports, server_addrs)
        self.first_ts_ns: int | None = None
        self.last_ts_ns: int | None = None
        self.linktypes: set[int] = set()
        self.frames = 0  # frames fed so far (partitioned runs: the global frame index)
        self.emission_key: EmissionKey = (0, 0, 0, "", 0)
        self._batch: list[Transaction] | None = None  # collecting a sweep's or the end's transactions
        self._next_sweep = _NEVER
        self._clock = _NEVER  # partitioned: the flow table's packet clock, over skipped segments too
        self._synced = _NEVER  # partitioned: the clock value the flow table was last told
        self._frame = 0
        self._seq = 0
        # Transactions the end of the capture closed in connections this analyzer was not given (the compiled
        # lane's, netrum.lane): written in the end batch with its own, in the same canonical order.
        self.closed_elsewhere: list[Transaction] = []

    def _make_handler(self, info: ConnInfo) -> HttpConnection:
        return HttpConnection(info, self.counters, self.limits,
                              self._emit if self.partition is None else self._emit_keyed, self.consumer)

    # -- transactions out ---------------------------------------------------------------------------

    def _emit(self, tx: Transaction) -> None:
        batch = self._batch
        if batch is not None:
            batch.append(tx)
        else:
            self._sink(tx)

    def _emit_keyed(self, tx: Transaction) -> None:
        batch = self._batch
        if batch is not None:
            batch.append(tx)
            return
        self._seq += 1
        self.emission_key = (self._frame, 1, 0, "", self._seq)
        self._sink(tx)

    def _flush_batch(self, batch: list[Transaction], frame: int) -> None:
        keyed = self.partition is not None
        sink = self._sink
        for ts, cid, tx in _batch_order(batch):
            if keyed:
                self._seq += 1
                self.emission_key = (frame, 0, ts, cid, self._seq)
            sink(tx)

    def _sweep_to(self, ts_ns: int, frame: int) -> int:
        """Run the flow table's lifecycle sweep (due at ts_ns), collecting what it closes into one batch;
        returns the packet time of the next sweep."""
        batch: list[Transaction] = []
        self._batch = batch
        try:
            next_sweep = self.flows.advance(ts_ns)
        finally:
            self._batch = None
        if batch:
            self._flush_batch(batch, frame)
        return next_sweep

    def _takes(self, seg: Segment) -> bool:
        """Would the flow table take this segment (the --port/--server filters)?"""
        sp = self.server_ports
        if sp is not None and seg[2] not in sp and seg[3] not in sp:
            return False
        sa = self.server_addrs
        return sa is None or seg[0] in sa or seg[1] in sa

    def _sweep_due(self, ts_ns: int, seg: Segment, next_sweep: int) -> int:
        if not self._takes(seg):
            return next_sweep  # a filtered segment does not move the packet clock
        return self._sweep_to(ts_ns, self.frames)

    # -- frames in ----------------------------------------------------------------------------------

    def feed(self, frames: Iterable[Frame]) -> None:
        """Process frames in capture order. The hot loop: one decode call and one flow-table call per
        frame, nothing else (the sweep, once per second of packet time, is started from here so that what
        it closes is written in canonical order)."""
        if self.partition is not None:
            self._feed_partitioned(frames)
            return
        decode = self.decoder.decode
        packet = self.flows.packet
        last = -1 if self.last_ts_ns is None else self.last_ts_ns
        first = self.first_ts_ns
        linktype_seen = -1
        next_sweep = self._next_sweep
        for ts_ns, linktype, data, _wire_len in frames:
            if ts_ns > last:
                last = ts_ns
                if first is None:
                    first = ts_ns
            elif first is not None and ts_ns < first:
                first = ts_ns
            if linktype != linktype_seen:
                linktype_seen = linktype
                self.linktypes.add(linktype)
            seg = decode(ts_ns, linktype, data)
            if seg is not None:
                if ts_ns >= next_sweep:
                    next_sweep = self._sweep_due(ts_ns, seg, next_sweep)
                packet(ts_ns, *seg)
        self._next_sweep = next_sweep
        self.first_ts_ns = first
        self.last_ts_ns = last if last >= 0 else None

    def _feed_partitioned(self, frames: Iterable[Frame]) -> None:
        """The hot loop of worker k of n: a foreign frame costs one header peek and a compare (plus a
        clock update); this worker's frames take exactly the single run's path (``own_frame``)."""
        k = self.partition[0]  # type: ignore[index]
        own = self.own_frame
        takes = self._takes
        filtered = self._filtered
        peek4 = _PEEK_IPV4_TCP
        assigner = self.assigner
        cur = assigner.cur
        load = assigner.load
        last = -1 if self.last_ts_ns is None else self.last_ts_ns
        first = self.first_ts_ns
        linktype_seen = -1
        i = self.frames
        try:
            for ts_ns, linktype, data, _wire_len in frames:
                i += 1
                if ts_ns > last:
                    last = ts_ns
                    if first is None:
                        first = ts_ns
                elif first is not None and ts_ns < first:
                    first = ts_ns
                if linktype != linktype_seen:
                    linktype_seen = linktype
                    self.linktypes.add(linktype)
                # peek_endpoints (inlined for Ethernet/IPv4, the common case) and FlowAssigner.owner
                ends: FlowKey | None = None
                if linktype == 1 and data[12:14] == b"\x08\x00" and len(data) >= 54:
                    vihl, total, frag, proto, srci, dsti, sport, dport, doff = peek4(data, 14)
                    if vihl == 0x45 and proto == 6 and not frag & 0x3FFF and total >= 40 and doff >= 0x50 \
                            and 34 + ((doff >> 4) << 2) <= min(14 + total, len(data)):
                        ends = (srci << 16) | sport, (dsti << 16) | dport
                else:
                    ends = peek_endpoints(linktype, data)
                if ends is None:
                    owner = -1
                else:
                    a, b = ends
                    key = ends if a < b else (b, a)
                    owner = cur.get(key)  # type: ignore[assignment]
                    if owner is None:
                        owner = assigner.assign(key, ts_ns)
                        cur = assigner.cur
                    load[owner] += 1
                if owner == k or owner < 0:
                    own(i, ts_ns, linktype, data, owner)
                    cur = assigner.cur
                elif ts_ns > self._clock and (not filtered or takes(self._peek_segment(linktype, data))):
                    # Another worker's segment: only the packet clock moves.
                    self._clock = ts_ns
                    if ts_ns >= self._next_sweep:
                        self._tick(ts_ns, i)
        finally:
            self.frames = i
            self.first_ts_ns = first
            self.last_ts_ns = last if last >= 0 else None

    def own_frame(self, index: int, ts_ns: int, linktype: int, data: bytes, owner: int) -> None:
        """Partitioned: frame number ``index`` (1-based, of the whole input) when this worker owns it
        (``owner`` = k) or its owner is not known before decoding (``owner`` = -1). The caller keeps
        ``frames``, the span and ``linktypes``, and reports another worker's segments to ``skip_segment``."""
        k = self.partition[0]  # type: ignore[index]
        seg = self.decoder.decode(ts_ns, linktype, data)
        if owner < 0:
            owner = 0 if seg is None else self.assigner.owner(endpoint(seg[0], seg[2]), endpoint(seg[1], seg[3]),
                                                              ts_ns)
        scratch = self._scratch
        if scratch:
            if owner == k:
                self.counters.merge(scratch)
            scratch.clear()
        if seg is None:
            return
        takes = not self._filtered or self._takes(seg)
        if owner != k:
            if takes:
                self.skip_segment(index, ts_ns)
            return
        clock = self._clock
        if clock > self._synced:
            self.flows.advance(clock)  # skipped segments moved the clock (no sweep: none was due)
            self._synced = clock
        self._frame = index
        if takes and ts_ns >= self._next_sweep:
            self._tick(ts_ns, index)
        self.flows.packet(ts_ns, *seg)
        if takes and ts_ns > clock:
            self._clock = self._synced = ts_ns

    def skip_segment(self, index: int, ts_ns: int) -> None:
        """Partitioned: another worker's TCP segment that the flow table would take (it passes the
        filters) at frame ``index``: the packet clock moves, and the sweep runs if it is due."""
        if ts_ns > self._clock:
            self._clock = ts_ns
            if ts_ns >= self._next_sweep:
                self._tick(ts_ns, index)

    def _tick(self, ts_ns: int, index: int) -> None:
        self._next_sweep = self._sweep_to(ts_ns, index)
        self._synced = max(self._synced, ts_ns)

    def _peek_segment(self, linktype: int, data: bytes) -> Segment:
        """A fast-path frame's segment without counting anything (for the filters on skipped frames)."""
        seg = self._peek_decoder.decode(0, linktype, data)
        assert seg is not None  # peek_endpoints only places frames the fast path decodes
        return seg

    def finish(self) -> None:
        """End of capture: every connection still open is closed at the last packet's time (one batch, in
        canonical order)."""
        if self.partition is not None and self._clock > self._synced:
            self.flows.advance(self._clock)
        batch: list[Transaction] = []
        self._batch = batch
        try:
            self.flows.close_all(self.last_ts_ns or 0)
        finally:
            self._batch = None
        batch.extend(self.closed_elsewhere)
        self.closed_elsewhere = []
        self._flush_batch(batch, self.frames + 1)

    @property
    def span_ns(self) -> int | None:
        if self.first_ts_ns is None or self.last_ts_ns is None:
            return None
        return self.last_ts_ns - self.first_ts_ns
