"""Frame -> TCP segment: every link type and ethertype, damage counted, fast path == general path."""
from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, CookedLinux, Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE

from netrum.capture.pcapfile import open_capture
from netrum.counters import COUNTER_DOCS, Counters
from netrum.decode.addr import addr_to_str
from netrum.decode.frames import ACK, FIN, LINKTYPES, PSH, RST, SYN, Decoder

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / ".." / "shared" / "corpus" / "pcaps"

A4 = bytes([10, 0, 0, 1])
B4 = bytes([10, 0, 0, 2])
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")
HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def tcp4(payload: bytes = HTTP, flags: str = "PA") -> IP:
    return IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=80, seq=1000, ack=2000, flags=flags) / payload


def tcp6(payload: bytes = HTTP) -> IPv6:
    return IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=40000, dport=80, seq=1000, ack=2000,
                                                             flags="PA") / payload


EXPECT4 = (A4, B4, 40000, 80, 1000, 2000, PSH | ACK, HTTP, len(HTTP))
EXPECT6 = (A6, B6, 40000, 80, 1000, 2000, PSH | ACK, HTTP, len(HTTP))


def decode(linktype: int, frame: bytes, counters: Counters | None = None) -> object:
    """Both paths must give the same answer and count the same things; returns that answer."""
    c1, c2 = Counters(), Counters()
    fast = Decoder(c1).decode(0, linktype, frame)
    general = Decoder(c2).decode_general(0, linktype, frame)
    assert fast == general
    assert c1.nonzero() == c2.nonzero()
    if counters is not None:
        counters.merge(c1)
    for name in c1:
        assert name in COUNTER_DOCS, name
    return fast


def test_addr_to_str() -> None:
    assert addr_to_str(A4) == "10.0.0.1"
    assert addr_to_str(A6) == "2001:db8::1"
    assert addr_to_str(bytes(15) + b"\x01") == "::1"
    mapped = bytes.fromhex("00000000000000000000ffffc0a80001")
    assert addr_to_str(mapped) == str(ipaddress.IPv6Address(mapped))  # whatever this Python's ipaddress says
    assert addr_to_str(b"\x01\x02") == "0102"


def test_flag_constants() -> None:
    assert (FIN, SYN, RST, PSH, ACK) == (0x01, 0x02, 0x04, 0x08, 0x10)


def test_ethernet_ipv4() -> None:
    seg = decode(1, bytes(Ether() / tcp4()))
    assert seg == EXPECT4
    assert isinstance(seg[7], bytes)  # type: ignore[index]


def test_ethernet_ipv6() -> None:
    assert decode(1, bytes(Ether() / tcp6())) == EXPECT6


def test_syn_flags_and_no_payload() -> None:
    seg = decode(1, bytes(Ether() / tcp4(b"", flags="S")))
    assert seg == (A4, B4, 40000, 80, 1000, 2000, SYN, b"", 0)


def test_ipv4_options_and_tcp_options() -> None:
    pkt = (IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x01\x01\x01\x00")
           / TCP(sport=40000, dport=80, seq=1000, ack=2000, flags="PA", options=[("MSS", 1460), ("NOP", None)])
           / HTTP)
    assert decode(1, bytes(Ether() / pkt)) == EXPECT4


def test_padding_trimmed_and_counted() -> None:
    c = Counters()
    frame = bytes(Ether() / tcp4(b"", flags="A")) + b"\x00" * 6  # minimum frame size padding
    assert decode(1, frame, c) == (A4, B4, 40000, 80, 1000, 2000, ACK, b"", 0)
    assert c["decode_ip_padding"] == 1
    c = Counters()
    assert decode(1, bytes(Ether() / tcp6()) + b"\xff" * 4, c) == EXPECT6
    assert c["decode_ip_padding"] == 1


def test_snaplen_cut_reports_announced_length() -> None:
    frame = bytes(Ether() / tcp4())
    seg = decode(1, frame[:-10])
    assert seg == (A4, B4, 40000, 80, 1000, 2000, PSH | ACK, HTTP[:-10], len(HTTP))
    seg = decode(1, bytes(Ether() / tcp6())[:-5])
    assert seg is not None and seg[7] == HTTP[:-5] and seg[8] == len(HTTP)  # type: ignore[index]


