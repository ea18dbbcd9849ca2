#!/usr/bin/env python3
"""The slow upstream behind the private nginx of make_nginx_capture.py.

A threaded HTTP/1.1 server on loopback. Every answer is decided by the request's query string, so the
traffic plan (made from the seed) fully decides what happens:

- ``delay=MS``     sleep that many milliseconds before answering (the "slow upstream");
- ``size=N``       response body bytes;
- ``status=S``     response status (default 200, 201 for POST);
- ``/api/chunked/...``  answers with ``Transfer-Encoding: chunked`` (several chunks, flushed apart);
  anything else answers with ``Content-Length``;
- DELETE answers 204 with no body.

Request bodies are read (nginx always forwards them with Content-Length) and their length is echoed.
Run: ``upstream.py --port 0``; it prints ``PORT <n>`` on stdout once it listens.
"""
from __future__ import annotations

import argparse
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FILL = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"


def body_of(size: int, seed: int) -> bytes:
    """Deterministic filler of exactly `size` bytes."""
    reps = size // len(FILL) + 2
    start = seed % len(FILL)
    return (FILL * reps)[start:start + size]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gt-upstream"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length) if length else b""
        delay_ms = int(q.get("delay", "0"))
        if delay_ms:
            time.sleep(delay_ms / 1000)
        rid = int(q.get("rid", "0"))
        if self.command == "DELETE":
            self.send_response(204)
            self.send_header("Connection", "close")
            self.end_headers()
            return
        status = int(q.get("status", "201" if self.command == "POST" else "200"))
        size = int(q.get("size", "64"))
        prefix = b'{"rid":%d,"received":%d,"pad":"' % (rid, len(received))
        body = (prefix + body_of(max(0, size - len(prefix) - 2), rid) + b'"}')[:size] if size else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        if parts.path.startswith("/api/chunked/"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                n = int(q.get("chunks", "3"))
                step = max(1, -(-len(body) // n))
                for i in range(0, len(body), step):
                    piece = body[i:i + step]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
