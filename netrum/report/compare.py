"""Canary comparison of two runs, per endpoint (host, method, route): is the candidate slower or does it
fail more than the baseline?

Latency (``duration_ms``, what the client waited): median and p95 difference, Mann-Whitney U test
(two-sided, scipy.stats.mannwhitneyu: no normality assumed, latency is skewed) and Cliff's delta as the
effect size (``2U/(n1*n2) - 1`` with U the candidate's statistic: +1 every candidate request slower than
every baseline one, 0 no shift). Errors (4xx+5xx over responses): a two-proportion z-test with the pooled
proportion, or Fisher's exact test when an expected count is under 5 (the z approximation is poor there).

Verdict per endpoint, under ``Thresholds``:
- ``not enough data``: fewer than ``min_requests`` requests on either side (or the endpoint is on one
  side only);
- ``worse``: latency shifted up significantly (p < alpha) by at least ``min_shift_ms`` AND
  ``min_shift_pct`` percent of the baseline median, or the error rate rose significantly by more than
  ``max_error_increase``;
- ``better``: the mirror image on either figure, and nothing worse;
- ``same`` otherwise.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from netrum.aggregate.endpoints import percentile
from netrum.export.csvfiles import AtomicCsv
from netrum.report.runs import TxRow

WORSE, BETTER, SAME, NOT_ENOUGH = "worse", "better", "same", "not enough data"
FISHER_MIN_EXPECTED = 5.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    alpha: float = 0.01
    min_shift_ms: float = 5.0
    min_shift_pct: float = 10.0
    min_requests: int = 20
    max_error_increase: float = 0.01


@dataclass(frozen=True, slots=True)
class Side:
    requests: int
    responses: int
    errors: int
    durations_ms: tuple[float, ...]  # sorted

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.responses if self.responses else None

    def pct(self, q: float) -> float | None:
        return percentile(self.durations_ms, q) if self.durations_ms else None


@dataclass(frozen=True, slots=True)
class EndpointComparison:
    host: str
    method: str
    route: str
    base: Side
    cand: Side
    median_shift_ms: float | None
    median_shift_pct: float | None
    p95_shift_ms: float | None
    latency_p: float | None
    cliffs_delta: float | None
    error_rate_change: float | None
    error_p: float | None
    error_test: str  # "z", "fisher" or ""
    latency_verdict: str
    error_verdict: str
    verdict: str


COMPARE_COLUMNS = (
    "host", "method", "route", "verdict", "latency_verdict", "error_verdict",
    "base_requests", "cand_requests", "base_p50_ms", "cand_p50_ms", "median_shift_ms", "median_shift_pct",
    "base_p95_ms", "cand_p95_ms", "p95_shift_ms", "mannwhitney_p", "cliffs_delta",
    "base_error_rate", "cand_error_rate", "error_rate_change", "error_test", "error_p",
)


def side_of(rows: Iterable[TxRow]) -> Side:
    requests = responses = errors = 0
    durations: list[float] = []
    for r in rows:
        requests += 1
        if r.status is not None:
            responses += 1
            if r.status >= 400:
                errors += 1
        if r.duration_ms is not None:
            durations.append(r.duration_ms)
    return Side(requests, responses, errors, tuple(sorted(durations)))


def latency_test(base: tuple[float, ...], cand: tuple[float, ...]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U p-value and Cliff's delta (candidate vs baseline)."""
    from scipy.stats import mannwhitneyu

    res = mannwhitneyu(cand, base, alternative="two-sided")
    u = float(res.statistic)
    delta = 2.0 * u / (len(cand) * len(base)) - 1.0
    return float(res.pvalue), delta


def proportion_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, str]:
    """Two-sided p-value that the two proportions x1/n1 and x2/n2 differ: the pooled two-proportion z-test,
    or Fisher's exact test when any expected cell count is under 5."""
    pooled = (x1 + x2) / (n1 + n2)
    expected = (n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if min(expected) < FISHER_MIN_EXPECTED:
        from scipy.stats import fisher_exact

        _odds, p = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="two-sided")
        return float(p), "fisher"
    from scipy.stats import norm

    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x2 / n2 - x1 / n1) / se
    return float(2 * norm.sf(abs(z))), "z"


