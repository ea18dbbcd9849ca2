"""Routes against the ground truth of a real API: learned templates and OpenAPI operations.

scripts/make_api_capture.py drove the FastAPI service of scripts/api_service.py through real sockets
while tcpdump recorded it, and wrote the route template and operationId of every request it sent. Each
test runs on the committed pcaps/api-routes.pcap (600 requests, no root needed) and on a 3,000-request
capture made in this session (skipped without root/tcpdump/fastapi, unless CI is set: then it fails).

- no spec: learned templates equal the declared ones (placeholder names aside) for >= 95% of requests,
  and the literal siblings (/v1/users/me, /v1/articles/popular) are never swallowed by a placeholder;
- with the service's own OpenAPI document: 100% of requests carry the right operationId and declared
  template, the two undocumented routes are reported as shadow endpoints with their exact counts;
- --workers 2 writes the same files as one process.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, RunNetrum

SCRIPTS = REPO_ROOT / "scripts"
COMMITTED = REPO_ROOT / "pcaps" / "api-routes.pcap"
GENERATED_REQUESTS = 3000
LITERAL_SIBLINGS = {"/v1/users/me", "/v1/articles/popular", "/v2/search", "/v1/status"}


@dataclass(frozen=True)
class ApiCapture:
    pcap: Path
    openapi: Path
    truth: list[dict[str, object]]


def _load(pcap: Path, openapi: Path, truth: Path) -> ApiCapture:
    rows = [json.loads(line) for line in truth.read_text(encoding="utf-8").splitlines() if line]
    return ApiCapture(pcap, openapi, rows)


def _tools_or_skip() -> None:
    problems = [] if shutil.which("tcpdump") or Path("/usr/sbin/tcpdump").exists() else ["no tcpdump"]
    if os.geteuid() != 0:
        problems.append("not running as root (tcpdump on lo)")
    problems += [f"python package {m} missing" for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if problems:
        msg = "cannot make the API capture: " + "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI is set: scripts/test installs them and runs as root)")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def generated_api(tmp_path_factory: pytest.TempPathFactory) -> ApiCapture:
    _tools_or_skip()
    d = tmp_path_factory.mktemp("api-capture")
    pcap, spec, truth = d / "api.pcap", d / "api.openapi.json", d / "api.truth.jsonl"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "make_api_capture.py"), str(pcap), "--requests",
                           str(GENERATED_REQUESTS), "--seed", "7", "--openapi", str(spec), "--truth", str(truth)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"make_api_capture.py failed ({proc.returncode}):\n{proc.stderr}"
    return _load(pcap, spec, truth)


@pytest.fixture(params=["committed", "generated"], scope="session")
def api_capture(request: pytest.FixtureRequest) -> ApiCapture:
    if request.param == "committed":
        return _load(COMMITTED, COMMITTED.with_suffix(".openapi.json"), COMMITTED.with_suffix(".truth.jsonl"))
    capture: ApiCapture = request.getfixturevalue("generated_api")
    return capture


Run = dict[str, list[dict[str, str]]]


@pytest.fixture(scope="session")
def api_run(tmp_path_factory: pytest.TempPathFactory, run_netrum: RunNetrum) -> Callable[..., Run]:
    """api_run(capture, *options) -> {file stem: rows} of netrum's run, cached for the session."""
    cache: dict[tuple[str, ...], Run] = {}
    base = tmp_path_factory.mktemp("api-runs")

    def get(capture: ApiCapture, *options: str) -> Run:
        key = (str(capture.pcap), *options)
        if key not in cache:
            out = base / f"run{len(cache)}"
            args = [a.replace("SPEC", str(capture.openapi)) for a in options]
            proc = run_netrum(["analyze", capture.pcap, "--out", out, "--quiet", *args])
            assert proc.returncode == 0, proc.stderr
            cache[key] = {p.stem: list(csv.DictReader(p.open(newline="", encoding="utf-8")))
                          for p in out.glob("*.csv")}
            cache[key]["_files"] = [{"name": p.name, "text": p.read_text(encoding="utf-8")}
                                    for p in sorted(out.glob("*.csv"))]
        return cache[key]

    return get


