"""Tunnels: IP-in-IP, GRE (+ERSPAN I/II/III), VXLAN, GENEVE, Teredo; depth limit; counters."""
from __future__ import annotations

import struct

import pytest
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from netrum.counters import COUNTER_DOCS, Counters
from netrum.decode.frames import ACK, PSH, Decoder
from netrum.limits import Limits

A4 = bytes([192, 168, 7, 1])
B4 = bytes([192, 168, 7, 2])
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")
HTTP = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def inner4() -> Packet:
    return IP(src="192.168.7.1", dst="192.168.7.2") / TCP(sport=80, dport=50000, seq=7, ack=9, flags="PA") / HTTP


def inner6() -> Packet:
    return IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=80, dport=50000, seq=7, ack=9, flags="PA") / HTTP


INNER4 = (A4, B4, 80, 50000, 7, 9, PSH | ACK, HTTP, len(HTTP))
INNER6 = (A6, B6, 80, 50000, 7, 9, PSH | ACK, HTTP, len(HTTP))
OUTER4 = IP(src="10.9.9.1", dst="10.9.9.2")
OUTER6 = IPv6(src="fd00::1", dst="fd00::2")


def decode(frame: bytes, linktype: int = 1, limits: Limits | None = None) -> tuple[object, Counters]:
    c1, c2 = Counters(), Counters()
    lim = limits or Limits()
    fast = Decoder(c1, lim).decode(0, linktype, frame)
    general = Decoder(c2, lim).decode_general(0, linktype, frame)
    assert fast == general and c1 == c2
    assert all(name in COUNTER_DOCS for name in c1)
    return fast, c1


def test_ip_in_ip_variants() -> None:
    for outer, inner, expect in [(OUTER4, inner4(), INNER4), (OUTER4, inner6(), INNER6),
                                 (OUTER6, inner4(), INNER4), (OUTER6, inner6(), INNER6)]:
        seg, c = decode(bytes(Ether() / outer / inner))
        assert seg == expect
        assert c.nonzero() == {"tunnel_ip_in_ip": 1}


@pytest.mark.parametrize(
    "gre",
    [GRE(), GRE(chksum_present=1), GRE(key_present=1, key=5), GRE(seqnum_present=1, sequence_number=3),
     GRE(chksum_present=1, key_present=1, seqnum_present=1, key=1, sequence_number=2)],
)
def test_gre_flags(gre: Packet) -> None:
    seg, c = decode(bytes(Ether() / OUTER4 / gre / inner4()))
    assert seg == INNER4
    assert c["tunnel_gre"] == 1
    seg, c = decode(bytes(Ether() / OUTER4 / gre / inner6()))
    assert seg == INNER6


def test_gre_transparent_ethernet_and_mpls() -> None:
    seg, c = decode(bytes(Ether() / OUTER4 / GRE(proto=0x6558) / Ether() / Dot1Q(vlan=4) / inner4()))
    assert seg == INNER4 and c["tunnel_gre"] == 1
    seg, c = decode(bytes(Ether() / OUTER6 / GRE(proto=0x8847) / MPLS(s=1) / inner4()))
    assert seg == INNER4 and c["tunnel_gre"] == 1


def test_gre_unknown_protocol_and_version() -> None:
    _, c = decode(bytes(Ether() / OUTER4 / GRE(proto=0x1234) / inner4()))
    assert c.nonzero() == {"decode_unknown_tunnel": 1}
    _, c = decode(bytes(Ether() / OUTER4 / GRE(version=1, proto=0x880B) / b"\xff\x03\x00\x21" / inner4()))
    assert c.nonzero() == {"decode_unknown_tunnel": 1}


def test_erspan_type_i_ii_iii() -> None:
    frame = Ether() / inner4()
    # Type I: no sequence number, no ERSPAN header.
    seg, c = decode(bytes(Ether() / OUTER4 / GRE(proto=0x88BE) / frame))
    assert seg == INNER4 and c["tunnel_erspan"] == 1
    # Type II: sequence number present, 8-byte header.
    seg, c = decode(bytes(Ether() / OUTER4 / GRE(proto=0x88BE, seqnum_present=1) / ERSPAN_II(session_id=3)
                          / frame))
    assert seg == INNER4 and c["tunnel_erspan"] == 1
    # Type III, without and with the platform-specific sub-header.
    seg, c = decode(bytes(Ether() / OUTER4 / GRE(proto=0x22EB, seqnum_present=1) / ERSPAN_III(o=0) / frame))
    assert seg == INNER4 and c["tunnel_erspan"] == 1
    seg, c = decode(bytes(Ether() / OUTER4 / GRE(proto=0x22EB, seqnum_present=1) / ERSPAN_III(o=1)
                          / ERSPAN_PlatformSpecific() / frame))
    assert seg == INNER4 and c["tunnel_erspan"] == 1
    assert len(ERSPAN_III(o=1)) == 12 and len(ERSPAN_PlatformSpecific()) == 8


