"""Body framing rules (RFC 9112 section 6.3), one row per rule."""
from __future__ import annotations

import pytest

from netrum.http.framing import BodyKind, body_framing, parse_content_length

N, L, C, U, T = BodyKind.NONE, BodyKind.LENGTH, BodyKind.CHUNKED, BodyKind.UNTIL_CLOSE, BodyKind.TUNNEL
CL5 = {b"content-length": b"5"}
TE = {b"transfer-encoding": b"chunked"}

# (is_request, method, status, fields) -> (kind, length, bad_content_length)
CASES = [
    # rule 1: HEAD, 1xx, 204, 304 have no body, whatever their fields say
    (False, b"HEAD", 200, CL5, (N, 0, False)),
    (False, b"HEAD", 200, TE, (N, 0, False)),
    (False, b"GET", 100, {}, (N, 0, False)),
    (False, b"GET", 103, CL5, (N, 0, False)),
    (False, b"GET", 204, CL5, (N, 0, False)),
    (False, b"GET", 304, CL5, (N, 0, False)),
    (False, b"GET", 304, TE, (N, 0, False)),
    # 101 Switching Protocols and CONNECT 2xx: a tunnel (rule 2; RFC 9110 section 15.2.2)
    (False, b"GET", 101, {}, (T, 0, False)),
    (False, b"CONNECT", 200, {}, (T, 0, False)),
    (False, b"CONNECT", 204, {}, (N, 0, False)),  # rule 1 comes first
    (False, b"CONNECT", 299, CL5, (T, 0, False)),
    (False, b"CONNECT", 407, CL5, (L, 5, False)),  # a refused CONNECT is an ordinary response
    # rule 3/4: Transfer-Encoding with chunked last wins over Content-Length
    (False, b"GET", 200, {**TE, **CL5}, (C, 0, False)),
    (True, b"POST", None, {**TE, **CL5}, (C, 0, False)),
    (False, b"GET", 200, {b"transfer-encoding": b"gzip, Chunked"}, (C, 0, False)),
    (False, b"GET", 200, {b"transfer-encoding": b"chunked, gzip"}, (U, 0, False)),
    (True, b"POST", None, {b"transfer-encoding": b"gzip"}, (N, 0, False)),
    # rule 5: invalid or conflicting Content-Length
    (False, b"GET", 200, {b"content-length": b"5,6"}, (U, 0, True)),
    (False, b"GET", 200, {b"content-length": b"-1"}, (U, 0, True)),
    (False, b"GET", 200, {b"content-length": b"abc"}, (U, 0, True)),
    (True, b"POST", None, {b"content-length": b"1e3"}, (N, 0, True)),
    (False, b"GET", 200, {b"content-length": b"7, 7"}, (L, 7, False)),
    # rule 6
    (False, b"GET", 200, CL5, (L, 5, False)),
    (True, b"POST", None, CL5, (L, 5, False)),
    (True, b"POST", None, {b"content-length": b"0"}, (N, 0, False)),
    # rule 7: request with neither has no body; rule 8: response with neither is close-delimited
    (True, b"POST", None, {}, (N, 0, False)),
    (True, b"GET", None, {}, (N, 0, False)),
    (False, b"GET", 200, {}, (U, 0, False)),
    (False, b"POST", 500, {}, (U, 0, False)),
]


@pytest.mark.parametrize("is_request,method,status,fields,expected", CASES)
def test_body_framing(
    is_request: bool, method: bytes, status: int | None, fields: dict[bytes, bytes],
    expected: tuple[BodyKind, int, bool],
) -> None:
    assert body_framing(is_request, method, status, fields) == expected


@pytest.mark.parametrize(
    "value,expected",
    [(b"0", 0), (b"42", 42), (b" 42 ", 42), (b"42,42", 42), (b"42, 42 ,42", 42), (b"42,43", None),
     (b"", None), (b"+4", None), (b"4 2", None), (b"0x10", None), (b"4_2", None), (b",", None)],
)
def test_parse_content_length(value: bytes, expected: int | None) -> None:
    assert parse_content_length(value) == expected
