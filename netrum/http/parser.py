"""Incremental, tolerant, resynchronising HTTP/1.x message parser for one direction of a connection.

Rules this module keeps (read them before changing it):

- Sans-IO: ``feed(data, ts_ns)``, ``gap(nbytes, ts_ns)``, ``eof(ts_ns)`` in; callbacks out. It never
  raises on traffic: whatever it cannot parse is counted and skipped.
- O(bytes): a buffer is kept only while a head, a chunk line or a trailer line is incomplete, and the
  search for the end of a head resumes where it stopped. Bodies are skipped by counting, never copied.
- The parser does not decide body framing: the owner (``HttpConnection``) does, because a response's
  framing depends on the request it answers (HEAD, CONNECT, 1xx, 204, 304). ``on_head`` returns it.
- Tolerance (RFC 9112 section 2.2: a recipient MAY accept a bare LF as a line terminator and SHOULD
  ignore empty lines before a start line; section 5.2: obs-fold may be replaced by SP; section 3:
  whitespace-tolerant request-line parsing): bare LF, obs-fold, runs of spaces in the start line,
  whitespace before the colon, a status line without reason phrase, lowercase "http/1.1" at a message
  boundary, and HTTP/0.9 request lines (RFC 1945 section 4.1, Simple-Request: method SP target CRLF).
- A malformed head is counted (``http_bad_request`` / ``http_bad_response``) and the parser hunts for
  the next start line (``http_resync``, ``http_resync_bytes``): ``HTTP/1.x ddd`` on the response side,
  ``TOKEN target HTTP/1.x`` on the request side, both found with ``bytes.find`` first.
- Gap rule (Zeek's ``HTTP_Analyzer::Undelivered``, which gives up where this parser resynchronises): a
  gap inside a body of known length (Content-Length, or a chunk's data) is skipped exactly and the
  message completes normally; a gap anywhere else marks the message and resynchronises.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from netrum.counters import Counters
from netrum.http.framing import BodyKind
from netrum.limits import Limits

# Parser states.
HUNT = 0  # searching for a start line (mid-stream start, after an error or a gap)
HEAD = 1  # expecting / reading a message head
LENGTH = 2  # inside a Content-Length body
CHUNK_SIZE = 3  # expecting a chunk-size line (RFC 9112 section 7.1)
CHUNK_DATA = 4  # inside a chunk's data
CHUNK_END = 5  # expecting the CRLF after a chunk's data
TRAILER = 6  # reading the trailer section after the last chunk (RFC 9112 section 7.1.2)
UNTIL_CLOSE = 7  # a body delimited by the end of the connection
TUNNEL = 8  # after CONNECT 2xx / 101: bytes are counted, not parsed
PAUSED = 9  # request side after CONNECT / Upgrade: bytes held until the response says tunnel or not
DEAD = 10  # after end of stream

# Body kinds as plain module constants (an enum attribute lookup costs more on the hot path).
_K_NONE, _K_LENGTH, _K_CHUNKED, _K_UNTIL_CLOSE = BodyKind.NONE, BodyKind.LENGTH, BodyKind.CHUNKED, BodyKind.UNTIL_CLOSE

# Flags passed to the callbacks.
F_RESYNC = 1  # bytes were skipped before this message
F_GAP = 2  # bytes of this message (or just before it) are missing
F_TRUNC = 4  # the message was cut by the end of the stream
F_BAD_CHUNK = 8  # the chunked framing was malformed; the message ended there
F_CLOSE = 16  # the body was delimited by the end of the stream

# Head tuples handed to ``on_head``: a request head is (method, target, version, fields); a response head
# is (version, status, reason, fields). ``None`` stands for the raw, head-less answer to an HTTP/0.9
# request. Fields: lowercase name -> value, only the fields that matter.
RequestHead = tuple[bytes, bytes, bytes, dict[bytes, bytes]]
ResponseHead = tuple[bytes, int, bytes, dict[bytes, bytes]]
OnHead = Callable[[object, int, int, int], tuple[BodyKind, int]]  # (head, first_ts, head_bytes, flags)
OnEnd = Callable[[int, int, int], None]  # (end_ts, body_bytes, flags)

# Standard (RFC 9110 section 9, RFC 5789) and WebDAV (RFC 4918, RFC 3253, RFC 5323) methods.
KNOWN_METHODS = frozenset(
    m.encode()
    for m in ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT", "MKACTIVITY", "CHECKOUT", "CHECKIN", "UNCHECKOUT", "MERGE", "VERSION-CONTROL", "LABEL", "UPDATE", "MKWORKSPACE", "BASELINE-CONTROL", "MKCALENDAR", "ORDERPATCH", "ACL", "BIND", "UNBIND", "REBIND", "PURGE", "LINK", "UNLINK", "SUBSCRIBE", "UNSUBSCRIBE", "NOTIFY", "M-SEARCH", "QUERY"]
)
_TOKEN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
_MAX_METHOD = 24
_HEX = b"0123456789abcdefABCDEF"
_CRLF_VERSIONS = frozenset((b"HTTP/1.1\r", b"HTTP/1.0\r"))
_STATUS_PREFIXES = frozenset((b"HTTP/1.1 ", b"HTTP/1.0 "))
_DIGITS = b"0123456789"

# The fields the analyzer looks at; every other field line is skipped without building anything.
WANTED_FIELDS = frozenset(
    (b"content-length", b"transfer-encoding", b"host", b"connection", b"upgrade", b"content-type",
     b"user-agent", b"expect")
)


def first_bytes(names: frozenset[bytes]) -> frozenset[int]:
    """The bytes a line must start with to hold one of ``names`` (either case): one set lookup skips
    every other line."""
    return frozenset(b"".join(n[:1] + n[:1].upper() for n in names))


_WANTED_FIRST = first_bytes(WANTED_FIELDS)
# Fields whose repeated lines combine into one comma-separated list (RFC 9110 section 5.3); for the
# others the first line wins. Forwarded / X-Forwarded-For (RFC 7239 section 4) are lists of hops.
_LIST_FIELDS = frozenset((b"content-length", b"transfer-encoding", b"connection", b"upgrade", b"expect",
                          b"forwarded", b"x-forwarded-for"))

# Resynchronisation patterns, tried only where bytes.find found their anchor.
_STATUS_AT = re.compile(rb"HTTP/1\.[0-9][ \t]+[0-9]{3}[ \t\r\n]")
# The method may follow any byte but an uppercase token character: "GET" shifted by one byte is not "ET".
_REQUEST_BEFORE = re.compile(rb"(?<![A-Z_\-])[A-Z][A-Z_\-]{0,23} +[^ \t\r\n]+ +HTTP/1\.[0-9]")
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")  # a field name's characters (RFC 9110 5.1)
_HUNT_KEEP_RESPONSE = 16  # bytes kept between chunks while hunting ("HTTP/1.1 200 " split across them)
_HUNT_KEEP_REQUEST = 512  # a request line split across chunks
_MAX_MARKS = 32  # chunk timestamps remembered for a kept buffer


def is_method(token: bytes) -> bool:
    """A known method, or a plausible extension token of uppercase letters, '-' and '_'."""
    if token in KNOWN_METHODS:
        return True
    return (
        0 < len(token) <= _MAX_METHOD
        and 65 <= token[0] <= 90
        and not token.translate(None, _TOKEN_CHARS)
    )


def _is_version(v: bytes) -> bool:
    # RFC 9112 section 2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive; lowercase tolerated).
    return (
        len(v) == 8 and v[:5] in (b"HTTP/", b"http/") and v[6] == 46 and 48 <= v[5] <= 57
        and 48 <= v[7] <= 57
    )


def classify_start(prefix: bytes) -> int:
    """+1 if ``prefix`` starts like an HTTP request, -1 like an HTTP response, 0 otherwise.

    Requests: a known method then SP and a request-target; an unknown uppercase token only when the
    same line also carries `` HTTP/1.`` (so that "EHLO x" or "USER x" are not taken for HTTP).
    Responses: "HTTP/" and a digit (lowercase "http/1.x ddd" too: that shape is specific enough).
    """
    p = prefix.lstrip(b"\r\n")
    head5 = p[:5]
    if head5 == b"HTTP/":
        return -1 if len(p) > 5 and 48 <= p[5] <= 57 else 0
    if head5 == b"http/":
        return -1 if _STATUS_AT.match(p[:16].upper()) else 0
    sp = p.find(b" ", 0, _MAX_METHOD + 1)
    if sp <= 0 or len(p) <= sp + 1 or p[sp + 1] in b" \t\r\n":
        return 0
    token = p[:sp]
    if token in KNOWN_METHODS:
        return 1
    if is_method(token):
        eol = p.find(b"\n", sp)
        line = p[sp:eol] if eol >= 0 else p[sp:]
        return 1 if b" HTTP/1." in line else 0
    return 0


def parse_request_line(line: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(method, target, version) of a request line (without its line end), or None if malformed.

    RFC 9112 section 3: request-line = method SP request-target SP HTTP-version; runs of SP/HTAB are
    tolerated. A line without version is an HTTP/0.9 Simple-Request (RFC 1945 section 4.1): version
    b"HTTP/0.9".
    """
    line = line.strip(b" \t\r")
    sp = line.find(b" ")
    if sp <= 0:
        # A known method alone on the line ("OPTIONS"): a request missing target and version, as servers
        # and tshark read it.
        return (line, b"", b"") if line in KNOWN_METHODS else None
    method = line[:sp]
    if not is_method(method):
        return None
    rest = line[sp + 1:].lstrip(b" \t")
    if not rest:
        return None
    rsp = rest.rfind(b" ")
    if rsp > 0:
        version = rest[rsp + 1:]
        # "HTTP/1." without its minor digit: servers answer it, so it is taken as sent.
        if not _is_version(version) and not (
            len(version) == 7 and version[:5].upper() == b"HTTP/" and version[6] == 46 and 48 <= version[5] <= 57
        ):
            return None
        target = rest[:rsp].rstrip(b" \t")
        return method, target, version.upper()
    if b"\t" in rest:
        return None
    if _is_version(rest):
        return method, b"", rest.upper()  # "OPTIONS HTTP/1.1": the target is missing (Zeek: empty URI)
    return method, rest, b"HTTP/0.9"


