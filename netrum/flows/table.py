"""TCP connections by 4-tuple: roles, per-direction reassembly, the ACK rule, lifecycle on packet time.

``FlowTable.packet`` takes one decoded TCP segment. Each connection goes through these states:

    PENDING  first packets held (at most PENDING_MAX_PACKETS, PENDING_SPAN_NS of packet time) until both
             directions' initial sequence numbers are known from the handshake (or an RST, or the bound),
             then replayed in file order: a handshake or first data reordered by a mirror port resolves
             exactly as in order, and a SYN present in the capture is never called mid-stream
    ACTIVE   roles known, handler created, bytes reassembled and delivered
    DONE     the handler wants no more bytes (not HTTP, tunnel): packets are only counted
    CLOSED   ended by FIN/RST; kept closed_flow_linger_ns so late retransmits create no new flow
    IGNORED  the server side is outside the --port/--server filters

Roles (who is the client), in order of trust: the handshake (RFC 9293 section 3.5: the SYN without ACK
comes from the client, the SYN-ACK from the server), then the first HTTP start line (each direction's
first held bytes go to ``classify_start``), then port numbers (HTTP_PORTS, else the lower port serves).

Where a direction starts: ISN + 1 after a SYN (RFC 9293 section 3.4); mid-stream, the lowest sequence
number held while pending, or the peer's lowest ACK if that is a little earlier. Nothing is reported
before a mid-stream direction's first byte. A server direction whose SYN-ACK was lost while the client's
SYN was captured is not mid-stream in that sense: it was sent wholly during the capture, so it starts at
the client's lowest ACK (its ISN + 1 once the handshake's ACK is seen) and the bytes missing before its
first captured one are a gap like any other (the lost first response; the HTTP layer then pairs by ACKs).

The ACK rule: a server can only answer request bytes it has received, so server->client bytes whose
segment acknowledges client bytes not delivered yet are held until the client stream gets there
(RFC 9293 section 3.4: SEG.ACK acknowledges every byte before it). This undoes cross-direction
reordering between the two mirrored directions. Release happens inside the client stream's callbacks, so
each response follows the request bytes (or the client gap) it acknowledges, even when many requests are
delivered at once; everything held is released at the client's eof or close, and beyond
max_ack_hold_bytes (then the acknowledged client bytes are declared lost). The same evidence declares
capture losses: a hole that the peer has acknowledged past (ACK_STRIKES distinct packets) is a gap, not a
reordering (see ``StreamReassembler.acked``).

Endings: both FINs reached (each direction's eof delivered) close at once; both FINs seen with a hole left
close FIN_GRACE_NS later; an RST closes FIN_GRACE_NS later too, because a monitor cannot tell whether the
endpoint accepted it (RFC 5961 section 3) and captures show data after ignored resets. A new SYN with
another ISN on a known 4-tuple is a new connection (flow_reused).

Lifecycle runs on packet time only (the largest timestamp seen, so a capture whose timestamps step back
does not confuse it): a sweep at most once per second of packet time resolves stale pending flows, ends
closing flows, forgets closed records and closes idle flows oldest first (an insertion-ordered dict,
refreshed at most every ``_touch_ns`` per flow, so the per-packet cost is one comparison).
"""
from __future__ import annotations

import base64
import hashlib
import struct
from collections import deque

from netrum.counters import Counters
from netrum.decode.addr import addr_to_str
from netrum.flows.handler import ConnHandler, HandlerFactory, StartClassifier
from netrum.flows.reassembly import DeliverFn, EofFn, GapFn, StreamReassembler
from netrum.flows.seq import SEQ_HALF, SEQ_MASK, seq_diff
from netrum.limits import SECOND_NS, Limits
from netrum.records import ConnInfo

# TCP flags, RFC 9293 section 3.1
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

PENDING_MAX_PACKETS = 16  # packets of a new flow held while its handshake may still arrive
PENDING_SPAN_NS = SECOND_NS  # ... or this much packet time since its first packet
SWEEP_EVERY_NS = SECOND_NS  # lifecycle sweep period (packet time)
CLASSIFY_BYTES = 512  # bytes of a direction's start handed to classify_start while roles are unknown
FIN_GRACE_NS = SECOND_NS  # both FINs seen but a hole remains: wait this long for reordered bytes

