"""Service-level objectives checked against a run: parse objectives, measure them globally or per route,
and say how much of each error budget was consumed.

Objective text (case-insensitive, spaces optional around the operator and the unit)::

    p99 duration < 300ms      pNN of duration_ms (or ttfb) under a threshold; units ms, s, us
    p95 ttfb <= 0.2s
    error rate < 1%           4xx+5xx over responses (as endpoints.csv's error_rate)
    5xx rate < 0.5%           also: 4xx rate
    availability >= 99.9%     responses that are not 5xx, over requests (no response counts as bad)

Budget arithmetic (good/bad events, as in the SRE book's error budgets):
- rate objective ``RATE < T``: bad = the events counted by the rate, allowed = T x eligible events;
- ``availability >= A``: bad = 5xx + no response, allowed = (1 - A) x requests;
- latency ``pQ METRIC < X``: bad = requests at or over X (over X for ``<=``), allowed = (1 - Q) x requests
  with a measured latency (p99 allows 1% of the requests to be slow).
``budget_consumed`` = bad / allowed (1.0 = the whole budget; infinite when nothing was allowed and
something was bad). ``compliant`` compares the measured figure itself with the target (the exact
percentile, numpy's interpolation; the rate); it can differ from ``budget_consumed <= 1`` only within one
request's rank around the percentile for latency objectives.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from netrum.aggregate.endpoints import percentile
from netrum.errors import UsageError
from netrum.export.csvfiles import AtomicCsv
from netrum.report.runs import TxRow

_UNITS_MS = {"ms": 1.0, "s": 1000.0, "us": 0.001, "": 1.0}
_LATENCY_RE = re.compile(
    r"^\s*p(?P<q>\d{1,2}(?:\.\d+)?)\s+(?P<metric>duration|latency|ttfb)\s*(?P<op><=|<)\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|us)?\s*$", re.IGNORECASE)
_RATE_RE = re.compile(
    r"^\s*(?P<metric>error|5xx|4xx)\s+rate\s*(?P<op><=|<)\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<pct>%)?\s*$",
    re.IGNORECASE)
_AVAIL_RE = re.compile(
    r"^\s*availability\s*(?P<op>>=|>)\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<pct>%)?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Objective:
    text: str  # as given
    kind: str  # "latency", "rate" or "availability"
    metric: str  # "duration" / "ttfb"; "error" / "5xx" / "4xx"; "availability"
    op: str  # "<", "<=", ">", ">="
    target: float  # ms for latency; a fraction (0.01) for rates and availability
    quantile: float = 0.0  # latency only: 0.99 for p99
    route: str | None = None  # "METHOD:/route", "/route" (any method) or None (every request)

    @property
    def allowed_bad_fraction(self) -> float:
        if self.kind == "latency":
            return 1.0 - self.quantile
        if self.kind == "availability":
            return 1.0 - self.target
        return self.target


def parse_objective(text: str, route: str | None = None) -> Objective:
    """Parse one objective (grammar in the module doc); ValueError says what is wrong."""
    m = _LATENCY_RE.match(text)
    if m:
        q = float(m["q"]) / 100.0
        if not 0.0 < q < 1.0:
            raise ValueError(f"{text!r}: percentile must be between p0 and p100 exclusive")
        metric = "ttfb" if m["metric"].lower() == "ttfb" else "duration"
        unit = (m["unit"] or "").lower()
        return Objective(text, "latency", metric, m["op"], float(m["value"]) * _UNITS_MS[unit], q, route)
    m = _RATE_RE.match(text)
    if m:
        return Objective(text, "rate", m["metric"].lower(), m["op"], _fraction(text, m["value"], m["pct"]),
                         route=route)
    m = _AVAIL_RE.match(text)
    if m:
        return Objective(text, "availability", "availability", m["op"], _fraction(text, m["value"], m["pct"]),
                         route=route)
    raise ValueError(f"{text!r}: not an objective (e.g. 'p99 duration < 300ms', 'error rate < 1%', "
                     "'availability >= 99.9%')")


def _fraction(text: str, value: str, pct: str | None) -> float:
    v = float(value) / 100.0 if pct else float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{text!r}: a rate is a fraction (0.01) or a percentage (1%)")
    return v


def load_objectives_file(path: Path) -> list[Objective]:
    """A JSON or YAML file: a list, or {"objectives": [...]}, of strings or {objective, route} mappings."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        doc = json.loads(text)
    else:
        import yaml

        doc = yaml.safe_load(text)
    if isinstance(doc, dict):
        doc = doc.get("objectives")
    if not isinstance(doc, list):
        raise ValueError(  # noqa: TRY004 - a user's file, reported as a usage error like any bad value
            "expected a list of objectives (or a mapping with an 'objectives' list)")
    out = []
    for item in doc:
        if isinstance(item, str):
            out.append(parse_objective(item))
        elif isinstance(item, dict) and isinstance(item.get("objective"), str):
            route = item.get("route")
            out.append(parse_objective(item["objective"], str(route) if route is not None else None))
        else:
            raise ValueError(f"not an objective: {item!r}")  # noqa: TRY004 - see above
    return out


