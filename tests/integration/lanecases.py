"""Captures and comparisons for the lane's differential tests (tests/integration/test_lane_equivalence.py).

- ``run_both``: one capture analysed by the pure-Python reference (``engine="python"``) and by the default
  engine (the C lane when it qualifies), into two directories;
- ``assert_same_outputs``: every output file byte-identical, with a readable report of the first
  difference (file, line, and for CSV files the columns that differ);
- ``SYNTHETIC``: small deterministic captures written with dpkt, one per situation the lane must either
  reproduce exactly or hand to Python (each also holds one clean "control" connection, so the lane always
  has something to analyse);
- ``DAMAGE``: damaged copies of a real capture (scripts/damage.py's functions, plus retransmissions and a
  response segment moved before the request it answers).

Timestamps are exact integers (microsecond pcap, or nanosecond where a case says so); nothing here reads
the clock or a random source without a fixed seed.
"""
from __future__ import annotations

import csv
import io
import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dpkt

from netrum.batch import AnalyzeOptions, RunResult, analyze_files

from .groundtruth import load_script

SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08
US = 1_000
MS = 1_000_000
SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113

Packet = tuple[int, bytes]  # (ts_ns, link-layer frame)


# ------------------------------------------------------------------------------------------ running
@dataclass
class Pair:
    """The two runs of one capture: the reference (python) and the default engine."""

    python: RunResult
    default: RunResult
    out_python: Path
    out_default: Path


def run_both(capture: Path, work: Path, **options: object) -> Pair:
    a, b = work / "out-python", work / "out-default"
    ref = analyze_files([str(capture)], a, AnalyzeOptions(engine="python", **options))  # type: ignore[arg-type]
    got = analyze_files([str(capture)], b, AnalyzeOptions(**options))  # type: ignore[arg-type]
    return Pair(ref, got, a, b)


def _csv_row(line: str) -> list[str]:
    return next(csv.reader(io.StringIO(line)), [])


