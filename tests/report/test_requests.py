"""export-requests: HAR 1.2 and Postman v2.1, validated against schemas of the specs' required fields."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from netrum.report.requests import (
    RequestFilter,
    exportable,
    har_entry,
    parse_status,
    parse_time,
    postman_url,
    query_items,
    to_har,
    to_postman,
)
from netrum.report.runs import TxRow

from .synth_service import write_capture

SCHEMAS = Path(__file__).resolve().parent / "schemas"


def validate(doc: object, name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)


def tx(uri: str = "/a/1?q=*&page=*", status: int | None = 200, ts: float = 1_790_000_000.0,
       route: str = "/a/{id}", host: str = "api.test:8080") -> TxRow:
    return TxRow(host, "GET", route, uri, status, ts, ts + 0.030, ts + 0.032, ts + 0.001, 29.0, 32.0, "HTTP/1.1",
                 120, 0, "", "text/plain", "curl/8", "10.0.0.80", 8080, 80, 90, "OK", "HTTP/1.1", "10.0.0.1", "C1")


def test_query_items_keep_masks() -> None:
    assert query_items("/s?q=*&page=*") == [("q", "*"), ("page", "*")]
    assert query_items("/cb?*") == [("*", "")]
    assert query_items("/x") == [] and query_items("/x?a=1#frag") == [("a", "1")]


def test_har_entry_timings_from_the_four_timestamps() -> None:
    e = har_entry(tx())
    t = e["timings"]
    assert isinstance(t, dict)
    assert (t["send"], t["wait"], t["receive"]) == (pytest.approx(1.0), pytest.approx(29.0), pytest.approx(2.0))
    assert e["time"] == pytest.approx(32.0)  # = duration_ms
    req = e["request"]
    assert isinstance(req, dict)
    assert req["url"] == "http://api.test:8080/a/1?q=*&page=*"
    assert req["queryString"] == [{"name": "q", "value": "*"}, {"name": "page", "value": "*"}]
    assert {h["name"] for h in req["headers"]} == {"Host", "User-Agent"}
    assert e["startedDateTime"] == "2026-09-21T14:13:20.000Z"
    validate(to_har([tx()]), "har-1.2.schema.json")


def test_postman_url_parts() -> None:
    u = postman_url(tx())
    assert (u["protocol"], u["host"], u["port"], u["path"]) == ("http", ["api", "test"], "8080", ["a", "1"])
    assert u["query"] == [{"key": "q", "value": "*"}, {"key": "page", "value": "*"}]
    absolute = postman_url(tx(uri="http://other.test/p/q?x=*", host="other.test"))
    assert (absolute["raw"], absolute["path"]) == ("http://other.test/p/q?x=*", ["p", "q"])
    doc = to_postman([tx(), tx(route="/b"), tx(uri="/a/2")])
    validate(doc, "postman-2.1.schema.json")
    items = doc["item"]
    assert isinstance(items, list)
    assert [(f["name"], len(f["item"])) for f in items] == [("GET /a/{id}", 2), ("GET /b", 1)]


def test_filters() -> None:
    rows = [tx(status=200, ts=100.0), tx(status=503, ts=200.0), tx(status=404, ts=300.0, route="/b"),
            tx(status=None, ts=400.0)]
    assert len(exportable(rows, RequestFilter())) == 3  # no response: not exportable
    assert [t.status for t in exportable(rows, RequestFilter(statuses=("5xx", "404")))] == [503, 404]
    assert [t.status for t in exportable(rows, RequestFilter(routes=("GET:/b",)))] == [404]
    assert [t.status for t in exportable(rows, RequestFilter(since_s=150.0, until_s=300.0))] == [503]
    assert parse_status("5XX") == "5xx"
    with pytest.raises(ValueError):
        parse_status("600")
    assert parse_time("2026-09-21T14:13:20Z") == parse_time("1790000000") == parse_time("2026-09-21 14:13:20")


def test_export_requests_cli_validates(tmp_path: Path, run_netrum) -> None:  # type: ignore[no-untyped-def]
    cap = write_capture(tmp_path / "s.pcap", seed=7, connections=8, requests_per_connection=25)
    har, pm = tmp_path / "out.har", tmp_path / "out.json"
    proc = run_netrum(["export-requests", cap, "--har", har, "--postman", pm])
    assert proc.returncode == 0, proc.stderr
    assert "200 requests on 4 endpoints exported (of 200" in proc.stdout
    har_doc = json.loads(har.read_text())
    pm_doc = json.loads(pm.read_text())
    validate(har_doc, "har-1.2.schema.json")
    validate(pm_doc, "postman-2.1.schema.json")
    entries = har_doc["log"]["entries"]
    assert len(entries) == 200
    assert sorted(f["name"] for f in pm_doc["item"]) == sorted(
        ["GET /api/users/{id}", "GET /api/orders", "POST /api/login", "GET /api/products/{id}"])
    assert sum(len(f["item"]) for f in pm_doc["item"]) == 200
    orders = [e for e in entries if "/api/orders" in e["request"]["url"]]
    assert orders and all(e["request"]["queryString"] == [{"name": "page", "value": "*"}] for e in orders)
    login = next(e for e in entries if e["request"]["method"] == "POST")
    assert {"name": "Content-Type", "value": "application/json"} in login["request"]["headers"]
    assert "secret" not in har.read_text() and "secret" not in pm.read_text()  # bodies are never recorded
    # every entry's time is the transaction's duration: wait + receive + send
    assert all(e["time"] == pytest.approx(sum(e["timings"][k] for k in ("send", "wait", "receive")), abs=0.002)
               for e in entries)

    only = run_netrum(["export-requests", cap, "--har", har, "--route", "GET:/api/users/{id}", "--status", "4xx"])
    assert only.returncode == 0
    statuses = {e["response"]["status"] for e in json.loads(har.read_text())["log"]["entries"]}
    assert statuses <= {404}
    assert run_netrum(["export-requests", cap]).returncode == 2
    assert run_netrum(["export-requests", cap, "--har", har, "--status", "abc"]).returncode == 2
