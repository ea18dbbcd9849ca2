"""netrum.http.consumer (the consumer rules) and the consumer of HttpConnection's transactions."""
from __future__ import annotations

import ipaddress

import pytest

from netrum.counters import Counters
from netrum.http.connection import HttpConnection
from netrum.http.consumer import (
    ConsumerConfig,
    forwarded_for,
    hash_identity,
    make_config,
    resolve_client,
)
from netrum.http.parser import WANTED_FIELDS, MessageParser, parse_fields
from netrum.limits import Limits
from netrum.records import ConnInfo, Transaction

TRUSTED = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "2001:db8:ffff::/48"))


# ------------------------------------------------------------------------------------- hashing
def test_hash_is_salted_stable_and_short() -> None:
    a = hash_identity(b"secret-key", b"salt1")
    assert a == hash_identity(b"secret-key", b"salt1")  # stable for a fixed salt
    assert a != hash_identity(b"secret-key", b"salt2")  # unlinkable across salts
    assert a != hash_identity(b"secret-kez", b"salt1")
    assert a.startswith("id:") and len(a) == 3 + 16 and int(a[3:], 16) >= 0
    assert "secret" not in a


# ---------------------------------------------------------------------------- Forwarded parsing
@pytest.mark.parametrize(("value", "hops"), [
    ("for=192.0.2.43", ["192.0.2.43"]),
    ('for="[2001:db8:cafe::17]:4711"', ["[2001:db8:cafe::17]:4711"]),
    ("for=192.0.2.60;proto=http;by=203.0.113.43", ["192.0.2.60"]),
    ("For=192.0.2.43, for=198.51.100.17", ["192.0.2.43", "198.51.100.17"]),  # names are case-insensitive
    ('for=unknown, for="_hidden", proto=https', ["unknown", "_hidden", "unknown"]),
    ('for="a,b;c", for=1.2.3.4', ["a,b;c", "1.2.3.4"]),  # separators inside quotes
    ("for=1.2.3.4,, for=5.6.7.8", ["1.2.3.4", "", "5.6.7.8"]),
])
def test_forwarded_for_rfc7239_examples(value: str, hops: list[str]) -> None:
    assert forwarded_for(value) == hops


# ------------------------------------------------------------------------ the right-to-left walk
@pytest.mark.parametrize(("peer", "fwd", "xff", "real", "client", "bad"), [
    # No forwarding header, or an untrusted peer: the peer, whatever the headers say.
    ("10.0.0.5", None, None, None, "10.0.0.5", False),
    ("192.0.2.9", None, b"198.51.100.1", None, "192.0.2.9", False),
    # X-Forwarded-For: skip trusted hops from the right; the first untrusted one is the client.
    ("10.0.0.5", None, b"198.51.100.1", None, "198.51.100.1", False),
    ("10.0.0.5", None, b"198.51.100.1, 10.1.1.1, 10.2.2.2", None, "198.51.100.1", False),
    # A client that sends its own (spoofed) XFF: the left part is not believed.
    ("10.0.0.5", None, b"6.6.6.6, 198.51.100.1, 10.1.1.1", None, "198.51.100.1", False),
    # Every hop trusted: the leftmost.
    ("10.0.0.5", None, b"10.3.3.3, 10.1.1.1", None, "10.3.3.3", False),
    # Ports, brackets, IPv6, IPv4-mapped peers.
    ("10.0.0.5", None, b"198.51.100.1:5555", None, "198.51.100.1", False),
    ("2001:db8:ffff::1", None, b"[2001:db8::7]:80", None, "2001:db8::7", False),
    ("::ffff:10.0.0.5", None, b"198.51.100.1", None, "198.51.100.1", False),
    # Forwarded wins over X-Forwarded-For; X-Real-IP only as a last resort.
    ("10.0.0.5", b'for="[2001:db8::7]:4711";proto=https', b"198.51.100.1", None, "2001:db8::7", False),
    ("10.0.0.5", None, None, b"198.51.100.2", "198.51.100.2", False),
    ("10.0.0.5", None, b"198.51.100.1", b"198.51.100.2", "198.51.100.1", False),
    # A hop that is not an address stops the walk at the last known one (counted as bad).
    ("10.0.0.5", b"for=unknown", None, None, "10.0.0.5", True),
    ("10.0.0.5", b'for=198.51.100.1, for="_proxy2"', None, None, "10.0.0.5", True),
    ("10.0.0.5", None, b"198.51.100.1, garbage, 10.1.1.1", None, "10.1.1.1", True),
    # Empty list elements are ignored.
    ("10.0.0.5", None, b"198.51.100.1, , ", None, "198.51.100.1", False),
])
def test_resolve_client_walks_from_the_right(peer: str, fwd: bytes | None, xff: bytes | None,
                                             real: bytes | None, client: str, bad: bool) -> None:
    assert resolve_client(peer, TRUSTED, fwd, xff, real) == (client, bad)