def test_tso_total_length_zero_means_whole_frame() -> None:
    raw = bytearray(bytes(tcp4()))
    raw[2:4] = b"\x00\x00"
    assert decode(101, bytes(raw)) == EXPECT4


@pytest.mark.parametrize("tag", [Dot1Q(vlan=10), Dot1AD(vlan=20) / Dot1Q(vlan=10)])
def test_vlan_and_qinq(tag: object) -> None:
    assert decode(1, bytes(Ether() / tag / tcp4())) == EXPECT4  # type: ignore[operator]


def test_qinq_0x9100_any_depth() -> None:
    ip = bytes(tcp4())
    frame = b"\x00" * 12 + b"\x91\x00" + b"".join(struct.pack("!HH", 7, 0x9100) for _ in range(4)) \
        + struct.pack("!HH", 7, 0x0800) + ip
    assert decode(1, frame) == EXPECT4
    deep = b"\x00" * 12 + b"\x81\x00" + struct.pack("!HH", 1, 0x8100) * 3000 + struct.pack("!HH", 1, 0x0800) + ip
    assert decode(1, deep) == EXPECT4  # iterative: no recursion limit


def test_mpls_stack_ipv4_ipv6() -> None:
    assert decode(1, bytes(Ether() / MPLS(label=16, s=0) / MPLS(label=17, s=1) / tcp4())) == EXPECT4
    assert decode(1, bytes(Ether(type=0x8847) / MPLS(label=16, s=1) / tcp6())) == EXPECT6


def test_mpls_pseudowire_control_word_then_ethernet() -> None:
    inner = bytes(Ether() / Dot1Q(vlan=3) / tcp4())
    frame = bytes(Ether(type=0x8847) / MPLS(label=16, s=1)) + b"\x00\x00\x00\x00" + inner
    assert decode(1, frame) == EXPECT4


def test_pppoe_session() -> None:
    assert decode(1, bytes(Ether() / PPPoE(sessionid=5) / PPP(proto=0x0021) / tcp4())) == EXPECT4
    assert decode(1, bytes(Ether() / PPPoE(sessionid=5) / PPP(proto=0x0057) / tcp6())) == EXPECT6


def test_llc_snap() -> None:
    ip = bytes(tcp4())
    frame = b"\x00" * 12 + struct.pack("!H", len(ip) + 8) + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ip
    assert decode(1, frame) == EXPECT4


@pytest.mark.parametrize(
    "ext",
    [IPv6ExtHdrHopByHop(), IPv6ExtHdrRouting(), IPv6ExtHdrDestOpt(), IPv6ExtHdrFragment(offset=0, m=0, id=9),
     IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting()],
)
def test_ipv6_extension_headers(ext: object) -> None:
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2") / ext / TCP(sport=40000, dport=80, seq=1000, ack=2000,
                                                                  flags="PA") / HTTP  # type: ignore[operator]
    assert decode(1, bytes(Ether() / pkt)) == EXPECT6


def test_ipv6_ah() -> None:
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2", nh=51) / AH(nh=6, payloadlen=4, icv=b"\x00" * 12) / TCP(
        sport=40000, dport=80, seq=1000, ack=2000, flags="PA") / HTTP
    assert decode(1, bytes(Ether() / pkt)) == EXPECT6


def test_ipv6_no_next_header() -> None:
    c = Counters()
    assert decode(1, bytes(Ether() / IPv6(nh=59)), c) is None
    assert c["decode_non_tcp"] == 1


def null_header(af: int, order: str) -> bytes:
    return struct.pack(order + "I", af)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("linktype", [0, 108])
def test_null_and_loop(order: str, linktype: int) -> None:
    assert decode(linktype, null_header(2, order) + bytes(tcp4())) == EXPECT4
    for af in (24, 28, 30):
        assert decode(linktype, null_header(af, order) + bytes(tcp6())) == EXPECT6
    c = Counters()
    assert decode(linktype, null_header(7, order) + bytes(tcp4()), c) is None
    assert c["decode_non_ip"] == 1