def parse_status_line(line: bytes) -> tuple[bytes, int, bytes] | None:
    """(version, status, reason) of a status line (without its line end), or None if malformed.

    RFC 9112 section 4: status-line = HTTP-version SP status-code SP [ reason-phrase ]. A missing
    reason phrase (and its SP) is tolerated, as are runs of spaces.
    """
    version = line[:8]
    if not _is_version(version):
        return None
    rest = line[8:]
    if rest[:1] not in (b" ", b"\t"):
        return None
    rest = rest.lstrip(b" \t")
    code = rest[:3]
    if len(code) != 3 or code.strip(_DIGITS):
        return None
    tail = rest[3:]
    if tail and tail[0] not in b" \t\r":
        return None
    return version.upper(), int(code), tail.strip(b" \t\r")


def parse_fields(
    block: bytes, counters: Counters, max_headers: int, crlf_only: bool = False,
    wanted: frozenset[bytes] = WANTED_FIELDS, first: frozenset[int] = _WANTED_FIRST,
) -> dict[bytes, bytes] | None:
    """The wanted fields of a field section (the lines after the start line, without the empty line).

    One pass over the lines; a line whose first byte cannot start a wanted name costs one set lookup.
    (Measured here: faster than a regex over the block or a find per wanted name.) With ``crlf_only``
    it returns None, counting nothing, when the block holds a bare LF (the caller then looks for an
    earlier end of head); otherwise it never returns None.

    RFC 9112 section 5: field-line = field-name ":" OWS field-value OWS. Tolerated: bare LF (counted
    ``http_bare_lf``), obs-fold (section 5.2; counted ``http_obs_fold``, replaced by SP), whitespace
    before the colon (section 5.1 says reject; a tap accepts), lines without a colon (skipped).
    ``wanted`` (and ``first``, its ``first_bytes``): the fields to extract, WANTED_FIELDS by default.
    """
    lines = block.split(b"\r\n")
    if block.count(b"\n") != len(lines) - 1:
        if crlf_only:
            return None  # a bare LF: the head may end earlier than the CRLF CRLF found
        counters["http_bare_lf"] += 1
        lines = [ln[:-1] if ln[-1:] == b"\r" else ln for ln in block.split(b"\n")]
    if len(lines) > max_headers:
        counters["http_head_too_large"] += 1
        del lines[max_headers:]
    fields: dict[bytes, bytes] = {}
    last: bytes | None = None
    for line in lines:
        if not line:
            continue
        c0 = line[0]
        if c0 not in first:
            if c0 == 32 or c0 == 9:
                counters["http_obs_fold"] += 1
                if last is not None:
                    fields[last] = fields[last] + b" " + line.strip(b" \t")
            else:
                last = None
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            last = None
            continue
        name = name.lower()
        if name not in wanted:
            name = name.rstrip(b" \t")
            if name not in wanted:
                last = None
                continue
        value = value.strip(b" \t")
        old = fields.get(name)
        if old is None:
            fields[name] = value
        elif name in _LIST_FIELDS:
            fields[name] = old + b"," + value
        last = name
    return fields


