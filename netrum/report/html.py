"""`netrum report`: one self-contained, offline HTML file of a run: overview, capture health, a sortable
per-endpoint table and plots (matplotlib PNGs embedded as base64; a few lines of inline JavaScript sort
the table; no CDN, no external file). A print stylesheet lays it out for paper.

Plots: latency percentiles over time (p50/p95/p99 of duration per time bin), the latency distribution of
the busiest endpoints (box plots), error rate and throughput over time, the status mix, and the slowest
endpoints by p95.
"""
from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from netrum import __version__
from netrum.aggregate.endpoints import percentile
from netrum.report.runs import Run, TxRow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TIME_BINS = 60  # time bins of the over-time plots
TOP_ENDPOINTS = 8  # endpoints in the distribution and slowest plots

TABLE_COLUMNS = (  # endpoints.csv column -> header
    ("method", "method"), ("route", "route"), ("host", "host"), ("requests", "requests"), ("rps", "req/s"),
    ("error_rate", "error rate"), ("errors_4xx", "4xx"), ("errors_5xx", "5xx"), ("no_response", "no resp"),
    ("duration_p50_ms", "p50 ms"), ("duration_p95_ms", "p95 ms"), ("duration_p99_ms", "p99 ms"),
    ("duration_max_ms", "max ms"), ("flagged", "flagged"),
)
HEALTH_KEYS = (  # counters shown in the overview, with a short label
    ("tcp_gap", "TCP gaps"), ("tcp_gap_bytes", "bytes lost in gaps"), ("http_resync", "parser resyncs"),
    ("http_unmatched_response", "responses without request"), ("flow_midstream", "connections mid-stream"),
    ("capture_snaplen_cut", "frames cut by snaplen"), ("capture_kernel_drops", "kernel drops"),
)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:16px 24px;color:#1d2733;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d5dbe3}
.sub{color:#5b6b7c;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{border:1px solid #d5dbe3;border-radius:6px;padding:8px 12px}
.card b{display:block;font-size:20px}.card span{color:#5b6b7c;font-size:12px}
.bad{color:#b3261e}.ok{color:#1b7f3b}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #e3e8ee;text-align:right;white-space:nowrap}
th:nth-child(-n+3),td:nth-child(-n+3){text-align:left}
td:nth-child(2){white-space:normal;word-break:break-all}
th{background:#f2f5f8;cursor:pointer;user-select:none;position:sticky;top:0}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
figure{margin:0;border:1px solid #e3e8ee;border-radius:6px;padding:8px}
figure img{width:100%;height:auto}figcaption{color:#5b6b7c;font-size:12px}
@media print{body{max-width:none;padding:0;font-size:11px}th{position:static;cursor:auto}
.plots{display:block}figure{page-break-inside:avoid;margin-bottom:12px}figure img{max-width:100%}
h2{page-break-after:avoid}tr{page-break-inside:avoid}.noprint{display:none}}
"""

# Sort the endpoint table by a click on a header: numbers numerically (data-v), text alphabetically.
JS = """
document.querySelectorAll("table.sortable").forEach(function(t){
 t.querySelectorAll("th").forEach(function(th,i){th.addEventListener("click",function(){
  var asc=!th.classList.contains("asc");t.querySelectorAll("th").forEach(function(h){h.classList.remove("asc","desc")});
  th.classList.add(asc?"asc":"desc");var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
  rows.sort(function(x,y){var a=x.cells[i].dataset.v,c=y.cells[i].dataset.v;
   var r=(a!==undefined&&c!==undefined)?(parseFloat(a)-parseFloat(c)):x.cells[i].textContent.localeCompare(y.cells[i].textContent);
   return asc?r:-r});rows.forEach(function(r){b.appendChild(r)});});});});
"""


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fig(w: float = 7.0, h: float = 3.4) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(w, h))
    return fig


def _bins(rows: Sequence[TxRow]) -> tuple[float, float, list[list[TxRow]]]:
    ts = [t.request_ts_s for t in rows if t.request_ts_s is not None]
    start, end = min(ts), max(ts)
    width = (end - start) / TIME_BINS or 1.0
    bins: list[list[TxRow]] = [[] for _ in range(TIME_BINS)]
    for t in rows:
        if t.request_ts_s is not None:
            bins[min(int((t.request_ts_s - start) / width), TIME_BINS - 1)].append(t)
    return start, width, bins


def plot_percentiles_over_time(rows: Sequence[TxRow]) -> str:
    _start, width, bins = _bins(rows)
    fig = _fig()
    ax = fig.add_subplot()
    xs = [(i + 0.5) * width for i in range(TIME_BINS)]
    for q, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
        ys = []
        for b in bins:
            d = sorted(t.duration_ms for t in b if t.duration_ms is not None)
            ys.append(percentile(d, q) if d else float("nan"))
        ax.plot(xs, ys, style, label=f"p{round(q * 100)}")
    ax.set_xlabel("seconds since first request")
    ax.set_ylabel("duration ms")
    ax.set_title("Latency percentiles over time")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_distribution(rows: Sequence[TxRow], endpoints: Sequence[tuple[str, str, str]]) -> str:
    groups: dict[tuple[str, str, str], list[float]] = {k: [] for k in endpoints}
    for t in rows:
        g = groups.get(t.endpoint)
        if g is not None and t.duration_ms is not None:
            g.append(t.duration_ms)
    keys = [k for k in endpoints if groups[k]]
    fig = _fig(7.0, 0.5 + 0.45 * max(len(keys), 1))
    ax = fig.add_subplot()
    if keys:
        ax.boxplot([groups[k] for k in keys], vert=False, showfliers=True, whis=(5, 95),
                   flierprops={"markersize": 2, "alpha": 0.4})
        ax.set_yticks(range(1, len(keys) + 1), [f"{m} {r}"[:48] for _h, m, r in keys])
        ax.invert_yaxis()
    ax.set_xlabel("duration ms (box: p25-p75, whiskers: p5-p95)")
    ax.set_title("Latency distribution of the busiest endpoints")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def plot_errors_throughput(rows: Sequence[TxRow]) -> str:
    _start, width, bins = _bins(rows)
    xs = [(i + 0.5) * width for i in range(TIME_BINS)]
    fig = _fig(7.0, 4.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(xs, [len(b) / width for b in bins], color="#2a6fdb")
    top.set_ylabel("requests/s")
    top.set_title("Throughput and error rate over time")
    top.grid(alpha=0.3)
    rates = []
    for b in bins:
        responded = [t for t in b if t.status is not None]
        rates.append(100.0 * sum(1 for t in responded if t.is_error) / len(responded) if responded else float("nan"))
    bottom.plot(xs, rates, color="#b3261e")
    bottom.set_ylabel("errors %")
    bottom.set_xlabel("seconds since first request")
    bottom.grid(alpha=0.3)
    return _png(fig)


STATUS_COLORS = {1: "#8e8e8e", 2: "#1b7f3b", 3: "#2a6fdb", 4: "#e0a100", 5: "#b3261e", 0: "#5b6b7c"}


def plot_status_mix(rows: Sequence[TxRow]) -> str:
    counts = Counter("none" if t.status is None else str(t.status) for t in rows)
    labels = sorted(counts, key=lambda s: (s == "none", s))
    fig = _fig(7.0, 3.0)
    ax = fig.add_subplot()
    ax.bar(labels, [counts[s] for s in labels],
           color=[STATUS_COLORS.get(int(s[0]) if s != "none" else 0, "#5b6b7c") for s in labels])
    ax.set_ylabel("responses")
    ax.set_title("Status mix")
    for i, s in enumerate(labels):
        ax.annotate(str(counts[s]), (i, counts[s]), ha="center", va="bottom", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def plot_slowest(endpoint_rows: Sequence[dict[str, str]]) -> str:
    ranked = sorted((r for r in endpoint_rows if r.get("duration_p95_ms")),
                    key=lambda r: -float(r["duration_p95_ms"]))[:TOP_ENDPOINTS]
    fig = _fig(7.0, 0.6 + 0.4 * max(len(ranked), 1))
    ax = fig.add_subplot()
    labels = [f"{r['method']} {r['route']}"[:48] for r in ranked]
    ax.barh(labels, [float(r["duration_p95_ms"]) for r in ranked], color="#2a6fdb", label="p95")
    ax.barh(labels, [float(r["duration_p50_ms"] or 0) for r in ranked], color="#9dbdf0", label="p50")
    ax.invert_yaxis()
    ax.set_xlabel("duration ms")
    ax.set_title("Slowest endpoints (p95)")
    ax.legend()
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def _cell(key: str, value: str) -> str:
    v = html.escape(value)
    if key in ("method", "route", "host"):
        return f"<td>{v}</td>"
    if not value:
        return '<td data-v="-1"></td>'
    shown = f"{100 * float(value):.2f}%" if key == "error_rate" else value
    return f'<td data-v="{v}">{html.escape(shown)}</td>'


def endpoint_table(rows: Sequence[dict[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _k, label in TABLE_COLUMNS)
    body = "\n".join("<tr>" + "".join(_cell(k, r.get(k, "") or "") for k, _l in TABLE_COLUMNS) + "</tr>"
                     for r in rows)
    return (f'<table class="sortable" id="endpoints"><thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody></table>")


def overview(run: Run) -> str:
    rows = run.transactions
    responded = [t for t in rows if t.status is not None]
    errors = sum(1 for t in responded if t.is_error)
    d = sorted(t.duration_ms for t in rows if t.duration_ms is not None)
    rate = errors / len(responded) if responded else None

    def ms(q: float) -> str:
        return f"{percentile(d, q):.1f} ms" if d else "-"

    cards = [
        (f"{len(rows):,}", "requests"), (f"{len(responded):,}", "responses"),
        (f"{100 * rate:.2f}%" if rate is not None else "-", "error rate (4xx+5xx)"),
        (ms(0.5), "p50 duration"), (ms(0.95), "p95 duration"), (ms(0.99), "p99 duration"),
        (str(len({t.endpoint for t in rows})), "endpoints"),
    ]
    return '<div class="cards">' + "".join(
        f"<div class=card><b>{html.escape(v)}</b><span>{html.escape(label)}</span></div>"
        for v, label in cards) + "</div>"


def health_section(run: Run) -> str:
    h = run.health
    partial = h.get("partial") == "1"
    parts = [f'<p class="{"bad" if partial else "ok"}">'
             + ("Partial results: the capture was damaged or the run interrupted." if partial
                else "Complete run: no damage found in the inputs.") + "</p>"]
    problems = [v for k, v in h.items() if k.startswith("problem_")]
    if problems:
        parts.append("<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>")
    cards = []
    for key, label in HEALTH_KEYS:
        if key in h:
            cls = " bad" if h[key] not in ("0", "") else ""
            cards.append(f"<div class=card><b class='{cls.strip()}'>{html.escape(h[key])}</b>"
                         f"<span>{html.escape(label)}</span></div>")
    parts.append('<div class="cards">' + "".join(cards) + "</div>")
    nonzero = [r for r in run.health_rows if r.get("group") != "run" and r.get("value") not in ("0", "")]
    if nonzero:
        parts.append("<details><summary>All non-zero counters</summary><table><tbody>" + "".join(
            f"<tr><td>{html.escape(r['counter'])}</td><td>{html.escape(r['value'])}</td>"
            f"<td>{html.escape(r.get('meaning', ''))}</td></tr>" for r in nonzero) + "</tbody></table></details>")
    return "\n".join(parts)


def _when(epoch: str) -> str:
    """An epoch-seconds cell of health.csv as UTC ISO 8601 (as written when it is not a number)."""
    from datetime import datetime, timezone

    try:
        return datetime.fromtimestamp(float(epoch), tz=timezone.utc).isoformat(timespec="milliseconds")
    except ValueError:
        return epoch


def render_report(run: Run, title: str = "netrum report") -> str:
    """The whole HTML document."""
    rows = run.transactions
    busiest = [k for k, _n in Counter(t.endpoint for t in rows).most_common(TOP_ENDPOINTS)]
    plots: list[tuple[str, str]] = []
    if rows and any(t.request_ts_s is not None for t in rows):
        plots = [
            ("latency-over-time", plot_percentiles_over_time(rows)),
            ("latency-distribution", plot_distribution(rows, busiest)),
            ("errors-throughput", plot_errors_throughput(rows)),
            ("status-mix", plot_status_mix(rows)),
            ("slowest-endpoints", plot_slowest(run.endpoints)),
        ]
    figures = "\n".join(
        f'<figure id="{name}"><img alt="{name}" src="data:image/png;base64,{data}"></figure>' for name, data in plots)
    first, last = _when(run.health.get("first_packet", "")), _when(run.health.get("last_packet", ""))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(run.source)} &middot; first packet {html.escape(first)}, last {html.escape(last)}
&middot; netrum {__version__}</p>
<h2>Overview</h2>
{overview(run)}
<h2>Capture health</h2>
{health_section(run)}
<h2>Endpoints</h2>
<p class="sub noprint">Click a column header to sort.</p>
{endpoint_table(run.endpoints)}
<h2>Plots</h2>
<div class="plots">
{figures}
</div>
<script>{JS}</script>
</body></html>
"""