def _shape(route: str) -> str:
    """A template with its placeholder names dropped and one trailing slash ignored."""
    return re.sub(r"\{[^{}/]*\}", "{}", route.rstrip("/") or "/")


def _paired(capture: ApiCapture, run: Run) -> list[tuple[dict[str, object], dict[str, str]]]:
    """Each request sent with its transaction: the client sent them one after another, so the capture's
    order is the sending order; methods and paths must agree one to one."""
    txs = sorted(run["transactions"], key=lambda t: t["request_ts"])
    assert len(txs) == len(capture.truth)
    for sent, tx in zip(capture.truth, txs):
        assert (tx["method"], tx["uri"].split("?")[0]) == (sent["method"], str(sent["uri"]).split("?")[0])
    return list(zip(capture.truth, txs))


def test_capture_exercises_the_routes(api_capture: ApiCapture) -> None:
    truth = api_capture.truth
    routes = Counter((r["method"], r["route"]) for r in truth)
    assert len(routes) == 18, sorted(routes)
    user_ids = {str(r["uri"]).split("/")[3] for r in truth if str(r["route"]).startswith("/v1/users/{user_id}")}
    slugs = {str(r["uri"]).split("/")[3] for r in truth if str(r["route"]).startswith("/v1/articles/{slug}")}
    assert len(user_ids) >= 100 and len(slugs) >= 50
    assert any("%C3%A9" in str(r["uri"]) for r in truth)  # percent-encoded UTF-8 slugs
    assert any(str(r["uri"]).endswith("/") for r in truth)  # trailing slashes
    if len(truth) >= GENERATED_REQUESTS:
        assert len(user_ids) >= 500


def test_learned_routes_match_the_declared_ones(api_capture: ApiCapture, api_run: Callable[..., Run]) -> None:
    run = api_run(api_capture)
    pairs = _paired(api_capture, run)
    good = sum(_shape(tx["route"]) == _shape(str(sent["route"])) for sent, tx in pairs)
    bad = Counter((str(sent["route"]), tx["route"]) for sent, tx in pairs
                  if _shape(tx["route"]) != _shape(str(sent["route"])))
    assert good / len(pairs) >= 0.95, (good, len(pairs), bad.most_common(10))
    for sent, tx in pairs:  # no literal sibling swallowed by a placeholder
        if sent["route"] in LITERAL_SIBLINGS:
            assert tx["route"] == sent["route"], (sent, tx["route"])
    routes = {(r["method"], r["route"]) for r in run["endpoints"]}
    assert ("GET", "/v1/articles/{param}") in routes and ("GET", "/v1/users/me") in routes
    assert len(run["endpoints"]) <= 25  # 18 declared routes (+ trailing-slash variants), not one per id
    learned = [r for r in run["routes"] if r["source"] == "learned"]
    assert learned and all(int(r["merged_paths"]) > 1 and r["examples"] for r in learned)
    assert sum(int(r["requests"]) for r in run["routes"]) == len(pairs)


def test_openapi_maps_every_request_to_its_operation(api_capture: ApiCapture, api_run: Callable[..., Run]) -> None:
    run = api_run(api_capture, "--openapi", "SPEC")
    pairs = _paired(api_capture, run)
    wrong = [(sent["method"], sent["uri"], sent["operation_id"], tx["operation_id"], tx["route"])
             for sent, tx in pairs if (tx["operation_id"] or None) != sent["operation_id"]
             or (sent["operation_id"] and _shape(tx["route"]) != _shape(str(sent["route"])))]
    assert not wrong, wrong[:10]
    for sent, tx in pairs:  # the declared template itself, names included
        if sent["operation_id"] and not str(sent["uri"]).split("?")[0].endswith("/"):
            assert tx["route"] == sent["route"]
    ops = {(r["method"], r["route"]): r["operation_id"] for r in run["endpoints"]}
    assert ops["GET", "/v1/users/me"] == "getCurrentUser" and ops["GET", "/v1/users/{user_id}"] == "getUser"
    assert ops["PATCH", "/v1/users/{user_id}"] == "updateUser"