def test_make_config_validates() -> None:
    cfg = make_config("X-API-Key", b"s", ["10.0.0.0/8", "2001:db8::/32"], ["User-Agent"])
    assert cfg.header == b"x-api-key" and len(cfg.trusted) == 2 and cfg.redact == {b"user-agent"}
    assert set(cfg.request_fields()) == {b"x-api-key", b"forwarded", b"x-forwarded-for", b"x-real-ip"}
    assert ConsumerConfig().request_fields() == ()
    with pytest.raises(ValueError):
        make_config(None, b"", ["10.0.0.300/8"])
    with pytest.raises(ValueError):
        make_config("X-API-Key:", b"")


# -------------------------------------------------------------------------------- the parser
def test_parse_fields_extracts_extra_fields_only_when_asked() -> None:
    block = (b"Host: h\r\nX-API-Key: k1\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n"
             b"Authorization: Bearer t\r\nCookie: c=1")
    default = parse_fields(block, Counters(), 100)
    assert default == {b"host": b"h"}  # secrets are never even extracted
    wanted = WANTED_FIELDS | {b"x-api-key", b"x-forwarded-for"}
    first = frozenset(b"hHxXcCtTuUeE")
    got = parse_fields(block, Counters(), 100, False, frozenset(wanted), first)
    assert got == {b"host": b"h", b"x-api-key": b"k1", b"x-forwarded-for": b"1.1.1.1,2.2.2.2"}


def test_message_parser_extra_fields() -> None:
    heads: list[object] = []

    def on_head(head: object, ts: int, n: int, flags: int) -> tuple[object, int]:
        heads.append(head)
        from netrum.http.framing import BodyKind
        return BodyKind.NONE, 0

    p = MessageParser(True, Counters(), Limits(), on_head, lambda *a: None,  # type: ignore[arg-type]
                      extra_fields=(b"authorization",))
    p.feed(b"GET / HTTP/1.1\r\nAuthorization: Bearer abc\r\nHost: h\r\n\r\n", 1)
    assert heads[0][3] == {b"authorization": b"Bearer abc", b"host": b"h"}  # type: ignore[index]


# ----------------------------------------------------------------------------- the connection
INFO = ConnInfo("C1", "10.0.0.5", 40000, "10.0.0.2", 80)
REQUESTS = (
    b"GET /a HTTP/1.1\r\nHost: h\r\nX-API-Key: sekret-A\r\nUser-Agent: ua\r\n\r\n"
    b"GET /b HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1, 10.9.9.9\r\n\r\n"
    b"GET /c HTTP/1.1\r\nHost: h\r\nForwarded: for=unknown\r\nContent-Type: text/plain\r\n\r\n"
)
RESPONSES = b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 0\r\n\r\n" * 3


def _run(cfg: ConsumerConfig | None, step: int) -> tuple[list[Transaction], Counters]:
    out: list[Transaction] = []
    c = Counters()
    h = HttpConnection(INFO, c, Limits(), out.append, cfg)
    for i in range(0, len(REQUESTS), step):
        h.client_data(REQUESTS[i:i + step], 1)
    for i in range(0, len(RESPONSES), step):
        h.server_data(RESPONSES[i:i + step], 2)
    h.close(3)
    return out, c


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_connection_consumers(step: int) -> None:
    out, c = _run(None, step)
    assert [t.consumer for t in out] == [None, None, None]  # the client address (the writer's default)
    cfg = make_config("X-API-Key", b"salt", ["10.0.0.0/8"], ["user-agent", "content-type"])
    out, c = _run(cfg, step)
    assert [t.consumer for t in out] == [hash_identity(b"sekret-A", b"salt"), "198.51.100.1", "10.0.0.5"]
    assert c["http_bad_forwarded"] == 1
    assert all(t.user_agent is None and t.request_content_type is None and t.response_content_type is None
               for t in out)
    assert "sekret" not in repr(out)  # never stored in a Transaction
