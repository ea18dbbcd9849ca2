"""Message body framing: how long is the body of this HTTP/1.x message?

One pure function, ``body_framing``, holds the rules of RFC 9112 section 6.3 ("Message Body Length"), in
the order the RFC lists them, in the spirit of mitmproxy's ``expected_http_body_size(request, response)``.
It knows nothing of buffers or counters: it returns the framing and whether the Content-Length was bad,
and the caller counts.

The fields are given as a dict of lowercase field name -> raw value bytes (several field lines of the
same name already combined with ``,`` as RFC 9110 section 5.3 allows).
"""
from __future__ import annotations

import enum
from collections.abc import Mapping


class BodyKind(enum.IntEnum):
    NONE = 0  # no body: the message ends with its head
    LENGTH = 1  # exactly n bytes (Content-Length)
    CHUNKED = 2  # chunked transfer coding (RFC 9112 section 7.1)
    UNTIL_CLOSE = 3  # the body ends when the connection closes
    TUNNEL = 4  # HTTP ends here; the rest of the connection is another protocol


# (kind, length, bad_content_length). length is only meaningful for LENGTH.
Framing = tuple[BodyKind, int, bool]

_NONE: Framing = (BodyKind.NONE, 0, False)
_TUNNEL: Framing = (BodyKind.TUNNEL, 0, False)
_CHUNKED: Framing = (BodyKind.CHUNKED, 0, False)
_DIGITS = b"0123456789"


def parse_content_length(value: bytes) -> int | None:
    """The length in a Content-Length field value, or None when invalid.

    RFC 9110 section 8.6: Content-Length = 1*DIGIT. RFC 9112 section 6.3 rule 5: a list of identical
    values ("42, 42", from repeated field lines) may be taken as that one value; differing values or
    anything that is not digits is invalid.
    """
    first: int | None = None
    for part in value.split(b","):
        part = part.strip(b" \t")
        if not part or part.strip(_DIGITS):
            return None
        n = int(part)
        if first is None:
            first = n
        elif n != first:
            return None
    return first


def _chunked_is_final(te: bytes) -> bool:
    # RFC 9112 section 6.3 rule 4 / section 7: chunked must be the final transfer coding.
    last = te.rsplit(b",", 1)[-1].strip(b" \t")
    return last.split(b";", 1)[0].strip(b" \t").lower() == b"chunked"


def body_framing(
    is_request: bool, method: bytes | None, status: int | None, fields: Mapping[bytes, bytes]
) -> Framing:
    """Framing of one message body, per RFC 9112 section 6.3.

    ``method`` is the method of the request (for a response: the request it answers; GET when unknown),
    ``status`` the response status (ignored for a request), ``fields`` the lowercase field dict.
    """
    if not is_request:
        assert status is not None
        # RFC 9110 section 15.2.2 / RFC 9112 section 6.3 rule 1 (1xx): 101 Switching Protocols ends
        # HTTP/1.1 on this connection right after the empty line that ends its head.
        if status == 101:
            return _TUNNEL
        # RFC 9112 section 6.3 rule 1: a response to HEAD, and any 1xx, 204 or 304 response, ends with
        # its head.
        if method == b"HEAD" or status < 200 or status == 204 or status == 304:
            return _NONE
        # RFC 9112 section 6.3 rule 2: a 2xx response to CONNECT switches the connection to a tunnel.
        if method == b"CONNECT" and status < 300:
            return _TUNNEL
    te = fields.get(b"transfer-encoding")
    if te is not None:
        # RFC 9112 section 6.3 rule 3: Transfer-Encoding overrides Content-Length (a message with both
        # "ought to be handled as an error", but the recipient still frames it by Transfer-Encoding).
        if _chunked_is_final(te):
            return _CHUNKED
        # Rule 4: a response whose final coding is not chunked is read until close. A request so framed
        # cannot be delimited (the server answers 400 and closes): a tap takes it as bodiless and lets
        # the parser resynchronise on whatever follows.
        return _NONE if is_request else (BodyKind.UNTIL_CLOSE, 0, False)
    cl = fields.get(b"content-length")
    if cl is not None:
        n = int(cl) if cl.isdigit() else parse_content_length(cl)
        if n is None:
            # Rule 5: an invalid Content-Length is an unrecoverable framing error. A request cannot be
            # delimited (the server answers 400 and closes): taken as bodiless, the parser then
            # resynchronises on the next request line. A response is read until close (a tap cannot
            # "discard" it, and the server is expected to close the connection).
            return (BodyKind.NONE, 0, True) if is_request else (BodyKind.UNTIL_CLOSE, 0, True)
        # Rule 6.
        return (BodyKind.LENGTH, n, False) if n else (BodyKind.NONE, 0, False)
    # Rule 7: a request with neither field has no body. Rule 8: a response with neither is read until
    # the connection closes.
    if is_request:
        return _NONE
    return (BodyKind.UNTIL_CLOSE, 0, False)