def test_undocumented_routes_are_reported_as_shadow(api_capture: ApiCapture, api_run: Callable[..., Run]) -> None:
    run = api_run(api_capture, "--openapi", "SPEC")
    cov = run["api_coverage"]
    shadow = {(r["method"], r["route"]): int(r["requests"]) for r in cov if r["kind"] == "shadow"}
    sent = Counter((str(r["method"]), _shape(str(r["route"]))) for r in api_capture.truth if r["operation_id"] is None)
    assert {(m, _shape(r)): n for (m, r), n in shadow.items()} == dict(sent)
    documented = {r["operation_id"]: int(r["requests"]) for r in cov if r["kind"] in ("documented", "zombie")}
    expect = Counter(str(r["operation_id"]) for r in api_capture.truth if r["operation_id"] is not None)
    assert documented == {op: expect.get(op, 0) for op in documented}
    assert len(documented) == 16


def test_workers_give_the_same_routes(api_capture: ApiCapture, api_run: Callable[..., Run]) -> None:
    one = api_run(api_capture, "--openapi", "SPEC")
    many = api_run(api_capture, "--openapi", "SPEC", "--workers", "2")
    for a, b in zip(one["_files"], many["_files"]):
        assert a["name"] == b["name"]
        if a["name"] != "health.csv":
            assert a["text"] == b["text"], a["name"]
    one = api_run(api_capture)
    many = api_run(api_capture, "--workers", "3")
    assert [f for f in one["_files"] if f["name"] != "health.csv"] == \
        [f for f in many["_files"] if f["name"] != "health.csv"]


def test_routes_file_takes_precedence_over_learning(tmp_path: Path, run_netrum: RunNetrum) -> None:
    routes = tmp_path / "routes.txt"
    routes.write_text("# the articles only\nGET /v1/articles/{slug} article\n/v1/articles/{slug}/comments\n")
    out = tmp_path / "out"
    proc = run_netrum(["analyze", COMMITTED, "--out", out, "--routes", routes])
    assert proc.returncode == 0, proc.stderr
    assert "API coverage: 2 of 2 documented operations seen" in proc.stdout
    assert "shadow  GET /v1/users/{id}  127.0.0.1:" in proc.stdout
    txs = list(csv.DictReader((out / "transactions.csv").open(newline="", encoding="utf-8")))
    popular = [t for t in txs if t["uri"].split("?")[0] == "/v1/articles/popular"]
    assert popular and all(t["route"] == "/v1/articles/{slug}" and t["operation_id"] == "article"
                           for t in popular)  # declared: precedence over the learned literal
    assert any(t["route"] == "/v1/users/{id}" and not t["operation_id"] for t in txs)  # the rest: learned
    cov = list(csv.DictReader((out / "api_coverage.csv").open(newline="", encoding="utf-8")))
    assert {r["kind"] for r in cov} == {"documented", "shadow"}


def test_route_budget_on_the_command_line(tmp_path: Path, run_netrum: RunNetrum) -> None:
    out = tmp_path / "out"
    proc = run_netrum(["analyze", COMMITTED, "--out", out, "--route-budget", "5"])
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^routes: .*\d+ routes \(\d+ requests\) over --route-budget went to \{overflow\}",
                     proc.stdout, re.MULTILINE), proc.stdout
    eps = list(csv.DictReader((out / "endpoints.csv").open(newline="", encoding="utf-8")))
    assert len(eps) <= 5 and any(r["route"] == "{overflow}" for r in eps)
    txs = list(csv.DictReader((out / "transactions.csv").open(newline="", encoding="utf-8")))
    assert sum(int(r["requests"]) for r in eps) == len(txs)
    assert {(t["method"], t["route"]) for t in txs} == {(r["method"], r["route"]) for r in eps}


@pytest.mark.parametrize("flag, text, message", [
    ("--routes", "GET users\n", "line 1"),
    ("--openapi", "{oops", "not a valid JSON document"),
])
def test_bad_declarations_are_usage_errors(tmp_path: Path, run_netrum: RunNetrum, flag: str, text: str,
                                           message: str) -> None:
    f = tmp_path / ("spec.json" if flag == "--openapi" else "routes.txt")
    f.write_text(text)
    proc = run_netrum(["analyze", COMMITTED, "--out", tmp_path / "out", flag, f])
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