def first_difference(a: Path, b: Path) -> str:
    """'' when the files are byte-identical, else where and how they first differ."""
    da, db = a.read_bytes(), b.read_bytes()
    if da == db:
        return ""
    la = da.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    lb = db.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    out = [f"{a.name}: python {len(da)} bytes / {len(la)} lines, default {len(db)} bytes / {len(lb)} lines"]
    i = next((k for k, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
    if i >= min(len(la), len(lb)):
        longer, who = (la, "python") if len(la) > len(lb) else (lb, "default")
        out.append(f"  identical for {i} lines; only {who} has more, from line {i + 1}:")
        out += [f"    {line!r}" for line in longer[i:i + 3]]
        return "\n".join(out)
    out.append(f"  first difference at line {i + 1}:")
    out.append(f"    python : {la[i]!r}")
    out.append(f"    default: {lb[i]!r}")
    if a.suffix == ".csv" and la:
        header = _csv_row(la[0])
        ra, rb = _csv_row(la[i]), _csv_row(lb[i])
        cols = [f"{header[k] if k < len(header) else k}: {x!r} != {y!r}"
                for k, (x, y) in enumerate(zip(ra, rb)) if x != y]
        if len(ra) != len(rb):
            cols.append(f"field count {len(ra)} != {len(rb)}")
        if i > 0 and a.name == "health.csv" and ra:
            cols.insert(0, f"counter {ra[1] if len(ra) > 1 else ra[0]}")
        out.append("  differing columns: " + "; ".join(cols))
    n = sum(1 for x, y in zip(la, lb) if x != y) + abs(len(la) - len(lb))
    out.append(f"  {n} differing lines in all")
    return "\n".join(out)


def assert_same_outputs(pair: Pair) -> None:
    names_a = sorted(p.name for p in pair.out_python.iterdir())
    names_b = sorted(p.name for p in pair.out_default.iterdir())
    assert names_a == names_b, f"output files differ: python {names_a}, default {names_b}"
    diffs = [d for n in names_a if (d := first_difference(pair.out_python / n, pair.out_default / n))]
    assert not diffs, "outputs differ between engine=python and the default engine:\n" + "\n".join(diffs)
    ra, rb = pair.python, pair.default
    facts_a = (ra.transactions, ra.problems, ra.interrupted, ra.partial, ra.span_ns, ra.first_ts_ns,
               ra.last_ts_ns, sorted(ra.linktypes), ra.counters.nonzero())
    facts_b = (rb.transactions, rb.problems, rb.interrupted, rb.partial, rb.span_ns, rb.first_ts_ns,
               rb.last_ts_ns, sorted(rb.linktypes), rb.counters.nonzero())
    assert facts_a == facts_b, f"RunResult differs:\n python  {facts_a}\n default {facts_b}"


# ------------------------------------------------------------------------------------------ pcap files
def write_pcap(path: Path, packets: list[Packet], linktype: int = LINKTYPE_ETHERNET, nano: bool = False,
               snaplen: int = 262144, cut: dict[int, int] | None = None) -> Path:
    """A little-endian classic pcap with exact timestamps (microsecond unless nano). ``cut`` maps a
    packet's index to the bytes stored of it (the rest missing, as a snaplen leaves it)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, (ts, frame) in enumerate(packets):
        sec, ns = divmod(ts, SECOND)
        frac = ns if nano else ns // US
        stored = frame[:cut[i]] if cut and i in cut else frame
        out.append(struct.pack("<IIII", sec, frac, len(stored), len(frame)))
        out.append(stored)
    path.write_bytes(b"".join(out))
    return path


@dataclass(frozen=True)
class NgInterface:
    """An Interface Description Block (pcapng section 4.2): link type, snaplen, and the timestamp options
    (``tsresol``: the if_tsresol byte; ``tsoffset_s``: if_tsoffset in seconds)."""

    linktype: int = LINKTYPE_ETHERNET
    snaplen: int = 262144
    tsresol: int | None = None
    tsoffset_s: int | None = None

    def ticks(self, ts_ns: int) -> int:
        """The block's timestamp for ``ts_ns`` in this interface's units (floor; kept to its low 64 bits
        where a resolution finer than any clock would leave them)."""
        ts_ns -= (self.tsoffset_s or 0) * SECOND
        r = 6 if self.tsresol is None else self.tsresol
        if r & 0x80:
            return ts_ns * (1 << (r & 0x7F)) // SECOND & 0xFFFFFFFFFFFFFFFF
        return ts_ns * 10 ** r // SECOND & 0xFFFFFFFFFFFFFFFF


def _ng_block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def ng_section(order: str = "<") -> bytes:
    return _ng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def ng_interface(iface: NgInterface, order: str = "<") -> bytes:
    opts = b""
    if iface.tsresol is not None:
        opts += struct.pack(order + "HH", 9, 1) + bytes([iface.tsresol]) + b"\0\0\0"
    if iface.tsoffset_s is not None:
        opts += struct.pack(order + "HHq", 14, 8, iface.tsoffset_s)
    if opts:
        opts += struct.pack(order + "HH", 0, 0)
    return _ng_block(order, 1, struct.pack(order + "HHI", iface.linktype, 0, iface.snaplen) + opts)


def ng_packet(ts_ns: int, frame: bytes, iface: NgInterface, if_id: int = 0, order: str = "<",
              kind: str = "epb", stored: int | None = None) -> bytes:
    """An Enhanced (``epb``), Simple (``spb``: no time, no interface) or obsolete (``pb``) Packet Block."""
    data = frame if stored is None else frame[:stored]
    if kind == "spb":
        return _ng_block(order, 3, struct.pack(order + "I", len(frame)) + data)
    t = iface.ticks(ts_ns)
    if kind == "pb":
        head = struct.pack(order + "HHIIII", if_id, 0, t >> 32, t & 0xFFFFFFFF, len(data), len(frame))
        return _ng_block(order, 2, head + data)
    head = struct.pack(order + "IIIII", if_id, t >> 32, t & 0xFFFFFFFF, len(data), len(frame))
    return _ng_block(order, 6, head + data)


def ng_other(btype: int, body: bytes = b"\x00" * 8, order: str = "<") -> bytes:
    """A block of another type (name resolution 4, interface statistics 5, custom 0xBAD...)."""
    return _ng_block(order, btype, body)


def write_pcapng(path: Path, packets: list[Packet], iface: NgInterface = NgInterface(), order: str = "<") -> Path:
    """One section, one interface, every packet an Enhanced Packet Block (what dumpcap writes)."""
    out = [ng_section(order), ng_interface(iface, order)]
    out += [ng_packet(ts, frame, iface, 0, order) for ts, frame in packets]
    path.write_bytes(b"".join(out))
    return path


def is_classic_pcap(path: Path) -> bool:
    with open(path, "rb") as f:
        magic = f.read(4)
    return magic in {bytes.fromhex(m) for m in ("d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d")}


def pcap_head(src: Path, dst: Path, packets: int) -> Path:
    """The first ``packets`` records of a classic pcap file (header and records copied as they are)."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        hdr = f.read(24)
        little = hdr[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
        rec = struct.Struct("<IIII" if little else ">IIII")
        out.write(hdr)
        for _ in range(packets):
            rh = f.read(16)
            if len(rh) < 16:
                break
            caplen = rec.unpack(rh)[2]
            data = f.read(caplen)
            if len(data) < caplen:
                break
            out.write(rh + data)
    return dst


# ------------------------------------------------------------------------------------------ frames
def _ip_bytes(addr: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)


def ip_packet(src: str, dst: str, proto: int, l4: bytes, ident: int = 0) -> tuple[int, bytes]:
    """(ethertype, IP packet) around an L4 payload."""
    if ":" in src:
        hdr = struct.pack("!IHBB", 0x60000000, len(l4), proto, 64) + _ip_bytes(src) + _ip_bytes(dst)
        return 0x86DD, hdr + l4
    ip = dpkt.ip.IP(src=_ip_bytes(src), dst=_ip_bytes(dst), p=proto, ttl=64, id=ident, data=l4)
    ip.len = 20 + len(l4)
    return 0x0800, bytes(ip)


def tcp_bytes(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF, flags=flags,
                       win=65535, data=payload)
    return bytes(tcp)


def ethernet(ethertype: int, body: bytes, vlan: int | None = None, pad: bool = False) -> bytes:
    tag = b"\x81\x00" + vlan.to_bytes(2, "big") if vlan is not None else b""
    frame = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + tag + ethertype.to_bytes(2, "big") + body
    if pad and len(frame) < 60:
        frame += b"\x00" * (60 - len(frame))  # Ethernet minimum frame (FCS not captured)
    return frame


def sll(ethertype: int, body: bytes, outgoing: bool = False) -> bytes:
    """Linux cooked capture v1 header (LINKTYPE_LINUX_SLL)."""
    return struct.pack("!HHH8sH", 4 if outgoing else 0, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00",
                       ethertype) + body


def vxlan(inner_frame: bytes, vni: int = 42) -> bytes:
    """An Ethernet frame tunnelled in VXLAN (UDP 4789, RFC 7348) between two VTEPs."""
    payload = struct.pack("!II", 0x08000000, vni << 8) + inner_frame
    udp = struct.pack("!HHHH", 54321, 4789, 8 + len(payload), 0) + payload
    et, ip = ip_packet("192.0.2.1", "192.0.2.2", 17, udp)
    return ethernet(et, ip)


@dataclass(frozen=True)
class Wire:
    """How a case's frames are wrapped: Ethernet (optionally VLAN-tagged or padded), SLL, or VXLAN."""

    kind: str = "eth"  # eth | sll | vxlan
    vlan: int | None = None
    pad: bool = False

    def frame(self, ethertype: int, ip: bytes, from_client: bool) -> bytes:
        if self.kind == "sll":
            return sll(ethertype, ip, outgoing=from_client)
        inner = ethernet(ethertype, ip, self.vlan, self.pad)
        return vxlan(inner) if self.kind == "vxlan" else inner


ETH = Wire()


@dataclass
class Conn:
    """One TCP connection's packets, with sequence numbers kept for both sides."""

    out: list[Packet]
    client: str
    cport: int
    server: str = "10.0.0.2"
    sport: int = 80
    wire: Wire = ETH
    cseq: int = 1000
    sseq: int = 50000

    def c(self, ts: int, flags: int, payload: bytes = b"", seq: int | None = None) -> int:
        s = self.cseq if seq is None else seq
        _, ip = ip_packet(self.client, self.server, 6,
                          tcp_bytes(self.client, self.server, self.cport, self.sport, s, self.sseq, flags, payload))
        self.out.append((ts, self.wire.frame(0x86DD if ":" in self.client else 0x0800, ip, True)))
        if seq is None:
            self.cseq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        return ts + 20 * US

    def s(self, ts: int, flags: int, payload: bytes = b"", seq: int | None = None) -> int:
        q = self.sseq if seq is None else seq
        _, ip = ip_packet(self.server, self.client, 6,
                          tcp_bytes(self.server, self.client, self.sport, self.cport, q, self.cseq, flags, payload))
        self.out.append((ts, self.wire.frame(0x86DD if ":" in self.client else 0x0800, ip, False)))
        if seq is None:
            self.sseq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        return ts + 20 * US

    def handshake(self, ts: int) -> int:
        ts = self.c(ts, SYN)
        ts = self.s(ts + 80 * US, SYN | ACK)
        return self.c(ts + 80 * US, ACK)

    def send_c(self, ts: int, data: bytes, seg: int = 1448) -> int:
        for i in range(0, len(data), seg):
            ts = self.c(ts, PSH | ACK, data[i:i + seg])
        return ts

    def send_s(self, ts: int, data: bytes, seg: int = 1448) -> int:
        for i in range(0, len(data), seg):
            ts = self.s(ts, PSH | ACK, data[i:i + seg])
        return self.c(ts + 50 * US, ACK)

    def exchange(self, ts: int, request: bytes, response: bytes, think: int = 2 * MS) -> int:
        ts = self.send_c(ts, request)
        return self.send_s(ts + think, response) + 1 * MS

    def fin(self, ts: int) -> int:
        ts = self.c(ts, FIN | ACK)
        ts = self.s(ts + 50 * US, FIN | ACK)
        return self.c(ts + 50 * US, ACK)


def req(method: str = "GET", target: str = "/", body: bytes = b"", host: str = "example.test",
        extra: str = "", version: str = "HTTP/1.1") -> bytes:
    head = f"{method} {target} {version}\r\nHost: {host}\r\nUser-Agent: lanecases/1\r\n{extra}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def resp(status: int = 200, body: bytes = b"", reason: str = "OK", extra: str = "", length: bool = True) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nServer: lanecases\r\n{extra}"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def chunked(body: bytes, size: int = 100, ext: str = "", trailers: str = "") -> bytes:
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += f"{len(part):x}{ext}\r\n".encode() + part + b"\r\n"
    return out + f"0{ext}\r\n{trailers}\r\n".encode()


def blob(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def control(out: list[Packet], ts: int, cport: int = 33000, wire: Wire = ETH, rounds: int = 1) -> int:
    """The clean control connection every synthetic capture holds: a handshake, ``rounds`` times three
    keep-alive exchanges (GET, POST with a body, a chunked response) and FIN, IPv4 on port 80. More rounds
    keep the frames only Python's decoder takes (VLAN, VXLAN, non-TCP...) under the share above which the
    lane stands aside (netrum.lane.MAX_NONFAST_SHARE), so that the mix of both is what gets tested."""
    c = Conn(out, "10.1.0.1", cport, "10.1.0.2", wire=wire)
    t = c.handshake(ts)
    for k in range(rounds):
        t = c.exchange(t, req(target=f"/control/a{k}"), resp(body=blob(300, 1)))
        t = c.exchange(t, req("POST", f"/control/b{k}", blob(2000, 2)), resp(201, blob(50, 3), "Created"))
        t = c.exchange(t, req(target=f"/control/c{k}"),
                       resp(body=chunked(blob(700, 4), 256), extra="Transfer-Encoding: chunked\r\n", length=False))
    return c.fin(t)


# ------------------------------------------------------------------------------------------ synthetic cases
Builder = Callable[[list[Packet]], None]


@dataclass(frozen=True)
class Case:
    """A synthetic capture and what the lane must do with it.

    lane_min: at least this many connections analysed in C (``lane_stats["flows_lane"]``);
    python_min: at least this many 4-tuples handed to Python (``lane_stats["flows_python"]``), for the
    situations the lane's contract excludes (loss, reordering, RST, malformed heads...);
    python_max: at most this many (the all-clean capture: 0)."""

    build: Builder
    lane_min: int = 1
    python_min: int = 0
    python_max: int | None = None
    linktype: int = LINKTYPE_ETHERNET
    nano: bool = False


def _all_clean(out: list[Packet]) -> None:
    t = T0
    for k in range(6):
        t = control(out, t + 5 * MS, 34000 + k)
    ip6 = Conn(out, "fd00::1", 34100, "fd00::2")
    t = ip6.handshake(t)
    t = ip6.exchange(t, req(target="/v6"), resp(body=blob(4000, 5)))
    ip6.fin(t)


def _consumers(out: list[Packet]) -> None:
    """Requests as they reach a server behind proxies, for the consumer options: identity fields (repeated,
    empty, in other cases), X-Forwarded-For lists, Forwarded elements (quoted IPv6 with a port, obfuscated
    and unknown hops), X-Real-IP, from clients inside and outside the trusted networks (10.0.0.0/8,
    2001:db8::/32), and a repeated X-Forwarded-For line (the reference joins it: Python's connection)."""
    t = control(out, T0)
    heads = [
        "X-API-Key: alpha\r\n",
        "x-api-key: beta\r\nX-Api-Key: gamma\r\n",
        "X-API-Key:\r\n",
        "Authorization: Bearer abc.def\r\n",
        "X-Forwarded-For: 203.0.113.7, 10.0.0.9\r\n",
        "X-Forwarded-For: 198.51.100.1,, 10.3.3.3 \r\n",
        "X-Forwarded-For: unknown, 10.0.0.8\r\n",
        'Forwarded: for="[2001:db8:cafe::17]:4711";proto=http, for=10.0.0.5\r\n',
        "Forwarded: for=_hidden;by=10.0.0.1\r\n",
        "Forwarded: proto=https\r\n",
        "X-Real-IP: 192.0.2.200\r\n",
        "X-Real-IP: 192.0.2.201\r\nX-Real-IP: 192.0.2.202\r\n",
        "X-Forwarded-For: 203.0.113.9\r\nX-API-Key: delta\r\n",
        "",
    ]
    for k, client in enumerate(("10.0.0.31", "192.0.2.31", "2001:db8::31")):
        server = "2001:db8::2" if ":" in client else "10.0.0.2"
        c = Conn(out, client, 41000 + k, server)
        t = c.handshake(t + 3 * MS)
        for i, extra in enumerate(heads):
            t = c.exchange(t, req(target=f"/who/{k}/{i}", extra=extra, body=blob(30, i) if i % 3 == 0 else b""),
                           resp(body=blob(40, i), extra="Content-Type: application/json\r\n"))
        t = c.fin(t)
    d = Conn(out, "10.0.0.32", 41010)
    t = d.handshake(t + 3 * MS)
    t = d.exchange(t, req(target="/joined", extra="X-Forwarded-For: 203.0.113.1\r\nX-Forwarded-For: 10.0.0.4\r\n"),
                   resp(body=b"{}"))
    d.fin(t)


def _heads_cut_at_end(out: list[Packet]) -> None:
    """Connections the end of the capture cuts inside a head: an HTTP/0.9 request line answered by a raw
    body (a message to the reference), and an HTTP/1.1 head without its empty line (counted truncated)."""
    t = control(out, T0)
    a = Conn(out, "10.0.0.41", 41100)
    t = a.handshake(t + MS)
    t = a.send_c(t + MS, b"GET /old.html\r\n")
    t = a.send_s(t + MS, b"<html>an HTTP/0.9 answer</html>")
    b = Conn(out, "10.0.0.42", 41101)
    t = b.handshake(t + MS)
    t = b.exchange(t, req(target="/first"), resp(body=b"ok"))
    b.send_c(t + MS, b"GET /second HTTP/1.1\r\nHost: example.test\r\n")


def _port_reuse(out: list[Packet]) -> None:
    for gap_s, port in ((1, 40001), (10, 40002)):  # a new SYN 1 s (within linger) and 10 s after the close
        t = T0 + MS
        for k in range(2):
            c = Conn(out, "10.0.0.9", port, cseq=1000 + 77777 * k, sseq=50000 + 99999 * k)
            t = c.handshake(t)
            t = c.exchange(t, req(target=f"/reuse/{gap_s}/{k}"), resp(body=blob(100 + k, k)))
            t = c.fin(t) + gap_s * SECOND
    # reuse after a RST, 2 s later
    t = T0 + 2 * MS
    for k in range(2):
        c = Conn(out, "10.0.0.9", 40003, cseq=5000 + 12345 * k)
        t = c.handshake(t)
        t = c.exchange(t, req(target=f"/reuse-rst/{k}"), resp(body=b"x" * 10))
        t = c.c(t, RST | ACK) + 2 * SECOND
    control(out, T0 + 20 * SECOND)


def _idle(out: list[Packet], traffic: bool) -> None:
    c = Conn(out, "10.0.0.10", 40010)
    t = c.handshake(T0)
    t = c.exchange(t, req(target="/before-idle"), resp(body=b"a" * 20))
    if traffic:  # other connections keep the packet clock moving through the silence
        for k in range(9):
            control(out, t + k * 40 * SECOND, 36000 + k)
    t += 301 * SECOND
    t = c.exchange(t, req(target="/after-idle"), resp(body=b"b" * 20))
    c.fin(t)
    if not traffic:
        control(out, t + SECOND)


def _open_at_end(out: list[Packet]) -> None:
    t = control(out, T0)
    a = Conn(out, "10.0.0.11", 40011)  # nothing pending
    a.exchange(a.handshake(t), req(target="/open/idle"), resp(body=b"z" * 10))
    b = Conn(out, "10.0.0.11", 40012)  # a request pending
    tb = b.exchange(b.handshake(t), req(target="/open/done"), resp(body=b"z" * 10))
    tb = b.send_c(tb, req(target="/open/pending"))
    d = Conn(out, "10.0.0.11", 40013)  # a request head half sent
    td = d.exchange(d.handshake(t), req(target="/open/done2"), resp(body=b"z" * 10))
    d.send_c(td, req(target="/open/half")[:25])
    e = Conn(out, "10.0.0.11", 40014)  # a response head half sent
    te = e.send_c(e.handshake(t), req(target="/open/resp-half"))
    e.s(te + MS, PSH | ACK, resp(body=b"q" * 50)[:30])
    f = Conn(out, "10.0.0.11", 40015)  # a response body half sent
    tf = f.send_c(f.handshake(t), req(target="/open/body-half"))
    f.s(tf + MS, PSH | ACK, resp(body=b"q" * 500)[:200])


def _rst(out: list[Packet]) -> None:
    control(out, T0)
    a = Conn(out, "10.0.0.12", 40020)  # client RST after a complete exchange
    t = a.exchange(a.handshake(T0 + MS), req(target="/rst/client"), resp(body=b"r" * 30))
    a.c(t, RST | ACK)
    b = Conn(out, "10.0.0.12", 40021)  # server RST in the middle of the response body
    t = b.send_c(b.handshake(T0 + 2 * MS), req(target="/rst/server"))
    t = b.s(t + MS, PSH | ACK, resp(body=b"s" * 1000)[:400])
    b.s(t, RST | ACK)
    d = Conn(out, "10.0.0.12", 40022)  # server RST answering the SYN
    d.c(T0 + 3 * MS, SYN)
    d.s(T0 + 3 * MS + 50 * US, RST | ACK)


def _half_close(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "10.0.0.13", 40030)
    t = c.send_c(c.handshake(T0 + MS), req(target="/half-close"))
    t = c.c(t, FIN | ACK)
    t = c.s(t + MS, PSH | ACK, resp(body=blob(3000, 9))[:1448])
    t = c.s(t, PSH | ACK, resp(body=blob(3000, 9))[1448:])
    t = c.s(t, FIN | ACK)
    c.c(t, ACK)


def _pipelined(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "10.0.0.14", 40040)
    t = c.handshake(T0 + MS)
    burst = b"".join(req(target=f"/pipe/{i}") for i in range(20))
    t = c.send_c(t, burst)
    t = c.send_s(t + MS, b"".join(resp(body=blob(i * 37, i)) for i in range(20)))
    burst2 = b"".join(req("POST" if i % 3 == 0 else "GET", f"/pipe2/{i}", blob(i * 11, i) if i % 3 == 0 else b"")
                      for i in range(20))
    t = c.send_c(t + MS, burst2, seg=97)  # odd segment boundaries
    t = c.send_s(t + MS, b"".join(resp(body=blob(i * 53, i)) for i in range(20)), seg=211)
    c.fin(t)


def _chunked_ext(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "10.0.0.15", 40050)
    t = c.handshake(T0 + MS)
    te = "Transfer-Encoding: chunked\r\n"
    t = c.exchange(t, req(target="/chunk/ext"), resp(body=chunked(blob(900, 1), 300, ";name=value;q=\"x\""),
                                                       extra=te, length=False))
    t = c.exchange(t, req(target="/chunk/trailer"),
                   resp(body=chunked(blob(500, 2), 128, "", "X-Checksum: abc\r\nX-Other: 1\r\n"), extra=te,
                        length=False))
    body = chunked(blob(640, 3), 64)
    t = c.exchange(t, b"POST /chunk/request HTTP/1.1\r\nHost: example.test\r\n" + te.encode() + b"\r\n" + body,
                   resp(204, reason="No Content", length=False))
    t = c.exchange(t, req(target="/chunk/upper"), resp(body=b"1F4\r\n" + b"u" * 500 + b"\r\n0\r\n\r\n",
                                                        extra=te, length=False))
    c.fin(t)


def _split_chunks(out: list[Packet]) -> None:
    """One connection per split point of a chunked response body (chunk lines cut everywhere)."""
    control(out, T0)
    te = "Transfer-Encoding: chunked\r\n"
    head = resp(extra=te, length=False)
    body = chunked(b"0123456789abcdef" * 3, 20)  # plain chunked (extensions: chunked-ext-trailers)
    for k in range(len(body) + 1):
        c = Conn(out, "10.0.1.1", 20000 + k)
        t = c.send_c(c.handshake(T0 + MS + k * 10 * MS), req(target=f"/split-chunk/{k}"))
        t = c.s(t + MS, PSH | ACK, head + body[:k])
        if k < len(body):
            t = c.s(t, PSH | ACK, body[k:])
        c.fin(t + 100 * US)


def _split_heads(out: list[Packet]) -> None:
    """A request head and a response head split at every byte across two segments."""
    control(out, T0)
    rq = req("POST", "/split/head?x=1", b"payload!", extra="Accept: */*\r\n")
    rs = resp(body=b"response body", extra="Content-Type: text/plain\r\n")
    t = T0 + MS
    for k in range(1, len(rq)):
        c = Conn(out, "10.0.2.1", 20000 + k)
        t = c.c(c.handshake(t), PSH | ACK, rq[:k])
        t = c.c(t + 100 * US, PSH | ACK, rq[k:])
        t = c.send_s(t + MS, resp())
        t = c.fin(t) + MS
    for k in range(1, len(rs)):
        c = Conn(out, "10.0.3.1", 20000 + k)
        t = c.send_c(c.handshake(t), req(target=f"/split/resp/{k}"))
        t = c.s(t + MS, PSH | ACK, rs[:k])
        t = c.s(t + 100 * US, PSH | ACK, rs[k:])
        t = c.fin(t) + MS


def _interim(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "10.0.0.16", 40060)
    t = c.handshake(T0 + MS)
    body = blob(3000, 6)
    t = c.send_c(t, req("POST", "/expect", extra=f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n"))
    t = c.send_s(t + MS, b"HTTP/1.1 100 Continue\r\n\r\n")
    t = c.send_c(t, body)
    t = c.send_s(t + MS, resp(201, b"ok", "Created"))
    t = c.exchange(t, req(target="/multi-1xx"), b"HTTP/1.1 102 Processing\r\n\r\n"
                   b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + resp(body=b"done"))
    c.fin(t)


def _no_body_statuses(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "10.0.0.17", 40070)
    t = c.handshake(T0 + MS)
    t = c.exchange(t, req("HEAD", "/head"), b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n")
    t = c.exchange(t, req(target="/nocontent"), b"HTTP/1.1 204 No Content\r\n\r\n")
    t = c.exchange(t, req(target="/notmod", extra="If-None-Match: \"x\"\r\n"),
                   b"HTTP/1.1 304 Not Modified\r\nContent-Length: 500\r\nETag: \"x\"\r\n\r\n")
    t = c.exchange(t, req("HEAD", "/head-chunked"), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    t = c.exchange(t, req(target="/after"), resp(body=b"last"))
    c.fin(t)


def _upgrade_connect(out: list[Packet]) -> None:
    control(out, T0)
    w = Conn(out, "10.0.0.18", 40080)
    t = w.send_c(w.handshake(T0 + MS), req(target="/ws", extra="Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
    t = w.send_s(t + MS, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    t = w.send_c(t, b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")
    t = w.send_s(t, b"\x81\x05Hello GET / HTTP/1.1\r\n\r\n")
    w.fin(t)
    p = Conn(out, "10.0.0.18", 40081, sport=3128)
    t = p.send_c(p.handshake(T0 + 2 * MS), b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
    t = p.send_s(t + MS, b"HTTP/1.1 200 Connection established\r\n\r\n")
    t = p.send_c(t, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + blob(500, 7))
    t = p.send_s(t, b"\x16\x03\x03\x00\x5a\x02" + blob(300, 8))
    p.fin(t)


def _non_http(out: list[Packet]) -> None:
    control(out, T0)
    a = Conn(out, "10.0.0.19", 40090, sport=22)
    t = a.send_s(a.handshake(T0 + MS), b"SSH-2.0-OpenSSH_9.6\r\n")
    t = a.send_c(t, b"SSH-2.0-client\r\n" + blob(800, 1))
    a.fin(t)
    b = Conn(out, "10.0.0.19", 40091)
    t = b.send_c(b.handshake(T0 + 2 * MS), blob(2000, 2))
    t = b.send_s(t, blob(1000, 3))
    b.fin(t)


def _midstream(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "10.0.0.20", 40100)  # no handshake: picked up in the middle
    t = c.exchange(T0 + MS, req(target="/midstream/1"), resp(body=b"m" * 100))
    t = c.exchange(t, req(target="/midstream/2"), resp(body=b"n" * 100))
    c.fin(t)
    d = Conn(out, "10.0.0.20", 40101)  # starts inside a response body
    t = d.s(T0 + 2 * MS, PSH | ACK, b"tail of a body")
    t = d.exchange(t, req(target="/midstream/3"), resp(body=b"o" * 10))
    d.fin(t)


def _syn_oddities(out: list[Packet]) -> None:
    control(out, T0)
    a = Conn(out, "10.0.0.21", 40110)  # the SYN retransmitted once
    a.c(T0 + MS, SYN, seq=a.cseq)
    t = a.handshake(T0 + MS + SECOND)
    a.fin(a.exchange(t, req(target="/syn-retransmit"), resp(body=b"k" * 40)))
    b = Conn(out, "10.0.0.21", 40111)  # SYN, no SYN-ACK captured, data both ways
    t = b.c(T0 + 2 * MS, SYN)
    t = b.exchange(t + MS, req(target="/no-synack"), resp(body=b"j" * 40))
    b.fin(t)
    d = Conn(out, "10.0.0.21", 40112)  # a SYN alone
    d.c(T0 + 3 * MS, SYN)
    e = Conn(out, "10.0.0.21", 40113)  # SYN-ACK retransmitted
    t = e.c(T0 + 4 * MS, SYN)
    t = e.s(t, SYN | ACK, seq=e.sseq)
    t = e.s(t + 200 * MS, SYN | ACK)
    t = e.c(t, ACK)
    e.fin(e.exchange(t, req(target="/synack-retransmit"), resp(body=b"i" * 40)))
    out.sort(key=lambda p: p[0])


def _retransmit(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "10.0.0.22", 40120)
    t = c.send_c(c.handshake(T0 + MS), req(target="/retransmit"))
    data = resp(body=blob(4000, 3))
    seq0 = c.sseq
    t = c.send_s(t + MS, data)
    t = c.s(t + 200 * MS, PSH | ACK, data[1448:2896], seq=seq0 + 1448)  # a whole segment again
    t = c.s(t, PSH | ACK, data[1000:2000], seq=seq0 + 1000)  # an overlapping one
    c.fin(t)


def _ipv6(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "2001:db8::1", 40130, "2001:db8::80")
    t = c.handshake(T0 + MS)
    t = c.exchange(t, req(target="/six", host="[2001:db8::80]"), resp(body=blob(5000, 1)))
    t = c.exchange(t, req("POST", "/six/post", blob(3000, 2)), resp(body=b"ok"))
    c.fin(t)


def _vlan(out: list[Packet]) -> None:
    control(out, T0, rounds=4)
    c = Conn(out, "10.0.0.23", 40140, wire=Wire(vlan=100))
    t = c.exchange(c.handshake(T0 + MS), req(target="/vlan"), resp(body=blob(2000, 1)))
    c.fin(t)


def _sll(out: list[Packet]) -> None:
    control(out, T0, wire=Wire("sll"))
    c = Conn(out, "fd00::5", 40150, "fd00::6", wire=Wire("sll"))
    t = c.exchange(c.handshake(T0 + MS), req(target="/sll6"), resp(body=blob(2000, 1)))
    c.fin(t)


def _padding(out: list[Packet]) -> None:
    control(out, T0, wire=Wire(pad=True))
    c = Conn(out, "10.0.0.24", 40160, wire=Wire(pad=True))
    t = c.handshake(T0 + MS)
    t = c.exchange(t, b"GET / HTTP/1.1\r\n\r\n", resp(body=b""))  # a 18-byte request: padded too
    t = c.exchange(t, req(target="/padded"), resp(body=b"p"))
    c.fin(t)


def _fragments(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "10.0.0.25", 40170)
    t = c.handshake(T0 + MS)
    t = c.send_c(t, req(target="/fragmented/" + "f" * 300))
    ts, frame = out.pop()
    hdr, payload = frame[14:34], frame[34:]
    for i, (off, chunk, more) in enumerate(((0, payload[:160], True), (160, payload[160:], False))):
        h = bytearray(hdr)
        h[2:4] = (20 + len(chunk)).to_bytes(2, "big")
        h[4:6] = (4242).to_bytes(2, "big")
        h[6:8] = ((0x2000 if more else 0) | (off >> 3)).to_bytes(2, "big")
        out.append((ts + i * US, frame[:14] + bytes(h) + chunk))
    t = c.send_s(t + MS, resp(body=b"whole"))
    c.fin(t)


def _vxlan(out: list[Packet]) -> None:
    control(out, T0, rounds=4)
    c = Conn(out, "10.9.0.1", 40180, "10.9.0.2", wire=Wire("vxlan"))
    t = c.exchange(c.handshake(T0 + MS), req(target="/vxlan"), resp(body=blob(1000, 1)))
    c.fin(t)
    d = Conn(out, "10.0.0.26", 40181)  # plain traffic interleaved
    t = d.exchange(d.handshake(T0 + MS + 30 * US), req(target="/plain"), resp(body=blob(1000, 2)))
    d.fin(t)
    out.sort(key=lambda p: p[0])


def _non_tcp(out: list[Packet]) -> None:
    control(out, T0, rounds=8)
    for k in range(5):
        ts = T0 + k * MS + 7 * US
        et, ip = ip_packet("10.9.9.9", "10.9.9.10", 17, struct.pack("!HHHH", 5353, 5353, 13, 0) + b"noise")
        out.append((ts, ethernet(et, ip)))
        out.append((ts + US, b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)))
        et, ip = ip_packet("10.9.9.9", "10.9.9.10", 1, b"\x08\x00\xf7\xff\x00\x00\x00\x00")
        out.append((ts + 2 * US, ethernet(et, ip)))
        out.append((ts + 3 * US, ethernet(0x88CC, b"\x02\x07\x04" + bytes(20))))  # LLDP
    out.sort(key=lambda p: p[0])


def _ts_backwards(out: list[Packet]) -> None:
    control(out, T0)
    c = Conn(out, "10.0.0.27", 40190)
    t = c.exchange(c.handshake(T0 + 10 * MS), req(target="/back/1"), resp(body=b"1" * 10))
    t = c.exchange(t, req(target="/back/2"), resp(body=b"2" * 10))
    c.fin(t)
    out.sort(key=lambda p: p[0])
    i = len(out) // 2
    out[i] = (out[i][0] - 5 * SECOND, out[i][1])  # one frame 5 s in the past


def _header_oddities(out: list[Packet]) -> None:
    """Heads that are valid HTTP/1.1 but unusual, one connection each."""
    control(out, T0)
    heads = [
        b"GET /dup-host HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
        b"GET http://abs.test/absolute?x=1 HTTP/1.1\r\nUser-Agent: u\r\n\r\n",
        b"GET /lower HTTP/1.1\r\nhost: lower.test\r\ncontent-length: 0\r\nuser-agent: low\r\n\r\n",
        b"GET /odd HTTP/1.1\r\nhOsT: odd.test\r\nUSER-AGENT: ODD\r\nX-CaMeL: 1\r\n\r\n",
        b"GET /tabs HTTP/1.1\r\nHost:\tTabs.test\t\r\nUser-Agent: a\tb \t\r\n\r\n",
        b"GET /non-ascii/\xc3\xa9t\xe9?q=\xff HTTP/1.1\r\nHost: example.test\r\nUser-Agent: Mozilla \xe2\x98\x83 \xff\xfe\r\n\r\n",
        b"GET /long/" + b"L" * 9000 + b" HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /http10 HTTP/1.0\r\nHost: example.test\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /empty-value HTTP/1.1\r\nHost: example.test\r\nX-Empty:\r\nX-Space: \r\n\r\n",
        b"GET /spaces HTTP/1.1\r\nHost:    spaced.test   \r\n\r\n",
        b"DELETE /q?a=1&b=%20&c HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n",
    ]
    t = T0 + MS
    for k, head in enumerate(heads):
        c = Conn(out, "10.0.4.1", 41000 + k)
        rs = resp(body=b"x" * k) if b"HTTP/1.0" not in head else b"HTTP/1.0 200 OK\r\n\r\nclose-delimited"
        t = c.exchange(c.handshake(t), head, rs)
        t = c.fin(t) + MS


def _malformed(out: list[Packet]) -> None:
    """Heads and framings the lane's contract excludes, one connection each."""
    control(out, T0)
    cases: list[tuple[bytes, bytes]] = [
        (b"GET /obs-fold HTTP/1.1\r\nHost: example.test\r\nX-Folded: a\r\n  b\r\n\r\n", resp(body=b"f")),
        (b"GET /bare-lf HTTP/1.1\nHost: example.test\n\n", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
        (req(target="/te-gzip"), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + blob(300, 1)),
        (req(target="/te-gzip-chunked"), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         + chunked(blob(300, 2), 100)),
        ((b"POST /cl-conflict HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n"
          b"1234567"), resp(400, reason="Bad Request")),
        (req(target="/cl-and-te"), b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
         + chunked(b"abcdefghij", 5)),
        (b"GARBAGE\r\n\r\n" + req(target="/after-garbage"), resp(body=b"g")),
        (req(target="/bad-chunk"), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
        (req(target="/close-delimited"), b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + blob(500, 3)),
    ]
    t = T0 + MS
    for k, (rq, rs) in enumerate(cases):
        c = Conn(out, "10.0.5.1", 42000 + k)
        t = c.exchange(c.handshake(t), rq, rs)
        t = c.fin(t) + MS


def _unpaired(out: list[Packet]) -> None:
    control(out, T0)
    a = Conn(out, "10.0.0.28", 40200)  # a response without any request
    t = a.send_s(a.handshake(T0 + MS), resp(body=b"unsolicited"))
    a.fin(t)
    b = Conn(out, "10.0.0.28", 40201)  # the response ends before the request body does
    t = b.send_c(b.handshake(T0 + 2 * MS), req("POST", "/upload", blob(5000, 4))[:2000])
    t = b.send_s(t + MS, resp(413, b"too large", "Payload Too Large", "Connection: close\r\n"))
    t = b.s(t, FIN | ACK)
    b.c(t, RST | ACK)
    d = Conn(out, "10.0.0.28", 40202)  # two responses for one request
    t = d.send_c(d.handshake(T0 + 3 * MS), req(target="/one"))
    t = d.send_s(t + MS, resp(body=b"1") + resp(body=b"2"))
    d.fin(t)


def _nano(out: list[Packet]) -> None:
    c = Conn(out, "10.0.0.29", 40210)
    t = c.handshake(T0 + 123)
    t = c.exchange(t + 7, req(target="/nano"), resp(body=b"n" * 99), think=1_234_567)
    c.fin(t + 3)
    control(out, t + 11)



def _interleaved(out: list[Packet]) -> None:
    """40 connections overlapping in time (seeded): keep-alive exchanges, some silent for 3 s in the
    middle, and every ending: FIN, RST, open with nothing pending, open with a request pending."""
    rng = random.Random(5)
    for k in range(40):
        c = Conn(out, f"10.0.6.{1 + k % 5}", 43000 + k, "10.0.0.2" if k % 3 else "10.0.0.3", 80 if k % 4 else 8080)
        t = c.handshake(T0 + rng.randrange(0, 2_000) * MS)
        for j in range(rng.randint(1, 5)):
            size = rng.choice((0, 40, 1500, 5000))
            if rng.random() < 0.3:
                rs = resp(body=chunked(blob(size, k * 10 + j), 700), extra="Transfer-Encoding: chunked\r\n",
                          length=False)
            else:
                rs = resp(rng.choice((200, 200, 404, 500)), blob(size, k * 10 + j))
            rq = req("POST", f"/i/{k}/{j}", blob(rng.randrange(1, 3000), j)) if rng.random() < 0.3 else \
                req(target=f"/i/{k}/{j}?n={rng.randrange(100)}")
            t = c.exchange(t, rq, rs, think=rng.randrange(1, 50) * MS) + rng.randrange(1, 400) * MS
            if k % 6 == 1 and j == 0:
                t += 3 * SECOND
        ending = k % 4
        if ending == 0:
            c.fin(t)
        elif ending == 1:
            c.c(t, RST | ACK)
        elif ending == 2:
            c.send_c(t, req(target=f"/i/{k}/pending"))



def _ticker(out: list[Packet], start: int, end: int, every: int, cport: int = 33500) -> None:
    """A clean connection with one exchange every ``every`` ns: keeps the packet clock (and the flow
    table's once-a-second sweep) moving."""
    c = Conn(out, "10.1.0.9", cport, "10.1.0.2")
    t = c.handshake(start)
    k = 0
    while t < end:
        c.exchange(t, req(target=f"/tick/{k}"), resp(body=b"t"))
        t += every
        k += 1
    c.fin(t)


def idle_gaps(timeout: int) -> tuple[int, ...]:
    """Silences around an idle timeout: below it by 1 s, by a quarter second, by 1 us; at it; above it."""
    return (timeout - SECOND, timeout - 250 * MS, timeout - US, timeout, timeout + US, timeout + 500 * MS)


def _idle_boundaries(out: list[Packet], ticker: bool, timeout: int = 300 * SECOND) -> None:
    """Silences around the idle timeout (the reference expires a flow at a once-a-second sweep, keyed by
    a touch time kept at min(1 s, timeout / 8) granularity)."""
    for k, gap in enumerate(idle_gaps(timeout)):
        c = Conn(out, "10.0.7.1", 44000 + k)
        t = c.handshake(T0 + k * 137 * MS)
        t = c.exchange(t, req(target=f"/gap/{k}/before"), resp(body=b"b" * 5))
        t = c.exchange(t + gap, req(target=f"/gap/{k}/after"), resp(body=b"a" * 5))
        c.fin(t)
    if ticker:
        _ticker(out, T0 + 3 * MS, T0 + timeout + 5 * SECOND, min(5 * SECOND, timeout // 10) + 3 * MS)
    else:
        control(out, T0 + timeout + 2 * SECOND)


LINGER_GAPS_NS = (5 * SECOND - 1 * US, 5 * SECOND, 5 * SECOND + 1 * US, 1 * MS)


def _linger_boundaries(out: list[Packet]) -> None:
    """A 4-tuple reused around the 5 s closed-flow linger, after FIN and after RST."""
    for k, gap in enumerate(LINGER_GAPS_NS):
        for rst in (False, True):
            t = T0 + k * 11 * MS + (7 * MS if rst else 0)
            for n in range(2):
                c = Conn(out, "10.0.8.1", 45000 + 2 * k + rst, cseq=1000 + 500_000 * n, sseq=7000 + 900_000 * n)
                t = c.exchange(c.handshake(t), req(target=f"/linger/{k}/{int(rst)}/{n}"), resp(body=b"l" * n))
                t = c.c(t, RST | ACK) if rst else c.fin(t)
                t += gap
    _ticker(out, T0 + 5 * MS, T0 + 12 * SECOND, 300 * MS)


def _limit_boundaries(out: list[Packet]) -> None:
    """URIs, heads, header counts and pipelined queues at the default limits and one past them."""
    control(out, T0)
    heads = []
    for n in (8191, 8192, 8193):  # max_uri_chars
        heads.append(f"GET /{'u' * (n - 1)} HTTP/1.1\r\nHost: example.test\r\n\r\n".encode())
    for total in (65535, 65536, 65537):  # max_header_bytes (start line and fields)
        base = b"GET /big-head HTTP/1.1\r\nHost: example.test\r\nX-Pad: \r\n\r\n"
        heads.append(base.replace(b"X-Pad: ", b"X-Pad: " + b"p" * (total - len(base))))
    for count in (255, 256, 257):  # max_headers
        fields = "".join(f"X-H{i}: {i}\r\n" for i in range(count - 1))
        heads.append(f"GET /many-headers/{count} HTTP/1.1\r\nHost: example.test\r\n{fields}\r\n".encode())
    t = T0 + MS
    for k, head in enumerate(heads):
        c = Conn(out, "10.0.9.1", 46000 + k)
        t = c.fin(c.exchange(c.handshake(t), head, resp(body=b"k"))) + MS
    for depth in (256, 257):  # max_pending_requests
        c = Conn(out, "10.0.9.2", 46100 + depth)
        t = c.send_c(c.handshake(t), b"".join(req(target=f"/queue/{depth}/{i}") for i in range(depth)))
        t = c.fin(c.send_s(t + MS, b"".join(resp(body=b"%d" % i) for i in range(depth)))) + MS


def _tcp_edges(out: list[Packet]) -> None:
    """Sequence numbers wrapping past 2**32, FIN carried on the last data segment, TCP options."""
    control(out, T0)
    c = Conn(out, "10.0.10.1", 47000, cseq=0xFFFFF000, sseq=0xFFFFFA00)
    t = c.handshake(T0 + MS)
    for k in range(4):
        t = c.exchange(t, req("POST", f"/wrap/{k}", blob(1500, k)), resp(body=blob(3000, k)))
    c.fin(t)
    d = Conn(out, "10.0.10.1", 47001)
    t = d.send_c(d.handshake(T0 + 2 * MS), req(target="/fin-on-data"))
    data = resp(body=blob(2000, 9), extra="Connection: close\r\n")
    t = d.s(t + MS, PSH | ACK, data[:1448])
    t = d.s(t, PSH | ACK | FIN, data[1448:])
    t = d.c(t, FIN | ACK)
    e = Conn(out, "10.0.10.1", 47002)  # every segment with TCP timestamp options (data offset 8)
    t = e.handshake(T0 + 3 * MS)
    opts = b"\x01\x01\x08\x0a" + struct.pack("!II", 12345, 67890)
    for frm, (payload, flags) in enumerate(((req(target="/options"), PSH | ACK), (resp(body=b"opt"), PSH | ACK))):
        src, dst, sp, dp = (e.client, e.server, e.cport, e.sport) if frm == 0 else (e.server, e.client, e.sport, e.cport)
        seq, ack = (e.cseq, e.sseq) if frm == 0 else (e.sseq, e.cseq)
        tcp = dpkt.tcp.TCP(sport=sp, dport=dp, seq=seq, ack=ack, flags=flags, win=65535, opts=opts, data=payload)
        tcp.off = 8
        et, ip = ip_packet(src, dst, 6, bytes(tcp))
        out.append((t, ethernet(et, ip)))
        t += 1 * MS
        if frm == 0:
            e.cseq += len(payload)
        else:
            e.sseq += len(payload)
    e.fin(t)
    f = Conn(out, "10.0.10.1", 47003)  # data segments without PSH
    t = f.handshake(T0 + 4 * MS)
    t = f.c(t, ACK, req(target="/no-psh"))
    t = f.s(t + MS, ACK, resp(body=b"np"))
    f.fin(t)


def _head_variants(out: list[Packet]) -> None:
    """Valid or tolerated variations of start lines and framing headers, one connection each."""
    control(out, T0)
    te = b"Transfer-Encoding: chunked\r\n"
    pairs: list[tuple[bytes, bytes]] = [
        (req(target="/cl-zeros"), b"HTTP/1.1 200 OK\r\nContent-Length: 0005\r\n\r\nfives"),
        (req(target="/cl-spaces"), b"HTTP/1.1 200 OK\r\nContent-Length:   5  \r\n\r\nfives"),
        (req(target="/cl-dup-same"), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nfives"),
        (req(target="/cl-list"), b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nfives"),
        (req(target="/reason-empty"), b"HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nx"),
        (req(target="/reason-missing"), b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx"),
        (req(target="/reason-long"), b"HTTP/1.1 418 I'm a teapot, short and stout\r\nContent-Length: 0\r\n\r\n"),
        (req(target="/status-599"), b"HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n"),
        (req(target="/status-999"), b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n"),
        (req(target="/resp-10"), b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nten"),
        (b"get /lower-method HTTP/1.1\r\nHost: example.test\r\n\r\n", resp(400, reason="Bad Request")),
        (b"FROBNICATE /unknown-method HTTP/1.1\r\nHost: example.test\r\n\r\n", resp(405, reason="No")),
        (b"GET /host-port HTTP/1.1\r\nHost: EXAMPLE.Test:8080\r\n\r\n", resp(body=b"hp")),
        (b"GET /host-empty HTTP/1.1\r\nHost:\r\n\r\n", resp(body=b"he")),
        (b"GET /host-v6 HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", resp(body=b"h6")),
        (b"GET /two-ua HTTP/1.1\r\nHost: a\r\nUser-Agent: one\r\nUser-Agent: two\r\n\r\n", resp(body=b"u")),
        (b"GET /ct HTTP/1.1\r\nHost: a\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nContent-Type: Text/HTML; charset=\"utf-8\"\r\nContent-Length: 2\r\n\r\nct"),
        (b"GET /cookie HTTP/1.1\r\nHost: a\r\nCookie: " + b"c" * 10000 + b"\r\n\r\n", resp(body=b"c")),
        (b"GET /get-with-body HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody", resp(body=b"gb")),
        (b"POST /cl0 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", resp(body=b"")),
        (req(target="/te-caps"), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n" + chunked(b"abc", 2)),
        (req(target="/te-space"), b"HTTP/1.1 200 OK\r\nTransfer-Encoding:  chunked \r\n\r\n" + chunked(b"abc", 2)),
        (req(target="/chunk-zeros"), b"HTTP/1.1 200 OK\r\n" + te + b"\r\n0003\r\nabc\r\n000\r\n\r\n"),
        (req(target="/chunk-upper"), b"HTTP/1.1 200 OK\r\n" + te + b"\r\nA\r\n0123456789\r\n0\r\n\r\n"),
        (req(target="/chunk-space"), b"HTTP/1.1 200 OK\r\n" + te + b"\r\n3 \r\nabc\r\n0\r\n\r\n"),
        (req(target="/304-chunked"), b"HTTP/1.1 304 Not Modified\r\n" + te + b"\r\n"),
        (req(target="/101-no-upgrade"), b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
        (req(target="/1xx-then-close"), b"HTTP/1.1 100 Continue\r\n\r\n"),
        (b"GET /expect-get HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", resp(body=b"e")),
        (b"GET /conn-close HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\ncc"),
        (b"GET /keep-alive-10 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
         b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nka"),
        (b"GET /space-before-colon HTTP/1.1\r\nHost : a\r\n\r\n", resp(400, reason="Bad Request")),
        (b"GET /no-colon HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", resp(body=b"nc")),
        (b"GET /nul\x00byte HTTP/1.1\r\nHost: a\r\n\r\n", resp(400, reason="Bad Request")),
        (b"GET  /double-space HTTP/1.1\r\nHost: a\r\n\r\n", resp(body=b"ds")),
        (b"GET /trailing-space HTTP/1.1 \r\nHost: a\r\n\r\n", resp(body=b"ts")),
        (b"GET /v2 HTTP/2.0\r\nHost: a\r\n\r\n", b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nv2"),
        (b"GET /v12 HTTP/1.2\r\nHost: a\r\n\r\n", b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nv3"),
    ]
    t = T0 + MS
    for k, (rq, rs) in enumerate(pairs):
        c = Conn(out, "10.0.11.1", 48000 + k)
        t = c.fin(c.exchange(c.handshake(t), rq, rs)) + MS
    # two requests on one connection after each of a few responses, to see the framing hold
    c = Conn(out, "10.0.11.2", 48500)
    t = c.handshake(t)
    for rq, rs in pairs[:10] + pairs[19:26]:
        t = c.exchange(t, rq, rs)
    c.fin(t)


def _csv_hostile(out: list[Packet]) -> None:
    """Bytes that test the CSV writers and text decoding: quotes, commas, semicolons, control characters,
    invalid UTF-8, e-mail addresses and card-like numbers in queries (masked by default privacy)."""
    control(out, T0)
    heads = [
        b'GET /q?a="x,y";b=\'1\'&c=%22 HTTP/1.1\r\nHost: quote.test\r\nUser-Agent: "Quoted, UA"; v=1\r\n\r\n',
        b"GET /ctl/\x01\x7f?x=\x1b HTTP/1.1\r\nHost: ctl.test\r\nUser-Agent: a\x01b\r\n\r\n",
        b"GET /utf8/\xe2\x82\xac?q=\xe2\x82 HTTP/1.1\r\nHost: \xc3\xa9xample.test\r\n\r\n",
        b"GET /mail?to=someone@example.com&card=4111111111111111 HTTP/1.1\r\nHost: m.test\r\n\r\n",
        b"GET /ip/10.1.2.3?from=192.168.0.1 HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n",
        b"GET /users/12345/orders/987654321/items/abcdef0123456789abcdef0123456789 HTTP/1.1\r\nHost: r.test\r\n\r\n",
        b"GET /users/67890/orders/123456789/items/0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: r.test\r\n\r\n",
        b"GET /%7Euser/a%2Fb/./../c?x HTTP/1.1\r\nHost: r.test\r\n\r\n",
        b"GET /hash#frag HTTP/1.1\r\nHost: r.test\r\n\r\n",
        b"GET http://proxy.test:8080/abs?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n",
        b"GET https://secure.test/abs HTTP/1.1\r\n\r\n",
    ]
    t = T0 + MS
    for k, head in enumerate(heads):
        c = Conn(out, "10.0.12.1", 49000 + k)
        rs = (b'HTTP/1.1 200 "Quoted", reason\r\nContent-Type: text/x;a="b,c"\r\nContent-Length: 1\r\n\r\nq'
              if k == 0 else resp(body=b"v"))
        t = c.fin(c.exchange(c.handshake(t), head, rs)) + MS



def fuzz_capture(seed: int, connections: int = 30) -> list[Packet]:
    """Seeded mixes of clean connections: random segmentation (1 byte to 1448), pipelining, chunked and
    Content-Length bodies both ways, HEAD/204/304, zero think times, and timestamps rounded to 10 ms so
    that many frames of different connections share one timestamp; every ending (FIN either side first,
    RST, open with or without a request pending, a response cut by the end of the capture)."""
    rng = random.Random(seed)
    out: list[Packet] = []

    def segs(data: bytes) -> list[bytes]:
        parts, i = [], 0
        while i < len(data):
            n = rng.choice((1, 2, 7, 60, 536, 1448, 1448, 1448))
            parts.append(data[i:i + n])
            i += n
        return parts

    for k in range(connections):
        c = Conn(out, f"10.2.{k % 4}.{1 + k}", 30000 + k, "10.2.9.9", rng.choice((80, 8080, 8000)))
        t = c.handshake(T0 + rng.randrange(0, 3000) * MS)
        for _ in range(rng.randint(1, 6)):
            burst = rng.choice((1, 1, 1, 3))
            reqs, resps = [], []
            for j in range(burst):
                kind = rng.choice(("get", "get", "post", "post-chunked", "head", "204", "304"))
                size = rng.choice((0, 1, 100, 2000, 9000))
                body = blob(size, seed * 1000 + k * 10 + j)
                if kind == "post":
                    reqs.append(req("POST", f"/f/{k}/{j}", body or b"x"))
                elif kind == "post-chunked":
                    reqs.append(f"POST /f/{k}/{j}/c HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                                .encode() + chunked(body, rng.choice((1, 7, 500))))
                else:
                    reqs.append(req("HEAD" if kind == "head" else "GET", f"/f/{k}/{j}?s={size}"))
                if kind == "head":
                    resps.append(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
                elif kind in ("204", "304"):
                    resps.append(f"HTTP/1.1 {kind} X\r\n\r\n".encode())
                elif rng.random() < 0.4:
                    resps.append(resp(body=chunked(body, rng.choice((1, 13, 4096))),
                                      extra="Transfer-Encoding: chunked\r\n", length=False))
                else:
                    resps.append(resp(rng.choice((200, 201, 404, 500)), body))
            for part in segs(b"".join(reqs)):
                t = c.c(t + rng.choice((0, 0, 10 * US, MS)), PSH | ACK, part)
            t += rng.choice((0, 100 * US, 5 * MS, 300 * MS))
            for part in segs(b"".join(resps)):
                t = c.s(t + rng.choice((0, 0, 10 * US, MS)), PSH | ACK, part)
            t = c.c(t, ACK) + rng.choice((0, MS, 700 * MS, 1500 * MS))
        ending = rng.choice(("fin", "fin", "server-fin", "rst", "open", "pending", "cut"))
        if ending == "fin":
            c.fin(t)
        elif ending == "server-fin":
            t = c.s(t, FIN | ACK)
            t = c.c(t + MS, FIN | ACK)
            c.s(t, ACK)
        elif ending == "rst":
            c.c(t, RST | ACK)
        elif ending == "pending":
            c.send_c(t, req(target=f"/f/{k}/pending"))
        elif ending == "cut":
            t = c.send_c(t, req(target=f"/f/{k}/cut"))
            c.s(t + MS, PSH | ACK, resp(body=blob(3000, k))[:1000])
    out = [(ts // (10 * MS) * (10 * MS), frame) for ts, frame in sorted(out, key=lambda p: p[0])]
    return out



def _mirror_copies(out: list[Packet]) -> None:
    """One connection seen twice, as mirror ports merging two links show it: every frame once untagged
    and once 802.1Q-tagged (the same 4-tuple after decoding), beside clean traffic."""
    control(out, T0, rounds=6)
    c = Conn(out, "10.0.13.1", 40300)
    first = len(out)
    c.fin(c.exchange(c.handshake(T0 + MS), req(target="/mirrored"), resp(body=blob(3000, 1))))
    for ts, frame in out[first:]:
        out.append((ts + US, frame[:12] + b"\x81\x00\x00\x07" + frame[12:]))



def _timing_oddities(out: list[Packet]) -> None:
    """Handshakes slower than the reference's pending span (1 s), SYNs retransmitted at 1 s and 3 s, data
    sent before the SYN-ACK is captured, a response stamped before its request, a first request long
    after the handshake; a ticker keeps the sweeps running."""
    _ticker(out, T0, T0 + 12 * SECOND, 250 * MS)
    for k, delay in enumerate((900 * MS, 1200 * MS, 3 * SECOND)):
        c = Conn(out, "10.0.14.1", 40400 + k)
        t = c.c(T0 + 10 * MS, SYN)
        t = c.s(t + delay, SYN | ACK)
        t = c.c(t, ACK)
        c.fin(c.exchange(t, req(target=f"/slow-synack/{k}"), resp(body=b"s")))
    c = Conn(out, "10.0.14.1", 40410)  # SYN at 0, 1 s, 3 s (RTO backoff), then the handshake
    for at in (0, SECOND, 3 * SECOND):
        c.c(T0 + 20 * MS + at, SYN, seq=c.cseq)
    c.cseq += 1
    t = c.s(T0 + 20 * MS + 3 * SECOND + 100 * US, SYN | ACK)
    t = c.c(t, ACK)
    c.fin(c.exchange(t, req(target="/syn-backoff"), resp(body=b"b")))
    d = Conn(out, "10.0.14.1", 40411)  # the request captured before the SYN-ACK (mirror port reordering)
    t = d.c(T0 + 30 * MS, SYN)
    syn_ack_at = t + 200 * US
    d.sseq += 1
    t = d.c(t + 100 * US, PSH | ACK, req(target="/data-before-synack"))
    d.sseq -= 1
    d.s(syn_ack_at, SYN | ACK)
    d.fin(d.send_s(t + MS, resp(body=b"d")))
    e = Conn(out, "10.0.14.1", 40412)  # the response stamped 3 ms before its request
    t = e.send_c(e.handshake(T0 + 40 * MS), req(target="/response-stamped-earlier"))
    e.s(t - 3 * MS, PSH | ACK, resp(body=b"e"))
    e.fin(t + MS)
    f = Conn(out, "10.0.14.1", 40413)  # the first request 8 s after the handshake
    t = f.handshake(T0 + 50 * MS)
    f.fin(f.exchange(t + 8 * SECOND, req(target="/late-first-request"), resp(body=b"f")))


SYNTHETIC: dict[str, Case] = {
    "all-clean": Case(_all_clean, lane_min=7, python_max=0),
    "port-reuse": Case(_port_reuse),
    "idle-300s-with-traffic": Case(lambda o: _idle(o, True)),
    "idle-300s-silent": Case(lambda o: _idle(o, False)),
    "open-at-end": Case(_open_at_end),
    "rst-endings": Case(_rst, python_min=1),
    "half-close": Case(_half_close, lane_min=2),
    "pipelined-20": Case(_pipelined, lane_min=2, python_max=0),
    "chunked-ext-trailers": Case(_chunked_ext),
    "chunk-lines-split": Case(_split_chunks, lane_min=70, python_max=0),
    "head-split-every-byte": Case(_split_heads, lane_min=200, python_max=0),
    "interim-1xx": Case(_interim),
    "head-204-304": Case(_no_body_statuses, lane_min=2, python_max=0),
    "upgrade-101-connect": Case(_upgrade_connect),
    "non-http": Case(_non_http, python_min=1),
    "midstream": Case(_midstream, python_min=1),
    "syn-oddities": Case(_syn_oddities, python_min=1),
    "retransmission": Case(_retransmit, python_min=1),
    "ipv6": Case(_ipv6, lane_min=2, python_max=0),
    "vlan-8021q": Case(_vlan, lane_min=2, python_max=0),  # 802.1Q-tagged frames: the lane peels the tags
    "linux-sll": Case(_sll, linktype=LINKTYPE_LINUX_SLL, lane_min=2, python_max=0),
    "ethernet-padding": Case(_padding),
    "ip-fragments": Case(_fragments),
    "vxlan-mixed": Case(_vxlan, lane_min=3, python_max=0),  # the tunnelled one too: the lane peels VXLAN
    "non-tcp": Case(_non_tcp),
    "timestamp-backwards": Case(_ts_backwards, lane_min=2),
    "header-oddities": Case(_header_oddities, lane_min=2),
    "malformed": Case(_malformed, python_min=1),
    "unpaired": Case(_unpaired, python_min=1),
    "nanosecond-pcap": Case(_nano, nano=True, lane_min=2, python_max=0),
    "interleaved-40": Case(_interleaved, python_min=1),
    "idle-boundaries-ticker": Case(lambda o: _idle_boundaries(o, True), lane_min=2),
    "idle-boundaries-silent": Case(lambda o: _idle_boundaries(o, False)),
    "idle-2s-boundaries": Case(lambda o: _idle_boundaries(o, True, 2 * SECOND)),  # for --idle-timeout 2
    "linger-boundaries": Case(_linger_boundaries),
    "limit-boundaries": Case(_limit_boundaries),
    "tcp-edges": Case(_tcp_edges, lane_min=2),
    "head-variants": Case(_head_variants),
    "timing-oddities": Case(_timing_oddities, lane_min=2),
    "mirror-copies": Case(_mirror_copies, python_min=1),
    "csv-hostile": Case(_csv_hostile, lane_min=2),
    "consumers": Case(_consumers, lane_min=3),
    "heads-cut-at-end": Case(_heads_cut_at_end, python_min=2),
}


def synthetic_packets(name: str) -> list[Packet]:
    packets: list[Packet] = []
    SYNTHETIC[name].build(packets)
    if name != "timestamp-backwards":  # that one puts a frame out of time order on purpose
        packets.sort(key=lambda p: p[0])
    return packets


def build_synthetic(name: str, path: Path, pcapng: bool = False) -> Path:
    """The case's capture as classic pcap, or as pcapng (one interface; nanosecond if_tsresol for the
    nanosecond cases, the default microseconds otherwise)."""
    case = SYNTHETIC[name]
    packets = synthetic_packets(name)
    if pcapng:
        return write_pcapng(path, packets, NgInterface(case.linktype, tsresol=9 if case.nano else None))
    return write_pcap(path, packets, case.linktype, case.nano)


# ------------------------------------------------------------------------------------------ damage
def _records(src: Path) -> tuple[object, list[tuple[int, int, int, bytes]]]:
    dm = load_script("damage")
    pcap = dm.PcapFile(src.read_bytes())
    return pcap, list(pcap.records)


def _tcp_of(data: bytes) -> tuple[bytes, tuple[bytes, int, bytes, int]] | None:
    """(payload, (src, sport, dst, dport)) of an Ethernet/IP/TCP frame (enough for the committed captures)."""
    try:
        ip = dpkt.ethernet.Ethernet(data).data
        if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) or not isinstance(ip.data, dpkt.tcp.TCP):
            return None
        return bytes(ip.data.data), (bytes(ip.src), ip.data.sport, bytes(ip.dst), ip.data.dport)
    except (dpkt.UnpackError, IndexError):
        return None


def _retransmit_records(records: list[tuple[int, int, int, bytes]]) -> list[tuple[int, int, int, bytes]]:
    """Every 25th data segment sent again three packets later (timestamps kept in file order)."""
    out = list(records)
    n = 0
    for i in range(len(records) - 4, 0, -1):
        tcp = _tcp_of(records[i][3])
        if tcp and tcp[0]:
            n += 1
            if n % 25 == 0:
                ts = out[i + 3]
                out.insert(i + 4, (ts[0], ts[1], records[i][2], records[i][3]))
    return out


METHODS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"PATC", b"OPTI")


def _response_first(records: list[tuple[int, int, int, bytes]]) -> list[tuple[int, int, int, bytes]]:
    """Every 10th request segment swapped with the first response segment of its connection after it
    (timestamps stay in file order): the answer is captured before the question."""
    out = list(records)
    seen = 0
    i = 0
    while i < len(out):
        tcp = _tcp_of(out[i][3])
        if tcp and tcp[0][:4] in METHODS:
            seen += 1
            src, sport, dst, dport = tcp[1]
            if seen % 10 == 0:
                for j in range(i + 1, min(i + 40, len(out))):
                    r = _tcp_of(out[j][3])
                    if r and r[0].startswith(b"HTTP/") and r[1] == (dst, dport, src, sport):
                        a, b = out[i], out[j]
                        out[i] = (a[0], a[1], b[2], b[3])
                        out[j] = (b[0], b[1], a[2], a[3])
                        i = j
                        break
        i += 1
    return out


def damaged(src: Path, dst: Path, kind: str, seed: int = 7) -> Path:
    dm = load_script("damage")
    pcap = dm.PcapFile(src.read_bytes())
    rng = random.Random(seed)
    records = list(pcap.records)
    if kind == "reorder8":
        records = dm.reorder(records, 8, rng)
    elif kind == "duplicate5":
        records = dm.duplicate(records, 0.05, rng)
    elif kind == "drop1":
        records = dm.drop(records, 0.01, rng)
    elif kind == "snaplen96":
        records = list(dm.snaplen(records, 96))
        pcap.file_hdr.snaplen = 96
    elif kind == "retransmit":
        records = _retransmit_records(records)
    elif kind == "response-first":
        records = _response_first(records)
    elif kind != "cut-middle":
        raise ValueError(kind)
    encoded = pcap.encode(records)
    if kind == "cut-middle":
        encoded = encoded[:dm.cut_offset(encoded, pcap, records, len(encoded) // 2)]
    dst.write_bytes(encoded)
    return dst


DAMAGE = ("reorder8", "duplicate5", "drop1", "cut-middle", "snaplen96", "retransmit", "response-first")