# Ports that make a side the server when nothing better is known (role_guessed).
HTTP_PORTS = frozenset({80, 81, 591, 3000, 3128, 443, 5000, 8000, 8008, 8080, 8081, 8088, 8443, 8888,
                        9000, 9080, 9090})

_PENDING, _ACTIVE, _DONE, _CLOSED, _IGNORED = range(5)

# A held packet: (ts_ns, dir, seq, ack, flags, payload, payload_len)
_Pkt = tuple[int, int, int, int, int, bytes, int]
_Key = tuple[bytes, bytes, int, int]
_PORTS = struct.Struct("!HHq")


def conn_id(client_ip: bytes, client_port: int, server_ip: bytes, server_port: int, ts_ns: int) -> str:
    """Stable id: "C" + 10 base32 chars of blake2b(client ip, port, server ip, port, first packet ts)."""
    h = hashlib.blake2b(digest_size=10)
    h.update(client_ip)
    h.update(server_ip)
    h.update(_PORTS.pack(client_port, server_port, ts_ns))
    return "C" + base64.b32encode(h.digest()).decode("ascii")[:10]


class _Flow:
    __slots__ = (
        "client_dir",
        "closed_now",
        "eofs",
        "fins",
        "first_now",
        "first_ts",
        "flushing",
        "handler",
        "hold",
        "hold_bytes",
        "info",
        "ips",
        "isn",
        "keys",
        "last_ts",
        "pending",
        "ports",
        "reasm",
        "server_dir",
        "state",
        "syn_dir",
        "synack_dir",
        "touch_ts",
    )

    def __init__(self, key: _Key, ts: int, now: int) -> None:
        src, dst, sport, dport = key
        self.ips = (src, dst)  # index = direction; direction 0 is the sender of the first packet
        self.ports = (sport, dport)
        self.keys = (key, (dst, src, dport, sport))
        self.state = _PENDING
        self.pending: list[_Pkt] = []
        self.first_ts = ts
        self.first_now = now
        self.last_ts = now
        self.touch_ts = now
        self.isn = [-1, -1]  # initial sequence number per direction, from the handshake
        self.syn_dir = -1  # direction that sent a SYN without ACK
        self.synack_dir = -1
        self.client_dir = 0
        self.server_dir = 1
        self.reasm: list[StreamReassembler] = []
        self.handler: ConnHandler | None = None
        self.info: ConnInfo | None = None
        self.hold: deque[_Pkt] = deque()  # server packets held by the ACK rule (ack -> client offset needed)
        self.hold_bytes = 0
        self.fins = [False, False]
        self.eofs = 0
        self.flushing = False
        self.closed_now = 0