@pytest.mark.parametrize("linktype", [101, 12, 14])
def test_raw(linktype: int) -> None:
    assert decode(linktype, bytes(tcp4())) == EXPECT4
    assert decode(linktype, bytes(tcp6())) == EXPECT6


def test_ipv4_and_ipv6_linktypes() -> None:
    assert decode(228, bytes(tcp4())) == EXPECT4
    assert decode(229, bytes(tcp6())) == EXPECT6
    c = Counters()
    assert decode(228, bytes(tcp6()), c) is None
    assert c["decode_bad_ip"] == 1


def test_linux_sll_and_sll2() -> None:
    assert decode(113, bytes(CookedLinux(proto=0x0800) / tcp4())) == EXPECT4
    assert decode(113, bytes(CookedLinux(proto=0x86DD) / tcp6())) == EXPECT6
    assert decode(113, bytes(CookedLinux(proto=0x8100)) + struct.pack("!HH", 5, 0x0800) + bytes(tcp4())) == EXPECT4
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 3, 1, 0, 6, b"\x00" * 8)
    assert decode(276, sll2 + bytes(tcp4())) == EXPECT4


def nflog(ip: bytes, order: str = "<", family: int = 2) -> bytes:
    def tlv(t: int, v: bytes) -> bytes:
        raw = struct.pack(order + "HH", 4 + len(v), t) + v
        return raw + b"\x00" * (-len(raw) % 4)

    return bytes([family, 0]) + b"\x00\x07" + tlv(1, b"\x08\x00\x03\x00") + tlv(10, b"abc") + tlv(9, ip)


@pytest.mark.parametrize("order", ["<", ">"])
def test_nflog(order: str) -> None:
    assert decode(239, nflog(bytes(tcp4()), order)) == EXPECT4
    assert decode(239, nflog(bytes(tcp6()), order, 10)) == EXPECT6


def test_nflog_payload_tlv_is_padded() -> None:
    ip = bytes(tcp4(HTTP + b"x"))  # odd length: the TLV is padded to 4 bytes
    seg = decode(239, nflog(ip))
    assert seg is not None and seg[7] == HTTP + b"x"  # type: ignore[index]


def test_chdlc_and_ppp() -> None:
    assert decode(104, b"\x0f\x00\x08\x00" + bytes(tcp4())) == EXPECT4
    assert decode(104, b"\x0f\x00\x86\xdd" + bytes(tcp6())) == EXPECT6
    assert decode(9, b"\xff\x03\x00\x21" + bytes(tcp4())) == EXPECT4
    assert decode(50, b"\xff\x03\x00\x57" + bytes(tcp6())) == EXPECT6
    assert decode(9, b"\x21" + bytes(tcp4())) == EXPECT4  # protocol field compression


@pytest.mark.parametrize(
    ("linktype", "frame", "counter"),
    [
        (1, bytes(Ether() / ARP()), "decode_non_ip"),
        (1, bytes(Ether() / IP() / UDP(sport=53, dport=53) / b"x"), "decode_non_tcp"),
        (1, bytes(Ether() / IP() / ICMP()), "decode_non_tcp"),
        (1, bytes(Ether() / tcp4())[:30], "decode_truncated"),
        (1, b"\x00" * 10, "decode_truncated"),
        (147, bytes(tcp4()), "decode_unknown_linktype"),
        (101, b"\x55" + bytes(tcp4())[1:], "decode_bad_ip"),
        (101, b"\x43" + bytes(tcp4())[1:], "decode_bad_ip"),  # IHL 3
        (101, bytes(IP(len=10) / TCP()), "decode_bad_ip"),
        (101, bytes(IP() / TCP(dataofs=3)), "decode_bad_tcp"),
        (101, bytes(IP() / TCP(dataofs=15)), "decode_bad_tcp"),  # longer than the IP payload
        (101, bytes(IP() / TCP(dataofs=15) / (b"x" * 60))[:70], "decode_truncated"),  # snaplen inside options
        (229, bytes(tcp6())[:30], "decode_truncated"),
    ],
)
def test_dropped_frames_are_counted(linktype: int, frame: bytes, counter: str) -> None:
    c = Counters()
    assert decode(linktype, frame, c) is None
    assert c.nonzero() == {counter: 1}


