"""Synthetic multi-connection captures for the scale-out tests (written with dpkt).

``mixed_capture`` interleaves many HTTP connections the way a busy mirror port does: keep-alive
exchanges, pipelined requests, IPv6 and VLAN-tagged connections, a request split into IP fragments,
RST and FIN endings, a 4-tuple reused, lost segments (gaps), a connection that falls silent with a
request pending (idle-expired with a short --idle-timeout), connections still open at the end with
requests pending, UDP/ARP noise, and one long connection that spans the whole capture (so that every
cut of ``split_rotated`` falls inside it).
"""
from __future__ import annotations

import random
import socket
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08
MS = 1_000_000
SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND

Packet = tuple[int, bytes]  # (ts_ns, Ethernet frame)


def _ip_bytes(addr: str) -> bytes:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return socket.inet_pton(fam, addr)


def tcp_frame(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
              payload: bytes = b"", vlan: int | None = None) -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF, flags=flags,
                       win=65535, data=payload)
    ip: dpkt.Packet
    if ":" in src:
        ip = dpkt.ip6.IP6(src=_ip_bytes(src), dst=_ip_bytes(dst), nxt=6, hlim=64, data=tcp)
        ip.plen = len(bytes(tcp))
        etype = dpkt.ethernet.ETH_TYPE_IP6
    else:
        ip = dpkt.ip.IP(src=_ip_bytes(src), dst=_ip_bytes(dst), p=6, ttl=64, data=tcp)
        etype = dpkt.ethernet.ETH_TYPE_IP
    body = bytes(ip)
    if vlan is not None:
        return b"\x02" * 6 + b"\x04" * 6 + b"\x81\x00" + vlan.to_bytes(2, "big") + etype.to_bytes(2, "big") + body
    return b"\x02" * 6 + b"\x04" * 6 + etype.to_bytes(2, "big") + body


def fragments(frame: bytes, cut: int) -> list[bytes]:
    """An option-less IPv4 Ethernet frame split into two IP fragments, the first carrying ``cut`` bytes
    (a multiple of 8) of the IP payload (RFC 791 section 3.2; checksums are not checked by netrum)."""
    hdr, payload = bytearray(frame[14:34]), frame[34:]
    out = []
    for off, chunk, more in ((0, payload[:cut], True), (cut, payload[cut:], False)):
        h = bytearray(hdr)
        h[2:4] = (20 + len(chunk)).to_bytes(2, "big")
        h[4:6] = (4242).to_bytes(2, "big")
        h[6:8] = ((0x2000 if more else 0) | (off >> 3)).to_bytes(2, "big")
        out.append(frame[:14] + bytes(h) + chunk)
    return out


@dataclass
class Conn:
    client: str
    cport: int
    server: str
    sport: int = 80
    vlan: int | None = None
    cseq: int = 1000
    sseq: int = 50000
    packets: list[Packet] = field(default_factory=list)

    def _c(self, ts: int, flags: int, payload: bytes = b"") -> None:
        self.packets.append((ts, tcp_frame(self.client, self.server, self.cport, self.sport, self.cseq,
                                           self.sseq, flags, payload, self.vlan)))
        self.cseq += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def _s(self, ts: int, flags: int, payload: bytes = b"") -> None:
        self.packets.append((ts, tcp_frame(self.server, self.client, self.sport, self.cport, self.sseq,
                                           self.cseq, flags, payload, self.vlan)))
        self.sseq += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def handshake(self, ts: int) -> int:
        self._c(ts, SYN)
        self._s(ts + 100_000, SYN | ACK)
        self._c(ts + 200_000, ACK)
        return ts + 300_000

    def request(self, ts: int, path: str, body: bytes = b"") -> int:
        head = f"GET {path} HTTP/1.1\r\nHost: example.test\r\nUser-Agent: synth\r\n"
        if body:
            head = head.replace("GET", "POST", 1) + f"Content-Length: {len(body)}\r\n"
        self._c(ts, PSH | ACK, head.encode() + b"\r\n" + body)
        return ts + 50_000

    def response(self, ts: int, status: int = 200, body_bytes: int = 100, drop_segment: bool = False,
                 segment: int = 1400) -> int:
        body = bytes(random.Random(self.cport * 7 + ts).getrandbits(8) for _ in range(body_bytes))
        data = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        for i in range(0, len(data), segment):
            chunk = data[i:i + segment]
            if drop_segment and i == segment:  # lose the second segment: a gap inside the body
                self.sseq += len(chunk)
            else:
                self._s(ts, PSH | ACK, chunk)
            ts += 20_000
        self._c(ts, ACK)
        return ts + 20_000

    def exchange(self, ts: int, path: str, status: int = 200, body_bytes: int = 100, think: int = 2 * MS,
                 **kw: bool) -> int:
        ts = self.request(ts, path)
        return self.response(ts + think, status, body_bytes, **kw)

    def fin(self, ts: int) -> int:
        self._c(ts, FIN | ACK)
        self._s(ts + 50_000, FIN | ACK)
        self._c(ts + 100_000, ACK)
        return ts + 150_000

    def rst(self, ts: int) -> int:
        self._c(ts, RST | ACK)
        return ts + 10_000


