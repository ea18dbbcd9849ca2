"""Replaying the exported requests against the test service reproduces the same routes and statuses (issue 5).

pcaps/api-routes.pcap (600 requests to scripts/api_service.py, 18 routes, statuses 200/201/202/204/307) is
analysed with the service's OpenAPI document and ``--keep-query-values`` (so the replayed queries are the
ones that were sent; with masked values this capture would still give the same statuses, as its queries,
``fields=`` and ``q=``, are untyped strings), exported with ``netrum export-requests`` as HAR 1.2 and as a
Postman collection v2.1, and every exported request is sent with http.client to a fresh uvicorn running
the same service on 127.0.0.1. Each replayed response must carry the recorded status, and netrum's route
for the replayed request (rule-based templating, then the same OpenAPI matcher and learning as
``analyze``: netrum.aggregate.routes.resolve_routes) must be the recorded route.

The service is deterministic (no random failures or delays), so no flag is needed for the replay. Request
bodies are never recorded: a POST/PATCH is replayed with a JSON filler of the recorded ``bodySize`` (HAR)
or without a body (Postman has no size); the service's handlers do not read bodies.
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from netrum.aggregate.openapi import load_openapi
from netrum.aggregate.routes import RouteTemplater, resolve_routes
from tests.conftest import REPO_ROOT, RunNetrum

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

PCAP = REPO_ROOT / "pcaps" / "api-routes.pcap"
SPEC = PCAP.with_suffix(".openapi.json")
STARTUP_S = 20.0
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SKIP_HEADERS = frozenset({"host", "content-length"})


@dataclass(frozen=True)
class Recorded:
    """One exported request: what to send, and what the capture says happened."""

    method: str
    target: str  # path and query, as recorded (percent-encoding untouched)
    host: str  # the recorded Host (only groups routes, as in analyze)
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    status: int
    route: str


@dataclass(frozen=True)
class Exported:
    har: dict[str, object]
    postman: dict[str, object]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, run_netrum: RunNetrum) -> Exported:
    d = tmp_path_factory.mktemp("replay")
    run, har, pm = d / "run", d / "requests.har", d / "requests.postman.json"
    proc = run_netrum(["analyze", PCAP, "--out", run, "--quiet", "--openapi", SPEC, "--keep-query-values"])
    assert proc.returncode == 0, proc.stderr
    proc = run_netrum(["export-requests", run, "--har", har, "--postman", pm])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("600 requests on 18 endpoints exported"), proc.stdout
    return Exported(json.loads(har.read_text(encoding="utf-8")), json.loads(pm.read_text(encoding="utf-8")))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _status_of(port: int, method: str, target: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, target)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def service() -> Iterator[int]:
    """scripts/api_service.py under uvicorn on a free port of 127.0.0.1; yields the port."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(REPO_ROOT / "scripts"), "api_service:app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                pytest.fail(f"uvicorn exited with {proc.returncode}:\n{err}")
            try:
                if _status_of(port, "GET", "/v1/status") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the test service did not answer on port {port} within {STARTUP_S} s")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()


def _target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _filler(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (``size`` spaces when too small for braces)."""
    return b"{" + b" " * (size - 2) + b"}" if size >= 2 else b" " * max(size, 0)


def from_har(doc: dict[str, object]) -> list[Recorded]:
    log = doc["log"]
    assert isinstance(log, dict)
    out = []
    for e in log["entries"]:
        req, resp = e["request"], e["response"]
        m = re.fullmatch(r"route (\S+) (.+)", e["comment"])
        assert m and m.group(1) == req["method"], e["comment"]
        headers = tuple((h["name"], h["value"]) for h in req["headers"] if h["name"].lower() not in SKIP_HEADERS)
        host = next((h["value"] for h in req["headers"] if h["name"].lower() == "host"), "")
        body = None
        if req["method"] in BODY_METHODS:
            text = (req.get("postData") or {}).get("text")
            body = text.encode("utf-8") if text is not None else _filler(req["bodySize"])
        out.append(Recorded(req["method"], _target(req["url"]), host, headers, body, resp["status"], m.group(2)))
    return out


def from_postman(doc: dict[str, object]) -> list[Recorded]:
    folders = doc["item"]
    assert isinstance(folders, list)
    out = []
    for folder in folders:
        method, route = folder["name"].split(" ", 1)  # "METHOD route" (one host: no "(host)" suffix)
        for item in folder["item"]:
            req = item["request"]
            assert req["method"] == method
            m = re.search(r": status (\d{3}),", req["description"])
            assert m, req["description"]
            url = req["url"]
            headers = tuple((h["key"], h["value"]) for h in req["header"] if h["key"].lower() not in SKIP_HEADERS)
            out.append(Recorded(method, _target(url["raw"]), urlsplit(url["raw"]).netloc, headers, None,
                                int(m.group(1)), route))
    return out


def replay(port: int, requests: list[Recorded]) -> list[int]:
    """Send each request in order on keep-alive connections; the statuses received."""
    statuses = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for r in requests:
            conn.request(r.method, r.target, body=r.body, headers=dict(r.headers))
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
            if resp.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    finally:
        conn.close()
    return statuses


def routes_of(requests: list[Recorded]) -> list[str]:
    """netrum's route of each request as analyze computes it: rule-based route, then the declared
    (OpenAPI) routes, then learning over the rest of the same requests."""
    templater = RouteTemplater()
    keys = [(r.host, r.method, templater.route(r.method, r.target)) for r in requests]
    res = resolve_routes(dict(Counter(keys)), load_openapi(SPEC))
    return [res.mapping[k][0] for k in keys]


def _check(port: int, requests: list[Recorded]) -> None:
    assert len(requests) == 600
    assert len({(r.method, r.route) for r in requests}) == 18
    assert set(Counter(r.status for r in requests)) == {200, 201, 202, 204, 307}
    statuses = replay(port, requests)
    wrong = [(r.method, r.target, r.status, got) for r, got in zip(requests, statuses) if got != r.status]
    assert not wrong, (len(wrong), wrong[:10])
    wrong_routes = [(r.method, r.target, r.route, got) for r, got in zip(requests, routes_of(requests))
                    if got != r.route]
    assert not wrong_routes, (len(wrong_routes), wrong_routes[:10])


def test_har_replay_reproduces_routes_and_statuses(exported: Exported, service: int) -> None:
    requests = from_har(exported.har)
    assert any("?" in r.target and "*" not in r.target for r in requests)  # real query values
    assert any("%C3%A9" in r.target for r in requests)  # percent-encoding sent as recorded
    assert sum(r.body is not None for r in requests) == sum(r.method in BODY_METHODS for r in requests) > 0
    _check(service, requests)


def test_postman_replay_reproduces_routes_and_statuses(exported: Exported, service: int) -> None:
    requests = from_postman(exported.postman)
    _check(service, requests)
    assert sorted((r.method, r.target, r.status) for r in requests) == \
        sorted((r.method, r.target, r.status) for r in from_har(exported.har))


def test_replay_detects_a_different_status(service: int) -> None:
    """The check can fail: a request recorded with a status the service does not give is reported."""
    bad = Recorded("GET", "/v1/users/not-a-number", "h", (), None, 200, "/v1/users/{user_id}")
    assert replay(service, [bad]) == [422]
    assert routes_of([bad]) != [bad.route]  # and a non-integer id is not the declared integer route
