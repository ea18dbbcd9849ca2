#!/usr/bin/env python3
"""Check a capture from make_nginx_capture.py against its access log with tshark (independent of netrum).

    check_capture.py CAPTURE.pcap ACCESS.log

Prints: requests tshark dissects vs access log lines, the statuses that agree, the features present
(pipelining, 100-continue, chunked bodies, HTTP/1.0, IPv6, HEAD, 204, 304, slowed answers), and how well
the wire durations (first request byte .. last response byte) agree with nginx's $request_time for
single-segment GET/HEAD/DELETE requests. Responses are paired with requests by order on each TCP stream
(HTTP/1.1 answers in order), not by tshark's own pairing. Informational (exit 0): tshark itself misses a
few exchanges (its port heuristics take some client ports for servers; it drops some close-delimited
bodies), which then also shift the order pairing on their stream.
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_nginx_capture import parse_access_log

RID = re.compile(r"[?&]rid=(\d+)")


def tshark_rows(pcap: Path) -> list[list[str]]:
    cmd = ["tshark", "-r", str(pcap), "-Y", "http.request or http.response", "-T", "fields",
           "-E", "separator=\t", "-e", "frame.number", "-e", "frame.time_epoch", "-e", "tcp.stream",
           "-e", "http.request.method", "-e", "http.request.uri", "-e", "http.response.code",
           "-e", "ipv6.src"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def main() -> int:
    pcap, log = Path(sys.argv[1]), Path(sys.argv[2])
    log_rows = parse_access_log(log)
    by_rid = {int(RID.search(r["request_uri"]).group(1)): r for r in log_rows}  # type: ignore[union-attr]
    requests: dict[str, list[tuple[float, str, str]]] = defaultdict(list)  # stream -> (ts, method, uri)
    responses: dict[str, list[tuple[float, int]]] = defaultdict(list)
    v6_streams = set()
    for frame, ts, stream, methods, uris, codes, v6 in tshark_rows(pcap):
        if v6:
            v6_streams.add(stream)
        for m, u in zip(methods.split(",") if methods else [], uris.split(",") if uris else []):
            requests[stream].append((float(ts), m, u))
        for c in codes.split(",") if codes else []:
            if not c.startswith("1"):
                responses[stream].append((float(ts), int(c)))
    seen: set[int] = set()
    status_ok, diffs = 0, []
    for stream, reqs in requests.items():
        padded: list[tuple[float, int] | None] = [*responses[stream], *[None] * len(reqs)]
        for (req_ts, method, uri), resp in zip(reqs, padded):
            found = RID.search(uri)
            if not found or int(found.group(1)) not in by_rid:
                continue
            rid = int(found.group(1))
            seen.add(rid)
            row = by_rid[rid]
            if resp is not None and resp[1] == int(row["status"]):
                status_ok += 1
                if method in ("GET", "HEAD", "DELETE"):
                    diffs.append(abs((resp[0] - req_ts) * 1000 - float(row["request_time"]) * 1000))
    missing = sorted(set(by_rid) - seen)
    feats = {
        "HTTP/1.0": sum(r["server_protocol"] == "HTTP/1.0" for r in log_rows),
        "IPv6": sum(r["remote_addr"] == "::1" for r in log_rows),
        "HEAD": sum(r["request_method"] == "HEAD" for r in log_rows),
        "204": sum(r["status"] == "204" for r in log_rows),
        "304": sum(r["status"] == "304" for r in log_rows),
        "100-continue": sum(r["http_expect"] == "100-continue" for r in log_rows),
        "chunked request": sum(r["http_transfer_encoding"] == "chunked" for r in log_rows),
        "chunked response": sum(r["sent_http_transfer_encoding"] == "chunked" for r in log_rows),
        "slowed >= 100 ms": sum(r["upstream_response_time"] not in ("-", "")
                                and float(r["upstream_response_time"]) >= 0.1 for r in log_rows),
        "pipelined (>1 request in a frame)": sum(
            1 for reqs in requests.values() for i in range(1, len(reqs)) if reqs[i][0] == reqs[i - 1][0]),
    }
    diffs.sort()
    within = sum(d <= 2.0 for d in diffs)
    print(f"access log lines: {len(log_rows)}; requests tshark dissected: "
          f"{sum(len(r) for r in requests.values())} on {len(requests)} streams ({len(v6_streams)} IPv6); "
          f"found {len(seen)}, missing {len(missing)}; statuses agreeing {status_ok}")
    print("features: " + ", ".join(f"{k} {v}" for k, v in feats.items()))
    if diffs:
        print(f"wire duration vs $request_time ({len(diffs)} single-frame requests): within 2 ms {within} "
              f"({100 * within / len(diffs):.2f}%), p99 {diffs[int(len(diffs) * 0.99)]:.3f} ms, "
              f"max {diffs[-1]:.3f} ms")
    if missing:
        print(f"missing rids (first 10): {missing[:10]}")
    return 0  # informational: tshark itself misses some (port heuristics, close-delimited bodies)


if __name__ == "__main__":
    sys.exit(main())