def _find_head_end(data: bytes, start: int) -> tuple[int, int]:
    """(end of the last field line, index after the empty line) of the first head end at or after
    ``start``, or (-1, -1). The usual CRLF CRLF is found with one bytes.find; bare-LF endings
    ("\\n\\n", "\\n\\r\\n") are looked for only before it."""
    e = data.find(b"\r\n\r\n", start)
    stop = e if e >= 0 else len(data)
    j = data.find(b"\n\n", start, stop + 1)
    k = data.find(b"\n\r\n", start, stop + 1)
    best_text, best_end = (e, e + 4) if e >= 0 else (-1, -1)
    if j >= 0 and (best_text < 0 or j < best_text):
        best_text, best_end = j, j + 2
    if k >= 0 and (best_text < 0 or k < best_text):
        best_text, best_end = k, k + 3
    return best_text, best_end


class MessageParser:
    """Parses one direction (requests when ``is_request``, else responses) of one connection.

    ``on_head(head, first_ts, head_bytes, flags) -> (BodyKind, length)`` is called when a head is
    complete (``head`` None: the raw answer to an HTTP/0.9 request, see ``raw_next``); ``on_end(end_ts,
    body_bytes, flags)`` when the message is over. ``first_ts`` / ``end_ts`` are the timestamps of the
    chunks that carried the first / last byte of the message.
    """

    __slots__ = (
        "body",
        "buf",
        "counters",
        "fed",
        "flags",
        "found_start",
        "headless_probe",
        "hunt_initial",
        "hunt_skipped",
        "hunted",
        "is_request",
        "kept",
        "last_ts",
        "limits",
        "marks",
        "msg_off",
        "msg_ts",
        "next_flags",
        "off0",
        "on_end",
        "on_head",
        "pause_next",
        "paused",
        "paused_bytes",
        "raw_next",
        "remaining",
        "scan",
        "state",
        "trailer_bytes",
        "tunnel_bytes",
        "wanted",
        "wanted_first",
    )

    def __init__(
        self, is_request: bool, counters: Counters, limits: Limits, on_head: OnHead, on_end: OnEnd,
        midstream: bool = False, extra_fields: tuple[bytes, ...] = (),
    ) -> None:
        """``extra_fields``: lowercase names of fields to extract beyond WANTED_FIELDS (the consumer's
        identity and forwarding fields, when configured)."""
        self.is_request = is_request
        if extra_fields:
            self.wanted = WANTED_FIELDS | frozenset(extra_fields)
            self.wanted_first = first_bytes(self.wanted)
        else:
            self.wanted, self.wanted_first = WANTED_FIELDS, _WANTED_FIRST
        self.counters = counters
        self.limits = limits
        self.on_head = on_head
        self.on_end = on_end
        self.state = HUNT if midstream else HEAD
        self.buf = b""  # unconsumed bytes (an incomplete head or line, or the tail kept while hunting)
        self.marks: list[tuple[int, int]] = []  # (offset in buf, ts) of the chunks that buf came from
        self.scan = 0  # where the search for the head end resumes, relative to the head start
        self.msg_ts = 0  # timestamp of the first byte of the current message
        self.msg_off = -1  # stream offset of the first byte of the current message (bytes fed + gaps)
        self.fed = 0  # stream offset after everything fed so far (gaps included)
        self.off0 = 0  # in feed: stream offset of data[0]
        self.remaining = 0  # bytes left in a Content-Length body or a chunk
        self.body = 0  # body bytes of the current message so far
        self.flags = 0  # flags of the current message
        self.next_flags = 0  # flags for the next message (set by a resync or a gap between messages)
        self.trailer_bytes = 0
        self.found_start = False  # a start line was parsed on this side at least once
        self.hunted = 0  # bytes scanned before any start line was found (not-HTTP detection)
        self.hunt_initial = midstream  # hunting because of a mid-stream start, not an error
        self.hunt_skipped = 0  # bytes skipped since the last resynchronisation began
        self.raw_next = False  # the next response answers an HTTP/0.9 request (set by the owner)
        self.pause_next = False  # pause after the current request (CONNECT / Upgrade; set by the owner)
        self.paused: list[tuple[bytes, int]] = []  # chunks held while PAUSED
        self.paused_bytes = 0
        self.tunnel_bytes = 0
        self.last_ts = 0  # timestamp of the last byte delivered
        self.kept = 0  # in feed: how many leading bytes of the data came from ``buf`` (see marks)
        # Set by the owner for a response whose request was never seen: it may have answered a HEAD, so
        # a Content-Length body that starts with a status line is taken as no body at all.
        self.headless_probe = False

    # ----------------------------------------------------------------------------------------- input
    def feed(self, data: bytes, ts: int) -> None:
        fed = self.fed
        self.fed = fed + len(data)
        if self.buf:
            self.kept = len(self.buf)
            self.off0 = fed - self.kept
            data = self.buf + data
            self.buf = b""
        else:
            self.kept = 0
            self.off0 = fed
        n = len(data)
        pos = 0
        while pos < n:
            st = self.state
            if st == LENGTH or st == CHUNK_DATA:
                if self.headless_probe:
                    if n - pos < 7 and b"HTTP/1.".startswith(data[pos:]):
                        self._keep(data, pos, ts)  # too short yet to tell a status line from a body
                        break
                    self.headless_probe = False
                    if st == LENGTH and data.startswith(b"HTTP/1.", pos):
                        self.remaining = 0
                        self._end(self.last_ts if pos == 0 else ts)
                        continue
                rem = self.remaining
                avail = n - pos
                if avail < rem:
                    self.remaining = rem - avail
                    self.body += avail
                    break
                self.body += rem
                self.remaining = 0
                pos += rem
                if st == LENGTH:
                    self._end(ts)
                else:
                    self.state = CHUNK_END
            elif st == HEAD:
                pos = self._head(data, pos, ts)
            elif st == CHUNK_SIZE:
                pos = self._chunk_size(data, pos, ts)
            elif st == CHUNK_END:
                c = data[pos]
                if c == 10:
                    pos += 1
                    self.state = CHUNK_SIZE
                elif c == 13:
                    pos += 1
                else:
                    self._bad_chunk(ts)
            elif st == TRAILER:
                pos = self._trailer(data, pos, ts)
            elif st == UNTIL_CLOSE:
                self.body += n - pos
                break
            elif st == HUNT:
                pos = self._hunt(data, pos, ts)
            elif st == TUNNEL:
                self.tunnel_bytes += n - pos
                self.counters["http_tunnel_bytes"] += n - pos
                break
            elif st == PAUSED:
                chunk = data[pos:] if pos else data
                self.paused.append((chunk, ts))
                self.paused_bytes += len(chunk)
                if self.paused_bytes > self.limits.max_header_bytes:
                    self.resume()  # nothing said "tunnel" in time: parse the bytes as HTTP
                break
            else:  # DEAD
                break
        self.last_ts = ts

    def gap(self, nbytes: int, ts: int) -> None:
        """``nbytes`` of this direction were never captured."""
        self.fed += nbytes
        if self.headless_probe:
            self.headless_probe = False
            if self.buf:  # bytes kept to probe for a status line: they were body after all
                self.body += len(self.buf)
                self.remaining -= len(self.buf)
                self.buf = b""
        st = self.state
        c = self.counters
        if st != HEAD:
            self.buf = b""  # an incomplete chunk or trailer line, or a hunt tail: its sequel is lost
        if st == LENGTH or st == CHUNK_DATA:
            rem = self.remaining
            if nbytes <= rem:
                # Inside a body of known length: skip exactly, sizes stay right.
                c["http_gap_in_body"] += 1
                self.flags |= F_GAP
                self.remaining = rem - nbytes
                self.body += nbytes
                if self.remaining == 0:
                    if st == LENGTH:
                        self._end(ts)
                    else:
                        self.state = CHUNK_END
                return
            # The hole runs past the body: the body ends inside it, what follows is unknown.
            c["http_gap_out_of_body"] += 1
            self.body += rem
            self.remaining = 0
            self.flags |= F_GAP
            self._end(ts)
            self._resync(F_GAP)
        elif st == TUNNEL:
            self.tunnel_bytes += nbytes
            self.counters["http_tunnel_bytes"] += nbytes
        elif st == PAUSED:
            self.paused.append((b"", -nbytes))  # replayed as a gap on resume
        elif st == HUNT:
            self.next_flags |= F_GAP
        elif st == DEAD:
            pass
        elif st == HEAD:
            # Between messages or inside a head: the next message found is marked.
            c["http_gap_out_of_body"] += 1
            self.buf = b""
            self.scan = 0
            self._resync(F_GAP)
        else:  # UNTIL_CLOSE, CHUNK_SIZE, CHUNK_END, TRAILER: the message ends at the gap, marked.
            c["http_gap_out_of_body"] += 1
            self.flags |= F_GAP
            self._end(self.last_ts if st == UNTIL_CLOSE else ts)
            self._resync(F_GAP)

    def eof(self, ts: int) -> None:
        """The end of this direction: a close-delimited body ends; anything else in progress is cut."""
        st = self.state
        if st == DEAD:
            return
        if st == UNTIL_CLOSE:
            self.flags |= F_CLOSE
            self._end(self.last_ts)
        elif st in (LENGTH, CHUNK_DATA, CHUNK_SIZE, CHUNK_END, TRAILER):
            self.counters["http_truncated"] += 1
            self.flags |= F_TRUNC
            self._end(self.last_ts)
        elif st == HEAD and self.buf.strip(b"\r\n"):
            self.counters["http_truncated"] += 1  # a head cut before its end: nothing to report
        self.buf = b""
        self.paused = []
        self.state = DEAD

    # --------------------------------------------------------------------- owner-driven transitions
    def start_tunnel(self) -> None:
        """HTTP is over on this connection (CONNECT 2xx, 101): count every further byte."""
        held = self.paused_bytes + sum(-t for d, t in self.paused if not d)
        self.paused = []
        self.paused_bytes = 0
        self.pause_next = False
        self.buf = b""
        if self.state != DEAD:
            self.state = TUNNEL
        self.tunnel_bytes += held
        self.counters["http_tunnel_bytes"] += held

    def resume(self) -> None:
        """The CONNECT / Upgrade was refused: parse the held bytes as HTTP again."""
        self.pause_next = False
        if self.state != PAUSED:
            return
        self.state = HEAD
        held = self.paused
        self.paused = []
        self.paused_bytes = 0
        # The held bytes were counted in ``fed`` when they arrived; they are fed (or gapped) again now.
        self.fed -= sum(len(data) if data else -ts for data, ts in held)
        for data, ts in held:
            if data:
                self.feed(data, ts)
            else:
                self.gap(-ts, self.last_ts)

    # ------------------------------------------------------------------------------------- internals
    def _end(self, ts: int) -> None:
        """The current message is over (its last byte came with ``ts``)."""
        self.headless_probe = False
        flags = self.flags
        self.flags = 0
        if self.pause_next:
            self.pause_next = False
            self.state = PAUSED
        else:
            self.state = HEAD
        self.scan = 0
        self.on_end(ts, self.body, flags)

    def _resync(self, flags: int) -> None:
        """Hunt for the next start line; the message found there gets ``flags`` (and F_RESYNC)."""
        self.counters["http_resync"] += 1
        self.state = HUNT
        self.hunt_initial = False
        self.hunt_skipped = 0
        self.buf = b""
        self.scan = 0
        self.next_flags |= flags | F_RESYNC

    def _bad(self, data: bytes, pos: int) -> int:
        """The head at ``pos`` is malformed: count it and hunt from the next byte."""
        self.counters["http_bad_request" if self.is_request else "http_bad_response"] += 1
        self._resync(0)
        self.counters["http_resync_bytes"] += 1
        return pos + 1

    def _head(self, data: bytes, pos: int, ts: int) -> int:
        n = len(data)
        limits = self.limits
        if self.scan == 0:
            # A fresh head. RFC 9112 section 2.2: ignore empty lines before the start line.
            c = data[pos]
            while c == 13 or c == 10:
                pos += 1
                if pos == n:
                    return n
                c = data[pos]
            self.msg_ts = ts if pos >= self.kept else self._ts_at(pos, ts)
            self.msg_off = self.off0 + pos
            if self.raw_next:
                probe = data[pos:pos + 5].upper()
                if n - pos < 5 and b"HTTP/".startswith(probe):
                    self._keep(data, pos, ts)  # too short to tell a status line from raw bytes
                    return n
                self.raw_next = False
                if probe != b"HTTP/":
                    # HTTP/0.9 answer: no status line, the body ends with the connection.
                    self.found_start = True
                    self.flags = self.next_flags
                    self.next_flags = 0
                    self.body = 0
                    self.state = UNTIL_CLOSE
                    self.on_head(None, self.msg_ts, 0, self.flags)
                    return pos
            search = pos
        else:
            search = pos + self.scan
        # The start line.
        nl = data.find(b"\n", pos)
        if nl < 0:
            return self._head_incomplete(data, pos, ts)
        line = data[pos:nl]
        start: tuple[bytes, bytes, bytes] | tuple[bytes, int, bytes] | None
        if self.is_request:
            parts = line.split(b" ")
            if len(parts) == 3 and parts[0] in KNOWN_METHODS and parts[2] in _CRLF_VERSIONS and parts[1]:
                start = (parts[0], parts[1], parts[2][:8])  # fast path: "GET /x HTTP/1.1\r"
            else:
                start = parse_request_line(line)
        else:
            v = line[:9]
            if v in _STATUS_PREFIXES and line[-1:] == b"\r" and line[9:12].isdigit() and line[12:13] in (b" ", b"\r"):
                start = (v[:8], int(line[9:12]), line[13:-1])  # fast path: "HTTP/1.1 200 OK\r"
            else:
                start = parse_status_line(line)
        if start is not None and not start[2]:
            # A bare method ("OPTIONS") is a request only when a header field follows: wait for its name.
            name_end = _FIELD_NAME.match(data, nl + 1).end()  # type: ignore[union-attr]  # matches ""
            if name_end == n:
                return self._head_incomplete(data, pos, ts)
            if name_end == nl + 1 or data[name_end] != 58:  # no "name:" follows
                start = None
        if start is None:
            return self._bad(data, pos)
        fields: dict[bytes, bytes] | None = None
        if self.is_request and start[2] == b"HTTP/0.9":
            text_end, head_end = nl, nl + 1
        else:
            # Fast path: CRLF line ends throughout, so the first CRLF CRLF is the end of the head.
            e = data.find(b"\r\n\r\n", max(search, nl - 1))
            if e == nl - 1:
                text_end, head_end, fields = e, e + 4, {}
            elif e > nl and line[-1:] == b"\r" and e + 4 - pos <= limits.max_header_bytes:
                block = data[nl + 1:e]
                fields = parse_fields(block, self.counters, limits.max_headers, True, self.wanted,
                                      self.wanted_first)
                text_end, head_end = e, e + 4
            if fields is None:
                text_end, head_end = _find_head_end(data, max(search, nl - 1))
                if text_end < 0:
                    return self._head_incomplete(data, pos, ts)
        if head_end - pos > limits.max_header_bytes:
            self.counters["http_head_too_large"] += 1
            return self._bad(data, pos)  # hunt inside it too, as when the head is still incomplete
        if line[-1:] != b"\r":
            self.counters["http_bare_lf"] += 1
        if fields is None:
            if text_end > nl + 1:
                fields = parse_fields(data[nl + 1:text_end], self.counters, limits.max_headers, False,
                                      self.wanted, self.wanted_first)
            else:
                fields = {}
        self.found_start = True
        flags = self.next_flags
        self.next_flags = 0
        self.flags = flags
        self.body = 0
        self.scan = 0
        kind, length = self.on_head((start[0], start[1], start[2], fields), self.msg_ts, head_end - pos, flags)
        if kind == _K_NONE:
            self._end(ts)
        elif kind == _K_LENGTH:
            self.state = LENGTH
            self.remaining = length
        elif kind == _K_CHUNKED:
            self.state = CHUNK_SIZE
        elif kind == _K_UNTIL_CLOSE:
            self.state = UNTIL_CLOSE
        else:  # TUNNEL: the head is the last HTTP on this side
            self._end(ts)
            self.start_tunnel()
        self.last_ts = ts
        return head_end

    def _head_incomplete(self, data: bytes, pos: int, ts: int) -> int:
        n = len(data)
        if n - pos > self.limits.max_header_bytes:
            self.counters["http_head_too_large"] += 1
            return self._bad(data, pos)
        if data.find(b"\n", pos) < 0:
            # The start line is incomplete: give up at once if it cannot become one.
            if self.is_request:
                c = data[pos]
                if not 65 <= c <= 90:
                    return self._bad(data, pos)
                sp = data.find(b" ", pos, pos + _MAX_METHOD + 1)
                if (sp < 0 and n - pos > _MAX_METHOD) or (sp > 0 and not is_method(data[pos:sp])):
                    return self._bad(data, pos)
            elif not b"HTTP/".startswith(data[pos:pos + 5].upper()):
                return self._bad(data, pos)
        self._keep(data, pos, ts)
        self.scan = max(1, n - pos - 3)
        return n

    def _chunk_size(self, data: bytes, pos: int, ts: int) -> int:
        # RFC 9112 section 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
        n = len(data)
        maxline = self.limits.max_chunk_line_bytes
        nl = data.find(b"\n", pos, pos + maxline + 1)
        if nl < 0:
            if n - pos > maxline:
                self._bad_chunk(ts)
                return pos
            self._keep(data, pos, ts)
            return n
        line = data[pos:nl]
        semi = line.find(b";")
        size = (line[:semi] if semi >= 0 else line).strip(b" \t\r")
        if not size or size.translate(None, _HEX):
            self._bad_chunk(ts)
            return pos
        pos = nl + 1
        length = int(size, 16)
        if length == 0:
            self.state = TRAILER
            self.trailer_bytes = 0
        else:
            self.state = CHUNK_DATA
            self.remaining = length
        return pos

    def _trailer(self, data: bytes, pos: int, ts: int) -> int:
        # RFC 9112 section 7.1.2: trailer-section = *( field-line CRLF ), then CRLF.
        n = len(data)
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                if self.trailer_bytes + n - pos > self.limits.max_header_bytes:
                    self.counters["http_head_too_large"] += 1
                    self._bad_chunk(ts)
                    return pos
                self._keep(data, pos, ts)
                return n
            empty = nl == pos or (nl == pos + 1 and data[pos] == 13)
            self.trailer_bytes += nl + 1 - pos
            pos = nl + 1
            if empty:
                self._end(ts)
                return pos

    def _bad_chunk(self, ts: int) -> None:
        self.counters["http_bad_chunk"] += 1
        self.flags |= F_BAD_CHUNK
        self._end(ts)
        self._resync(0)

    def _hunt(self, data: bytes, pos: int, ts: int) -> int:
        n = len(data)
        if self.kept and self.scan:
            pos = max(pos, self.scan)  # buf[:scan] is look-behind context, scanned in an earlier call
        self.scan = 0
        new_from = max(pos, self.kept)  # bytes before it were scanned in an earlier call
        if self.is_request:
            k = self._find_request(data, pos)
        else:
            k = self._find_response(data, pos)
        if k >= 0:
            self.counters["http_resync_bytes"] += k - pos
            self.hunt_skipped += k - pos
            if not self.found_start and k > new_from:
                self.hunted += k - new_from
            self.state = HEAD
            if self.hunt_initial:
                # A mid-stream start is not a resynchronisation: nothing was wrong with the stream.
                self.next_flags &= ~F_RESYNC
                self.hunt_initial = False
            # The message found here lies wholly after the hole that started the hunt: it is intact.
            # It is marked "resync" only if bytes had to be skipped to reach it.
            self.next_flags &= ~F_GAP
            if not self.hunt_skipped:
                self.next_flags &= ~F_RESYNC
            return k
        # Keep a tail that may hold the beginning of a start line cut by the chunk boundary.
        if self.is_request:
            start_keep = max(pos, n - _HUNT_KEEP_REQUEST)
        else:
            start_keep = max(pos, n - _HUNT_KEEP_RESPONSE)
            anchor = data.find(b"H", start_keep)
            start_keep = n if anchor < 0 else anchor
        self.counters["http_resync_bytes"] += start_keep - pos
        self.hunt_skipped += start_keep - pos
        if not self.found_start:
            self.hunted += n - new_from
        if start_keep < n:
            if self.is_request and start_keep > 0:
                # Keep one byte before the tail as look-behind context for _REQUEST_BEFORE.
                start_keep -= 1
                self._keep(data, start_keep, ts)
                self.scan = 1
            else:
                self._keep(data, start_keep, ts)
        return n

    def _keep(self, data: bytes, start: int, ts: int) -> None:
        """Keep data[start:] for the next call, with the timestamps of the chunks it came from."""
        self.buf = data[start:]
        if not self.kept:
            self.marks = [(0, ts)]
            return
        marks: list[tuple[int, int]] = []
        for off, t in self.marks + [(self.kept, ts)]:
            off -= start
            if off <= 0:
                marks = [(0, t)]
            else:
                marks.append((off, t))
        if len(marks) > _MAX_MARKS:
            del marks[1:len(marks) - _MAX_MARKS + 1]  # byte-sized chunks: older positions share a ts
        self.marks = marks

    def _ts_at(self, pos: int, ts: int) -> int:
        """Timestamp of the chunk that carried data[pos] in the current call."""
        if pos >= self.kept:
            return ts
        for off, t in reversed(self.marks):
            if off <= pos:
                return t
        return ts

    def _find_response(self, data: bytes, pos: int) -> int:
        find = data.find
        n = len(data)
        while True:
            k = find(b"HTTP/1.", pos)
            if k < 0:
                return -1
            if _STATUS_AT.match(data, k):
                return k
            if n - k < 16:
                return -1
            pos = k + 1

    def _find_request(self, data: bytes, pos: int) -> int:
        # A request line holds exactly one " HTTP/1." (the target has no spaces), so the line before
        # an occurrence starts after the previous occurrence: each byte is matched at most once or
        # twice, whatever the data (no quadratic rescans on hostile bodies).
        find = data.find
        lo_floor = pos
        while True:
            k = find(b" HTTP/1.", pos)
            if k < 0 or k + 9 > len(data):
                return -1
            lo = max(lo_floor, k - self.limits.max_uri_chars - _MAX_METHOD - 2)
            ls = data.rfind(b"\n", lo, k) + 1 or lo
            m = _REQUEST_BEFORE.search(data, ls, k + 9)
            if m is not None and m.end() == k + 9:
                return m.start()
            pos = lo_floor = k + 1
