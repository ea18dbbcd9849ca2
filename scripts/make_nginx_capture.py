#!/usr/bin/env python3
"""Make a ground-truth capture: a private nginx serving a realistic HTTP/1.x mix, recorded by tcpdump.

    make_nginx_capture.py OUT.pcap --requests N [--seed S] [--log OUT.log]

What it does (as root, on a Debian machine with nginx and tcpdump installed):

1. starts a slow upstream (scripts/nginx/upstream.py, loopback) and a private nginx (temporary prefix and
   configuration, listening on 127.0.0.1:P and [::1]:P) whose access log records, tab-separated:
   $msec $request_time $status $body_bytes_sent $bytes_sent $request_length $remote_addr $remote_port
   $connection $connection_requests $request_method $request_uri $server_protocol
   $upstream_response_time $sent_http_transfer_encoding $http_transfer_encoding $http_expect
   (the first 14 fields are those of the brief; the last three say whether the response and the request
   were chunked and whether the client asked for 100-continue);
2. starts ``tcpdump -i lo -s 0 'tcp port P'`` and waits until it really listens;
3. plays a traffic plan drawn from --seed with a raw-socket client (32 connections at once) plus a few
   curl runs: keep-alive, pipelining, HEAD, 304 (If-Modified-Since / If-None-Match), 204 (``return 204``
   and DELETE through the upstream), 404, 405, 5xx from the upstream, 100-continue, chunked request and
   response bodies (upstream chunked, gzip), HTTP/1.0 with and without keep-alive (close-delimited bodies
   too), IPv4 and IPv6, static bodies from 1 B to 200 KB, upstream answers slowed 100 ms to 2 s;
4. stops tcpdump after a short drain, checks that the kernel dropped nothing and that nginx logged exactly
   the requests that were sent, with the statuses the client saw; writes OUT.pcap and the access log.

Every request-target carries its unique request number (``rid=<n>``, and ``/api/items/<n>``), so access
log lines and captured transactions match one to one on the request-target.

Exit status: 0 on success; 1 when a check fails (the files are still written); 2 when a tool is missing.
"""
from __future__ import annotations

import argparse
import email.utils
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE / "nginx" / "upstream.py"

LOG_FIELDS = (
    "msec", "request_time", "status", "body_bytes_sent", "bytes_sent", "request_length", "remote_addr",
    "remote_port", "connection", "connection_requests", "request_method", "request_uri", "server_protocol",
    "upstream_response_time", "sent_http_transfer_encoding", "http_transfer_encoding", "http_expect",
)
STATIC_SIZES = (1, 100, 1500, 10_000, 65_536, 200_000)
STATIC_WEIGHTS = (20, 30, 25, 15, 7, 3)
GZ_SIZES = (600, 6_000, 40_000)
FILE_MTIME = 1_700_000_000  # fixed, so Last-Modified and ETag are known in advance
HOST = "gt.test"
USER_AGENTS = ("gt-client/1.0", "Mozilla/5.0 (X11; Linux x86_64) gt-browser/118.0", "okhttp/4.12.0",
               "python-requests/2.31.0")
CONCURRENCY = 32
RATE = 250.0  # requests per second at most: nginx stays idle enough that its clock matches the wire
SOCKET_TIMEOUT_S = 15.0

NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    log_format gt escape=default '{log_format}';
    access_log {log} gt;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    types {{ text/plain txt; application/octet-stream bin; application/json json; }}
    default_type application/octet-stream;
    server_tokens off;
    keepalive_timeout 30s;
    keepalive_requests 1000;
    client_max_body_size 10m;
    client_body_buffer_size 1m;
    proxy_buffers 64 16k;
    proxy_max_temp_file_size 0;
    upstream slow {{ server 127.0.0.1:{upstream_port}; }}
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        listen [::1]:{port} backlog=1024;
        server_name {host};
        root {prefix}/www;
        location /static/ {{ }}
        location /gz/ {{
            gzip on;
            gzip_types text/plain;
            gzip_min_length 1;
            gzip_comp_level 1;
        }}
        location = /nocontent {{ return 204; }}
        location /api/ {{
            proxy_pass http://slow;
            proxy_http_version 1.1;
            proxy_set_header Connection close;
            proxy_read_timeout 20s;
        }}
    }}
}}
"""


# --------------------------------------------------------------------------------------------- the plan
@dataclass
class Req:
    rid: int
    kind: str
    method: str
    target: str
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    headers: list[tuple[str, str]]
    body: bytes | None = None
    chunked_body: bool = False
    expect: bool = False
    think_ms: int = 0

    def head_bytes(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

    def body_bytes(self, rng: random.Random) -> bytes:
        """The body as framed on the wire (chunked framing with uneven chunk sizes when asked)."""
        if self.body is None:
            return b""
        if not self.chunked_body:
            return self.body
        out, i = [], 0
        while i < len(self.body):
            n = rng.choice((1, 7, 100, 1000, 4096, 16384))
            piece = self.body[i:i + n]
            out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
            i += n
        out.append(b"0\r\n\r\n")
        return b"".join(out)


@dataclass
class ConnPlan:
    cid: int
    family: int  # 4 or 6
    mode: str  # "keepalive", "pipeline", "close", "curl"
    reqs: list[Req] = field(default_factory=list)


GENERAL_KINDS: dict[str, float] = {
    "static_get": 30, "static_head": 5, "ims_304": 4, "inm_304": 4, "nocontent_204": 5, "api_get": 22,
    "api_chunked": 8, "gzip": 5, "post_cl": 5, "put_chunked": 4, "post_expect": 3, "delete_204": 1.5,
    "missing_404": 2, "api_error": 1, "post_static_405": 0.5,
}
PIPELINE_KINDS: dict[str, float] = {
    "static_get_small": 40, "static_head": 10, "ims_304": 10, "inm_304": 10, "nocontent_204": 15,
    "missing_404": 5,
}
HTTP10_KA_KINDS: dict[str, float] = {
    "static_get": 40, "static_head": 8, "ims_304": 6, "nocontent_204": 6, "api_get": 25, "post_cl": 6,
    "missing_404": 3, "gzip": 6,
}
HTTP10_SINGLE_KINDS: dict[str, float] = dict(HTTP10_KA_KINDS, api_chunked=15)
CURL_KINDS: dict[str, float] = {
    "static_get": 30, "static_head": 10, "api_get": 20, "post_expect": 20, "put_chunked": 20,
}
SLOW_SHARE = 0.16  # of upstream requests; about 7% of all requests end up slowed 100 ms .. 2 s


def pick(rng: random.Random, table: dict[str, float]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def etag_of(size: int) -> str:
    return f'"{FILE_MTIME:x}-{size:x}"'  # nginx: "%xT-%xO" of mtime and size


def make_request(rng: random.Random, rid: int, kind: str, version: str, host: str) -> Req:
    h: list[tuple[str, str]] = []
    if version == "HTTP/1.1" or rng.random() < 0.7:
        h.append(("Host", host))
    h.append(("User-Agent", rng.choice(USER_AGENTS)))
    h.append(("Accept", "*/*"))
    delay = 0
    if kind.startswith(("api_", "post_cl", "put_", "post_expect", "delete_")) and rng.random() < SLOW_SHARE:
        delay = int(math.exp(rng.uniform(math.log(100), math.log(2000))))
    size = rng.choice((0, 20, 300, 2_000, 9_000, 40_000))
    method, target, body, chunked, expect = "GET", "", None, False, False
    if kind in ("static_get", "static_head", "static_get_small", "ims_304", "inm_304"):
        sizes = STATIC_SIZES[:4] if kind == "static_get_small" else STATIC_SIZES
        fsize = rng.choices(sizes, weights=STATIC_WEIGHTS[:len(sizes)])[0]
        target = f"/static/f{fsize}.bin?rid={rid}"
        method = "HEAD" if kind == "static_head" else "GET"
        if kind == "ims_304":
            h.append(("If-Modified-Since", email.utils.formatdate(FILE_MTIME, usegmt=True)))
        elif kind == "inm_304":
            h.append(("If-None-Match", etag_of(fsize)))
    elif kind == "nocontent_204":
        target = f"/nocontent?rid={rid}"
    elif kind == "missing_404":
        target = f"/static/missing-{rid}.bin?rid={rid}"
    elif kind == "gzip":
        target = f"/gz/t{rng.choice(GZ_SIZES)}.txt?rid={rid}"
        h.append(("Accept-Encoding", "gzip, deflate"))
    elif kind == "api_get":
        target = f"/api/items/{rid}?rid={rid}&size={size}&delay={delay}"
    elif kind == "api_error":
        target = f"/api/items/{rid}?rid={rid}&size=50&delay={delay}&status={rng.choice((500, 503, 404))}"
    elif kind == "api_chunked":
        target = f"/api/chunked/{rid}?rid={rid}&size={max(size, 1)}&chunks={rng.randint(1, 5)}&delay={delay}"
    elif kind in ("post_cl", "put_chunked", "post_expect", "post_static_405"):
        method = "PUT" if kind == "put_chunked" else "POST"
        nbody = rng.choice((1, 50, 700, 3_000, 20_000, 60_000))
        body = bytes(rng.getrandbits(8) for _ in range(min(nbody, 64))) * (nbody // 64 + 1)
        body = body[:nbody]
        chunked = kind == "put_chunked" or (kind == "post_expect" and rng.random() < 0.3)
        expect = kind == "post_expect"
        if kind == "post_static_405":
            target = f"/static/f100.bin?rid={rid}"
            chunked = False
        else:
            target = f"/api/items/{rid}?rid={rid}&size={size}&delay={delay}"
        h.append(("Content-Type", rng.choice(("application/json", "application/octet-stream"))))
        if chunked:
            h.append(("Transfer-Encoding", "chunked"))
        else:
            h.append(("Content-Length", str(len(body))))
        if expect:
            h.append(("Expect", "100-continue"))
    elif kind == "delete_204":
        method = "DELETE"
        target = f"/api/items/{rid}?rid={rid}&delay={delay}"
    else:  # pragma: no cover - a table entry without a recipe
        raise ValueError(kind)
    return Req(rid, kind, method, target, version, h, body, chunked, expect)


def make_plan(n_requests: int, seed: int, port: int) -> list[ConnPlan]:
    rng = random.Random(seed)
    plans: list[ConnPlan] = []
    rid = 0
    n_curl_reqs = 0 if n_requests < 50 else max(4, n_requests // 100)
    while rid < n_requests:
        family = 6 if rng.random() < 0.25 else 4
        host = HOST if rng.random() < 0.8 else (f"[::1]:{port}" if family == 6 else f"127.0.0.1:{port}")
        left = n_requests - rid
        r = rng.random()
        plan = ConnPlan(len(plans) + 1, family, "keepalive")
        if n_curl_reqs and r < 0.03:
            plan.mode, count, table, version = "curl", rng.randint(1, 4), CURL_KINDS, "HTTP/1.1"
            count = min(count, n_curl_reqs, left)
            n_curl_reqs -= count
        elif r < 0.15:
            plan.mode, count, table, version = "pipeline", rng.randint(2, 6), PIPELINE_KINDS, "HTTP/1.1"
        elif r < 0.25:
            plan.mode, count, table, version = "close", 1, HTTP10_SINGLE_KINDS, "HTTP/1.0"
        elif r < 0.31:
            plan.mode, count, table, version = "keepalive", rng.randint(2, 4), HTTP10_KA_KINDS, "HTTP/1.0"
        elif r < 0.37:
            plan.mode, count, table, version = "close", 1, GENERAL_KINDS, "HTTP/1.1"
        else:
            plan.mode, count, table, version = "keepalive", rng.randint(1, 10), GENERAL_KINDS, "HTTP/1.1"
        for _ in range(min(count, left)):
            rid += 1
            req = make_request(rng, rid, pick(rng, table), version, host)
            if version == "HTTP/1.0" and plan.mode == "keepalive":
                req.headers.append(("Connection", "keep-alive"))
            elif plan.mode == "close" and version == "HTTP/1.1":
                req.headers.append(("Connection", "close"))
            req.think_ms = 0 if plan.mode == "pipeline" else rng.choice((0, 0, 1, 5, 20, 50))
            plan.reqs.append(req)
        plans.append(plan)
    rng.shuffle(plans)
    return plans


# ------------------------------------------------------------------------------------------ the client
@dataclass
class Seen:
    rid: int
    status: int
    interim: tuple[int, ...]
    body_bytes: int
    chunked: bool


class Conn:
    """A blocking client connection with a receive buffer that reads HTTP/1.x responses."""

    def __init__(self, family: int, port: int) -> None:
        af = socket.AF_INET6 if family == 6 else socket.AF_INET
        self.sock = socket.socket(af, socket.SOCK_STREAM)
        self.sock.settimeout(SOCKET_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.connect(("::1" if family == 6 else "127.0.0.1", port))
        self.buf = bytearray()
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(262_144)
        if not data:
            self.eof = True
            raise EOFError("server closed the connection")
        self.buf += data

    def read_head(self) -> tuple[str, int, dict[str, str]]:
        while (i := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = bytes(self.buf[:i]).decode("latin-1").split("\r\n")
        del self.buf[:i + 4]
        version, status = head[0].split(" ", 2)[:2]
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return version, int(status), headers

    def read_exact(self, n: int) -> None:
        while len(self.buf) < n:
            self._fill()
        del self.buf[:n]

    def read_chunked(self) -> int:
        total = 0
        while True:
            while (i := self.buf.find(b"\r\n")) < 0:
                self._fill()
            size = int(bytes(self.buf[:i]).split(b";")[0], 16)
            del self.buf[:i + 2]
            if size == 0:
                while (j := self.buf.find(b"\r\n")) < 0:
                    self._fill()
                trailer = bytes(self.buf[:j])
                del self.buf[:j + 2]
                if not trailer:
                    return total
                continue
            self.read_exact(size + 2)
            total += size

    def read_to_eof(self) -> int:
        total = len(self.buf)
        self.buf.clear()
        while True:
            data = self.sock.recv(262_144)
            if not data:
                self.eof = True
                return total
            total += len(data)

    def read_response(self, req: Req, head_only_first: bool = False) -> tuple[Seen, bool]:
        """Read one final response (skipping 1xx). Returns what was seen and whether the server closes."""
        interim: list[int] = []
        while True:
            version, status, headers = self.read_head()
            if 100 <= status < 200 and status != 101:
                interim.append(status)
                if head_only_first:
                    return Seen(req.rid, status, tuple(interim), 0, False), False
                continue
            break
        conn_tokens = headers.get("connection", "").lower()
        closes = "close" in conn_tokens or (version == "HTTP/1.0" and "keep-alive" not in conn_tokens) or (
            req.version == "HTTP/1.0" and "keep-alive" not in conn_tokens)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if req.method == "HEAD" or status in (204, 304):
            n = 0
        elif chunked:
            n = self.read_chunked()
        elif "content-length" in headers:
            n = int(headers["content-length"])
            self.read_exact(n)
        else:
            n = self.read_to_eof()
            closes = True
        return Seen(req.rid, status, tuple(interim), n, chunked), closes


class Pacer:
    """Spreads requests evenly in time (a shared schedule, one slot per request)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self, n: int = 1) -> None:
        with self.lock:
            now = time.monotonic()
            self.next = max(self.next, now - 0.05)  # a little catch-up, never a burst
            slot = self.next
            self.next += n * self.interval
        if slot > now:
            time.sleep(slot - now)