@pytest.mark.parametrize("port", [4789, 8472])
def test_vxlan(port: int) -> None:
    seg, c = decode(bytes(Ether() / OUTER4 / UDP(sport=12345, dport=port) / VXLAN(vni=42) / Ether() / inner4()))
    assert seg == INNER4 and c.nonzero() == {"tunnel_vxlan": 1}
    _, c = decode(bytes(Ether() / OUTER4 / UDP(sport=12345, dport=port) / (b"\x00" * 8) / Ether() / inner4()))
    assert c.nonzero() == {"decode_non_tcp": 1}  # I flag clear: not VXLAN


@pytest.mark.parametrize(("proto", "inner", "expect"), [
    (0x6558, Ether() / inner4(), INNER4), (0x0800, inner4(), INNER4), (0x86DD, inner6(), INNER6)])
def test_geneve(proto: int, inner: Packet, expect: tuple[object, ...]) -> None:
    opts = b"\x01\x02\x03\x01" + b"\xaa" * 4  # one option: class, type, length 1 word, then the word
    hdr = struct.pack("!BBH", len(opts) // 4, 0, proto) + b"\x00\x00\x2a\x00" + opts
    seg, c = decode(bytes(Ether() / OUTER4 / UDP(sport=1, dport=6081) / hdr / inner))
    assert seg == expect and c.nonzero() == {"tunnel_geneve": 1}
    seg, _ = decode(bytes(Ether() / OUTER6 / UDP(sport=1, dport=6081) / GENEVE(proto=proto) / inner))
    assert seg == expect


def test_geneve_unknown_protocol() -> None:
    _, c = decode(bytes(Ether() / OUTER4 / UDP(sport=1, dport=6081) / GENEVE(proto=0x1234) / inner4()))
    assert c.nonzero() == {"decode_unknown_tunnel": 1}


ORIGIN = b"\x00\x00" + b"\x12\x34" + b"\x01\x02\x03\x04"
AUTH = b"\x00\x01\x02\x03" + b"ab" + b"xyz" + b"\x00" * 8 + b"\x00"


@pytest.mark.parametrize("prefix", [b"", ORIGIN, AUTH, AUTH + ORIGIN])
@pytest.mark.parametrize("ports", [(3544, 50000), (50000, 3544), (32900, 1111)])
def test_teredo(prefix: bytes, ports: tuple[int, int]) -> None:
    seg, c = decode(bytes(Ether() / OUTER4 / UDP(sport=ports[0], dport=ports[1]) / prefix / inner6()))
    assert seg == INNER6 and c.nonzero() == {"tunnel_teredo": 1}


def test_teredo_heuristic_is_strict() -> None:
    raw = bytes(inner6())
    # One byte more than the IPv6 payload length announces: not Teredo on a non-standard port.
    _, c = decode(bytes(Ether() / OUTER4 / UDP(sport=32900, dport=1111) / (raw + b"\x00")))
    assert c.nonzero() == {"decode_non_tcp": 1}
    # DNS-looking payload.
    _, c = decode(bytes(Ether() / OUTER4 / UDP(sport=53, dport=1111) / (b"\x61\x00" + b"\x00" * 60)))
    assert c.nonzero() == {"decode_non_tcp": 1}
    # On the Teredo port, a bubble (no next header) is decapsulated and then not TCP.
    bubble = bytes(IPv6(src="2001::1", dst="2001::2", nh=59))
    _, c = decode(bytes(Ether() / OUTER4 / UDP(sport=3544, dport=1) / bubble))
    assert c.nonzero() == {"tunnel_teredo": 1, "decode_non_tcp": 1}


def gre_nest(levels: int) -> bytes:
    pkt: Packet = inner4()
    for _ in range(levels):
        pkt = IP(src="10.0.0.1", dst="10.0.0.2") / GRE() / pkt
    return bytes(Ether() / pkt)


def test_depth_limit() -> None:
    seg, c = decode(gre_nest(4))
    assert seg == INNER4 and c.nonzero() == {"tunnel_gre": 4}
    seg, c = decode(gre_nest(5))
    assert seg is None and c.nonzero() == {"tunnel_gre": 4, "decode_tunnel_too_deep": 1}
    seg, c = decode(gre_nest(2), limits=Limits(max_tunnel_depth=1))
    assert seg is None and c.nonzero() == {"tunnel_gre": 1, "decode_tunnel_too_deep": 1}


def test_mixed_nesting() -> None:
    """VXLAN inside GRE inside IPv6, carrying 4in6... every level counted once."""
    inner = OUTER6 / inner4()
    frame = Ether() / OUTER6 / GRE() / OUTER4 / UDP(sport=9, dport=4789) / VXLAN() / Ether() / inner
    seg, c = decode(bytes(frame))
    assert seg == INNER4
    assert c.nonzero() == {"tunnel_gre": 1, "tunnel_vxlan": 1, "tunnel_ip_in_ip": 1}


def test_truncated_tunnel_headers() -> None:
    for frame in [bytes(Ether() / OUTER4 / GRE(key_present=1, key=1, proto=0x0800))[:-2],
                  bytes(Ether() / OUTER4 / UDP(dport=4789) / b"\x08\x00"),
                  bytes(Ether() / OUTER4 / UDP(dport=6081) / b"\x00\x00\x65\x58")]:
        seg, c = decode(frame)
        assert seg is None and c["decode_truncated"] == 1
