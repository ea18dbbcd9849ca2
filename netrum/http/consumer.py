"""Who called: the consumer of each exchange, decided at the edge of the core (sans-IO, pure functions).

- By default the consumer is the connection's client address.
- With trusted proxies (``ConsumerConfig.trusted``, CIDR networks the user names), the real client is read
  from ``Forwarded`` (RFC 7239), else ``X-Forwarded-For``, else ``X-Real-IP``: the hops are walked from
  the right (the nearest proxy first), starting at the connection's peer; each hop that is a trusted proxy
  passes the walk to the address it reports, and the first hop that is not trusted is the client
  (RFC 7239 section 7.4: only the proxies one controls can be believed; the same walk as nginx's
  ``real_ip_recursive`` and Go's/Express's ``trust proxy``). A peer that is not trusted is the client
  whatever its headers say. A hop that is not an IP address (``unknown``, an obfuscated ``_id``, RFC 7239
  section 6) stops the walk at the last address that was known.
- With an identity header (``ConsumerConfig.header``, e.g. ``x-api-key`` or ``authorization``), requests
  that carry it are attributed to ``id:`` + 16 hex digits of HMAC-SHA256(salt, value): the raw value is
  hashed when the exchange is emitted and is never stored in a Transaction. Requests without it fall back
  to the address rule.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Request fields read for the consumer (lowercase, as the parser keys them).
FORWARDED = b"forwarded"
X_FORWARDED_FOR = b"x-forwarded-for"
X_REAL_IP = b"x-real-ip"
FORWARDING_FIELDS = (FORWARDED, X_FORWARDED_FOR, X_REAL_IP)
ID_PREFIX = "id:"
ID_HEX_DIGITS = 16  # 64 bits of the HMAC: no collision expected below billions of distinct identities


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """How the consumer is decided (see the module docstring). ``header``: lowercase field name whose
    value identifies the caller (hashed); ``salt``: the HMAC key; ``trusted``: proxies whose forwarding
    headers are believed; ``redact``: lowercase names of recorded fields (host, user-agent, content-type)
    that must not be recorded at all."""

    header: bytes | None = None
    salt: bytes = b""
    trusted: tuple[IPNetwork, ...] = ()
    redact: frozenset[bytes] = field(default_factory=frozenset)

    def request_fields(self) -> tuple[bytes, ...]:
        """The request fields the parser must extract beyond its own."""
        extra: list[bytes] = list(FORWARDING_FIELDS) if self.trusted else []
        if self.header is not None:
            extra.append(self.header)
        return tuple(extra)


def make_config(header: str | None = None, salt: bytes = b"", trusted: Iterable[str] = (),
                redact: Iterable[str] = ()) -> ConsumerConfig:
    """A ConsumerConfig from user-facing strings (raises ValueError on a bad CIDR or header name)."""
    name = None
    if header:
        name = header.strip().lower().encode("latin-1")
        if not name or b":" in name or b" " in name:
            raise ValueError(f"not a header name: {header!r}")
    nets = tuple(ipaddress.ip_network(c.strip(), strict=False) for c in trusted)
    return ConsumerConfig(name, salt, nets, frozenset(h.strip().lower().encode("latin-1") for h in redact))


def hash_identity(value: bytes, salt: bytes) -> str:
    """``id:`` + 16 hex digits of HMAC-SHA256(salt, value): stable for a fixed salt, unlinkable across
    salts, not reversible."""
    return ID_PREFIX + hmac.new(salt, value, hashlib.sha256).hexdigest()[:ID_HEX_DIGITS]


def _parse_addr(text: str) -> IPAddress | None:
    """An address as proxies write it: ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]``,
    ``[2001:db8::1]:80``, bare ``2001:db8::1``; None for anything else (``unknown``, ``_hidden``)."""
    t = text.strip().strip('"').strip()
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            return None
        t = t[1:end]
    elif t.count(":") == 1:
        t = t.split(":", 1)[0]  # IPv4 with a port
    try:
        return ipaddress.ip_address(t)
    except ValueError:
        return None


def _split_quoted(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes (RFC 9110 section 5.6.4 quoted-string, with \\ escapes)."""
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in s:
        if escaped:
            cur.append(ch)
            escaped = False
        elif quoted and ch == "\\":
            cur.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            cur.append(ch)
        elif ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def forwarded_for(value: str) -> list[str]:
    """The ``for=`` node of each element of a Forwarded field, left (origin) to right (nearest), RFC 7239
    section 4: ``Forwarded: for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=http``. An element
    without ``for=`` gives "unknown" (RFC 7239 section 6.2: a hop that does not say), one with nothing at
    all gives "" (an empty list element, ignored)."""
    hops: list[str] = []
    for element in _split_quoted(value, ","):
        node = "unknown" if element.strip() else ""
        for pair in _split_quoted(element, ";"):
            k, eq, v = pair.partition("=")
            if eq and k.strip().lower() == "for":
                node = v.strip()
                if len(node) >= 2 and node[0] == '"' and node[-1] == '"':
                    node = node[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        hops.append(node)
    return hops


def resolve_client(peer: str, trusted: tuple[IPNetwork, ...], forwarded: bytes | None,
                   xff: bytes | None, real_ip: bytes | None) -> tuple[str, bool]:
    """(client address, bad) by the right-to-left walk of the module docstring. ``bad``: a hop could not
    be read as an address (the walk stopped there)."""
    if forwarded is None and xff is None and real_ip is None:
        return peer, False
    try:
        addr: IPAddress = ipaddress.ip_address(peer)
    except ValueError:
        return peer, False

    def is_trusted(a: IPAddress) -> bool:
        if a.version == 6 and a.ipv4_mapped is not None:  # type: ignore[union-attr]
            a = a.ipv4_mapped  # type: ignore[union-attr]
        return any(a in net for net in trusted)

    if not is_trusted(addr):
        return peer, False
    if forwarded is not None:
        hops = forwarded_for(forwarded.decode("latin-1"))
    elif xff is not None:
        hops = xff.decode("latin-1").split(",")
    elif real_ip is not None:
        hops = [real_ip.decode("latin-1")]
    else:
        return peer, False
    current = addr
    for hop in reversed(hops):
        if not hop.strip():
            continue  # an empty list element (RFC 9110 section 5.6.1: recipients ignore them)
        nxt = _parse_addr(hop)
        if nxt is None:
            return str(current), True
        current = nxt
        if not is_trusted(current):
            break
    return str(current), False
