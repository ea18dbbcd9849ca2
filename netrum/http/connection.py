"""One HTTP/1.x connection: a request parser, a response parser, and the queue that pairs them.

Rules this module keeps:

- Responses answer requests in order (RFC 9112 section 9.3.2, pipelining): a final response pairs with
  the oldest request still waiting; an interim 1xx (RFC 9110 section 15.2) is never the response, it is
  recorded in ``interim_statuses`` of that request.
- The flow table delivers server bytes only after the client bytes they acknowledge (ACK rule), so a
  response that finds the queue empty really has no visible request: it becomes a Transaction of its
  own (``no_request``), framed as the answer to a GET.
- After CONNECT 2xx or 101 (RFC 9110 sections 9.3.6, 15.2.2; RFC 9112 section 6.3 rule 2) HTTP stops:
  the rest is counted as tunnelled bytes and ``done`` becomes True. While a CONNECT / Upgrade request
  waits for its answer, later client bytes are held (h11 calls this PAUSED), then parsed or tunnelled.
- Transactions are emitted in depth order as soon as both messages are complete (an upgraded exchange
  at close, when its tunnel byte count is known); ``close`` flushes everything pending.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import cast

from netrum.counters import Counters
from netrum.http.consumer import (
    FORWARDED,
    X_FORWARDED_FOR,
    X_REAL_IP,
    ConsumerConfig,
    hash_identity,
    resolve_client,
)
from netrum.http.framing import BodyKind, body_framing
from netrum.http.parser import (
    CHUNK_DATA,
    F_BAD_CHUNK,
    F_CLOSE,
    F_GAP,
    F_RESYNC,
    F_TRUNC,
    LENGTH,
    MessageParser,
    RequestHead,
    ResponseHead,
)
from netrum.limits import Limits
from netrum.records import ConnInfo, Transaction

_NONE = (BodyKind.NONE, 0)
_MAX_ACK_MARKS = 32  # chunk ACKs remembered while the request parser keeps bytes between chunks
_NO_FWD = (None, None, None)


class _Exchange:
    """The mutable state of one exchange until it is emitted as a frozen Transaction."""

    __slots__ = (
        "depth",
        "fwd",
        "gap_before",
        "host",
        "ident",
        "interim",
        "is09",
        "method",
        "notes",
        "reason",
        "req_ack",
        "req_body",
        "req_ct",
        "req_done",
        "req_end_ts",
        "req_head_bytes",
        "req_ts",
        "resp_body",
        "resp_ct",
        "resp_done",
        "resp_end_ts",
        "resp_head_bytes",
        "resp_ts",
        "resp_version",
        "status",
        "target",
        "user_agent",
        "version",
    )

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.req_ts: int | None = None
        self.req_end_ts: int | None = None
        self.method: bytes | None = None
        self.target: bytes | None = None
        self.version: bytes | None = None
        self.host: bytes | None = None
        self.user_agent: bytes | None = None
        self.req_ct: bytes | None = None
        self.req_head_bytes: int | None = None
        self.req_ack = -1  # server bytes the client had received when it sent this request (-1 unknown)
        self.gap_before = False  # client bytes that may have held whole requests were lost just before it
        self.req_body: int | None = None
        self.req_done = False
        self.resp_ts: int | None = None
        self.resp_end_ts: int | None = None
        self.status: int | None = None
        self.reason: bytes | None = None
        self.resp_version: bytes | None = None
        self.resp_ct: bytes | None = None
        self.resp_head_bytes: int | None = None
        self.resp_body: int | None = None
        self.resp_done = False
        self.interim: list[int] = []
        self.notes: list[str] = []
        self.is09 = False
        self.ident: bytes | None = None  # the raw identity field (hashed at emission, never stored)
        self.fwd: tuple[bytes | None, bytes | None, bytes | None] | None = None  # Forwarded, XFF, X-Real-IP


def _authority(target: bytes) -> bytes | None:
    """The authority of an absolute-form request-target (RFC 9112 section 3.2.2), else None."""
    i = target.find(b"://")
    if i <= 0:
        return None
    rest = target[i + 3:]
    for sep in (b"/", b"?", b"#"):
        j = rest.find(sep)
        if j >= 0:
            rest = rest[:j]
    at = rest.rfind(b"@")
    return rest[at + 1:] if at >= 0 else rest


class HttpConnection:
    """Implements netrum.flows.handler.ConnHandler for HTTP/1.x."""

    __slots__ = (
        "_ack_first",
        "_ack_marks",
        "_base_notes",
        "_client_gap",
        "_closed",
        "_consumer",
        "_cur_req",
        "_cur_resp",
        "_depth",
        "_done",
        "_hunting",
        "_midstream_open",
        "_order",
        "_paused_ex",
        "_pending",
        "_req",
        "_resp",
        "_server_gap",
        "_tunnel_ex",
        "counters",
        "emit",
        "info",
        "limits",
    )

    def __init__(
        self, info: ConnInfo, counters: Counters, limits: Limits, emit: Callable[[Transaction], None],
        consumer: ConsumerConfig | None = None,
    ) -> None:
        """``consumer``: how the consumer of each exchange is decided (netrum.http.consumer); None: the
        client address."""
        self.info = info
        self.counters = counters
        self.limits = limits
        self.emit = emit
        self._consumer = consumer
        self._req = MessageParser(True, counters, limits, self._request_head, self._request_end, info.midstream,
                                  consumer.request_fields() if consumer is not None else ())
        self._resp = MessageParser(
            False, counters, limits, self._response_head, self._response_end, info.midstream
        )
        self._order: deque[_Exchange] = deque()  # exchanges not yet emitted, in depth order
        self._pending: deque[_Exchange] = deque()  # requests waiting for their final response
        self._cur_req: _Exchange | None = None  # the request being parsed
        self._cur_resp: _Exchange | None = None  # the exchange whose final response is being parsed
        self._depth = 0
        self._done = False
        self._closed = False
        self._tunnel_ex: _Exchange | None = None
        self._paused_ex: _Exchange | None = None  # CONNECT / Upgrade request waiting for its answer
        self._midstream_open = info.midstream  # exchanges get "midstream" until a request is seen
        self._hunting = True  # no start line found yet on either side
        self._base_notes: tuple[str, ...] = ("role_guessed",) if info.role_guessed else ()
        self._ack_first = -1  # client ACK (as a server-stream offset) of the chunk a request head began in
        # While the request parser keeps bytes between chunks: (client-stream offset where a chunk began,
        # its ACK) for the chunks those bytes and the current one came from (see _mark_ack).
        self._ack_marks: list[tuple[int, int]] = []
        self._server_gap = False  # server bytes were lost since the last final response head
        self._client_gap = False  # client bytes that may hold whole requests were lost since the last request

    # ------------------------------------------------------------------------------ ConnHandler
    @property
    def done(self) -> bool:
        return self._done

    def client_data(self, data: bytes, ts_ns: int, ack_offset: int = -1) -> None:
        """``ack_offset``: the server-stream offset the client acknowledged in the segment that carried
        these bytes (how much of the server's stream it had received), -1 when unknown."""
        if self._closed:
            return
        req = self._req
        if not req.buf:  # a request head starting in this chunk starts with this ACK
            self._ack_first = ack_offset
            if self._ack_marks:
                self._ack_marks = []
        else:
            self._mark_ack(req.fed - len(req.buf), req.fed, ack_offset)
        req.feed(data, ts_ns)
        if self._hunting:
            self._check_not_http()

    def server_data(self, data: bytes, ts_ns: int) -> None:
        if self._closed:
            return
        self._resp.feed(data, ts_ns)
        if self._hunting:
            self._check_not_http()

    def client_gap(self, nbytes: int, ts_ns: int) -> None:
        if not self._closed:
            req = self._req
            # Whole requests may be in the hole unless it lies inside a body of known length.
            if not (req.state in (LENGTH, CHUNK_DATA) and nbytes <= req.remaining):
                self._client_gap = True
            req.gap(nbytes, ts_ns)

    def server_gap(self, nbytes: int, ts_ns: int) -> None:
        if not self._closed:
            self._server_gap = True
            self._resp.gap(nbytes, ts_ns)

    def client_eof(self, ts_ns: int) -> None:
        if not self._closed:
            self._req.eof(ts_ns)

    def server_eof(self, ts_ns: int) -> None:
        if not self._closed:
            self._resp.eof(ts_ns)

    def close(self, ts_ns: int) -> None:
        if self._closed:
            return
        self._req.eof(ts_ns)
        self._resp.eof(ts_ns)
        self._closed = True
        tunnel = self._req.tunnel_bytes + self._resp.tunnel_bytes
        order = self._order
        while order:
            ex = order.popleft()
            if ex.resp_ts is None and ex.method is not None and "pending_overflow" not in ex.notes:
                ex.notes.append("no_response")
                self.counters["http_no_response"] += 1
            self._emit(ex, tunnel if ex is self._tunnel_ex else 0)
        self._pending.clear()

    def _mark_ack(self, buf_off: int, chunk_off: int, ack: int) -> None:
        """The request parser kept bytes (from ``buf_off``: an incomplete head, or the tail kept while
        hunting) and the chunk starting at ``chunk_off`` follows them. A head gets the ACK of the chunk its
        first byte came in, like its timestamp: while hunting (after a client hole, through a lost request's
        body) the kept tail is renewed at every chunk, and the ACK of the chunk the hunt began in would be
        older and smaller than the found request's own. Such a request looks sent before its client had
        received responses it had in fact received, and ``_pair_after_gap`` could give it one of them."""
        marks = self._ack_marks
        if not marks:
            marks.append((buf_off, self._ack_first))  # the kept bytes came with the last chunk
        else:
            i = 0
            while i + 1 < len(marks) and marks[i + 1][0] <= buf_off:
                i += 1
            if i:
                del marks[:i]  # chunks wholly before the kept bytes
        marks.append((chunk_off, ack))
        if len(marks) > _MAX_ACK_MARKS:
            del marks[1:len(marks) - _MAX_ACK_MARKS + 1]  # byte-sized chunks: an older (smaller) ACK stands

    def _ack_at(self, off: int) -> int:
        """The ACK of the chunk that carried the client-stream byte at ``off`` (see _mark_ack)."""
        marks = self._ack_marks
        for o, a in reversed(marks):
            if o <= off:
                return a
        return marks[0][1]

    # ------------------------------------------------------------------------------- callbacks
    def _check_not_http(self) -> None:
        req, resp = self._req, self._resp
        if req.found_start or resp.found_start:
            self._hunting = False
            return
        limit = self.limits.max_hunt_bytes
        if req.hunted >= limit and resp.hunted >= limit:
            # Both sides scanned max_hunt_bytes without one start line: not HTTP.
            self._hunting = False
            self.counters["flow_not_http"] += 1
            self._done = True
            req.eof(resp.last_ts)
            resp.eof(resp.last_ts)
            self._closed = True

    def _new_exchange(self) -> _Exchange:
        self._depth += 1
        ex = _Exchange(self._depth)
        if self._midstream_open:
            ex.notes.append("midstream")
        self._order.append(ex)
        return ex

    def _request_head(self, head: object, first_ts: int, head_bytes: int, flags: int) -> tuple[BodyKind, int]:
        method, target, version, fields = cast(RequestHead, head)
        c = self.counters
        c["http_requests"] += 1
        ex = self._new_exchange()
        self._midstream_open = False
        ex.req_ts = first_ts
        ex.method = method
        ex.target = target
        ex.version = version
        ex.req_head_bytes = head_bytes
        ex.req_ack = self._ack_first if not self._ack_marks else self._ack_at(self._req.msg_off)
        ex.gap_before = self._client_gap
        self._client_gap = False
        ex.host = fields.get(b"host") or _authority(target)
        ex.user_agent = fields.get(b"user-agent")
        ex.req_ct = fields.get(b"content-type")
        cfg = self._consumer
        if cfg is not None:
            if cfg.header is not None:
                ex.ident = fields.get(cfg.header)
            if cfg.trusted:
                fwd = (fields.get(FORWARDED), fields.get(X_FORWARDED_FOR), fields.get(X_REAL_IP))
                if fwd != _NO_FWD:
                    ex.fwd = fwd
            if cfg.redact:
                redact = cfg.redact
                if b"host" in redact:
                    ex.host = None
                if b"user-agent" in redact:
                    ex.user_agent = None
                if b"content-type" in redact:
                    ex.req_ct = None
        if flags:
            if flags & F_RESYNC:
                ex.notes.append("resync")
            if flags & F_GAP:
                ex.notes.append("gap_request")
        pending = self._pending
        if len(pending) >= self.limits.max_pending_requests:
            # Bounded queue: the oldest waiting request is given up (emitted without response).
            old = pending.popleft()
            old.notes.append("pending_overflow")
            old.resp_done = True
            c["http_too_many_pending"] += 1
        pending.append(ex)
        self._cur_req = ex
        if version == b"HTTP/0.9":
            c["http_09"] += 1
            ex.is09 = True
            ex.notes.append("http09")
            if len(pending) == 1 and self._cur_resp is None:
                self._resp.raw_next = True
            return _NONE
        kind, length, bad = body_framing(True, method, None, fields)
        if bad:
            c["http_bad_content_length"] += 1
        if method == b"CONNECT" or b"upgrade" in fields:
            # Hold later client bytes until the answer says tunnel (2xx / 101) or not.
            self._req.pause_next = True
            self._paused_ex = ex
        return kind, length

    def _request_end(self, end_ts: int, body_bytes: int, flags: int) -> None:
        ex = self._cur_req
        if ex is None:
            return
        self._cur_req = None
        ex.req_end_ts = end_ts
        ex.req_body = body_bytes
        ex.req_done = True
        if flags:
            self._end_notes(ex, flags, "gap_request", "truncated_request")
        if ex.resp_done:
            self._flush()

    def _response_head(self, head: object, first_ts: int, head_bytes: int, flags: int) -> tuple[BodyKind, int]:
        c = self.counters
        pending = self._pending
        if head is None:
            # The answer to an HTTP/0.9 request: raw bytes until the connection closes.
            ex = pending.popleft() if pending else self._unmatched()
            ex.resp_ts = first_ts
            ex.resp_head_bytes = 0
            ex.notes.append("http09")
            self._cur_resp = ex
            return (BodyKind.UNTIL_CLOSE, 0)
        version, status, reason, fields = cast(ResponseHead, head)
        if status < 200 and status != 101:
            # RFC 9110 section 15.2: interim responses precede the final one; never the response.
            c["http_interim_responses"] += 1
            if pending:
                pending[0].interim.append(status)
            self._cur_resp = None
            return _NONE
        c["http_responses"] += 1
        start = self._resp.msg_off
        unattributed = False
        if self._server_gap:
            self._server_gap = False
            unattributed = self._pair_after_gap(start)
        if not unattributed and pending and 0 <= start < pending[0].req_ack:
            # The oldest waiting request was sent after its client had received beyond this response's
            # first byte: this response answers a request the capture never showed (or one given up).
            unattributed = True
        if pending and not unattributed:
            ex = pending.popleft()
            method = ex.method
        else:
            ex = self._unmatched()
            method = b"GET"
        self._cur_resp = ex
        ex.resp_ts = first_ts
        ex.status = status
        ex.reason = reason
        ex.resp_version = version
        ex.resp_head_bytes = head_bytes
        ex.resp_ct = fields.get(b"content-type")
        if self._consumer is not None and b"content-type" in self._consumer.redact:
            ex.resp_ct = None
        if flags:
            if flags & F_RESYNC:
                ex.notes.append("resync")
            if flags & F_GAP:
                ex.notes.append("gap_response")
        kind, length, bad = body_framing(False, method, status, fields)
        if bad:
            c["http_bad_content_length"] += 1
        if ex.method is None and kind == BodyKind.LENGTH and length:
            self._resp.headless_probe = True  # framed as the answer to a GET: it may answer a HEAD
        if kind == BodyKind.TUNNEL:
            c["http_upgrade"] += 1
            ex.notes.append("upgrade")
            self._tunnel_ex = ex
            self._done = True
            self._paused_ex = None
            self._req.start_tunnel()
        elif ex is self._paused_ex:
            self._paused_ex = None
            self._req.resume()
        return kind, length

    def _pair_after_gap(self, start_off: int) -> bool:
        """Server bytes were lost before this final response (a hole): whole responses may be in it, and
        FIFO pairing would then give this response to the wrong request and shift every later status.
        The TCP acknowledgements bound which request it can answer: a request is sent after its client
        received the server bytes it acknowledges, and the server answers after receiving the request,
        so a response starting at server offset S answers a request whose ACK is <= S.

        - Several such requests waiting, each sent after the client had received more of the server's
          stream than for the one before (strictly increasing ACKs: a client that waits for each
          response, the common case): the latest one is answered; the older ones lost their responses
          in the hole (``no_response``).
        - Several sent in one burst (equal ACKs: pipelining): the hole may hold any number of their
          answers: none is guessed; those requests are reported without response and this response
          without request.
        - Client bytes that may have held whole requests were lost too, right before or after the chosen
          request: this response may answer one of those. It is taken as the chosen request's answer only
          when that request acknowledged exactly up to S (it was sent once everything before this
          response had arrived); otherwise nothing is guessed.
        Returns True when the response is not attributed. Without ACK information FIFO pairing is kept."""
        pending = self._pending
        if start_off < 0 or not pending:
            return False
        last = -1
        prev = -1
        burst = False
        for i, ex in enumerate(pending):
            a = ex.req_ack
            if a < 0:
                return False
            if a > start_off:
                break
            if i and a <= prev:
                burst = True
            prev = a
            last = i
        if last < 0:
            return False  # the request check in _response_head leaves this response unattributed
        if burst:
            self._give_up_pending(last + 1)
            return True
        self._give_up_pending(last)
        chosen = pending[0]
        lost_after = pending[1].gap_before if len(pending) > 1 else self._client_gap
        if (chosen.gap_before or lost_after) and chosen.req_ack != start_off:
            self._give_up_pending(1)
            return True
        return False

    def _give_up_pending(self, count: int) -> None:
        """The ``count`` oldest waiting requests lost their responses in a hole: reported without one."""
        pending = self._pending
        for _ in range(count):
            ex = pending.popleft()
            ex.resp_done = True
            ex.notes.append("no_response")
            if "gap_response" not in ex.notes:
                ex.notes.append("gap_response")
            self.counters["http_no_response"] += 1
            self.counters["http_response_lost"] += 1

    def _unmatched(self) -> _Exchange:
        self.counters["http_unmatched_response"] += 1
        ex = self._new_exchange()
        ex.notes.append("no_request")
        ex.req_done = True
        return ex

    def _response_end(self, end_ts: int, body_bytes: int, flags: int) -> None:
        ex = self._cur_resp
        if ex is None:
            return  # the end of an interim response
        self._cur_resp = None
        ex.resp_end_ts = end_ts
        ex.resp_body = body_bytes
        ex.resp_done = True
        if flags:
            self._end_notes(ex, flags, "gap_response", "truncated_response")
            if flags & F_CLOSE and not ex.is09:
                ex.notes.append("close_delimited")
        pending = self._pending
        if pending and pending[0].is09:
            self._resp.raw_next = True
        if ex.req_done:
            self._flush()

    @staticmethod
    def _end_notes(ex: _Exchange, flags: int, gap_note: str, trunc_note: str) -> None:
        if flags & F_GAP and gap_note not in ex.notes:
            ex.notes.append(gap_note)
        if flags & F_TRUNC:
            ex.notes.append(trunc_note)
        if flags & F_BAD_CHUNK:
            ex.notes.append("bad_chunk")

    def _flush(self) -> None:
        order = self._order
        while order:
            ex = order[0]
            if not (ex.req_done and ex.resp_done) or ex is self._tunnel_ex:
                return
            order.popleft()
            self._emit(ex, 0)

    def _emit(self, ex: _Exchange, tunnel_bytes: int) -> None:
        info = self.info
        self.counters["http_transactions"] += 1
        notes = ex.notes
        if self._base_notes:
            notes = notes + list(self._base_notes)
        m, h, u, v, r, rv = ex.method, ex.host, ex.target, ex.version, ex.reason, ex.resp_version
        rqct, rsct, ua = ex.req_ct, ex.resp_ct, ex.user_agent
        consumer = None  # the client address (Transaction.consumer)
        cfg = self._consumer
        if cfg is not None:
            # The edge of the core: the identity is hashed here and the raw value dropped with ``ex``.
            if ex.ident is not None:
                consumer = hash_identity(ex.ident, cfg.salt)
            elif ex.fwd is not None:
                consumer, bad = resolve_client(info.client_ip, cfg.trusted, *ex.fwd)
                if bad:
                    self.counters["http_bad_forwarded"] += 1
        self.emit(
            Transaction(
                conn_id=info.conn_id,
                depth=ex.depth,
                client_ip=info.client_ip,
                client_port=info.client_port,
                server_ip=info.server_ip,
                server_port=info.server_port,
                request_ts_ns=ex.req_ts,
                request_end_ts_ns=ex.req_end_ts,
                response_ts_ns=ex.resp_ts,
                response_end_ts_ns=ex.resp_end_ts,
                # latin-1 maps every byte to one code point: any request-target round-trips.
                method=None if m is None else m.decode("latin-1"),
                host=None if h is None else h.decode("latin-1"),
                uri=None if u is None else u.decode("latin-1"),
                version=None if v is None else v.decode("latin-1"),
                status=ex.status,
                reason=None if r is None else r.decode("latin-1"),
                response_version=None if rv is None else rv.decode("latin-1"),
                request_header_bytes=ex.req_head_bytes,
                request_body_bytes=ex.req_body,
                response_header_bytes=ex.resp_head_bytes,
                response_body_bytes=ex.resp_body,
                request_content_type=None if rqct is None else rqct.decode("latin-1"),
                response_content_type=None if rsct is None else rsct.decode("latin-1"),
                user_agent=None if ua is None else ua.decode("latin-1"),
                interim_statuses=tuple(ex.interim) if ex.interim else (),
                tunnel_bytes=tunnel_bytes,
                notes=tuple(dict.fromkeys(notes)) if notes else (),
                consumer=consumer,
            )
        )
