"""The one-direction message parser and its pure helpers.

MessageParser is driven here by a recording owner that frames bodies with body_framing (as
HttpConnection does); every stream is fed whole, one byte at a time, and split at every index.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from netrum.counters import COUNTER_DOCS, Counters
from netrum.http.framing import BodyKind, body_framing
from netrum.http.parser import (
    F_BAD_CHUNK,
    F_CLOSE,
    F_GAP,
    F_RESYNC,
    F_TRUNC,
    PAUSED,
    TUNNEL,
    MessageParser,
    RequestHead,
    ResponseHead,
    classify_start,
    parse_fields,
    parse_request_line,
    parse_status_line,
)
from netrum.limits import Limits

DEFAULT_LIMITS = Limits()


# ------------------------------------------------------------------------------ classify_start
@pytest.mark.parametrize(
    "prefix,expected",
    [
        (b"GET / HTTP/1.1\r\n", 1),
        (b"GET /", 1),
        (b"PROPFIND /dav HTTP/1.1", 1),
        (b"M-SEARCH * HTTP/1.1", 1),
        (b"\r\nPOST /x HTTP/1.0", 1),
        (b"BREW /pot HTTP/1.1\r\n", 1),  # unknown uppercase token with a version on its line
        (b"CCM_POST / HTTP/1.1", 1),
        (b"GET /path\r\n", 1),  # HTTP/0.9
        (b"HTTP/1.1 200 OK\r\n", -1),
        (b"HTTP/2 200", -1),
        (b"http/1.1 200 OK\r\n", -1),
        (b"HTTP/", 0),
        (b"HTTP/x", 0),
        (b"EHLO mail.example.com\r\n", 0),  # SMTP: uppercase token, no HTTP version
        (b"USER anonymous\r\n", 0),
        (b"SSH-2.0-OpenSSH_9.0\r\n", 0),
        (b"\x16\x03\x01\x02\x00", 0),
        (b"get / HTTP/1.1", 0),
        (b"GET  / HTTP/1.1", 0),
        (b"GET", 0),
        (b"", 0),
    ],
)
def test_classify_start(prefix: bytes, expected: int) -> None:
    assert classify_start(prefix) == expected


# ------------------------------------------------------------------------------ start lines
@pytest.mark.parametrize(
    "line,expected",
    [
        (b"GET / HTTP/1.1\r", (b"GET", b"/", b"HTTP/1.1")),
        (b"GET   /a%20b?c   HTTP/1.0", (b"GET", b"/a%20b?c", b"HTTP/1.0")),
        (b"OPTIONS * http/1.1", (b"OPTIONS", b"*", b"HTTP/1.1")),
        (b"GET / HTTP/1.", (b"GET", b"/", b"HTTP/1.")),
        (b"GET /path", (b"GET", b"/path", b"HTTP/0.9")),
        (b"GET /caf\xe9", (b"GET", b"/caf\xe9", b"HTTP/0.9")),
        (b"GET /HTTP/1.1", (b"GET", b"/HTTP/1.1", b"HTTP/0.9")),
        (b"OPTIONS HTTP/1.1", (b"OPTIONS", b"", b"HTTP/1.1")),  # target missing: empty, as Zeek logs it
        (b"OPTIONS", (b"OPTIONS", b"", b"")),  # a bare method: a request only if fields follow (_head)
        (b"GET ", (b"GET", b"", b"")),
        (b"get / HTTP/1.1", None),
        (b"\xc3\x83 / HTTP/1.1", None),
        (b"GET / HTTP/1.1 extra", None),
        (b"GET/ HTTP/1.1", None),
    ],
)
def test_parse_request_line(line: bytes, expected: tuple[bytes, bytes, bytes] | None) -> None:
    assert parse_request_line(line) == expected


@pytest.mark.parametrize(
    "line,expected",
    [
        (b"HTTP/1.1 200 OK\r", (b"HTTP/1.1", 200, b"OK")),
        (b"HTTP/1.0 404 Not Found", (b"HTTP/1.0", 404, b"Not Found")),
        (b"HTTP/1.1 200", (b"HTTP/1.1", 200, b"")),
        (b"HTTP/1.1 204 \r", (b"HTTP/1.1", 204, b"")),
        (b"HTTP/1.1  301  Moved", (b"HTTP/1.1", 301, b"Moved")),
        (b"http/1.1 200 ok", (b"HTTP/1.1", 200, b"ok")),
        (b"HTTP/1.1 20 OK", None),
        (b"HTTP/1.1 2000 OK", None),
        (b"HTTP/1.1200 OK", None),
        (b"HTTP/1 200 OK", None),
        (b"ICY 200 OK", None),
    ],
)
def test_parse_status_line(line: bytes, expected: tuple[bytes, int, bytes] | None) -> None:
    assert parse_status_line(line) == expected


def test_parse_fields_tolerance_and_counters() -> None:
    c = Counters()
    block = (b"Host: a.example\r\nContent-Length: 5\r\ncontent-length: 5\r\nX-Other: 1\r\n"
             b"User-Agent: one\r\n\ttwo\r\nTransfer-Encoding : chunked\r\nno colon here\r\n"
             b"Content-Type:text/html ; q=1  ")
    assert parse_fields(block, c, 256) == {
        b"host": b"a.example", b"content-length": b"5,5", b"user-agent": b"one two",
        b"transfer-encoding": b"chunked", b"content-type": b"text/html ; q=1",
    }
    assert c.nonzero() == {"http_obs_fold": 1}
    c = Counters()
    assert parse_fields(b"Host: b\nUpgrade: websocket\r\nHost: c", c, 256) == {
        b"host": b"b", b"upgrade": b"websocket"}
    assert c.nonzero() == {"http_bare_lf": 1}
    c = Counters()
    assert parse_fields(b"A: 1\r\nB: 2\r\nHost: late", c, 2) == {}
    assert c.nonzero() == {"http_head_too_large": 1}


# ------------------------------------------------------------------------------ MessageParser
class Recorder:
    """Owner of a MessageParser that records its callbacks as plain tuples."""

    def __init__(self, is_request: bool, limits: Limits, midstream: bool = False) -> None:
        self.counters = Counters()
        self.events: list[tuple[object, ...]] = []
        self.parser = MessageParser(is_request, self.counters, limits, self.on_head, self.on_end, midstream)
        self.is_request = is_request

    def on_head(self, head: object, first_ts: int, head_bytes: int, flags: int) -> tuple[BodyKind, int]:
        if head is None:
            self.events.append(("raw", first_ts, flags))
            return (BodyKind.UNTIL_CLOSE, 0)
        if self.is_request:
            req = cast(RequestHead, head)
            self.events.append(("head", req[0], req[1], req[2], first_ts, head_bytes, flags))
            kind, length, _ = body_framing(True, req[0], None, req[3])
        else:
            resp = cast(ResponseHead, head)
            self.events.append(("head", resp[0], resp[1], resp[2], first_ts, head_bytes, flags))
            kind, length, _ = body_framing(False, b"GET", resp[1], resp[3])
        return kind, length

    def on_end(self, end_ts: int, body_bytes: int, flags: int) -> None:
        self.events.append(("end", end_ts, body_bytes, flags))


# Items: ("d", bytes, ts) data, ("g", n, ts) gap, ("eof", 0, ts).
Item = tuple[str, bytes | int, int]


def drive(
    items: list[Item], is_request: bool, limits: Limits = DEFAULT_LIMITS, midstream: bool = False
) -> tuple[list[tuple[object, ...]], dict[str, int]]:
    r = Recorder(is_request, limits, midstream)
    for kind, arg, ts in items:
        if kind == "d":
            assert isinstance(arg, bytes)
            r.parser.feed(arg, ts)
        elif kind == "g":
            assert isinstance(arg, int)
            r.parser.gap(arg, ts)
        else:
            r.parser.eof(ts)
    for name in r.counters:
        assert name in COUNTER_DOCS
    return r.events, {k: v for k, v in r.counters.nonzero().items() if k != "http_resync_bytes"}


def splits(items: list[Item]) -> Iterator[list[Item]]:
    yield [(k, a[i:i + 1], t) for k, a, t in items if isinstance(a, bytes) for i in range(len(a))] if all(
        isinstance(a, bytes) for _, a, _ in items) else [
        p for k, a, t in items
        for p in ([(k, a[i:i + 1], t) for i in range(len(a))] if isinstance(a, bytes) else [(k, a, t)])]
    for n, (k, a, t) in enumerate(items):
        if isinstance(a, bytes):
            for i in range(1, len(a)):
                yield items[:n] + [(k, a[:i], t), (k, a[i:], t)] + items[n + 1:]


def check(
    items: list[Item], is_request: bool, limits: Limits = DEFAULT_LIMITS, midstream: bool = False
) -> tuple[list[tuple[object, ...]], dict[str, int]]:
    base = drive(items, is_request, limits, midstream)
    for v in splits(items):
        assert drive(v, is_request, limits, midstream) == base, v
    return base


def test_requests_keep_alive_and_pipelined() -> None:
    stream = (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
              b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
              b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;e=1\r\nab\r\n0\r\nX: y\r\n\r\n")
    events, counters = check([("d", stream, 7)], True)
    assert events == [
        ("head", b"GET", b"/a", b"HTTP/1.1", 7, 28, 0), ("end", 7, 0, 0),
        ("head", b"POST", b"/b", b"HTTP/1.1", 7, 39, 0), ("end", 7, 3, 0),
        ("head", b"PUT", b"/c", b"HTTP/1.1", 7, 47, 0), ("end", 7, 2, 0),
    ]
    assert counters == {}


def test_first_and_last_byte_timestamps() -> None:
    items: list[Item] = [("d", b"\r\nHTTP/1.1 200 OK\r\nCont", 1), ("d", b"ent-Length: 4\r\n\r\nab", 2),
                         ("d", b"cd", 3)]
    events, _ = check(items, False)
    assert events == [("head", b"HTTP/1.1", 200, b"OK", 1, 38, 0), ("end", 3, 4, 0)]
    # Leading empty lines alone in a chunk: the message starts with the next chunk.
    events, _ = check([("d", b"\r\n", 1), ("d", b"HTTP/1.1 204 No\r\n\r\n", 2)], False)
    assert events == [("head", b"HTTP/1.1", 204, b"No", 2, 19, 0), ("end", 2, 0, 0)]


def test_close_delimited_and_truncation() -> None:
    events, counters = check([("d", b"HTTP/1.0 200 OK\r\n\r\nab", 1), ("d", b"c", 2), ("eof", 0, 9)], False)
    assert events[-1] == ("end", 2, 3, F_CLOSE)
    events, counters = check([("d", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", 1), ("eof", 0, 9)], False)
    assert events[-1] == ("end", 1, 2, F_TRUNC) and counters["http_truncated"] == 1
    events, counters = check([("d", b"HTTP/1.1 200 OK\r\nContent-", 1), ("eof", 0, 9)], False)
    assert events == [] and counters == {"http_truncated": 1}


def test_bad_chunk_and_long_chunk_line() -> None:
    events, counters = check([("d", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 1)], False)
    assert events[-1] == ("end", 1, 3, F_BAD_CHUNK) and counters["http_bad_chunk"] == 1
    limits = Limits(max_chunk_line_bytes=8)
    events, counters = check(
        [("d", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;aaaaaaaaaa\r\nx\r\n0\r\n\r\n", 1)],
        False, limits)
    assert events[-1] == ("end", 1, 0, F_BAD_CHUNK) and counters["http_resync"] == 1


def test_resync_on_the_response_side() -> None:
    stream = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!<garbage>HTTP/1.1 HTTP/1.0 404 Nope\r\n\r\n"
    events, counters = check([("d", stream, 1)], False)
    assert events[2] == ("head", b"HTTP/1.0", 404, b"Nope", 1, 21, F_RESYNC)
    assert counters["http_bad_response"] == 1 and counters["http_resync"] == 1


def test_resync_finds_a_request_split_across_chunks() -> None:
    items: list[Item] = [("d", b"\x00\x01\x02junk GE", 1), ("d", b"T /x HT", 2), ("d", b"TP/1.1\r\n\r\n", 3)]
    events, counters = check(items, True)
    assert events == [("head", b"GET", b"/x", b"HTTP/1.1", 1, 19, F_RESYNC), ("end", 3, 0, F_RESYNC)]
    assert counters["http_bad_request"] == 1


def test_resync_not_fooled_by_a_shifted_method() -> None:
    # After a bad "GETX" head, hunting must not take "ETX ..." or "TX ..." for a request.
    events, _ = check([("d", b"GET/ HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\n\r\n", 1)], True)
    assert [e[:3] for e in events if e[0] == "head"] == [("head", b"POST", b"/")]


def test_midstream_hunt_is_not_a_resync() -> None:
    events, counters = check([("d", b"ody tail\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 5)],
                             False, midstream=True)
    assert events == [("head", b"HTTP/1.1", 200, b"OK", 5, 38, 0), ("end", 5, 0, 0)]
    assert counters == {}


def test_gap_rules() -> None:
    cl = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"
    # inside a known-length body: exact
    events, counters = check([("d", cl + b"ab", 1), ("g", 2, 2), ("d", b"ef", 3)], False)
    assert events[-1] == ("end", 3, 6, F_GAP) and counters == {"http_gap_in_body": 1}
    # past the end of the body: the body completes, the parser resyncs; the next message is intact
    # (it lies wholly after the hole) and is marked as found by a resync because bytes were skipped
    events, counters = check([("d", cl + b"ab", 1), ("g", 10, 2), ("d", b"xxHTTP/1.1 204 N\r\n\r\n", 3)], False)
    assert events[1] == ("end", 2, 6, F_GAP)
    assert events[2] == ("head", b"HTTP/1.1", 204, b"N", 3, 18, F_RESYNC)
    assert counters["http_gap_out_of_body"] == 1
    # inside a head
    events, counters = check([("d", b"HTTP/1.1 200 OK\r\nX-", 1), ("g", 10, 2),
                              ("d", b"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 3)], False)
    assert events[0][-1] == F_RESYNC and counters["http_gap_out_of_body"] == 1
    # a hole between two messages, the next one starting right after it: intact, no flag at all
    events, counters = check([("d", cl + b"abcdef", 1), ("g", 10, 2), ("d", b"HTTP/1.1 204 N\r\n\r\n", 3)],
                             False)
    assert events[-2] == ("head", b"HTTP/1.1", 204, b"N", 3, 18, 0)


def test_head_too_large_incomplete() -> None:
    limits = Limits(max_header_bytes=64)
    events, counters = check(
        [("d", b"GET / HTTP/1.1\r\nX: " + b"a" * 100 + b"\r\nGET /ok HTTP/1.1\r\n\r\n", 1)], True, limits)
    assert counters["http_head_too_large"] == 1
    assert [e[:3] for e in events if e[0] == "head"] == [("head", b"GET", b"/ok")]


def test_http09_raw_answer() -> None:
    r = Recorder(False, DEFAULT_LIMITS)
    r.parser.raw_next = True
    r.parser.feed(b"<html>", 1)
    r.parser.feed(b"</html>", 2)
    r.parser.eof(3)
    assert r.events == [("raw", 1, 0), ("end", 2, 13, F_CLOSE)]


def test_pause_then_tunnel_or_resume() -> None:
    r = Recorder(True, DEFAULT_LIMITS)
    r.parser.pause_next = True
    r.parser.feed(b"CONNECT h:443 HTTP/1.1\r\n\r\n\x16\x03", 1)
    assert r.parser.state == PAUSED
    r.parser.gap(5, 2)
    r.parser.start_tunnel()
    r.parser.feed(b"abc", 3)
    assert r.parser.state == TUNNEL and r.parser.tunnel_bytes == 2 + 5 + 3
    r = Recorder(True, DEFAULT_LIMITS)
    r.parser.pause_next = True
    r.parser.feed(b"CONNECT h:443 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1)
    r.parser.resume()
    assert [e[1] for e in r.events if e[0] == "head"] == [b"CONNECT", b"GET"]


def test_bare_method_followed_by_fields_is_a_request() -> None:
    # methods.pcap: "OPTIONS" alone then a Host field: a request missing target and version (tshark reads
    # it so); a bare "GET " followed by anything but a field is not a request.
    events, _ = check([("d", b"OPTIONS\r\nHost: a\r\n\r\n", 1)], True)
    assert [e[:4] for e in events if e[0] == "head"] == [("head", b"OPTIONS", b"", b"")]
    events, counters = check([("d", b"GET \r\nGET / HTTP/1.1\r\n\r\n", 1)], True)
    assert [e[:3] for e in events if e[0] == "head"] == [("head", b"GET", b"/")]
    assert counters["http_bad_request"] == 1