class FlowTable:
    def __init__(self, counters: Counters, limits: Limits, make_handler: HandlerFactory,
                 classify_start: StartClassifier, server_ports: frozenset[int] | None = None,
                 server_addrs: frozenset[bytes] | None = None) -> None:
        self.counters = counters
        self.limits = limits
        self.make_handler = make_handler
        self.classify_start = classify_start
        self.server_ports = server_ports
        self.server_addrs = server_addrs
        self._dirs: dict[_Key, tuple[_Flow, int]] = {}  # both directions of every flow
        self._lru: dict[_Flow, None] = {}  # live flows, least recently touched first
        self._pending: dict[_Flow, None] = {}  # PENDING flows, oldest first
        # Flows about to end: (packet time, counter). Both FINs seen but a hole is left, or an RST seen
        # (closed after FIN_GRACE_NS so that bytes reordered behind it, or sent because an endpoint
        # ignored it, are still delivered).
        self._closing: dict[_Flow, tuple[int, str]] = {}
        self._closed: dict[_Flow, None] = {}  # CLOSED records, oldest first
        self._now = -(1 << 62)  # packet clock: the largest timestamp seen
        self._next_sweep = -(1 << 62)
        self._touch_ns = max(1, min(SECOND_NS, limits.flow_idle_timeout_ns // 8))

    def __len__(self) -> int:
        """Connections tracked (pending, active, done or ignored; not the closed records)."""
        return len(self._lru)

    # -- per packet ---------------------------------------------------------------------------------

    def packet(self, ts_ns: int, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
               flags: int, payload: bytes, payload_len: int) -> None:
        c = self.counters
        c["tcp_packets"] += 1
        if payload_len:
            c["tcp_payload_bytes"] += payload_len
        sp = self.server_ports
        if sp is not None and sport not in sp and dport not in sp:
            c["flow_ignored_filter"] += 1
            return
        sa = self.server_addrs
        if sa is not None and src not in sa and dst not in sa:
            c["flow_ignored_filter"] += 1
            return
        now = self._now
        if ts_ns > now:
            now = self._now = ts_ns
        if now >= self._next_sweep:
            self._sweep(now)
        ent = self._dirs.get((src, dst, sport, dport))
        if ent is None:
            self._new(ts_ns, now, (src, dst, sport, dport), seq, ack, flags, payload, payload_len)
            return
        flow, d = ent
        flow.last_ts = now
        if now - flow.touch_ts >= self._touch_ns and flow.state != _CLOSED:
            del self._lru[flow]
            self._lru[flow] = None
            flow.touch_ts = now
        if flow.state == _ACTIVE and not flags & 7 and not flow.eofs:
            # Common case: data or a pure ACK on an established connection.
            if flags & ACK and not flow.reasm[1 - d].fast:
                self._peer_ack(flow, d, seq + payload_len, ack, ts_ns)
            if not payload_len:
                return
            if d == flow.server_dir:
                if flow.hold or (flags & ACK and self._must_hold(flow, ack)):
                    self._hold(flow, (ts_ns, d, seq, ack, flags, payload, payload_len))
                    return
                flow.reasm[d].segment(seq, payload, payload_len, ts_ns)
            else:  # client bytes carry their ACK to the handler; delivering them releases held answers
                flow.reasm[d].segment(seq, payload, payload_len, ts_ns, ack if flags & ACK else -1)
            if flow.handler.done and flow.state == _ACTIVE:  # type: ignore[union-attr]
                self._set_done(flow)
            return
        self._slow(flow, d, (ts_ns, d, seq, ack, flags, payload, payload_len), now)

    def close_all(self, ts_ns: int) -> None:
        """End of capture: every live flow gets its gaps, eofs and close; count flow_open_at_end."""
        for flow in list(self._pending):
            if flow.state == _PENDING:
                self._resolve(flow)
        for flow, (_, counter) in list(self._closing.items()):
            self._finish(flow, ts_ns, counter)
        for flow in list(self._lru):
            if flow.state in (_ACTIVE, _DONE):
                self.counters["flow_open_at_end"] += 1
            self._end(flow, ts_ns, None)
        for flow in list(self._closed):
            self._forget(flow)
        self._closing.clear()

    # -- new flows, pending, roles ------------------------------------------------------------------

    def _new(self, ts: int, now: int, key: _Key, seq: int, ack: int, flags: int, payload: bytes,
             plen: int) -> None:
        if not plen and not flags & (SYN | FIN | RST):
            self.counters["tcp_no_payload_no_flow"] += 1
            return
        if len(self._lru) + len(self._closed) >= self.limits.max_flows:
            if self._closed:
                self._forget(next(iter(self._closed)))
            else:
                victim = next(iter(self._lru))
                self.counters["flow_table_full"] += 1
                self._end(victim, victim.last_ts, None)
        flow = _Flow(key, ts, now)
        self._dirs[flow.keys[0]] = (flow, 0)
        self._dirs[flow.keys[1]] = (flow, 1)
        self._lru[flow] = None
        self._pending[flow] = None
        self._pend(flow, (ts, 0, seq, ack, flags, payload, plen), now)

    def _pend(self, flow: _Flow, pkt: _Pkt, now: int) -> None:
        _ts, d, seq, ack, flags, _payload, _plen = pkt
        flow.pending.append(pkt)
        if flags & SYN:
            flow.isn[d] = seq
            if flags & ACK:
                flow.synack_dir = d
                flow.isn[1 - d] = (ack - 1) & SEQ_MASK  # the SYN-ACK acknowledges the client ISN + 1
            else:
                flow.syn_dir = d
        if (flow.isn[0] >= 0 and flow.isn[1] >= 0) or flags & RST \
                or len(flow.pending) >= PENDING_MAX_PACKETS or now - flow.first_now >= PENDING_SPAN_NS:
            self._resolve(flow)

    def _resolve(self, flow: _Flow) -> None:
        """Decide the roles of a pending flow, create its handler and replay its held packets."""
        c = self.counters
        del self._pending[flow]
        pkts = flow.pending
        flow.pending = []
        by_syn = flow.syn_dir >= 0 or flow.synack_dir >= 0
        # Where each direction starts when no SYN says so: its lowest sequence number held.
        starts = [-1, -1]
        start_pkt: list[_Pkt | None] = [None, None]
        acks = [-1, -1]  # the lowest ACK each direction sent: where the other direction stood
        for p in pkts:
            d, seq, plen = p[1], p[2], p[6]
            if p[4] & ACK and not p[4] & SYN and (acks[d] < 0 or seq_diff(p[3], acks[d]) < 0):
                acks[d] = p[3]
            if plen and not p[4] & SYN and (starts[d] < 0 or seq_diff(seq, starts[d]) < 0):
                starts[d] = seq
                start_pkt[d] = p
        if not by_syn and starts[0] < 0 and starts[1] < 0:
            # Only FIN/RST/ACKs of a connection that ended before the capture: nothing to analyse.
            c["tcp_no_payload_no_flow"] += len(pkts)
            self._forget(flow)
            return
        if flow.syn_dir >= 0:
            client = flow.syn_dir
            c["flow_role_by_syn"] += 1
            guessed = False
        elif flow.synack_dir >= 0:
            client = 1 - flow.synack_dir
            c["flow_role_by_syn"] += 1
            guessed = False
        else:
            client = self._client_by_http(pkts, start_pkt)
            guessed = client < 0
            if guessed:
                client = self._client_by_port(flow)
                c["flow_role_by_port"] += 1
            else:
                c["flow_role_by_http"] += 1
        server = 1 - client
        flow.client_dir = client
        flow.server_dir = server
        if (self.server_ports is not None and flow.ports[server] not in self.server_ports) or (
                self.server_addrs is not None and flow.ips[server] not in self.server_addrs):
            c["flow_ignored_filter"] += len(pkts)
            flow.state = _IGNORED
            return
        info = ConnInfo(
            conn_id=conn_id(flow.ips[client], flow.ports[client], flow.ips[server], flow.ports[server],
                            flow.first_ts),
            client_ip=addr_to_str(flow.ips[client]), client_port=flow.ports[client],
            server_ip=addr_to_str(flow.ips[server]), server_port=flow.ports[server],
            midstream=not by_syn, role_guessed=guessed)
        c["flow_opened"] += 1
        if not by_syn:
            c["flow_midstream"] += 1
        handler = self.make_handler(info)
        flow.info = info
        flow.handler = handler
        lim = self.limits
        creasm = StreamReassembler(c, lim, *self._client_callbacks(flow, handler))
        sreasm = StreamReassembler(c, lim, handler.server_data, handler.server_gap,
                                   self._eof_cb(flow, handler.server_eof))
        flow.reasm = [creasm, sreasm] if client == 0 else [sreasm, creasm]
        for d in (0, 1):
            if flow.isn[d] >= 0:
                flow.reasm[d].start((flow.isn[d] + 1) & SEQ_MASK, True)  # RFC 9293 3.4: SYN takes ISN
            else:
                # Mid-stream: the lowest sequence number held, or the peer's lowest ACK if that is a
                # little earlier (the first bytes were reordered behind). A start that turns out too
                # early costs no gap: nothing is reported before a mid-stream direction's first byte.
                # With the peer's SYN captured (this direction's SYN-ACK lost), every byte of this
                # direction was sent during the capture: it starts at the peer's lowest ACK however far
                # back, and a hole before its first captured byte is a loss (reported as a gap) rather
                # than a later start. Otherwise the first response could be lost silently and the next
                # one paired FIFO with the first request, shifting every later status by one.
                a = acks[1 - d]
                flow.reasm[d].in_capture = by_syn
                if a >= 0 and (starts[d] < 0 or 0 < seq_diff(starts[d], a) <= (
                        SEQ_HALF if by_syn else lim.max_ooo_bytes)):
                    starts[d] = a
                if starts[d] >= 0:
                    flow.reasm[d].start(starts[d], False)
        flow.state = _ACTIVE
        if handler.done:  # the handler wants nothing from this connection (e.g. decided by its ports)
            self._set_done(flow)
        for p in pkts:
            if flow.state == _ACTIVE:
                self._active(flow, p, flow.last_ts, replay=True)
            elif flow.state == _DONE and not p[4] & SYN:
                self._done_packet(flow, p)
        if flow.state == _ACTIVE and handler.done:
            self._set_done(flow)

    def _client_by_http(self, pkts: list[_Pkt], start_pkt: list[_Pkt | None]) -> int:
        """The direction that sent the first recognised HTTP start line: each direction's first bytes
        (rebuilt from the held segments, up to CLASSIFY_BYTES) in the order they appeared, then any
        held payload."""
        firsts = sorted((p for p in start_pkt if p is not None), key=pkts.index)
        for p in firsts:
            kind = self.classify_start(self._prefix(pkts, p))
            if kind:
                return p[1] if kind > 0 else 1 - p[1]
        for p in pkts:
            if p[6] and p not in firsts:
                kind = self.classify_start(p[5])
                if kind:
                    return p[1] if kind > 0 else 1 - p[1]
        return -1

    @staticmethod
    def _prefix(pkts: list[_Pkt], first: _Pkt) -> bytes:
        """The contiguous bytes held for first's direction, from first's sequence number on."""
        d, start = first[1], first[2]
        segs = sorted((seq_diff(p[2], start), p[5]) for p in pkts
                      if p[1] == d and p[6] and not p[4] & SYN and seq_diff(p[2], start) >= 0)
        out = bytearray()
        for rel, data in segs:
            if rel > len(out):
                break
            out += data[len(out) - rel:]
            if len(out) >= CLASSIFY_BYTES:
                break
        return bytes(out)

    @staticmethod
    def _client_by_port(flow: _Flow) -> int:
        p0, p1 = flow.ports
        k0, k1 = p0 in HTTP_PORTS, p1 in HTTP_PORTS
        if k0 != k1:
            return 1 if k0 else 0
        if p0 != p1:
            return 1 if p0 < p1 else 0
        return 0

    # -- callbacks from the reassemblers ------------------------------------------------------------

    def _client_callbacks(self, flow: _Flow, handler: ConnHandler) -> tuple[DeliverFn, GapFn, EofFn]:
        """The client stream's callbacks: each step of the client stream (bytes, a gap) releases the
        server bytes held for it at once, so responses interleave with their requests; the client's
        eof releases everything."""
        client_data, client_gap, client_eof = handler.client_data, handler.client_gap, handler.client_eof
        release = self._release

        def deliver(data: bytes, ts_ns: int) -> None:
            # The ACK of the packet that carried these bytes, as an offset in the server stream as the
            # handler sees it: how much of the server's stream the client had received when it sent them.
            creasm, sreasm = flow.reasm[flow.client_dir], flow.reasm[flow.server_dir]
            ack, off = creasm.cur_ack, -1
            if ack >= 0 and sreasm.nxt >= 0:
                off = (((ack - sreasm.base + SEQ_HALF) & SEQ_MASK) - SEQ_HALF) - sreasm.start_off
                if off < 0:
                    off = -1
            client_data(data, ts_ns, off)
            if flow.hold:
                release(flow, ts_ns)

        def gap(nbytes: int, ts_ns: int) -> None:
            client_gap(nbytes, ts_ns)
            if flow.hold:
                release(flow, ts_ns)

        def eof(ts_ns: int) -> None:
            client_eof(ts_ns)
            flow.eofs += 1
            if flow.hold:
                release(flow, ts_ns, force=True)
            self._maybe_finish(flow, ts_ns)
        return deliver, gap, eof

    def _eof_cb(self, flow: _Flow, eof: EofFn) -> EofFn:
        def on_eof(ts_ns: int) -> None:
            eof(ts_ns)
            flow.eofs += 1
            self._maybe_finish(flow, ts_ns)
        return on_eof

    def _maybe_finish(self, flow: _Flow, ts: int) -> None:
        """Both directions reached their FIN: the connection is over (RFC 9293 section 3.6)."""
        if flow.eofs == 2 and flow.state == _ACTIVE and flow.fins[0] and flow.fins[1] \
                and not flow.flushing:
            self._finish(flow, ts, "flow_closed_fin")

    # -- established flows --------------------------------------------------------------------------

    def _slow(self, flow: _Flow, d: int, pkt: _Pkt, now: int) -> None:
        st = flow.state
        if st == _PENDING:
            self._pend(flow, pkt, now)
        elif st == _ACTIVE:
            self._active(flow, pkt, now, replay=False)
        elif st == _DONE:
            self._done_packet(flow, pkt)
        elif st == _CLOSED:
            self._closed_packet(flow, pkt, now)
        else:  # _IGNORED
            self.counters["flow_ignored_filter"] += 1
            if pkt[4] & RST:
                self._forget(flow)

    def _active(self, flow: _Flow, pkt: _Pkt, now: int, replay: bool) -> None:
        ts, d, seq, ack, flags, payload, plen = pkt
        if flags & RST:
            # RFC 9293 section 3.10.7.4: a reset aborts the connection in both directions. A monitor
            # cannot know whether the endpoint accepted it (RFC 5961 section 3: only an exact sequence
            # match is), so the flow ends FIN_GRACE_NS later: bytes that still flow are delivered.
            self._reset(flow)
            return
        if flags & SYN:
            isn = flow.isn[d]
            if isn == seq or replay:
                if isn != seq:
                    return  # an earlier handshake attempt held in the pending list
                seq = (seq + 1) & SEQ_MASK  # data on a SYN starts after the ISN
                flags &= ~SYN
            elif self._is_new_connection(flow, d, seq, flags):
                self._reuse(flow, pkt, now)
                return
            else:
                return
        if plen and flow.eofs and not replay and flow.reasm[d].ended and flow.reasm[d].outside(seq):
            # This direction is over and the bytes are not its own: the next connection on this 4-tuple,
            # ahead of its SYN (the old one's last FIN or ACK was not seen).
            self._reuse(flow, pkt, now)
            return
        if flags & ACK and not flags & SYN and not flow.reasm[1 - d].fast:
            self._peer_ack(flow, d, seq + plen, ack, ts)
            if flow.state != _ACTIVE:
                return
        if d == flow.server_dir and (flow.hold or (flags & ACK and self._must_hold(flow, ack))):
            if plen or flags & FIN:
                self._hold(flow, (ts, d, seq, ack, flags, payload, plen))
            return
        self._deliver_pkt(flow, d, ts, seq, flags, payload, plen, ack if flags & ACK else -1)
        if flow.state != _ACTIVE:
            return
        if d == flow.client_dir and flow.hold:
            self._release(flow, ts)
        if flow.state == _ACTIVE and flow.handler.done:  # type: ignore[union-attr]
            self._set_done(flow)

    def _peer_ack(self, flow: _Flow, d: int, end: int, ack: int, ts: int) -> None:
        """An ACK from direction d while the other direction is off its fast path (not started yet, or
        bytes buffered behind a hole)."""
        flow.reasm[1 - d].acked(ack, ts, end)

    def _deliver_pkt(self, flow: _Flow, d: int, ts: int, seq: int, flags: int, payload: bytes,
                     plen: int, ack: int = -1) -> None:
        r = flow.reasm[d]
        if plen:
            r.segment(seq, payload, plen, ts, ack)
        if flags & FIN and flow.state == _ACTIVE:
            flow.fins[d] = True
            r.fin((seq + plen) & SEQ_MASK, ts)  # RFC 9293 3.4: the FIN follows the last data byte
            if flow.state == _ACTIVE and flow.fins[0] and flow.fins[1] and flow not in self._closing:
                self._closing[flow] = (self._now, "flow_closed_fin")

    def _is_new_connection(self, flow: _Flow, d: int, seq: int, flags: int) -> bool:
        """A SYN with another ISN on a known 4-tuple: a new connection (port reuse), unless it is the late
        SYN of a direction picked up mid-stream (its ISN + 1 just before where we started)."""
        isn = flow.isn[d]
        if isn >= 0:
            return True
        r = flow.reasm[d] if flow.reasm else None
        if r is not None and r.started:
            rel = seq_diff((seq + 1) & SEQ_MASK, (r.base + r.start_off) & SEQ_MASK)
            if -self.limits.max_ooo_bytes <= rel <= 0:
                return False
        return not flags & ACK

    def _reuse(self, flow: _Flow, pkt: _Pkt, now: int) -> None:
        self.counters["flow_reused"] += 1
        if flow.state in (_ACTIVE, _DONE):
            self._end(flow, pkt[0], None)
        else:
            self._forget(flow)
        ts, d, seq, ack, flags, payload, plen = pkt
        key = flow.keys[d]
        self._new(ts, now, key, seq, ack, flags, payload, plen)

    def _reset(self, flow: _Flow) -> None:
        since = self._closing.get(flow)
        if since is None or since[1] != "flow_closed_rst":
            self._closing[flow] = (self._now, "flow_closed_rst")

    def _done_packet(self, flow: _Flow, pkt: _Pkt) -> None:
        flags = pkt[4]
        if flags & SYN and not flags & ACK and flow.isn[pkt[1]] != pkt[2]:
            self._reuse(flow, pkt, self._now)
        elif flags & RST:
            self._reset(flow)
        elif flags & FIN:
            flow.fins[pkt[1]] = True
            if flow.fins[0] and flow.fins[1]:
                self._finish(flow, pkt[0], "flow_closed_fin")

    def _closed_packet(self, flow: _Flow, pkt: _Pkt, now: int) -> None:
        ts, d, seq, _ack, flags, payload, plen = pkt
        if flags & SYN and flow.isn[d] != seq and not (flags & ACK and flow.isn[d] < 0):
            self._reuse(flow, pkt, now)
            return
        if plen and flow.reasm:
            r = flow.reasm[d]
            if r.outside(seq):
                # The first bytes of the next connection on this 4-tuple, ahead of its SYN (reordered).
                self._reuse(flow, pkt, now)
                return
            r.segment(seq, payload, plen, ts)  # counts duplicates / data after close

    # -- the ACK rule -------------------------------------------------------------------------------

    def _must_hold(self, flow: _Flow, ack: int) -> bool:
        r = flow.reasm[flow.client_dir]
        if r.nxt < 0 or r.ended:
            return False  # client sequence unknown (mid-stream, no data yet) or client stream over
        rel = ((ack - r.nxt + SEQ_HALF) & SEQ_MASK) - SEQ_HALF
        return rel > 0

    def _hold(self, flow: _Flow, pkt: _Pkt) -> None:
        ts, d, seq, ack, flags, payload, plen = pkt
        r = flow.reasm[flow.client_dir]
        need = -1
        if flags & ACK and r.nxt >= 0:
            rel = seq_diff(ack, r.nxt)
            if rel > 0:
                need = r.off + rel
                self.counters["tcp_ack_hold"] += 1
        flow.hold.append((ts, d, seq, need, flags, payload, plen))
        flow.hold_bytes += plen
        if flow.hold_bytes > self.limits.max_ack_hold_bytes:
            # Far more than any reordering: the client bytes these acknowledge were lost by the capture.
            self.counters["tcp_ack_hold_overflow"] += 1
            need = max(p[3] for p in flow.hold)
            if need > r.off:
                r.lost_before(need, ts)
            self._release(flow, ts, force=True)

    def _release(self, flow: _Flow, ts: int, force: bool = False) -> None:
        """Hand held server packets to their reassembler once the client stream has reached (delivered
        or declared lost) the bytes they acknowledge; all of them once the client stream is over, or
        when forced."""
        r = flow.reasm[flow.client_dir]
        if r.ended:
            force = True
        hold = flow.hold
        while hold and flow.state == _ACTIVE:
            hts, d, seq, need, flags, payload, plen = hold[0]
            if not force and need > r.off:
                break
            hold.popleft()
            flow.hold_bytes -= plen
            self._deliver_pkt(flow, d, hts, seq, flags, payload, plen)

    # -- endings ------------------------------------------------------------------------------------

    def _set_done(self, flow: _Flow) -> None:
        flow.state = _DONE
        flow.reasm = []
        flow.hold.clear()
        flow.hold_bytes = 0
        self._closing.pop(flow, None)

    def _flush(self, flow: _Flow, ts: int) -> None:
        """Give every hole and end to the handler: the server bytes buffered behind a server hole first
        (they passed the ACK rule when they arrived: they answer client bytes already delivered, so they
        precede the client's own buffered bytes), then the client, then held server bytes, then the
        server's end."""
        if flow.state == _ACTIVE:
            flow.flushing = True
            sr = flow.reasm[flow.server_dir]
            if sr.ooo and not sr.ended:
                sr.lost_before(max(piece[1] for piece in sr.ooo), ts)
            flow.reasm[flow.client_dir].flush(ts)
            if flow.hold:
                self._release(flow, ts, force=True)
            flow.reasm[flow.server_dir].flush(ts)
            flow.flushing = False

    def _finish(self, flow: _Flow, ts: int, counter: str) -> None:
        """End a connection by FIN or RST: flush, close the handler, keep a closed record (linger)."""
        if flow.state not in (_ACTIVE, _DONE):
            return
        self._flush(flow, ts)
        if flow.state not in (_ACTIVE, _DONE):
            return  # the flush closed it already (both eofs)
        self._close_handler(flow, ts)
        self.counters[counter] += 1
        flow.state = _CLOSED
        flow.closed_now = self._now
        self._lru.pop(flow, None)
        self._closing.pop(flow, None)
        self._closed[flow] = None

    def _close_handler(self, flow: _Flow, ts: int) -> None:
        flow.hold.clear()
        flow.hold_bytes = 0
        if flow.handler is not None:
            flow.handler.close(ts)

    def _end(self, flow: _Flow, ts: int, counter: str | None) -> None:
        """End a live flow for good (idle, eviction, reuse, end of capture) and forget it."""
        if flow.state == _PENDING:
            self._resolve(flow)
        if flow.state in (_ACTIVE, _DONE):
            self._flush(flow, ts)
            if flow.state in (_ACTIVE, _DONE):
                self._close_handler(flow, ts)
                if counter is not None:
                    self.counters[counter] += 1
        self._forget(flow)

    def _forget(self, flow: _Flow) -> None:
        flow.state = _CLOSED
        for k in flow.keys:
            ent = self._dirs.get(k)
            if ent is not None and ent[0] is flow:
                del self._dirs[k]
        self._lru.pop(flow, None)
        self._pending.pop(flow, None)
        self._closing.pop(flow, None)
        self._closed.pop(flow, None)

    def _sweep(self, now: int) -> None:
        """Once per second of packet time: resolve stale pending flows, close FIN'd flows whose holes
        never filled, forget closed records after their linger, close idle flows (oldest first)."""
        self._next_sweep = now + SWEEP_EVERY_NS
        stale = []
        for flow in self._pending:
            if now - flow.first_now < PENDING_SPAN_NS:
                break
            stale.append(flow)
        for flow in stale:
            self._resolve(flow)
        for flow, (since, counter) in list(self._closing.items()):
            if now - since >= FIN_GRACE_NS:
                self._finish(flow, flow.last_ts, counter)
        linger = self.limits.closed_flow_linger_ns
        gone = []
        for flow in self._closed:
            if now - flow.closed_now < linger:
                break
            gone.append(flow)
        for flow in gone:
            self._forget(flow)
        cutoff = now - self.limits.flow_idle_timeout_ns
        expired = []
        for flow in self._lru:
            if flow.touch_ts > cutoff:
                break
            if flow.last_ts <= cutoff:
                expired.append(flow)
        for flow in expired:
            self._end(flow, flow.last_ts, "flow_expired_idle")

    # -- packet clock for scale-out workers (netrum.scale; added by the scale-out helper) -----------

    def advance(self, ts_ns: int) -> int:
        """Move the packet clock exactly as ``packet`` would for a segment at ts_ns that passes the
        filters, running the lifecycle sweep if it is due; nothing else. A worker that skips another
        worker's segments calls this so that idle expiry and the closing of FIN/RST'd flows happen at the
        same packet time as in a single process. Returns the packet time at which the next sweep is due
        (``packet`` never sweeps before it)."""
        now = self._now
        if ts_ns > now:
            now = self._now = ts_ns
        if now >= self._next_sweep:
            self._sweep(now)
        return self._next_sweep
