"""SLO checks: the objective parser, the budget arithmetic, and the CLI (exit code 2 on breach)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from netrum.errors import UsageError
from netrum.report.runs import TxRow
from netrum.report.slo import (
    breached,
    evaluate,
    load_objectives_file,
    objectives_from_options,
    parse_objective,
)

from .synth_service import write_capture


def tx(status: int | None, duration_ms: float | None, method: str = "GET", route: str = "/a") -> TxRow:
    return TxRow("h", method, route, route, status, 1.0, None, None, None, duration_ms, duration_ms, "HTTP/1.1",
                 None, None, "", "", "", "10.0.0.1", 80)


@pytest.mark.parametrize(("text", "kind", "metric", "op", "target", "q"), [
    ("p99 duration < 300ms", "latency", "duration", "<", 300.0, 0.99),
    ("P95 TTFB <= 0.2s", "latency", "ttfb", "<=", 200.0, 0.95),
    ("p99.9 latency<1500 us", "latency", "duration", "<", 1.5, 0.999),
    ("p50 duration < 20", "latency", "duration", "<", 20.0, 0.5),
    ("error rate < 1%", "rate", "error", "<", 0.01, 0.0),
    ("5xx rate <= 0.005", "rate", "5xx", "<=", 0.005, 0.0),
    ("4xx rate<10 %", "rate", "4xx", "<", 0.10, 0.0),
    ("availability >= 99.9%", "availability", "availability", ">=", 0.999, 0.0),
])
def test_parse_objective(text: str, kind: str, metric: str, op: str, target: float, q: float) -> None:
    o = parse_objective(text)
    assert (o.kind, o.metric, o.op) == (kind, metric, op)
    assert (o.target, o.quantile) == (pytest.approx(target), pytest.approx(q))


@pytest.mark.parametrize("text", [
    "p99 duration > 300ms", "p100 duration < 3ms", "p0 duration < 3ms", "error rate < 150%",
    "availability <= 99%", "duration < 300ms", "p99 duration < 300 minutes", "", "error rate",
])
def test_parse_objective_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="objective|percentile|rate"):
        parse_objective(text)


def test_latency_budget() -> None:
    # 200 requests, 3 at or over 300 ms: p99 allows 2 -> 150% of the budget, breached
    rows = [tx(200, 10.0)] * 197 + [tx(200, 300.0), tx(200, 400.0), tx(200, 500.0)]
    r = evaluate(parse_objective("p99 duration < 300ms"), rows)
    assert (r.events, r.bad) == (200, 3)
    assert r.allowed_bad == pytest.approx(2.0) and r.budget_consumed == pytest.approx(1.5)
    assert r.measured is not None and r.measured > 300 and r.compliant is False
    # '<=' lets a value equal to the threshold pass
    r = evaluate(parse_objective("p99 duration <= 300ms"), rows)
    assert r.bad == 2 and r.budget_consumed == pytest.approx(1.0)
    r = evaluate(parse_objective("p95 duration < 300ms"), rows)  # 10 allowed, 3 used
    assert r.budget_consumed == pytest.approx(0.3) and r.compliant is True


def test_rate_and_availability_budget() -> None:
    rows = [tx(200, 5.0)] * 990 + [tx(404, 5.0)] * 4 + [tx(503, 5.0)] * 3 + [tx(None, None)] * 3
    r = evaluate(parse_objective("error rate < 1%"), rows)
    assert (r.events, r.bad) == (997, 7) and r.allowed_bad == pytest.approx(9.97)
    assert r.budget_consumed == pytest.approx(7 / 9.97) and r.compliant is True
    r = evaluate(parse_objective("5xx rate < 0.1%"), rows)
    assert r.bad == 3 and r.budget_consumed == pytest.approx(3 / 0.997) and r.compliant is False
    r = evaluate(parse_objective("availability >= 99.9%"), rows)  # 5xx and no response are bad
    assert (r.events, r.bad) == (1000, 6) and r.budget_consumed == pytest.approx(6.0)
    assert r.measured == pytest.approx(0.994) and r.compliant is False
    r = evaluate(parse_objective("error rate < 0%"), rows)
    assert r.budget_consumed == math.inf
    assert evaluate(parse_objective("error rate <= 0%"), [tx(200, 1.0)]).budget_consumed == 0.0


def test_route_scope_and_no_data() -> None:
    rows = [tx(500, 1.0, "GET", "/a")] * 10 + [tx(200, 1.0, "POST", "/a")] * 10 + [tx(200, 1.0, "GET", "/b")] * 10
    assert evaluate(parse_objective("error rate < 1%", "GET:/a"), rows).bad == 10
    assert evaluate(parse_objective("error rate < 1%", "POST:/a"), rows).bad == 0
    assert evaluate(parse_objective("error rate < 1%", "/a"), rows).events == 20
    none = evaluate(parse_objective("error rate < 1%", "GET:/zzz"), rows)
    assert none.compliant is None and none.budget_consumed is None
    assert not breached([none])


def test_objectives_file_and_options(tmp_path: Path) -> None:
    y = tmp_path / "slo.yaml"
    y.write_text("objectives:\n  - p99 duration < 300ms\n  - objective: error rate < 1%\n    route: GET:/a\n")
    objs = load_objectives_file(y)
    assert [(o.text, o.route) for o in objs] == [("p99 duration < 300ms", None), ("error rate < 1%", "GET:/a")]
    j = tmp_path / "slo.json"
    j.write_text(json.dumps(["availability >= 99%"]))
    assert load_objectives_file(j)[0].kind == "availability"
    both = objectives_from_options(["error rate < 1%"], ["GET:/a", "GET:/b"], j)
    assert [o.route for o in both] == ["GET:/a", "GET:/b", None]
    with pytest.raises(UsageError):
        objectives_from_options([], [], None)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- p99 whatever\n")
    with pytest.raises(UsageError, match="bad.yaml"):
        objectives_from_options([], [], bad)


def test_slo_cli(tmp_path: Path, run_netrum) -> None:  # type: ignore[no-untyped-def]
    cap = write_capture(tmp_path / "s.pcap", seed=5, connections=10, requests_per_connection=30)
    ok = run_netrum(["slo", cap, "--objective", "p99 duration < 1s", "--objective", "5xx rate < 1%",
                     "--out", tmp_path / "ok"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    f = tmp_path / "slo.json"
    f.write_text(json.dumps({"objectives": [{"objective": "p95 duration < 20ms", "route": "POST:/api/login"}]}))
    bad = run_netrum(["slo", cap, "--objective", "p99 duration < 1s", "--file", f, "--out", tmp_path / "bad"])
    assert bad.returncode == 4 and "BREACH" in bad.stdout and "SLO breached" in bad.stderr
    with open(tmp_path / "bad" / "slo.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["scope"], r["compliant"]) for r in rows] == [("*", "1"), ("POST:/api/login", "0")]
    assert float(rows[1]["budget_consumed"]) > 1
    usage = run_netrum(["slo", cap, "--objective", "p99 speed < 1"])
    assert usage.returncode == 2 and usage.stderr.startswith("netrum: error:")