def test_every_linktype_in_table_survives_empty_frames() -> None:
    for lt in LINKTYPES:
        c = Counters()
        assert decode(lt, b"", c) is None
        assert sum(c.values()) == 1


LINKTYPE_CHOICES = [*LINKTYPES, 147]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(LINKTYPE_CHOICES), st.binary(max_size=200))
def test_fuzz_random_bytes_never_raise(linktype: int, data: bytes) -> None:
    c = Counters()
    seg = decode(linktype, data, c)
    assert seg is not None or sum(c.values()) >= 1  # every drop is counted
    if linktype in LINKTYPES:  # without decode_general's safety net: the bounds checks alone hold
        assert LINKTYPES[linktype](Decoder(Counters()), data, 0, len(data), 0) == seg


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0, 1, 101, 113, 239, 104, 276]), st.binary(max_size=120), st.data())
def test_fuzz_tunnel_shaped_bytes_never_raise(linktype: int, tail: bytes, data: st.DataObject) -> None:
    """Random bytes behind plausible outer headers reach the deeper decoders (tunnels, ext headers)."""
    outer = data.draw(st.sampled_from([
        bytes(IP(proto=47)), bytes(IP(proto=4)), bytes(IP(proto=41)), bytes(IPv6(nh=44)), bytes(IPv6(nh=0)),
        bytes(IP() / UDP(dport=4789)), bytes(IP() / UDP(dport=6081)), bytes(IP() / UDP(dport=3544)),
        bytes(IP(flags="MF", proto=6)), bytes(IPv6(nh=43)), bytes(IPv6(nh=51)), bytes(IP() / UDP(dport=9)),
    ]))
    link = {0: b"\x02\x00\x00\x00", 1: bytes(Ether())[:12] + (b"\x86\xdd" if outer[0] >> 4 == 6 else b"\x08\x00"),
            101: b"", 113: bytes(CookedLinux(proto=0x86DD if outer[0] >> 4 == 6 else 0x0800)),
            239: b"", 104: b"\x0f\x00" + (b"\x86\xdd" if outer[0] >> 4 == 6 else b"\x08\x00"),
            276: b""}[linktype]
    if linktype in (239, 276):
        linktype = 101
    frame = link + outer + tail
    c = Counters()
    decode(linktype, frame, c)
    LINKTYPES[linktype](Decoder(Counters()), frame, 0, len(frame), 0)


