"""netrum against nginx's own access log: the acceptance test of the issue.

A private nginx served a realistic mix (keep-alive, pipelining, HEAD, 304, 204, 100-continue, chunked
request and response bodies, HTTP/1.0, IPv6, upstream answers slowed 100 ms .. 2 s) while tcpdump
recorded it (scripts/make_nginx_capture.py). Every request in the access log must be found with the same
status, response_body_bytes equal to $body_bytes_sent for non-chunked responses, and duration_ms within
2 ms of $request_time for >= 99.9% of requests.

Each test runs on the committed pcaps/nginx-mix.pcap (no nginx needed) and on a >= 5,000-request capture
made in this session (skipped without nginx/tcpdump/root, unless CI is set: then it fails).
"""
from __future__ import annotations

from collections.abc import Callable

from .conftest import GT_REQUESTS
from .groundtruth import DAMAGE_NOTES, Capture, Run, assert_matches_access_log, by_uri, notes_of


def test_generated_capture_has_the_requested_size(gt_capture: Capture) -> None:
    assert len(gt_capture.rows) == GT_REQUESTS
    if GT_REQUESTS == 5000:
        assert len(gt_capture.rows) >= 5000


def test_capture_exercises_the_mix(any_capture: Capture) -> None:
    """The ground truth itself holds every feature the acceptance names (else the test proves little)."""
    rows = any_capture.rows
    have = {
        "HTTP/1.0": any(r["server_protocol"] == "HTTP/1.0" for r in rows),
        "IPv6": any(r["remote_addr"] == "::1" for r in rows),
        "IPv4": any(r["remote_addr"] == "127.0.0.1" for r in rows),
        "HEAD": any(r["request_method"] == "HEAD" for r in rows),
        "204": any(r["status"] == "204" for r in rows),
        "304": any(r["status"] == "304" for r in rows),
        "100-continue": any(r["http_expect"] == "100-continue" for r in rows),
        "chunked request": any(r["http_transfer_encoding"] == "chunked" for r in rows),
        "chunked response": any(r["sent_http_transfer_encoding"] == "chunked" for r in rows),
        "keep-alive": any(int(r["connection_requests"]) > 1 for r in rows),
        "slowed >= 100 ms": any(r["upstream_response_time"] not in ("-", "")
                                and float(r["upstream_response_time"]) >= 0.1 for r in rows),
        "slowed >= 1 s": any(float(r["request_time"]) >= 1.0 for r in rows),
        "bodies >= 200 KB": any(int(r["body_bytes_sent"]) >= 200_000 for r in rows),
    }
    assert all(have.values()), f"missing from the capture: {[k for k, v in have.items() if not v]}"


def test_every_logged_request_is_found_with_status_size_and_timing(
        any_capture: Capture, analyzed: Callable[..., Run]) -> None:
    run = analyzed(any_capture.pcap)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert_matches_access_log(run.transactions, any_capture.rows)


def test_clean_capture_has_no_damage_flags_and_is_not_partial(
        any_capture: Capture, analyzed: Callable[..., Run]) -> None:
    run = analyzed(any_capture.pcap)
    flagged = [(t["uri"], t["notes"]) for t in run.transactions if notes_of(t) & DAMAGE_NOTES]
    assert not flagged, f"{len(flagged)} transactions flagged on a clean capture, e.g. {flagged[:5]}"
    health = run.health
    assert health[("run", "partial")] == "0"
    for counter in ("tcp_gap", "http_resync", "http_no_response", "http_unmatched_response",
                    "capture_truncated_file", "http_bad_request", "http_bad_response"):
        values = [v for (g, c), v in health.items() if c == counter]
        assert values == ["0"], f"{counter} = {values} on a clean capture"


def test_close_delimited_only_where_nginx_sent_no_length(
        any_capture: Capture, analyzed: Callable[..., Run]) -> None:
    """HTTP/1.0 clients get a chunked upstream answer close-delimited; nothing else is."""
    idx = by_uri(analyzed(any_capture.pcap).transactions)
    for row in any_capture.rows:
        tx = idx[row["request_uri"]][0]
        expect_close = (row["server_protocol"] == "HTTP/1.0"
                        and row["request_uri"].startswith("/api/chunked/")
                        and row["request_method"] != "HEAD" and row["status"] not in ("204", "304"))
        assert ("close_delimited" in notes_of(tx)) == expect_close, (row["request_uri"], tx["notes"])


def test_header_and_request_sizes_agree_with_nginx(any_capture: Capture,
                                                   analyzed: Callable[..., Run]) -> None:
    """$bytes_sent - $body_bytes_sent is the final response's head (nginx counts an interim 100 Continue
    in $body_bytes_sent); $request_length is the request's head + body as sent. Heads count the start
    line, the fields and the empty line that ends them.
    """
    idx = by_uri(analyzed(any_capture.pcap).transactions)
    bad_resp, bad_req = [], []
    for row in any_capture.rows:
        tx = idx[row["request_uri"]][0]
        head = int(row["bytes_sent"]) - int(row["body_bytes_sent"])
        if tx["response_header_bytes"] != str(head):
            bad_resp.append((row["request_uri"], tx["response_header_bytes"], head))
        # nginx counts chunked framing in $request_length, and not the body it discards (405)
        if row["http_transfer_encoding"] != "chunked" and row["status"] != "405":
            got = int(tx["request_header_bytes"] or 0) + int(tx["request_body_bytes"] or 0)
            if got != int(row["request_length"]):
                bad_req.append((row["request_uri"], tx["request_header_bytes"], tx["request_body_bytes"],
                                row["request_length"]))
    assert not bad_resp, f"{len(bad_resp)} response heads differ (uri, netrum, nginx): {bad_resp[:5]}"
    assert not bad_req, f"{len(bad_req)} request sizes differ (uri, head, body, nginx): {bad_req[:5]}"


def test_derived_times_match_the_timestamps(any_capture: Capture, analyzed: Callable[..., Run]) -> None:
    """ttfb_ms = response_ts - request_end_ts and duration_ms = response_end_ts - request_ts, in order."""
    for tx in analyzed(any_capture.pcap).transactions:
        req, req_end = float(tx["request_ts"]), float(tx["request_end_ts"])
        resp, resp_end = float(tx["response_ts"]), float(tx["response_end_ts"])
        assert req <= req_end and resp <= resp_end and req <= resp, tx
        assert abs(float(tx["ttfb_ms"]) - (resp - req_end) * 1000) < 0.0015, tx
        assert abs(float(tx["duration_ms"]) - (resp_end - req) * 1000) < 0.0015, tx


def test_depth_follows_nginx_connection_requests(any_capture: Capture, analyzed: Callable[..., Run]) -> None:
    """depth is the 1-based position on the connection: nginx's $connection_requests."""
    idx = by_uri(analyzed(any_capture.pcap).transactions)
    bad = [(r["request_uri"], idx[r["request_uri"]][0]["depth"], r["connection_requests"])
           for r in any_capture.rows if idx[r["request_uri"]][0]["depth"] != r["connection_requests"]]
    assert not bad, f"{len(bad)} depths differ (uri, netrum, nginx): {bad[:5]}"
    ids: dict[str, set[str]] = {}  # nginx $connection -> netrum connection ids
    for r in any_capture.rows:
        ids.setdefault(r["connection"], set()).add(idx[r["request_uri"]][0]["connection"])
    split = {k: v for k, v in ids.items() if len(v) != 1}
    assert not split, f"nginx connections seen as several: {list(split.items())[:5]}"
    assert len({next(iter(v)) for v in ids.values()}) == len(ids), "nginx connections merged into one"
