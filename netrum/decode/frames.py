"""Frame -> TCP segment: link layers, IPv4/IPv6 and TCP, dispatched by tables.

``Decoder.decode(ts_ns, linktype, data)`` peels the link layer (table ``LINKTYPES``), VLAN/QinQ tags,
MPLS, PPPoE (table ``ETHERTYPES``), IPv4/IPv6 with fragments and extension headers, and tunnels (see
``netrum.decode.tunnels``; table ``IP_PROTOS`` and ``tunnels.UDP_PORTS``) down to one TCP segment, a plain
tuple ``Segment``. Anything else returns None and increments one ``decode_*`` counter; no input raises.

The common cases (Ethernet, NULL loopback, raw IPv4 and Linux SLL carrying unfragmented IPv4/TCP) are
handled by the first block of ``Decoder.decode`` on the raw buffer; ``Decoder.decode_general`` is the
readable table-driven path for everything, and tests check that the two agree on every capture.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from netrum.counters import Counters
from netrum.decode import tunnels
from netrum.decode.ipfrag import FragmentReassembler
from netrum.limits import DEFAULT_LIMITS, Limits

# (src_ip, dst_ip, sport, dport, seq, ack, flags, payload, payload_len). Addresses are packed (4 or 16
# bytes); payload holds the captured TCP payload, payload_len the length the IP header announces
# (larger than len(payload) when snaplen cut the frame).
Segment = tuple[bytes, bytes, int, int, int, int, int, bytes, int]

# TCP flags, RFC 9293 section 3.1
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20

_U16 = struct.Struct("!H").unpack_from
_U16LE = struct.Struct("<H").unpack_from
_U32 = struct.Struct("!I").unpack_from
_U32LE = struct.Struct("<I").unpack_from
_IPV4_FIELDS = struct.Struct("!BxHxxHxB").unpack_from  # version/IHL, total length, flags/offset, protocol
_IPV6_FIELDS = struct.Struct("!IHB").unpack_from  # version/class/label, payload length, next header
_TCP_FIELDS = struct.Struct("!HHIIBB").unpack_from  # ports, seq, ack, data offset, flags
# Fast path: an option-less IPv4 header or a plain IPv6 header and the TCP header in one unpack.
_FAST_IPV4_TCP = struct.Struct("!BxHxxHxBxx4s4sHHIIBB").unpack_from
_FAST_IPV6_TCP = struct.Struct("!IHBx16s16sHHIIBB").unpack_from

# Link-layer type numbers (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_RAW_12 = 12  # DLT_RAW on some BSDs
LINKTYPE_RAW_14 = 14  # DLT_RAW on OpenBSD
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
LINKTYPE_C_HDLC = 104
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_NFLOG = 239
LINKTYPE_LINUX_SLL2 = 276

# Address families in NULL/LOOP headers: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD),
# 28 (FreeBSD), 30 (macOS).
_AF_INET = 2
_AF_INET6 = frozenset((24, 28, 30))

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = frozenset((0x8100, 0x88A8, 0x9100))  # IEEE 802.1Q tag, 802.1ad S-tag, old QinQ
ETHERTYPE_MPLS = frozenset((0x8847, 0x8848))  # RFC 3032 unicast / multicast
ETHERTYPE_PPPOE_SESSION = 0x8864  # RFC 2516
PPP_IPV4 = 0x0021  # RFC 1332
PPP_IPV6 = 0x0057  # RFC 5072

IPPROTO_TCP = 6
IPPROTO_UDP = 17
# IPv6 extension headers walked to reach the upper layer (RFC 8200 section 4; AH is RFC 4302)
IPV6_HOP_BY_HOP = 0
IPV6_ROUTING = 43
IPV6_FRAGMENT = 44
IPV6_DEST_OPTIONS = 60
IPV6_AH = 51
IPV6_NO_NEXT = 59
_IPV6_MAX_EXT_HEADERS = 32

# Fast path lookups: link header bytes -> IP version
_FAST_ETHERTYPE = {b"\x08\x00": 4, b"\x86\xdd": 6}
_FAST_NULL_AF = {
    **{struct.pack("<I", af): 6 for af in (24, 28, 30)},
    **{struct.pack(">I", af): 6 for af in (24, 28, 30)},
    struct.pack("<I", 2): 4,
    struct.pack(">I", 2): 4,
}

_LinkFn = Callable[["Decoder", bytes, int, int, int], "Segment | None"]
_ProtoFn = Callable[["Decoder", bytes, bytes, bytes, int, int, int, int], "Segment | None"]


class Decoder:
    """Decodes frames into TCP segments, counting everything it drops. One per analyzer (it owns the
    IP fragment table)."""

    __slots__ = ("_ts_ns", "counters", "fragments", "limits")

    def __init__(self, counters: Counters, limits: Limits = DEFAULT_LIMITS) -> None:
        self.counters = counters
        self.limits = limits
        self.fragments = FragmentReassembler(counters, limits)
        self._ts_ns = 0

    # ------------------------------------------------------------------ fast path
    def decode(self, ts_ns: int, linktype: int, data: bytes) -> Segment | None:
        """One frame -> a TCP segment or None (counted). The first block is the hot path: unfragmented
        IPv4/TCP or IPv6/TCP without extension headers behind Ethernet, NULL loopback, raw IP or SLL;
        anything it does not take goes to decode_general, and the two must agree."""
        if linktype == 1:
            version = _FAST_ETHERTYPE.get(data[12:14], 0)
            off = 14
        elif linktype == 0:
            version = _FAST_NULL_AF.get(data[:4], 0)
            off = 4
        elif linktype == 101:
            version = data[0] >> 4 if data else 0
            off = 0
        elif linktype == 113:
            version = _FAST_ETHERTYPE.get(data[14:16], 0)
            off = 16
        else:
            version = 0
            off = 0
        n = len(data)
        if version == 4 and n - off >= 40:
            vihl, total, frag, proto, src, dst, sport, dport, seq, ack, doff, flags = _FAST_IPV4_TCP(data, off)
            # No IP options, TCP, not a fragment, a total length that holds a TCP header.
            if vihl == 0x45 and proto == 6 and not frag & 0x3FFF and total >= 40:
                end = min(off + total, n)  # shorter than total: snaplen cut; payload_len tells the rest
                t = off + 20 + ((doff >> 4) << 2)
                if doff >= 0x50 and t <= end:
                    if end < n:
                        self.counters["decode_ip_padding"] += 1  # RFC 894 minimum frame padding
                    return (src, dst, sport, dport, seq, ack, flags, data[t:end], off + total - t)
        elif version == 6 and n - off >= 60:
            vtcfl, plen, nxt, src, dst, sport, dport, seq, ack, doff, flags = _FAST_IPV6_TCP(data, off)
            if nxt == 6 and vtcfl >> 28 == 6 and plen >= 20:
                end = min(off + 40 + plen, n)
                t = off + 40 + ((doff >> 4) << 2)
                if doff >= 0x50 and t <= end:
                    if end < n:
                        self.counters["decode_ip_padding"] += 1
                    return (src, dst, sport, dport, seq, ack, flags, data[t:end], off + 40 + plen - t)
        return self.decode_general(ts_ns, linktype, data)

    # ------------------------------------------------------------------ general path
    def decode_general(self, ts_ns: int, linktype: int, data: bytes) -> Segment | None:
        """The readable table-driven path; handles every supported frame."""
        self._ts_ns = ts_ns
        fn = LINKTYPES.get(linktype)
        if fn is None:
            self.counters["decode_unknown_linktype"] += 1
            return None
        try:
            return fn(self, data, 0, len(data), 0)
        except (struct.error, IndexError):  # pragma: no cover - a bounds check missed somewhere
            self.counters["decode_truncated"] += 1
            return None

    def truncated(self) -> None:
        self.counters["decode_truncated"] += 1

    # Link layers ---------------------------------------------------------------------------------
    def link_ethernet(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """IEEE 802.3 / Ethernet II: dst(6) src(6) ethertype-or-length(2)."""
        if end - off < 14:
            self.truncated()
            return None
        etype = _U16(data, off + 12)[0]
        off += 14
        if etype < 0x0600:  # 802.3 length field: only LLC/SNAP (AA AA 03, RFC 1042) carries an ethertype
            if end - off >= 8 and data[off : off + 3] == b"\xaa\xaa\x03":
                return self.ethertype(_U16(data, off + 6)[0], data, off + 8, end, depth)
            self.counters["decode_non_ip"] += 1
            return None
        return self.ethertype(etype, data, off, end, depth)

    def ethertype(self, etype: int, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """Dispatch on an ethertype; VLAN tags (802.1Q/802.1ad, any depth) are peeled in a loop."""
        while etype in ETHERTYPE_VLAN:
            if end - off < 4:
                self.truncated()
                return None
            etype = _U16(data, off + 2)[0]  # TCI(2) then the inner ethertype
            off += 4
        fn = ETHERTYPES.get(etype)
        if fn is None:
            self.counters["decode_non_ip"] += 1
            return None
        return fn(self, data, off, end, depth)

    def link_null(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """BSD loopback: a 4-byte address family in the writer's byte order (LOOP: network order)."""
        if end - off < 4:
            self.truncated()
            return None
        af = _U32LE(data, off)[0]
        if af > 0xFFFF:
            af = _U32(data, off)[0]
        if af == _AF_INET:
            return self.ipv4(data, off + 4, end, depth)
        if af in _AF_INET6:
            return self.ipv6(data, off + 4, end, depth)
        self.counters["decode_non_ip"] += 1
        return None

    def link_raw(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """Raw IP: the version nibble tells IPv4 from IPv6."""
        return self.ip_by_version(data, off, end, depth)

    def ip_by_version(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        if end - off < 1:
            self.truncated()
            return None
        version = data[off] >> 4
        if version == 4:
            return self.ipv4(data, off, end, depth)
        if version == 6:
            return self.ipv6(data, off, end, depth)
        self.counters["decode_bad_ip"] += 1
        return None

    def link_sll(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """Linux cooked v1: type(2) arphrd(2) addrlen(2) addr(8) protocol(2)."""
        if end - off < 16:
            self.truncated()
            return None
        return self.ethertype(_U16(data, off + 14)[0], data, off + 16, end, depth)

    def link_sll2(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """Linux cooked v2: protocol(2) reserved(2) ifindex(4) arphrd(2) type(1) addrlen(1) addr(8)."""
        if end - off < 20:
            self.truncated()
            return None
        return self.ethertype(_U16(data, off)[0], data, off + 20, end, depth)

    def link_nflog(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """Linux NFLOG: family(1) version(1) resource id(2), then TLVs length(2) type(2) in host byte
        order, each padded to 4 bytes; NFULA_PAYLOAD (type 9) holds the IP packet."""
        if end - off < 4:
            self.truncated()
            return None
        p = off + 4
        u16 = _U16LE
        if end - p >= 4 and not 4 <= _U16LE(data, p)[0] <= end - p:
            u16 = _U16  # a big-endian writer
        while end - p >= 4:
            tlv_len = u16(data, p)[0]
            tlv_type = u16(data, p + 2)[0] & 0x7FFF  # top bits are netlink flags
            if tlv_len < 4:
                self.counters["decode_truncated"] += 1
                return None
            if tlv_type == 9:
                return self.ip_by_version(data, p + 4, min(end, p + tlv_len), depth)
            p += (tlv_len + 3) & ~3
        self.counters["decode_non_ip"] += 1  # no payload TLV
        return None

    def link_chdlc(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """Cisco HDLC: address(1) control(1) protocol(2, an ethertype)."""
        if end - off < 4:
            self.truncated()
            return None
        return self.ethertype(_U16(data, off + 2)[0], data, off + 4, end, depth)

    def link_ppp(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """PPP (RFC 1661) with optional HDLC-like address/control FF 03 (RFC 1662)."""
        if end - off >= 2 and data[off] == 0xFF and data[off + 1] == 0x03:
            off += 2
        return self.ppp_protocol(data, off, end, depth)

    def ppp_protocol(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        if end - off < 1:
            self.truncated()
            return None
        if data[off] & 1:  # protocol field compression (RFC 1661 section 6.5): one odd byte
            proto = data[off]
            off += 1
        else:
            if end - off < 2:
                self.truncated()
                return None
            proto = _U16(data, off)[0]
            off += 2
        if proto == PPP_IPV4:
            return self.ipv4(data, off, end, depth)
        if proto == PPP_IPV6:
            return self.ipv6(data, off, end, depth)
        self.counters["decode_non_ip"] += 1
        return None

    # Between link and IP ----------------------------------------------------------------------------
    def mpls(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """RFC 3032 label stack down to bottom-of-stack; then IPv4/IPv6 by the first nibble, or (nibble 0)
        a pseudowire control word (RFC 4385) followed by Ethernet (RFC 4448)."""
        while True:
            if end - off < 4:
                self.truncated()
                return None
            bottom = data[off + 2] & 0x01
            off += 4
            if bottom:
                break
        if end - off < 1:
            self.truncated()
            return None
        nibble = data[off] >> 4
        if nibble == 4:
            return self.ipv4(data, off, end, depth)
        if nibble == 6:
            return self.ipv6(data, off, end, depth)
        if nibble == 0:
            if depth >= self.limits.max_tunnel_depth:
                self.counters["decode_tunnel_too_deep"] += 1
                return None
            return self.link_ethernet(data, off + 4, end, depth + 1)
        self.counters["decode_non_ip"] += 1
        return None

    def pppoe(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """RFC 2516 session stage: ver/type(1) code(1) session(2) length(2), then the PPP protocol."""
        if end - off < 8:
            self.truncated()
            return None
        length = _U16(data, off + 4)[0]
        off += 6
        end = min(end, off + length)
        return self.ppp_protocol(data, off, end, depth)

    # IP ---------------------------------------------------------------------------------------------
    def ipv4(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """RFC 791 section 3.1. Padding after the total length is trimmed; a total length longer than
        the frame means snaplen cut it; a total length of 0 (TSO on the capturing host) means 'all'."""
        if end - off < 20:
            self.truncated()
            return None
        vihl, total, frag, proto = _IPV4_FIELDS(data, off)
        ihl = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or ihl < 20:
            self.counters["decode_bad_ip"] += 1
            return None
        if end - off < ihl:
            self.truncated()
            return None
        if total == 0:
            total = end - off
        if total < ihl:
            self.counters["decode_bad_ip"] += 1
            return None
        if off + total < end:
            self.counters["decode_ip_padding"] += 1
            end = off + total
        src = data[off + 12 : off + 16]
        dst = data[off + 16 : off + 20]
        if frag & 0x3FFF:  # MF set or offset non-zero (RFC 791 section 3.2)
            payload = self.fragments.add(
                (4, src, dst, proto, _U16(data, off + 4)[0]), self._ts_ns, (frag & 0x1FFF) << 3,
                bool(frag & 0x2000), data[off + ihl : end]
            )
            if payload is None:
                return None
            return self.ip_payload(proto, src, dst, payload, 0, len(payload), len(payload), depth)
        return self.ip_payload(proto, src, dst, data, off + ihl, end, total - ihl, depth)

    def ipv6(self, data: bytes, off: int, end: int, depth: int) -> Segment | None:
        """RFC 8200 section 3; extension headers walked per section 4 (fragments reassembled)."""
        if end - off < 40:
            self.truncated()
            return None
        vtcfl, plen, nxt = _IPV6_FIELDS(data, off)
        if vtcfl >> 28 != 6:
            self.counters["decode_bad_ip"] += 1
            return None
        src = data[off + 8 : off + 24]
        dst = data[off + 24 : off + 40]
        p = off + 40
        if plen == 0 and nxt == IPV6_HOP_BY_HOP:
            plen = end - p  # jumbogram (RFC 2675) or TSO: the frame tells the length
        if p + plen < end:
            self.counters["decode_ip_padding"] += 1
            end = p + plen
        announced_end = p + plen  # may lie past `end` when snaplen cut the frame
        for _ in range(_IPV6_MAX_EXT_HEADERS):
            if nxt in _IPV6_EXT_LEN:
                if end - p < 8:
                    self.truncated()
                    return None
                ext_len = _IPV6_EXT_LEN[nxt](data[p + 1])
                nxt = data[p]
                p += ext_len
                if p > end:
                    self.truncated()
                    return None
                continue
            if nxt == IPV6_FRAGMENT:
                if end - p < 8:
                    self.truncated()
                    return None
                frag_nxt = data[p]
                offmf = _U16(data, p + 2)[0]
                ident = _U32(data, p + 4)[0]
                p += 8
                if offmf & 0xFFF9 == 0:  # atomic fragment (RFC 6946): offset 0, M=0
                    nxt = frag_nxt
                    continue
                payload = self.fragments.add(
                    (6, src, dst, frag_nxt, ident), self._ts_ns, offmf & 0xFFF8, bool(offmf & 1), data[p:end]
                )
                if payload is None:
                    return None
                # The rebuilt fragmentable part may start with more extension headers.
                data, p, end, nxt = payload, 0, len(payload), frag_nxt
                announced_end = end
                continue
            if nxt == IPV6_NO_NEXT:
                self.counters["decode_non_tcp"] += 1
                return None
            return self.ip_payload(nxt, src, dst, data, p, end, announced_end - p, depth)
        self.counters["decode_bad_ip"] += 1  # an absurd chain of extension headers
        return None

    def ip_payload(self, proto: int, src: bytes, dst: bytes, data: bytes, off: int, end: int,
                   announced: int, depth: int) -> Segment | None:
        fn = IP_PROTOS.get(proto)
        if fn is None:
            self.counters["decode_non_tcp"] += 1
            return None
        return fn(self, src, dst, data, off, end, announced, depth)

    # TCP / UDP ----------------------------------------------------------------------------------------
    def tcp(self, src: bytes, dst: bytes, data: bytes, off: int, end: int, announced: int,
            depth: int) -> Segment | None:
        """RFC 9293 section 3.1 header; payload after data offset * 4 bytes."""
        if end - off < 20:
            self.truncated()
            return None
        sport, dport, seq, ack, doff, flags = _TCP_FIELDS(data, off)
        doff = (doff >> 4) << 2
        if doff < 20 or doff > announced:
            self.counters["decode_bad_tcp"] += 1
            return None
        if off + doff > end:
            self.truncated()
            return None
        return (src, dst, sport, dport, seq, ack, flags, data[off + doff : end], announced - doff)

    def udp(self, src: bytes, dst: bytes, data: bytes, off: int, end: int, announced: int,
            depth: int) -> Segment | None:
        """RFC 768; only tunnels ride on UDP for netrum (table tunnels.UDP_PORTS, then Teredo heuristic)."""
        if end - off < 8:
            self.truncated()
            return None
        sport, dport, length = struct.unpack_from("!HHH", data, off)
        if length >= 8:
            end = min(end, off + length)
        off += 8
        fn = tunnels.UDP_PORTS.get(dport) or tunnels.UDP_PORTS.get(sport)
        if fn is not None:
            return fn(self, data, off, end, depth)
        if tunnels.looks_like_teredo(data, off, end):
            return tunnels.teredo(self, data, off, end, depth)
        self.counters["decode_non_tcp"] += 1
        return None


_IPV6_EXT_LEN: dict[int, Callable[[int], int]] = {
    IPV6_HOP_BY_HOP: lambda n: (n + 1) * 8,  # RFC 8200 section 4.3
    IPV6_ROUTING: lambda n: (n + 1) * 8,  # section 4.4
    IPV6_DEST_OPTIONS: lambda n: (n + 1) * 8,  # section 4.6
    IPV6_AH: lambda n: (n + 2) * 4,  # RFC 4302 section 2.2
}

LINKTYPES: dict[int, _LinkFn] = {
    LINKTYPE_NULL: Decoder.link_null,
    LINKTYPE_LOOP: Decoder.link_null,
    LINKTYPE_ETHERNET: Decoder.link_ethernet,
    LINKTYPE_RAW: Decoder.link_raw,
    LINKTYPE_RAW_12: Decoder.link_raw,
    LINKTYPE_RAW_14: Decoder.link_raw,
    LINKTYPE_IPV4: Decoder.ipv4,
    LINKTYPE_IPV6: Decoder.ipv6,
    LINKTYPE_LINUX_SLL: Decoder.link_sll,
    LINKTYPE_LINUX_SLL2: Decoder.link_sll2,
    LINKTYPE_NFLOG: Decoder.link_nflog,
    LINKTYPE_C_HDLC: Decoder.link_chdlc,
    LINKTYPE_PPP: Decoder.link_ppp,
    LINKTYPE_PPP_HDLC: Decoder.link_ppp,
}

ETHERTYPES: dict[int, _LinkFn] = {
    ETHERTYPE_IPV4: Decoder.ipv4,
    ETHERTYPE_IPV6: Decoder.ipv6,
    0x8847: Decoder.mpls,
    0x8848: Decoder.mpls,
    ETHERTYPE_PPPOE_SESSION: Decoder.pppoe,
}

IP_PROTOS: dict[int, _ProtoFn] = {
    IPPROTO_TCP: Decoder.tcp,
    IPPROTO_UDP: Decoder.udp,
    **tunnels.IP_PROTOS,
}