def compare_endpoint(key: tuple[str, str, str], base: Side, cand: Side, t: Thresholds) -> EndpointComparison:
    b50, c50, b95, c95 = base.pct(0.5), cand.pct(0.5), base.pct(0.95), cand.pct(0.95)
    shift = c50 - b50 if b50 is not None and c50 is not None else None
    shift_pct = 100.0 * shift / b50 if shift is not None and b50 else None
    p95_shift = c95 - b95 if b95 is not None and c95 is not None else None
    lat_p = delta = err_change = err_p = None
    err_test = ""
    enough = base.requests >= t.min_requests and cand.requests >= t.min_requests
    lat_verdict = err_verdict = NOT_ENOUGH
    if enough and len(base.durations_ms) >= t.min_requests and len(cand.durations_ms) >= t.min_requests:
        lat_p, delta = latency_test(base.durations_ms, cand.durations_ms)
        lat_verdict = SAME
        assert shift is not None
        if lat_p < t.alpha and abs(shift) >= t.min_shift_ms and (
                shift_pct is None or abs(shift_pct) >= t.min_shift_pct):
            lat_verdict = WORSE if shift > 0 else BETTER
    if enough and base.responses and cand.responses:
        err_change = cand.errors / cand.responses - base.errors / base.responses
        if base.errors or cand.errors:
            err_p, err_test = proportion_test(base.errors, base.responses, cand.errors, cand.responses)
        err_verdict = SAME
        if err_p is not None and err_p < t.alpha and abs(err_change) > t.max_error_increase:
            err_verdict = WORSE if err_change > 0 else BETTER
    verdicts = (lat_verdict, err_verdict)
    if WORSE in verdicts:
        verdict = WORSE
    elif BETTER in verdicts:
        verdict = BETTER
    elif SAME in verdicts:
        verdict = SAME
    else:
        verdict = NOT_ENOUGH
    return EndpointComparison(*key, base, cand, shift, shift_pct, p95_shift, lat_p, delta, err_change, err_p,
                              err_test, lat_verdict, err_verdict, verdict)


def compare_runs(base: Iterable[TxRow], cand: Iterable[TxRow], t: Thresholds = Thresholds()
                 ) -> list[EndpointComparison]:
    """One comparison per endpoint seen on either side: worse first, then by baseline traffic."""
    groups: dict[tuple[str, str, str], tuple[list[TxRow], list[TxRow]]] = defaultdict(lambda: ([], []))
    for r in base:
        groups[r.endpoint][0].append(r)
    for r in cand:
        groups[r.endpoint][1].append(r)
    out = [compare_endpoint(k, side_of(b), side_of(c), t) for k, (b, c) in groups.items()]
    order = {WORSE: 0, BETTER: 1, SAME: 2, NOT_ENOUGH: 3}
    out.sort(key=lambda c: (order[c.verdict], -c.base.requests, -c.cand.requests, c.host, c.method, c.route))
    return out


def _num(v: float | None, fmt: str = ".3f") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def row_of(c: EndpointComparison) -> list[str]:
    return [
        c.host, c.method, c.route, c.verdict, c.latency_verdict, c.error_verdict,
        str(c.base.requests), str(c.cand.requests), _num(c.base.pct(0.5)), _num(c.cand.pct(0.5)),
        _num(c.median_shift_ms), _num(c.median_shift_pct, ".1f"), _num(c.base.pct(0.95)), _num(c.cand.pct(0.95)),
        _num(c.p95_shift_ms), _num(c.latency_p, ".3g"), _num(c.cliffs_delta, ".3f"),
        _num(c.base.error_rate, ".6f"), _num(c.cand.error_rate, ".6f"), _num(c.error_rate_change, ".6f"),
        c.error_test, _num(c.error_p, ".3g"),
    ]


def write_compare_csv(path: Path, comparisons: list[EndpointComparison]) -> None:
    out = AtomicCsv(path, COMPARE_COLUMNS)
    for c in comparisons:
        out.writerow(row_of(c))
    out.close()


