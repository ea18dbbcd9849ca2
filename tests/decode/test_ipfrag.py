"""IP fragment reassembly: order, overlaps (first wins), duplicates, timeout, table bound, IPv6."""
from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Ether

from netrum.counters import Counters
from netrum.decode.frames import ACK, PSH, Decoder
from netrum.decode.ipfrag import FragmentReassembler
from netrum.limits import SECOND_NS, Limits

BODY = b"POST /upload HTTP/1.1\r\nContent-Length: 300\r\n\r\n" + bytes(range(256)) * 2
KEY = (4, b"\x01\x02\x03\x04", b"\x05\x06\x07\x08", 6, 77)


def tcp_packet(ident: int = 77) -> IP:
    return IP(src="10.0.0.1", dst="10.0.0.2", id=ident) / TCP(sport=1234, dport=80, seq=5, ack=6, flags="PA") / BODY


EXPECT = (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 1234, 80, 5, 6, PSH | ACK, BODY, len(BODY))


def frames4(ident: int = 77, size: int = 128) -> list[bytes]:
    return [bytes(Ether() / f) for f in fragment(tcp_packet(ident), fragsize=size)]


def run(frames: list[bytes], decoder: Decoder | None = None, ts_step: int = 1) -> list[object]:
    dec = decoder or Decoder(Counters())
    return [s for i, f in enumerate(frames) if (s := dec.decode(i * ts_step, 1, f)) is not None]


def test_in_order_and_every_permutation_of_four() -> None:
    frames = frames4(size=160)
    assert len(frames) == 4
    for perm in itertools.permutations(frames):
        c = Counters()
        assert run(list(perm), Decoder(c)) == [EXPECT]
        assert c["decode_ip_fragment"] == 4 and c["decode_ip_reassembled"] == 1


def test_duplicates_complete_once() -> None:
    frames = frames4()
    c = Counters()
    assert len(frames) > 2
    out = run(frames[:2] + frames[:2] + frames[2:], Decoder(c))
    assert out == [EXPECT]
    assert c["decode_ip_reassembled"] == 1
    out = run(frames + frames, Decoder(c))  # a whole retransmitted datagram is rebuilt again
    assert out == [EXPECT, EXPECT]


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(16, 200))
def test_shuffled_and_duplicated(rnd: random.Random, size: int) -> None:
    frames = frames4(size=size)
    mixed = frames + rnd.sample(frames, k=min(3, len(frames)))
    rnd.shuffle(mixed)
    out = run(mixed)
    assert out and out[0] == EXPECT


def test_overlap_first_wins_direct() -> None:
    c = Counters()
    r = FragmentReassembler(c)
    assert r.add(KEY, 0, 0, True, b"AAAAAAAA") is None
    assert r.add(KEY, 1, 8, True, b"BBBBBBBBBBBBBBBB") is None  # 8..24
    assert r.add(KEY, 2, 0, True, b"XXXXXXXXXXXXXXXX") is None  # overlaps 0..16: loses to A and B
    assert r.add(KEY, 3, 24, False, b"CCCC") == b"AAAAAAAA" + b"BBBBBBBBBBBBBBBB" + b"CCCC"
    assert c["decode_ip_reassembled"] == 1 and len(r) == 0


def test_hole_never_completes_and_expires_on_packet_time() -> None:
    c = Counters()
    r = FragmentReassembler(c, Limits(ip_fragment_timeout_ns=10 * SECOND_NS))
    assert r.add(KEY, 0, 0, True, b"A" * 8) is None
    assert r.add(KEY, SECOND_NS, 16, False, b"C" * 8) is None  # hole at 8..16
    assert len(r) == 1
    other = (4, b"\x01\x01\x01\x01", b"\x02\x02\x02\x02", 6, 1)
    assert r.add(other, 11 * SECOND_NS, 0, True, b"x" * 8) is None
    assert c["decode_ip_fragment_expired"] == 1 and len(r) == 1


def test_table_is_bounded() -> None:
    c = Counters()
    r = FragmentReassembler(c, Limits(max_ip_fragment_datagrams=3))
    for ident in range(5):
        r.add((4, b"a" * 4, b"b" * 4, 6, ident), ident, 0, True, b"x" * 8)
    assert len(r) == 3 and c["decode_ip_fragment_expired"] == 2
    # The survivors are the newest: completing datagram 4 works, datagram 0 is gone.
    assert r.add((4, b"a" * 4, b"b" * 4, 6, 4), 9, 8, False, b"y") == b"x" * 8 + b"y"
    assert r.add((4, b"a" * 4, b"b" * 4, 6, 0), 9, 8, False, b"y") is None


def test_keys_keep_datagrams_apart() -> None:
    a, b = frames4(ident=1), frames4(ident=2)
    interleaved = [f for pair in zip(a, b) for f in pair]
    assert run(interleaved) == [EXPECT, EXPECT]


def test_impossible_offset_ignored() -> None:
    c = Counters()
    r = FragmentReassembler(c)
    assert r.add(KEY, 0, 65528, False, b"z" * 16) is None
    assert len(r) == 0 and c["decode_ip_fragment"] == 1


def test_ipv6_fragments() -> None:
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=99) / TCP(
        sport=1234, dport=80, seq=5, ack=6, flags="PA") / BODY
    frags = [bytes(Ether() / f) for f in fragment6(pkt, 200)]
    assert len(frags) >= 3
    c = Counters()
    out = run(list(reversed(frags)), Decoder(c))
    assert out == [(bytes.fromhex("20010db8000000000000000000000001"),
                    bytes.fromhex("20010db8000000000000000000000002"), 1234, 80, 5, 6, PSH | ACK, BODY, len(BODY))]
    assert c["decode_ip_fragment"] == len(frags) and c["decode_ip_reassembled"] == 1


def test_decoder_fragment_timeout_uses_packet_time() -> None:
    frames = frames4()
    c = Counters()
    dec = Decoder(c, Limits(ip_fragment_timeout_ns=5))
    out = run(frames, dec, ts_step=10)  # every fragment arrives after the previous one expired
    assert out == []
    assert c["decode_ip_fragment_expired"] >= len(frames) - 1