def _noise(ts: int) -> list[Packet]:
    udp = dpkt.udp.UDP(sport=5353, dport=5353, data=b"noise")
    udp.ulen = 8 + 5
    ip = dpkt.ip.IP(src=_ip_bytes("10.9.9.9"), dst=_ip_bytes("10.9.9.10"), p=17, data=udp)
    ip.len = 20 + len(bytes(udp))
    eth_udp = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + bytes(ip)
    arp = b"\xff" * 6 + b"\x04" * 6 + b"\x08\x06" + bytes(28)
    return [(ts, eth_udp), (ts + 1000, arp)]


def mixed_capture(seed: int = 1, connections: int = 40, span_s: int = 12) -> list[Packet]:
    """Packets of many interleaved connections, sorted by time (ties keep generation order)."""
    rnd = random.Random(seed)
    conns: list[Conn] = []
    # The long one: an exchange every 150 ms over the whole span, still open at the end.
    long = Conn("10.0.0.1", 40000, "10.0.0.2")
    t = long.handshake(T0)
    i = 0
    while t < T0 + span_s * SECOND:
        t = long.exchange(t, f"/long/{i}", body_bytes=rnd.choice((50, 3000)))
        t += 150 * MS
        i += 1
    long.request(t, "/long/pending")  # open at the end with a request pending
    conns.append(long)
    for c in range(connections):
        ip6 = c % 9 == 4
        conn = Conn("fd00::1" if ip6 else f"10.0.{1 + c % 3}.{10 + c}", 41000 + 2 * c,
                    "fd00::2" if ip6 else "10.0.0.2", 80 if c % 4 else 8080, vlan=100 if c % 11 == 6 else None)
        t = T0 + rnd.randrange(0, (span_s - 3) * SECOND)
        t = conn.handshake(t)
        for j in range(rnd.randint(1, 6)):
            t = conn.exchange(t, f"/c{c}/item/{j}?q={rnd.randrange(1000)}",
                              status=rnd.choice((200, 200, 200, 404, 500)),
                              body_bytes=rnd.choice((0, 80, 2500, 6000)),
                              drop_segment=(c % 7 == 3 and j == 0))
            t += rnd.randrange(1, 300) * MS
        ending = c % 5
        if ending == 0:
            conn.fin(t)
        elif ending == 1:
            conn.rst(t)
        elif ending == 2:
            conn.request(t, f"/c{c}/pending")  # open at the end, request pending
        elif ending == 3 and c % 2:
            conn.request(t, f"/c{c}/silent")  # falls silent: idle-expired with --idle-timeout 2
        else:
            conn.fin(t)
        conns.append(conn)
    # A 4-tuple reused: same ports, a new connection after the first one ended.
    for k in range(2):
        reuse = Conn("10.0.5.5", 45000, "10.0.0.2")
        reuse.cseq += 7777 * k
        t = reuse.handshake(T0 + (2 + 4 * k) * SECOND)
        t = reuse.exchange(t, f"/reuse/{k}")
        reuse.fin(t)
        conns.append(reuse)
    packets = [p for conn in conns for p in conn.packets]
    # A request split into IP fragments (the general decode path, the fragment table in every worker).
    frag = Conn("10.0.7.7", 47000, "10.0.0.2")
    t = frag.handshake(T0 + 5 * SECOND)
    frag.request(t, "/fragmented/" + "x" * 300)
    ts, frame = frag.packets.pop()
    frag.packets.extend((ts + i, f) for i, f in enumerate(fragments(frame, 160)))
    frag.response(t + 3 * MS, 201)
    frag.fin(t + 10 * MS)
    packets += frag.packets
    for s in range(span_s):
        packets += _noise(T0 + s * SECOND + 777)
    packets.sort(key=lambda p: p[0])
    return packets


def write_pcap(path: Path, packets: list[Packet]) -> Path:
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, nano=True, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in packets:
            w.writepkt(frame, ts=ts / 1e9)
    return path


def write_pcap_exact(path: Path, packets: list[Packet]) -> Path:
    """A nanosecond pcap with exact integer timestamps (dpkt's float ts would round)."""
    import struct

    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for ts, frame in packets:
            sec, ns = divmod(ts, SECOND)
            f.write(struct.pack("<IIII", sec, ns, len(frame), len(frame)))
            f.write(frame)
    return path


def split_rotated(packets: list[Packet], directory: Path, files: int, name: str = "cap") -> list[Path]:
    """Cut the packets into ``files`` captures at packet boundaries, named like ``tcpdump -C``
    (cap, cap1, cap2, ... cap10)."""
    directory.mkdir(parents=True, exist_ok=True)
    per = -(-len(packets) // files)
    out = []
    for i in range(files):
        p = directory / (name if i == 0 else f"{name}{i}")
        write_pcap_exact(p, packets[i * per:(i + 1) * per])
        out.append(p)
    return out