class Client:
    def __init__(self, port: int, seed: int, workdir: Path, rate: float) -> None:
        self.pacer = Pacer(rate)
        self.port = port
        self.seed = seed
        self.workdir = workdir
        self.seen: dict[int, Seen] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()  # set when the run is given up: workers stop between requests

    def _record(self, s: Seen) -> None:
        with self.lock:
            self.seen[s.rid] = s

    def run_plan(self, plan: ConnPlan) -> None:
        if self.stop.is_set():
            return
        try:
            {"curl": self._curl, "pipeline": self._pipeline}.get(plan.mode, self._sequential)(plan)
        except Exception as e:  # noqa: BLE001 - reported, the run fails its checks
            with self.lock:
                self.errors.append(f"connection {plan.cid} ({plan.mode}): {type(e).__name__}: {e}")

    def _send_one(self, conn: Conn, req: Req, rng: random.Random) -> bool:
        """Send one request and read its response. Returns True when the server closes after it."""
        head, body = req.head_bytes(), req.body_bytes(rng)
        self.pacer.wait()
        if req.expect:
            conn.sock.sendall(head)
            first, closes = conn.read_response(req, head_only_first=True)
            if first.status != 100:  # a final answer without 100: nothing more to send
                self._record(first)
                return True
            conn.sock.sendall(body)
            final, closes = conn.read_response(req)
            final.interim = first.interim + final.interim
            self._record(final)
            return closes
        if body and rng.random() < 0.3:  # head and body in separate writes now and then
            conn.sock.sendall(head)
            conn.sock.sendall(body)
        else:
            conn.sock.sendall(head + body)
        seen, closes = conn.read_response(req)
        self._record(seen)
        return closes

    def _sequential(self, plan: ConnPlan) -> None:
        rng = random.Random(self.seed * 1_000_003 + plan.cid)
        conn = Conn(plan.family, self.port)
        try:
            for i, req in enumerate(plan.reqs):
                if self.stop.is_set():
                    return
                if req.think_ms:
                    time.sleep(req.think_ms / 1000)
                if self._send_one(conn, req, rng) and i + 1 < len(plan.reqs):
                    conn.close()  # the server closes (HTTP/1.0 answer without keep-alive): go on anew
                    conn = Conn(plan.family, self.port)
        finally:
            conn.close()

    def _pipeline(self, plan: ConnPlan) -> None:
        self.pacer.wait(len(plan.reqs))
        conn = Conn(plan.family, self.port)
        try:
            conn.sock.sendall(b"".join(r.head_bytes() for r in plan.reqs))  # all in one write
            for req in plan.reqs:
                seen, _ = conn.read_response(req)
                self._record(seen)
        finally:
            conn.close()

    def _curl(self, plan: ConnPlan) -> None:
        self.pacer.wait(len(plan.reqs))
        host = "[::1]" if plan.family == 6 else "127.0.0.1"
        cmd = ["curl", "-sS", "--http1.1", "-g", "--max-time", "30"]
        for i, req in enumerate(plan.reqs):
            if i:
                cmd.append("--next")
            cmd += ["-o", "/dev/null", "-A", dict(req.headers).get("User-Agent", "curl")]
            if req.method == "HEAD":
                cmd.append("-I")
            if req.body is not None:
                path = self.workdir / f"body-{req.rid}"
                path.write_bytes(req.body)
                cmd += ["-X", req.method, "--data-binary", f"@{path}",
                        "-H", f"Content-Type: {dict(req.headers)['Content-Type']}"]
                if req.chunked_body:
                    cmd += ["-H", "Transfer-Encoding: chunked"]
                cmd += ["-H", "Expect: 100-continue" if req.expect else "Expect:"]
            cmd += ["-w", f"%{{http_code}} {req.rid}\\n", f"http://{host}:{self.port}{req.target}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"curl exited {out.returncode}: {out.stderr.strip()[:200]}")
        for line in out.stdout.split("\n"):
            if line.strip():
                code, rid = line.split()
                req = next(r for r in plan.reqs if r.rid == int(rid))
                self._record(Seen(req.rid, int(code), (), -1, False))


# ----------------------------------------------------------------------------------- processes, checks
def free_port() -> int:
    """A TCP port free on both 127.0.0.1 and ::1."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
            s4.bind(("127.0.0.1", 0))
            port = s4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                    s6.bind(("::1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on both 127.0.0.1 and ::1")


def wait_port(port: int, family: int, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    addr = ("::1" if family == 6 else "127.0.0.1", port)
    while True:
        try:
            with socket.create_connection(addr, timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise RuntimeError(f"nothing listens on {addr} after {deadline_s} s") from None
            time.sleep(0.05)


@contextmanager
def child(cmd: list[str], name: str, stop_signal: int = signal.SIGTERM,
          **kw: object) -> Iterator[subprocess.Popen[str]]:
    """Run a child process for the duration of a with-block; always stop it (then kill it) on exit."""
    proc = subprocess.Popen(cmd, **kw)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop_signal)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def boost() -> None:
    """Run a child (nginx, tcpdump) ahead of the client and of anything else on the machine: real-time
    FIFO priority when allowed, else nice -10. nginx then reads each request as soon as it arrives and
    its clock ($request_time) matches the wire even when other processes keep every core busy."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        os.nice(-10)


def write_site(prefix: Path) -> None:
    for d in ("www/static", "www/gz", "tmp", "logs"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    for size in STATIC_SIZES:
        p = prefix / "www/static" / f"f{size}.bin"
        p.write_bytes(rng.randbytes(size))
        os.utime(p, (FILE_MTIME, FILE_MTIME))
    words = ("alpha", "beta", "gamma", "delta", "latency", "request", "response", "nginx", "netrum")
    for size in GZ_SIZES:
        text = " ".join(rng.choice(words) for _ in range(size)).encode()[:size]
        p = prefix / "www/gz" / f"t{size}.txt"
        p.write_bytes(text)
        os.utime(p, (FILE_MTIME, FILE_MTIME))


def parse_access_log(path: Path) -> list[dict[str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) != len(LOG_FIELDS):
            raise ValueError(f"access log line with {len(parts)} fields: {line!r}")
        rows.append(dict(zip(LOG_FIELDS, parts)))
    return rows


RID = re.compile(r"[?&]rid=(\d+)")


def check(log_rows: list[dict[str, str]], client: Client, n_requests: int) -> list[str]:
    problems = list(client.errors[:10])
    if len(client.errors) > 10:
        problems.append(f"... {len(client.errors) - 10} more client errors")
    if len(log_rows) != n_requests:
        problems.append(f"nginx logged {len(log_rows)} requests, {n_requests} were planned")
    logged: dict[int, dict[str, str]] = {}
    for row in log_rows:
        m = RID.search(row["request_uri"])
        if not m:
            problems.append(f"access log line without rid: {row['request_uri']}")
            continue
        logged[int(m.group(1))] = row
    if len(client.seen) != n_requests:
        problems.append(f"the client saw {len(client.seen)} responses, {n_requests} were planned")
    bad = [rid for rid, s in client.seen.items() if rid in logged and int(logged[rid]["status"]) != s.status]
    if bad:
        problems.append(f"{len(bad)} statuses differ between client and access log, e.g. rid {bad[:5]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description="Capture nginx serving a realistic HTTP/1.x mix (ground truth).")
    ap.add_argument("out", type=Path, help="the pcap file to write")
    ap.add_argument("--requests", type=int, required=True, help="number of requests to send")
    ap.add_argument("--seed", type=int, default=1, help="seed of the traffic plan (default 1)")
    ap.add_argument("--log", type=Path,
                    help="where to write nginx's access log (default: OUT with the suffix .access.log)")
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY, help="connections at once (default 32)")
    ap.add_argument("--rate", type=float, default=RATE, help="requests per second at most (default 250)")
    ap.add_argument("--timeout", type=float, default=600, help="give up the traffic after this many seconds")
    args = ap.parse_args()
    log_out = args.log or args.out.with_suffix(".access.log")
    for tool in ("nginx", "tcpdump", "curl"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"make_nginx_capture: {tool} is not installed", file=sys.stderr)
            return 2
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    tcpdump_bin = shutil.which("tcpdump") or "/usr/sbin/tcpdump"
    if os.geteuid() != 0:
        print("make_nginx_capture: must run as root (tcpdump on lo, nginx as root)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwind the with-blocks: children are stopped
    t0 = time.monotonic()
    # nginx's prefix (access log, temp files, site) and tcpdump's file live on tmpfs when there is one: a
    # disk stalled by other writers would stall nginx's worker and skew $request_time against the wire.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="nginx-gt-", dir=shm) as tmp:
        prefix = Path(tmp)
        write_site(prefix)
        port = free_port()
        plans = make_plan(args.requests, args.seed, port)
        with child([sys.executable, str(UPSTREAM), "--port", "0"], "upstream", stdout=subprocess.PIPE,
                   text=True) as upstream:
            assert upstream.stdout is not None
            line = upstream.stdout.readline()
            if not line.startswith("PORT "):
                print(f"make_nginx_capture: upstream did not start: {line!r}", file=sys.stderr)
                return 1
            upstream_port = int(line.split()[1])
            access_log = prefix / "logs" / "access.log"
            conf = prefix / "nginx.conf"
            conf.write_text(NGINX_CONF.format(prefix=prefix, log=access_log, port=port, host=HOST,
                                              upstream_port=upstream_port,
                                              log_format="\\t".join("$" + f for f in LOG_FIELDS)))
            with child([nginx_bin, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                       "nginx", stop_signal=signal.SIGQUIT, stderr=subprocess.DEVNULL, preexec_fn=boost):
                wait_port(port, 4, 10)
                wait_port(port, 6, 10)
                raw = prefix / "capture.pcap"
                dump_err = prefix / "tcpdump.err"
                with open(dump_err, "w") as err_f, child(
                        [tcpdump_bin, "-i", "lo", "-n", "-s", "0", "-B", "65536", "-Z", "root",
                         "-w", str(raw), f"tcp port {port}"], "tcpdump", stop_signal=signal.SIGINT,
                        stderr=err_f, preexec_fn=boost) as dump:
                    end = time.monotonic() + 15
                    while "listening on" not in dump_err.read_text():
                        if dump.poll() is not None or time.monotonic() > end:
                            print(f"make_nginx_capture: tcpdump did not start: {dump_err.read_text()}",
                                  file=sys.stderr)
                            return 1
                        time.sleep(0.05)
                    time.sleep(0.2)
                    t_traffic = time.monotonic()
                    client = Client(port, args.seed, prefix / "tmp", args.rate)
                    pool = ThreadPoolExecutor(args.concurrency)
                    try:
                        futures = [pool.submit(client.run_plan, p) for p in plans]
                        for f in futures:
                            f.result(timeout=max(1.0, args.timeout - (time.monotonic() - t_traffic)))
                    finally:  # on Ctrl-C, SIGTERM or timeout: no new request, workers end within seconds
                        client.stop.set()
                        pool.shutdown(wait=True, cancel_futures=True)
                    traffic_s = time.monotonic() - t_traffic
                    time.sleep(1.0)  # drain: last FINs, the kernel buffer
                    dump.send_signal(signal.SIGINT)
                    dump.wait(timeout=20)
                stats = dump_err.read_text()
            # nginx stopped (graceful): the access log is complete
            shutil.copyfile(raw, args.out)
            shutil.copyfile(access_log, log_out)
    log_rows = parse_access_log(log_out)
    problems = check(log_rows, client, args.requests)
    captured = re.search(r"(\d+) packets captured", stats)
    dropped = re.search(r"(\d+) packets dropped by kernel", stats)
    if dropped is None or int(dropped.group(1)) != 0:
        problems.append(f"tcpdump lost packets: {stats.strip()}")
    statuses: dict[str, int] = {}
    for row in log_rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    slowed = sum(1 for r in log_rows if r["upstream_response_time"] not in ("-", "")
                 and float(r["upstream_response_time"].split(",")[-1]) >= 0.1)
    print(f"make_nginx_capture: {len(log_rows)} requests on {len(plans)} planned connections, "
          f"{captured.group(1) if captured else '?'} packets, {args.out.stat().st_size} bytes, "
          f"traffic {traffic_s:.1f} s, total {time.monotonic() - t0:.1f} s; slowed >= 100 ms: {slowed}; "
          f"statuses {dict(sorted(statuses.items()))}", file=sys.stderr)
    for p in problems:
        print(f"make_nginx_capture: check failed: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the children were stopped on the way out
        print("make_nginx_capture: interrupted", file=sys.stderr)
        sys.exit(130)
