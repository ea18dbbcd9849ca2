"""apply_routes (netrum.batch): endpoint statistics merged exactly into learned/declared routes, and
transactions.csv rewritten to the same routes in one pass."""
from __future__ import annotations

import csv
from pathlib import Path

from netrum.aggregate.endpoints import EndpointAggregator
from netrum.aggregate.routes import DeclaredRoute, DeclaredRoutes, RouteTemplater
from netrum.batch import AnalyzeOptions, apply_routes
from netrum.export.csvfiles import TransactionWriter
from netrum.records import Transaction


def _tx(i: int, uri: str, host: str | None, method: str | None = "GET", status: int | None = 200) -> Transaction:
    t = 1_700_000_000_000_000_000 + i * 1_000_000
    return Transaction(f"C{i}", 1, "10.0.0.1", 40000 + i, "10.0.0.2", 8080, request_ts_ns=t, request_end_ts_ns=t,
                       response_ts_ns=t + (i + 1) * 1000, response_end_ts_ns=t + (i + 1) * 2000, method=method,
                       host=host, uri=uri, version="HTTP/1.1", status=status, response_body_bytes=i)


def _write(out: Path, txs: list[Transaction]) -> EndpointAggregator:
    templater, agg = RouteTemplater(), EndpointAggregator()
    writer = TransactionWriter(out / "transactions.csv")
    for tx in txs:
        route = templater.route(tx.method, tx.uri)
        writer.write(tx, route)
        agg.add(tx, route)
    writer.close()
    return agg


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(newline="", encoding="utf-8")))


def test_learned_routes_merge_stats_exactly_and_rewrite_transactions(tmp_path: Path) -> None:
    txs = [_tx(i, f"/posts/p{i}q-slug?x=1", None) for i in range(30)]  # no Host: server address keys
    txs += [_tx(100 + i, "/posts/latest", "api.test") for i in range(3)]
    txs.append(_tx(200, "", None, method=None))  # a response without request: left alone
    agg = _write(tmp_path, txs)
    before = sorted(d for st in agg.stats.values() for d in st.duration_ms)
    res = apply_routes(tmp_path, agg, AnalyzeOptions())
    assert set(agg.stats) == {("10.0.0.2:8080", "GET", "/posts/{param}"), ("api.test", "GET", "/posts/latest")}
    merged = agg.stats["10.0.0.2:8080", "GET", "/posts/{param}"]
    assert merged.requests == 30 and merged.response_bytes == sum(range(30))
    assert sorted(merged.duration_ms) == before[:30]
    rows = _rows(tmp_path / "transactions.csv")
    assert [r["route"] for r in rows] == ["/posts/{param}"] * 30 + ["/posts/latest"] * 3 + [""]
    assert [r["uri"].split("?")[0] for r in rows[:30]] == [f"/posts/p{i}q-slug" for i in range(30)]
    report = _rows(tmp_path / "routes.csv")
    assert {(r["route"], r["source"], r["merged_paths"]) for r in report} == {
        ("/posts/{param}", "learned", "30"), ("/posts/latest", "observed", "1")}
    assert not (tmp_path / "api_coverage.csv").exists()
    assert not res.identity


def test_declared_routes_fill_operation_id_and_coverage(tmp_path: Path) -> None:
    agg = _write(tmp_path, [_tx(1, "/users/7", "h"), _tx(2, "/users/me", "h"), _tx(3, "/other", "h")])
    declared = DeclaredRoutes([DeclaredRoute("GET", "/users/{uid}", "getUser", "openapi"),
                               DeclaredRoute("POST", "/users", "createUser", "openapi")])
    apply_routes(tmp_path, agg, AnalyzeOptions(declared_routes=declared))
    rows = _rows(tmp_path / "transactions.csv")
    assert [(r["route"], r["operation_id"]) for r in rows] == [
        ("/users/{uid}", "getUser"), ("/users/{uid}", "getUser"), ("/other", "")]
    cov = {(r["kind"], r["route"], r["requests"]) for r in _rows(tmp_path / "api_coverage.csv")}
    assert cov == {("documented", "/users/{uid}", "2"), ("zombie", "/users", "0"), ("shadow", "/other", "1")}


def test_nothing_to_change_leaves_transactions_untouched(tmp_path: Path) -> None:
    agg = _write(tmp_path, [_tx(1, "/a/1", "h"), _tx(2, "/b", "h")])
    before = (tmp_path / "transactions.csv").stat().st_mtime_ns
    res = apply_routes(tmp_path, agg, AnalyzeOptions())
    assert res.identity and (tmp_path / "transactions.csv").stat().st_mtime_ns == before
    assert (tmp_path / "routes.csv").exists()
