"""A deterministic synthetic capture of a small HTTP API, for the report tests (no root, no live server).

``write_capture(path, seed, slow_route=None, fail_route=None)`` writes an Ethernet pcap of client
connections to one server: a full TCP handshake, keep-alive requests one after the other (request in one
segment, response in one segment, the client's ACK), then FIN/ACK both ways. Each connection calls random
routes of ``ROUTES``; latency (request first byte to response) is log-normal with a per-route median,
drawn from ``random.Random(seed)``. ``slow_route`` adds ``SLOW_MS`` to every response of that route;
``fail_route`` answers 500 to ``FAIL_RATE`` of its requests. Everything else (route mix, 2% 404s on
/api/users/{id}) is the same in every capture, so two seeds are two samples of identical behaviour.
"""
from __future__ import annotations

import random
import socket
from pathlib import Path

import dpkt

SERVER_IP = "10.0.0.80"
SERVER_PORT = 8080
HOST = "api.test"
SLOW_MS = 50.0
FAIL_RATE = 0.05
T0 = 1_790_000_000.0

# route name -> (method, path maker, median latency ms, request body)
ROUTES: dict[str, tuple[str, str, float, bytes]] = {
    "GET /api/users/{id}": ("GET", "/api/users/{n}", 18.0, b""),
    "GET /api/orders": ("GET", "/api/orders?page={n}", 35.0, b""),
    "POST /api/login": ("POST", "/api/login", 60.0, b'{"user":"u{n}","password":"secret"}'),
    "GET /api/products/{id}": ("GET", "/api/products/{n}", 12.0, b""),
}
SIGMA = 0.35  # log-normal shape: p95 is about 1.8x the median


def _mac(n: int) -> bytes:
    return bytes([2, 0, 0, 0, (n >> 8) & 255, n & 255])


class _Conn:
    def __init__(self, out: list[tuple[float, bytes]], client_ip: str, cport: int, rng: random.Random) -> None:
        self.out = out
        self.cip = socket.inet_aton(client_ip)
        self.sip = socket.inet_aton(SERVER_IP)
        self.cport = cport
        self.cseq = rng.randrange(1 << 32)
        self.sseq = rng.randrange(1 << 32)

    def _pkt(self, ts: float, from_client: bool, flags: int, payload: bytes = b"") -> None:
        if from_client:
            src, dst, sport, dport, seq, ack = self.cip, self.sip, self.cport, SERVER_PORT, self.cseq, self.sseq
        else:
            src, dst, sport, dport, seq, ack = self.sip, self.cip, SERVER_PORT, self.cport, self.sseq, self.cseq
        tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq & 0xFFFFFFFF,
                           ack=ack & 0xFFFFFFFF if flags & dpkt.tcp.TH_ACK else 0, flags=flags, win=65535,
                           data=payload)
        ip = dpkt.ip.IP(src=src, dst=dst, p=dpkt.ip.IP_PROTO_TCP, ttl=64, data=tcp)
        eth = dpkt.ethernet.Ethernet(src=_mac(1 if from_client else 2), dst=_mac(2 if from_client else 1),
                                     type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
        self.out.append((ts, bytes(eth)))
        step = len(payload) + (1 if flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0)
        if from_client:
            self.cseq += step
        else:
            self.sseq += step

    def handshake(self, ts: float) -> float:
        self._pkt(ts, True, dpkt.tcp.TH_SYN)
        self._pkt(ts + 0.0002, False, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)
        self._pkt(ts + 0.0004, True, dpkt.tcp.TH_ACK)
        return ts + 0.0004

    def exchange(self, ts: float, request: bytes, response: bytes, latency_s: float) -> float:
        psh = dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK
        self._pkt(ts, True, psh, request)
        self._pkt(ts + latency_s, False, psh, response)
        self._pkt(ts + latency_s + 0.0001, True, dpkt.tcp.TH_ACK)
        return ts + latency_s + 0.0001

    def close(self, ts: float) -> None:
        fin = dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK
        self._pkt(ts, True, fin)
        self._pkt(ts + 0.0002, False, fin)
        self._pkt(ts + 0.0004, True, dpkt.tcp.TH_ACK)


def _request(method: str, target: str, body: bytes, ua: str) -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: {ua}\r\nAccept: */*\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _response(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: keep-alive\r\n\r\n").encode() + body


def build_packets(seed: int, slow_route: str | None = None, fail_route: str | None = None,
                  connections: int = 40, requests_per_connection: int = 40) -> list[tuple[float, bytes]]:
    """The capture's packets (timestamp seconds, Ethernet frame), in time order."""
    rng = random.Random(seed)
    names = list(ROUTES)
    out: list[tuple[float, bytes]] = []
    for i in range(connections):
        client = f"10.1.{i // 200}.{i % 200 + 10}"
        conn = _Conn(out, client, 40000 + i, rng)
        ts = conn.handshake(T0 + rng.uniform(0, 30))
        ua = f"synth-client/{1 + i % 3}.0"
        for _ in range(requests_per_connection):
            ts += rng.uniform(0.005, 0.2)  # think time
            name = rng.choice(names)
            method, path, median_ms, body = ROUTES[name]
            n = rng.randrange(1, 100000)
            latency_ms = median_ms * rng.lognormvariate(0.0, SIGMA)
            status = 200
            if name == "GET /api/users/{id}" and rng.random() < 0.02:
                status = 404
            fail_draw = rng.random()
            if name == slow_route:
                latency_ms += SLOW_MS
            if name == fail_route and fail_draw < FAIL_RATE:
                status = 500
            payload = b'{"ok":true,"n":%d}' % n if status == 200 else b'{"error":"%d"}' % status
            ts = conn.exchange(ts, _request(method, path.format(n=n), body.replace(b"{n}", str(n).encode()), ua),
                               _response(status, payload), latency_ms / 1000.0)
        conn.close(ts + 0.01)
    out.sort(key=lambda p: p[0])
    return out


def write_capture(path: Path, seed: int, slow_route: str | None = None, fail_route: str | None = None,
                  connections: int = 40, requests_per_connection: int = 40) -> Path:
    """Write the capture (pcap, microsecond timestamps) and return its path."""
    with open(path, "wb") as fh:
        w = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in build_packets(seed, slow_route, fail_route, connections, requests_per_connection):
            w.writepkt(frame, ts)
    return path


if __name__ == "__main__":  # python tests/report/synth_service.py OUT.pcap [SEED]
    import sys

    write_capture(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)
