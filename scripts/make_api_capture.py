"""Make a capture of the route-templating test API (scripts/api_service.py) with its ground truth.

    make_api_capture.py OUT.pcap --requests N [--seed S] [--openapi OUT.json] [--truth OUT.jsonl]

What it does (as root, with tcpdump installed, and fastapi + uvicorn importable):

1. starts the service with uvicorn on 127.0.0.1 (a free port) and fetches its OpenAPI document
   (/openapi.json, written to --openapi) before anything is captured;
2. starts ``tcpdump -i lo -s 0 -U 'tcp port P'`` and waits until it really listens;
3. plays a traffic plan drawn from --seed through real sockets (http.client, keep-alive connections of
   1 to 30 requests): several hundred distinct user and order ids, random slugs (some percent-encoded,
   UTF-8), UUIDs, sha256 digests, dates, query strings, a few trailing slashes, and the two undocumented
   routes;
4. stops tcpdump after a short drain, checks that the kernel dropped nothing, stops the service, and
   writes the ground truth (--truth, default OUT.pcap with suffix .truth.jsonl): one JSON object per
   request sent, in order: method, uri, the declared route template the client called, its operationId
   (null for undocumented routes) and the status it got.

Bounded in time (--timeout, default 180 s); children are stopped on any exit.
Exit status: 0 on success; 1 when a check fails; 2 when a tool is missing or not root.
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

from api_service import ROUTES

OPS = {(m, t): op for m, t, op in ROUTES}
WORDS = ("alpha", "bravo", "cloud", "delta", "engine", "fast", "green", "house", "index", "jazz", "kite",
         "lemon", "metric", "night", "ocean", "python", "quiet", "river", "stone", "tiger", "urban",
         "vivid", "water", "xenon", "yellow", "zebra", "how", "to", "guide", "intro", "deep", "dive")
# (weight, method, template): the mix of calls
MIX: tuple[tuple[float, str, str], ...] = (
    (18, "GET", "/v1/users/{user_id}"),
    (7, "GET", "/v1/users/me"),
    (3, "PATCH", "/v1/users/{user_id}"),
    (7, "GET", "/v1/users/{user_id}/orders"),
    (4, "POST", "/v1/users/{user_id}/orders"),
    (9, "GET", "/v1/users/{user_id}/orders/{order_id}"),
    (5, "GET", "/v1/articles/popular"),
    (14, "GET", "/v1/articles/{slug}"),
    (5, "GET", "/v1/articles/{slug}/comments"),
    (5, "GET", "/v1/sessions/{session_id}"),
    (2, "DELETE", "/v1/sessions/{session_id}"),
    (3, "GET", "/v1/files/{digest}"),
    (2, "GET", "/v1/reports/{day}"),
    (5, "GET", "/v2/users/{user_id}"),
    (4, "GET", "/v2/search"),
    (3, "GET", "/v1/status"),
    (2, "GET", "/internal/debug/{key}"),
    (1, "POST", "/v1/admin/reindex"),
)


def make_slugs(rng: random.Random, n: int) -> list[str]:
    slugs: set[str] = set()
    while len(slugs) < n:
        words = rng.sample(WORDS, rng.randint(2, 4))
        if rng.random() < 0.05:
            words.append("café")  # UTF-8, sent percent-encoded
        slug = "-".join(words) + (f"-{rng.randint(2, 999)}" if rng.random() < 0.3 else "")
        slugs.add(slug)
    return sorted(slugs)


def make_plan(n: int, seed: int) -> list[list[tuple[str, str, str, bytes | None]]]:
    """Connections, each a list of (method, uri, template, body)."""
    rng = random.Random(seed)
    slugs = make_slugs(rng, max(50, n // 5))
    debug_keys = [f"{w}-{rng.choice(WORDS)}" for w in WORDS]
    weights = [w for w, _, _ in MIX]
    reqs: list[tuple[str, str, str, bytes | None]] = []
    for _ in range(n):
        _, method, template = rng.choices(MIX, weights)[0]
        values = {
            "user_id": str(rng.randint(1, 800)),
            "order_id": str(rng.randint(1, 1_000_000)),
            "slug": quote(rng.choice(slugs)),
            "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "digest": f"{rng.getrandbits(256):064x}",
            "day": (datetime.date(2024, 1, 1) + datetime.timedelta(days=rng.randint(0, 700))).isoformat(),
            "key": rng.choice(debug_keys),
        }
        path = template
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        if template == "/v1/users/{user_id}" and method == "GET" and rng.random() < 0.05:
            path += "/"  # a trailing slash (the service redirects it)
        if template == "/v2/search":
            path += f"?q={rng.choice(WORDS)}&page={rng.randint(1, 9)}"
        elif rng.random() < 0.15:
            path += f"?fields={rng.choice(WORDS)}"
        body = json.dumps({"n": rng.randint(1, 99)}).encode() if method in ("POST", "PATCH") else None
        reqs.append((method, path, template, body))
    conns: list[list[tuple[str, str, str, bytes | None]]] = []
    i = 0
    while i < len(reqs):
        k = rng.randint(1, 30)
        conns.append(reqs[i:i + k])
        i += k
    return conns


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(test: object, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not test():  # type: ignore[operator]
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--openapi", type=Path)
    ap.add_argument("--truth", type=Path)
    ap.add_argument("--timeout", type=float, default=180.0)
    args = ap.parse_args(argv)
    tcpdump = shutil.which("tcpdump") or ("/usr/sbin/tcpdump" if Path("/usr/sbin/tcpdump").exists() else None)
    if tcpdump is None:
        print("make_api_capture: tcpdump is not installed", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("make_api_capture: must run as root (tcpdump on lo)", file=sys.stderr)
        return 2
    truth_path = args.truth or args.out.with_suffix(".truth.jsonl")
    deadline = time.monotonic() + args.timeout
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwind: children are stopped in finally
    plan = make_plan(args.requests, args.seed)
    port = free_port()
    children: list[subprocess.Popen[bytes]] = []
    truth: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="api-capture-") as tmp:
        try:
            service = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--app-dir", str(SCRIPTS), "api_service:app",
                 "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
                 "--timeout-keep-alive", "60"], stdin=subprocess.DEVNULL)
            children.append(service)
            wait_until(lambda: service.poll() is not None or _connects(port), 30, "the service")
            if service.poll() is not None:
                print("make_api_capture: the service did not start", file=sys.stderr)
                return 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/openapi.json")
            spec = conn.getresponse().read()
            conn.close()
            if args.openapi is not None:
                args.openapi.write_bytes(spec)
            err_path = Path(tmp) / "tcpdump.err"
            with open(err_path, "w") as err:
                dump = subprocess.Popen([tcpdump, "-i", "lo", "-n", "-s", "0", "-U", "--immediate-mode", "-B", "65536",
                                         "-w", str(args.out), f"tcp port {port}"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            children.append(dump)
            wait_until(lambda: dump.poll() is not None or "listening on" in err_path.read_text(), 15,
                       "tcpdump")
            if dump.poll() is not None:
                print(f"make_api_capture: tcpdump did not start: {err_path.read_text()}", file=sys.stderr)
                return 1
            for requests in plan:
                if time.monotonic() > deadline:
                    print("make_api_capture: out of time", file=sys.stderr)
                    return 1
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                for method, uri, template, body in requests:
                    headers = {"Content-Type": "application/json"} if body is not None else {}
                    conn.request(method, uri, body=body, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    truth.append({"method": method, "uri": uri, "route": template,
                                  "operation_id": OPS[(method, template)], "status": resp.status})
                conn.close()
            time.sleep(1.5)  # drain: the kernel hands packets over in blocks
            stop(dump, signal.SIGINT)
            stats = err_path.read_text()
        finally:
            for child in reversed(children):
                stop(child)
    problems = []
    if "0 packets dropped by kernel" not in stats:
        problems.append(f"tcpdump lost packets: {stats.strip()}")
    with open(truth_path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in truth)
    statuses: dict[str, int] = {}
    for row in truth:
        statuses[str(row["status"])] = statuses.get(str(row["status"]), 0) + 1
    print(f"make_api_capture: {len(truth)} requests on {len(plan)} connections, port {port}, "
          f"statuses {dict(sorted(statuses.items()))}", file=sys.stderr)
    for p in problems:
        print(f"make_api_capture: check failed: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
