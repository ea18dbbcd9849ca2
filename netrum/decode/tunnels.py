"""Tunnels peeled down to the inner packet: IP-in-IP, GRE (+ERSPAN), VXLAN, GENEVE, Teredo.

Two tables: ``IP_PROTOS`` (IP protocol number -> decapsulator) and ``UDP_PORTS`` (UDP port, either side
-> decapsulator), plus a strict Teredo heuristic for UDP on other ports. Each decapsulation counts a
``tunnel_*`` counter and goes one level deeper; beyond ``limits.max_tunnel_depth`` the frame is counted
``decode_tunnel_too_deep``. Decapsulators take the Decoder (frames.py) and call back into it for the
inner Ethernet / IPv4 / IPv6; this module imports nothing from frames.py.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netrum.decode.frames import Decoder, Segment

_U16 = struct.Struct("!H").unpack_from
_GRE_HEAD = struct.Struct("!HH").unpack_from

_InnerFn = Callable[["Decoder", bytes, int, int, int], "Segment | None"]


def _deeper(dec: Decoder, depth: int, counter: str) -> bool:
    """True (and the tunnel counted) when one more level of encapsulation is allowed."""
    if depth >= dec.limits.max_tunnel_depth:
        dec.counters["decode_tunnel_too_deep"] += 1
        return False
    dec.counters[counter] += 1
    return True


# IP in IP: RFC 2003 (IPv4 in IPv4, proto 4), RFC 4213 (IPv6 in IPv4, proto 41; IPv4 in IPv6 via proto 4)
def ip_in_ip4(dec: Decoder, src: bytes, dst: bytes, data: bytes, off: int, end: int, announced: int,
              depth: int) -> Segment | None:
    if not _deeper(dec, depth, "tunnel_ip_in_ip"):
        return None
    return dec.ipv4(data, off, end, depth + 1)


def ip_in_ip6(dec: Decoder, src: bytes, dst: bytes, data: bytes, off: int, end: int, announced: int,
              depth: int) -> Segment | None:
    if not _deeper(dec, depth, "tunnel_ip_in_ip"):
        return None
    return dec.ipv6(data, off, end, depth + 1)


# GRE --------------------------------------------------------------------------------------------------
GRE_CHECKSUM = 0x8000  # RFC 2784 section 2.1 (C)
GRE_ROUTING = 0x4000  # RFC 1701 (R): routing fields follow; rare, not decoded
GRE_KEY = 0x2000  # RFC 2890 section 2.1 (K)
GRE_SEQUENCE = 0x1000  # RFC 2890 section 2.1 (S)
GRE_VERSION = 0x0007


def _erspan2(dec: Decoder, data: bytes, off: int, end: int, depth: int, gre_flags: int) -> Segment | None:
    """ERSPAN type II (draft-foschiano-erspan section 4.1): an 8-byte header then Ethernet. Type I has no
    header and is told apart by the absent GRE sequence number."""
    if gre_flags & GRE_SEQUENCE:
        if end - off < 8:
            dec.truncated()
            return None
        off += 8
    dec.counters["tunnel_erspan"] += 1
    return dec.link_ethernet(data, off, end, depth)


def _erspan3(dec: Decoder, data: bytes, off: int, end: int, depth: int, gre_flags: int) -> Segment | None:
    """ERSPAN type III (draft-foschiano-erspan section 4.2): 12 bytes, plus an 8-byte platform
    sub-header when the O flag (lowest bit of byte 11) is set; frame type (FT) 0 is Ethernet."""
    if end - off < 12:
        dec.truncated()
        return None
    has_platform = data[off + 11] & 0x01
    frame_type = (data[off + 10] >> 2) & 0x1F
    off += 20 if has_platform else 12
    if off > end:
        dec.truncated()
        return None
    if frame_type != 0:
        dec.counters["decode_unknown_tunnel"] += 1
        return None
    dec.counters["tunnel_erspan"] += 1
    return dec.link_ethernet(data, off, end, depth)


def _gre_ether(dec: Decoder, data: bytes, off: int, end: int, depth: int, gre_flags: int) -> Segment | None:
    dec.counters["tunnel_gre"] += 1
    return dec.link_ethernet(data, off, end, depth)


def _gre_ipv4(dec: Decoder, data: bytes, off: int, end: int, depth: int, gre_flags: int) -> Segment | None:
    dec.counters["tunnel_gre"] += 1
    return dec.ipv4(data, off, end, depth)


def _gre_ipv6(dec: Decoder, data: bytes, off: int, end: int, depth: int, gre_flags: int) -> Segment | None:
    dec.counters["tunnel_gre"] += 1
    return dec.ipv6(data, off, end, depth)


def _gre_mpls(dec: Decoder, data: bytes, off: int, end: int, depth: int, gre_flags: int) -> Segment | None:
    dec.counters["tunnel_gre"] += 1  # RFC 4023 MPLS in GRE
    return dec.mpls(data, off, end, depth)


# GRE protocol type (an ethertype) -> decapsulator; called with the depth already increased.
GRE_PROTOCOLS: dict[int, Callable[[Decoder, bytes, int, int, int, int], Segment | None]] = {
    0x0800: _gre_ipv4,
    0x86DD: _gre_ipv6,
    0x6558: _gre_ether,  # transparent Ethernet bridging
    0x88BE: _erspan2,
    0x22EB: _erspan3,
    0x8847: _gre_mpls,
}


def gre(dec: Decoder, src: bytes, dst: bytes, data: bytes, off: int, end: int, announced: int,
        depth: int) -> Segment | None:
    """RFC 2784 header: flags/version(2) protocol(2) [checksum(2) reserved(2)] [key(4)] [sequence(4)]."""
    if end - off < 4:
        dec.truncated()
        return None
    flags, proto = _GRE_HEAD(data, off)
    fn = GRE_PROTOCOLS.get(proto)
    if flags & (GRE_ROUTING | GRE_VERSION) or fn is None:  # source routing or PPTP's enhanced GRE
        dec.counters["decode_unknown_tunnel"] += 1
        return None
    off += 4
    if flags & GRE_CHECKSUM:
        off += 4
    if flags & GRE_KEY:
        off += 4
    if flags & GRE_SEQUENCE:
        off += 4
    if off > end:
        dec.truncated()
        return None
    if depth >= dec.limits.max_tunnel_depth:
        dec.counters["decode_tunnel_too_deep"] += 1
        return None
    return fn(dec, data, off, end, depth + 1, flags)


# UDP tunnels -------------------------------------------------------------------------------------------
def vxlan(dec: Decoder, data: bytes, off: int, end: int, depth: int) -> Segment | None:
    """RFC 7348 section 5: flags(1, I bit 0x08) reserved(3) VNI(3) reserved(1), then Ethernet."""
    if end - off < 8:
        dec.truncated()
        return None
    if not data[off] & 0x08:
        dec.counters["decode_non_tcp"] += 1  # not VXLAN after all: some other UDP on that port
        return None
    if not _deeper(dec, depth, "tunnel_vxlan"):
        return None
    return dec.link_ethernet(data, off + 8, end, depth + 1)


_GENEVE_INNER: dict[int, str] = {0x6558: "ether", 0x0800: "ipv4", 0x86DD: "ipv6"}


def geneve(dec: Decoder, data: bytes, off: int, end: int, depth: int) -> Segment | None:
    """RFC 8926 section 3.4: ver(2)|opt len(6, 4-byte words) flags(1) protocol(2) VNI(3) reserved(1)."""
    if end - off < 8:
        dec.truncated()
        return None
    version = data[off] >> 6
    inner = _GENEVE_INNER.get(_U16(data, off + 2)[0])
    if version != 0 or inner is None:
        dec.counters["decode_unknown_tunnel"] += 1
        return None
    off += 8 + (data[off] & 0x3F) * 4
    if off > end:
        dec.truncated()
        return None
    if not _deeper(dec, depth, "tunnel_geneve"):
        return None
    if inner == "ether":
        return dec.link_ethernet(data, off, end, depth + 1)
    if inner == "ipv4":
        return dec.ipv4(data, off, end, depth + 1)
    return dec.ipv6(data, off, end, depth + 1)


def _teredo_skip(data: bytes, off: int, end: int) -> int:
    """Skip the optional Teredo authentication (0x0001) and origin indication (0x0000) headers
    (RFC 4380 section 5.1.1); returns the offset of the IPv6 packet, or -1 if they do not fit."""
    if end - off >= 2 and data[off] == 0 and data[off + 1] == 1:
        if end - off < 4:
            return -1
        off += 4 + data[off + 2] + data[off + 3] + 9  # id len, auth len, nonce(8), confirmation(1)
    if end - off >= 2 and data[off] == 0 and data[off + 1] == 0:
        off += 8  # indicator(2) port(2) address(4)
    return off if off <= end else -1


def looks_like_teredo(data: bytes, off: int, end: int) -> bool:
    """Strict heuristic for Teredo on a non-standard port: a valid IPv6 header whose payload length
    fills the UDP payload exactly."""
    p = _teredo_skip(data, off, end)
    return p >= 0 and end - p >= 40 and data[p] >> 4 == 6 and 40 + _U16(data, p + 4)[0] == end - p


def teredo(dec: Decoder, data: bytes, off: int, end: int, depth: int) -> Segment | None:
    """RFC 4380: IPv6 over UDP (port 3544 on the server side)."""
    p = _teredo_skip(data, off, end)
    if p < 0 or end - p < 40 or data[p] >> 4 != 6:
        dec.counters["decode_non_tcp"] += 1  # Teredo port but not an IPv6 packet
        return None
    if not _deeper(dec, depth, "tunnel_teredo"):
        return None
    return dec.ipv6(data, p, end, depth + 1)


IP_PROTOS: dict[int, Callable[..., Segment | None]] = {
    4: ip_in_ip4,
    41: ip_in_ip6,
    47: gre,
}

UDP_PORTS: dict[int, _InnerFn] = {
    4789: vxlan,  # RFC 7348 IANA port
    8472: vxlan,  # Linux kernel default
    6081: geneve,  # RFC 8926
    3544: teredo,  # RFC 4380
}