PREFIXES = {
    1: bytes(Ether())[:12] + b"\x08\x00",
    0: b"\x02\x00\x00\x00",
    101: b"",
    113: bytes(CookedLinux(proto=0x0800)),
}


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(sorted(PREFIXES)), st.booleans(), st.binary(min_size=40, max_size=120), st.data())
def test_fuzz_mutated_tcp_frames_paths_agree(linktype: int, v6: bool, noise: bytes, data: st.DataObject) -> None:
    """Mutate a valid IPv4 or IPv6 TCP frame byte by byte: the fast and general paths must still agree."""
    prefix = PREFIXES[linktype]
    if v6:
        prefix = {1: prefix[:12] + b"\x86\xdd", 0: b"\x18\x00\x00\x00", 101: b"",
                  113: bytes(CookedLinux(proto=0x86DD))}[linktype]
    frame = bytearray(prefix + bytes(tcp6() if v6 else tcp4()))
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(frame) - 1))
        frame[i] = noise[i % len(noise)]
    cut = data.draw(st.integers(0, len(frame)))
    decode(linktype, bytes(frame[:cut]))
    decode(linktype, bytes(frame) + noise[:data.draw(st.integers(0, 10))])


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [(1, bytes(Ether() / tcp4())), (1, bytes(Ether() / tcp6())), (0, null_header(2, "<") + bytes(tcp4())),
     (0, null_header(30, ">") + bytes(tcp6())), (101, bytes(tcp4())), (101, bytes(tcp6())),
     (113, bytes(CookedLinux(proto=0x0800) / tcp4())), (1, bytes(Ether() / tcp4()) + b"\x00" * 8),
     (1, bytes(Ether() / tcp4())[:-3])],
    ids=["eth4", "eth6", "null4", "null6", "raw4", "raw6", "sll4", "padded", "snaplen"],
)
def test_fast_path_takes_the_common_cases(linktype: int, frame: bytes) -> None:
    class FastOnly(Decoder):
        def decode_general(self, ts_ns: int, linktype: int, data: bytes) -> None:
            raise AssertionError("fell through to the general path")

    assert FastOnly(Counters()).decode(0, linktype, frame) is not None


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_fast_and_general_paths_agree(path: Path) -> None:
    c1, c2 = Counters(), Counters()
    fast, general = Decoder(c1), Decoder(c2)
    n = 0
    with open_capture(str(path), Counters()) as reader:
        for ts, lt, data, _ in reader:
            assert fast.decode(ts, lt, data) == general.decode_general(ts, lt, data)
            n += 1
    assert n > 0
    assert c1 == c2


HTTP_STARTS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"CONNECT ", b"HTTP/")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_yields_http_payloads(path: Path) -> None:
    c = Counters()
    dec = Decoder(c)
    starts = []
    segments = 0
    with open_capture(str(path), Counters()) as reader:
        for ts, lt, data, _ in reader:
            seg = dec.decode(ts, lt, data)
            if seg is not None:
                segments += 1
                if seg[7].startswith(HTTP_STARTS):
                    starts.append(seg[7][:5])
    assert segments > 0
    assert starts, f"no HTTP start line decoded from {path.name}: {c.nonzero()}"
    assert c["decode_unknown_linktype"] == 0 and c["decode_bad_ip"] == 0 and c["decode_bad_tcp"] == 0


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")
def test_corpus_special_encapsulations_decode_both_ways() -> None:
    """Requests and responses from the unusual link layers and tunnels of the corpus."""
    for name, need in [("Teredo.pcap", "tunnel_teredo"), ("mixed-vlan-mpls.pcap", None),
                       ("nflog-http.pcap", None), ("sv-decode-chdlc-01.pcap", None),
                       ("ipv6-http-atomic-frag.pcap", None), ("zeek-image-1080-80-x.pcapng", None),
                       ("sv-security-4710-01.pcap", None), ("connect-with-header.pcap", None)]:
        c = Counters()
        dec = Decoder(c)
        kinds = set()
        with open_capture(str(CORPUS / name), Counters()) as reader:
            for ts, lt, data, _ in reader:
                seg = dec.decode(ts, lt, data)
                if seg is not None and seg[7].startswith(HTTP_STARTS):
                    kinds.add("response" if seg[7].startswith(b"HTTP/") else "request")
        if name == "ipv6-http-atomic-frag.pcap":
            assert "request" in kinds  # replies are bare HTML (HTTP/0.9 style)
        else:
            assert kinds == {"request", "response"}, name
        if need:
            assert c[need] > 0


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")
def test_corpus_mixed_vlan_mpls_uses_both() -> None:
    with open_capture(str(CORPUS / "mixed-vlan-mpls.pcap"), Counters()) as reader:
        types = {data[12:14] for _, _, data, _ in reader}
    assert b"\x81\x00" in types and b"\x88\x47" in types


def test_payload_is_bytes_after_reassembly() -> None:
    frags = [bytes(f) for f in fragment(tcp4(HTTP * 20), fragsize=64)]
    dec = Decoder(Counters())
    out = [dec.decode(i, 101, f) for i, f in enumerate(frags)]
    assert out[:-1] == [None] * (len(frags) - 1)
    seg = out[-1]
    assert seg is not None and type(seg[7]) is bytes and seg[7] == HTTP * 20  # type: ignore[index]
