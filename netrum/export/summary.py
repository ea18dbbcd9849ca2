"""The terminal summary: busiest and slowest endpoints, overall figures and the capture's health."""
from __future__ import annotations

from collections.abc import Sequence

from netrum.aggregate.endpoints import EndpointAggregator, percentile
from netrum.counters import COUNTER_DOCS, Counters
from netrum.export.privacy import DEFAULT_PRIVACY, Privacy


def _ms(v: object) -> str:
    return "-" if v is None else f"{float(v):.1f}"  # type: ignore[arg-type]


def _pct(v: object) -> str:
    return "-" if v is None else f"{100 * float(v):.1f}%"  # type: ignore[arg-type]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]


ENDPOINT_HEADERS = ("method", "route", "host", "requests", "rps", "4xx", "5xx", "no resp", "flagged",
                    "p50 ms", "p95 ms", "p99 ms", "max ms")


def _endpoint_cells(r: dict[str, object], privacy: Privacy = DEFAULT_PRIVACY) -> list[str]:
    route = privacy.uri(str(r["route"]))
    if len(route) > 48:
        route = route[:45] + "..."
    return [privacy.text(str(r["method"])), route, privacy.text(str(r["host"]))[:32], str(r["requests"]),
            "-" if r["rps"] is None else f"{float(r['rps']):.2f}",  # type: ignore[arg-type]
            str(r["errors_4xx"]), str(r["errors_5xx"]), str(r["no_response"]), str(r["flagged"]),
            _ms(r["duration_p50_ms"]), _ms(r["duration_p95_ms"]), _ms(r["duration_p99_ms"]),
            _ms(r["duration_max_ms"])]


CONSUMER_HEADERS = ("consumer", "requests", "4xx", "5xx", "error rate", "no resp", "p50 ms", "p95 ms",
                    "p99 ms", "most errors at")


def _consumer_cells(r: dict[str, object], privacy: Privacy) -> list[str]:
    top = str(r["top_error_endpoints"]).split("; ")[0]  # already through privacy (ConsumerAggregator.rows)
    return [privacy.text(str(r["consumer"]))[:40], str(r["requests"]), str(r["errors_4xx"]), str(r["errors_5xx"]),
            _pct(r["error_rate"]), str(r["no_response"]), _ms(r["duration_p50_ms"]), _ms(r["duration_p95_ms"]),
            _ms(r["duration_p99_ms"]), top[:60]]


def consumer_view(consumer_rows: list[dict[str, object]], top: int, privacy: Privacy = DEFAULT_PRIVACY) -> list[str]:
    """Which consumers get the errors (most 4xx+5xx first) and the slow responses (highest p95 first)."""
    out: list[str] = []
    right = set(range(1, len(CONSUMER_HEADERS) - 1))
    erring = [r for r in consumer_rows if r["errors_4xx"] or r["errors_5xx"]]
    erring.sort(key=lambda r: (-(int(r["errors_4xx"]) + int(r["errors_5xx"])),  # type: ignore[call-overload]
                               -int(r["requests"]), str(r["consumer"])))  # type: ignore[call-overload]
    out.append("")
    if erring:
        out.append(f"Consumers with the most errors (top {min(top, len(erring))} of {len(erring)} with errors; "
                   f"{len(consumer_rows)} consumers)")
        out += table(CONSUMER_HEADERS, [_consumer_cells(r, privacy) for r in erring[:top]], right)
    else:
        out.append(f"No consumer got an error response ({len(consumer_rows)} consumers)")
    timed = [r for r in consumer_rows if r["duration_p95_ms"] is not None]
    if timed:
        timed.sort(key=lambda r: (-float(r["duration_p95_ms"]), str(r["consumer"])))  # type: ignore[arg-type]
        out.append("")
        out.append("Slowest consumers by p95 duration")
        out += table(CONSUMER_HEADERS, [_consumer_cells(r, privacy) for r in timed[:top]], right)
    return out


def render(rows: list[dict[str, object]], aggregator: EndpointAggregator, counters: Counters,
           span_ns: int | None, top: int, problems: Sequence[str], out_dir: str,
           consumer_rows: list[dict[str, object]] | None = None, privacy: Privacy = DEFAULT_PRIVACY) -> str:
    """The summary; every text cell through ``privacy``. ``consumer_rows``: add the per-consumer view."""
    out: list[str] = []
    durations = sorted(d for st in aggregator.stats.values() for d in st.duration_ms)
    requests = sum(int(r["requests"]) for r in rows)  # type: ignore[call-overload]
    responses = sum(int(r["responses"]) for r in rows)  # type: ignore[call-overload]
    err4 = sum(int(r["errors_4xx"]) for r in rows)  # type: ignore[call-overload]
    err5 = sum(int(r["errors_5xx"]) for r in rows)  # type: ignore[call-overload]
    span_s = (span_ns or 0) / 1e9
    out.append(
        f"{requests} requests on {len(rows)} endpoints over {span_s:.3f} s"
        + (f" ({requests / span_s:.1f}/s)" if span_s > 0 else "")
        + f"; {responses} responses, 4xx {_pct(err4 / responses if responses else None)},"
        f" 5xx {_pct(err5 / responses if responses else None)}"
    )
    if durations:
        out.append("duration ms: p50 {} p95 {} p99 {} max {}".format(
            *(_ms(percentile(durations, q)) for q in (0.5, 0.95, 0.99)), _ms(durations[-1])))
    c = counters
    out.append(
        f"health: {c['tcp_gap']} gaps ({c['tcp_gap_bytes']} B lost), {c['http_resync']} resyncs, "
        f"{c['http_no_response']} requests without response, {c['http_unmatched_response']} responses "
        f"without request, {c['flow_midstream']} connections picked up mid-stream, "
        f"{c['capture_snaplen_cut']} frames cut by snaplen"
        + (f", {c['capture_kernel_drops']} kernel drops" if c["capture_kernel_drops"] else ""))
    right = set(range(3, len(ENDPOINT_HEADERS)))
    if rows:
        out.append("")
        out.append(f"Busiest endpoints (top {min(top, len(rows))} of {len(rows)})")
        out += table(ENDPOINT_HEADERS, [_endpoint_cells(r, privacy) for r in rows[:top]], right)
        timed = [r for r in rows if r["duration_p95_ms"] is not None]
        slow = sorted(timed, key=lambda r: -float(r["duration_p95_ms"]))[:top]  # type: ignore[arg-type]
        if slow:
            out.append("")
            out.append("Slowest endpoints by p95 duration")
            out += table(ENDPOINT_HEADERS, [_endpoint_cells(r, privacy) for r in slow], right)
    if consumer_rows:
        out += consumer_view(consumer_rows, top, privacy)
    out.append("")
    out.append("Capture health (non-zero counters; all of them in health.csv)")
    health = [(COUNTER_DOCS.get(n, ("other", ""))[0], n, v) for n, v in counters.items() if v]
    order = {g: i for i, g in enumerate(("capture", "decode", "tcp", "http", "other"))}
    health.sort(key=lambda t: (order.get(t[0], 9), list(COUNTER_DOCS).index(t[1])
                               if t[1] in COUNTER_DOCS else 999))
    out += table(("group", "counter", "value"), [(g, n, str(v)) for g, n, v in health], {2})
    for p in problems:
        out.append(f"PARTIAL: {privacy.text(p)}")
    out.append("")
    out.append(f"Wrote {out_dir}/transactions.csv, endpoints.csv, "
               + ("consumers.csv, " if consumer_rows is not None else "") + "health.csv")
    return "\n".join(out)