def matches(route_spec: str | None, tx: TxRow) -> bool:
    if route_spec is None:
        return True
    method, sep, route = route_spec.partition(":")
    if not sep or method.startswith("/"):
        return tx.route == route_spec
    return tx.method.upper() == method.upper() and tx.route == route


@dataclass(frozen=True, slots=True)
class SloResult:
    objective: Objective
    events: int  # eligible events (requests, responses, or requests with a latency)
    bad: int
    measured: float | None  # ms for latency, a fraction otherwise; None without events
    compliant: bool | None  # None: no events
    allowed_bad: float
    budget_consumed: float | None

    @property
    def scope(self) -> str:
        return self.objective.route or "*"


def _cmp(op: str, a: float, b: float) -> bool:
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def evaluate(objective: Objective, transactions: Iterable[TxRow]) -> SloResult:
    rows = [t for t in transactions if matches(objective.route, t)]
    o = objective
    measured: float | None
    if o.kind == "latency":
        values = sorted(v for t in rows if (v := (t.ttfb_ms if o.metric == "ttfb" else t.duration_ms)) is not None)
        events = len(values)
        if o.op == "<":
            bad = sum(1 for v in values if v >= o.target)
        else:
            bad = sum(1 for v in values if v > o.target)
        measured = percentile(values, o.quantile) if values else None
    elif o.kind == "rate":
        responded = [t.status for t in rows if t.status is not None]
        events = len(responded)
        lo, hi = {"error": (400, 600), "5xx": (500, 600), "4xx": (400, 500)}[o.metric]
        bad = sum(1 for s in responded if lo <= s < hi)
        measured = bad / events if events else None
    else:
        events = len(rows)
        bad = sum(1 for t in rows if t.status is None or t.status >= 500)
        measured = (events - bad) / events if events else None
    allowed = o.allowed_bad_fraction * events
    if events == 0:
        consumed = None
    elif allowed > 0:
        consumed = bad / allowed
    else:
        consumed = 0.0 if bad == 0 else math.inf
    compliant = None if measured is None else _cmp(o.op, measured, o.target)
    return SloResult(o, events, bad, measured, compliant, allowed, consumed)


def evaluate_all(objectives: Sequence[Objective], transactions: Sequence[TxRow]) -> list[SloResult]:
    return [evaluate(o, transactions) for o in objectives]


SLO_COLUMNS = ("scope", "objective", "kind", "target", "measured", "compliant", "events", "bad_events",
               "allowed_bad_events", "budget_consumed")


def _measured_text(r: SloResult, unit: bool = False) -> str:
    if r.measured is None:
        return ""
    if r.objective.kind == "latency":
        return f"{r.measured:.3f}" + (" ms" if unit else "")
    return f"{100 * r.measured:.4f}%" if unit else f"{r.measured:.6f}"


def _budget_text(r: SloResult) -> str:
    if r.budget_consumed is None:
        return ""
    return "inf" if math.isinf(r.budget_consumed) else f"{r.budget_consumed:.4f}"


def write_slo_csv(path: Path, results: Sequence[SloResult]) -> None:
    out = AtomicCsv(path, SLO_COLUMNS)
    for r in results:
        o = r.objective
        out.writerow([r.scope, o.text, o.kind, f"{o.target:g}", _measured_text(r),
                      "" if r.compliant is None else str(int(r.compliant)), str(r.events), str(r.bad),
                      f"{r.allowed_bad:.3f}", _budget_text(r)])
    out.close()


def render_table(results: Sequence[SloResult]) -> str:
    lines = [("status", "scope", "objective", "measured", "bad/allowed", "budget used")]
    for r in results:
        status = "NO DATA" if r.compliant is None else ("ok" if r.compliant else "BREACH")
        used = ("" if r.budget_consumed is None else
                "inf" if math.isinf(r.budget_consumed) else f"{100 * r.budget_consumed:.1f}%")
        lines.append((status, r.scope, r.objective.text, _measured_text(r, unit=True),
                      f"{r.bad}/{r.allowed_bad:.1f}", used))
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines)


def breached(results: Iterable[SloResult]) -> bool:
    return any(r.compliant is False for r in results)


def objectives_from_options(texts: Sequence[str], routes: Sequence[str], file: Path | None) -> list[Objective]:
    """--objective texts, applied to every --route (or globally without one), then the file's objectives.

    Raises UsageError (exit 2) on a bad objective or file."""
    out: list[Objective] = []
    scopes: list[str | None] = list(routes) or [None]
    try:
        for text in texts:
            for route in scopes:
                out.append(parse_objective(text, route))
    except ValueError as e:
        raise UsageError(str(e)) from e
    if file is not None:
        try:
            out.extend(load_objectives_file(file))
        except Exception as e:  # unreadable file, JSON/YAML syntax, bad objective: one line, exit 2
            raise UsageError(f"{file}: {e}") from e
    if not out:
        raise UsageError("no objective: give --objective or --file")
    return out