def render_table(comparisons: list[EndpointComparison], top: int | None = None) -> str:
    """The terminal table: one line per endpoint, worse first."""
    head = ("verdict", "endpoint", "reqs b/c", "p50 b->c ms", "shift", "p95 shift", "p(U)", "delta",
            "err b->c", "p(err)")
    lines = [head]
    for c in comparisons[:top]:
        lines.append((
            c.verdict, f"{c.method} {c.host}{c.route}", f"{c.base.requests}/{c.cand.requests}",
            f"{_num(c.base.pct(0.5), '.1f')}->{_num(c.cand.pct(0.5), '.1f')}",
            f"{_num(c.median_shift_ms, '+.1f')} ({_num(c.median_shift_pct, '+.0f')}%)"
            if c.median_shift_ms is not None else "",
            _num(c.p95_shift_ms, "+.1f"), _num(c.latency_p, ".2g"), _num(c.cliffs_delta, "+.2f"),
            f"{_num(c.base.error_rate and 100 * c.base.error_rate, '.1f')}%->"
            f"{_num(c.cand.error_rate and 100 * c.cand.error_rate, '.1f')}%"
            if c.base.error_rate is not None and c.cand.error_rate is not None else "",
            _num(c.error_p, ".2g"),
        ))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines]
    counts = {v: sum(1 for c in comparisons if c.verdict == v) for v in (WORSE, BETTER, SAME, NOT_ENOUGH)}
    text.append("")
    text.append(", ".join(f"{n} {v}" for v, n in counts.items()))
    return "\n".join(text)


def any_regression(comparisons: Iterable[EndpointComparison]) -> bool:
    return any(c.verdict == WORSE for c in comparisons)


VERDICT_COLORS = {WORSE: "#b3261e", BETTER: "#1b7f3b", SAME: "#1d2733", NOT_ENOUGH: "#5b6b7c"}


def render_html(comparisons: list[EndpointComparison], baseline: str, candidate: str, t: Thresholds) -> str:
    """compare.html: the compare.csv table, self-contained (sortable, printable), verdicts coloured."""
    import html

    from netrum.report.html import CSS, JS

    head = "".join(f"<th>{html.escape(c)}</th>" for c in COMPARE_COLUMNS)
    body = []
    for c in comparisons:
        cells = []
        for col, v in zip(COMPARE_COLUMNS, row_of(c)):
            style = f' style="color:{VERDICT_COLORS[v]};font-weight:600"' if col.endswith("verdict") and v else ""
            num = "" if col in ("host", "method", "route", "error_test") or col.endswith("verdict") else (
                f' data-v="{html.escape(v) if v else "-1"}"')
            cells.append(f"<td{num}{style}>{html.escape(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    counts = ", ".join(f"{sum(1 for c in comparisons if c.verdict == v)} {v}" for v in VERDICT_COLORS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>netrum compare</title>
<style>{CSS}
th:nth-child(-n+6),td:nth-child(-n+6){{text-align:left}}</style></head><body>
<h1>netrum compare</h1>
<p class="sub">baseline {html.escape(baseline)} &middot; candidate {html.escape(candidate)}</p>
<p>{html.escape(counts)}. Thresholds: alpha {t.alpha:g}, median shift at least {t.min_shift_ms:g} ms and
{t.min_shift_pct:g}%, error-rate increase over {t.max_error_increase:g}, at least {t.min_requests} requests
per side. Latency: Mann-Whitney U (two-sided) on duration, Cliff's delta (+1: every candidate request
slower). Errors: two-proportion z-test, Fisher's exact test for small counts.</p>
<div style="overflow-x:auto"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table></div>
<script>{JS}</script></body></html>
"""


def select_window(rows: Iterable[TxRow], spec: str | None) -> list[TxRow]:
    """The transactions whose request started in the window ``START..END`` (either end may be empty).
    Each end is epoch seconds, ISO 8601, or ``+SECONDS`` from the first request of the run, so two
    windows of one capture can be compared (before and after a deploy). ValueError on a bad spec."""
    from netrum.report.requests import parse_time

    rows = list(rows)
    if not spec:
        return rows
    if ".." not in spec:
        raise ValueError(f"time window {spec!r} is not START..END")
    first = min((t.request_ts_s for t in rows if t.request_ts_s is not None), default=0.0)

    def bound(text: str) -> float | None:
        text = text.strip()
        if not text:
            return None
        if text.startswith("+"):
            return first + float(text[1:])
        return parse_time(text)

    lo_text, hi_text = spec.split("..", 1)
    lo, hi = bound(lo_text), bound(hi_text)
    return [t for t in rows if t.request_ts_s is not None and (lo is None or t.request_ts_s >= lo)
            and (hi is None or t.request_ts_s < hi)]
