"""The command line: options, wiring and exit codes. No protocol logic lives here.

Exit codes: 0 success; 1 unexpected failure, or `compare` found a regression; 2 an input cannot be read
at all (or bad usage); 3 results were written but are partial (a capture was cut or corrupt, or the run
was interrupted); 4 `slo` found an objective breached.
"""
from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from netrum import __version__
from netrum.errors import NetrumError
from netrum.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from netrum.aggregate.routes import DeclaredRoutes
    from netrum.export.privacy import Privacy
    from netrum.http.consumer import ConsumerConfig

EXIT_PARTIAL = 3
EXIT_SLO_BREACH = 4


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"netrum: error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netrum")
def main() -> None:
    """netrum: how every HTTP endpoint really performs, measured passively from captured traffic."""


@main.command()
@click.argument("captures", nargs=-1, required=True)
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), default="netrum-out",
              show_default=True, help="Directory for transactions.csv, endpoints.csv, health.csv.")
@click.option("--port", "ports", type=click.IntRange(1, 65535), multiple=True,
              help="Only connections whose server uses this port (repeatable).")
@click.option("--server", "servers", multiple=True,
              help="Only connections whose server has this IP address (repeatable).")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Endpoints listed in each summary table.")
@click.option("--quiet", "-q", is_flag=True, help="No summary on stdout.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.option("--max-flows", type=click.IntRange(1), default=DEFAULT_LIMITS.max_flows, show_default=True,
              help="Connections tracked at once; the idlest is evicted beyond it.")
@click.option("--idle-timeout", type=click.FloatRange(0.001), default=DEFAULT_LIMITS.flow_idle_timeout_ns / 1e9,
              show_default=True, help="Seconds of packet time after which a silent connection is closed.")
@click.option("--workers", "-j", type=click.IntRange(1), default=1, show_default=True,
              help="Processes, each analysing the connections given to it (with the compiled lane, one of "
                   "them writes while the others analyse); output identical to one process (--max-flows "
                   "applies per analysing process).")
@click.option("--scheduler", metavar="ADDR",
              help="Run the workers on dask.distributed: a scheduler address (tcp://host:8786; captures "
                   "must be readable at the same paths on every worker) or 'local' for a local cluster.")
@click.option("--engine", type=click.Choice(["auto", "python"]), default="auto", show_default=True,
              help="auto: clean connections of pcap and pcapng files (gzip'd ones once decompressed to "
                   "$TMPDIR) are analysed by the compiled lane (same output, many times faster); python: the "
                   "pure-Python reference only.")
@click.option("--routes", "routes_file", type=click.Path(exists=True, dir_okay=False),
              help="Declared routes, one per line: '[METHOD] /users/{id}/orders/{oid} [name]'; they take "
                   "precedence over learned routes.")
@click.option("--openapi", "openapi_file", type=click.Path(exists=True, dir_okay=False),
              help="OpenAPI 3 document (JSON or YAML): every request maps to its operation (operation_id "
                   "column); writes api_coverage.csv (shadow and zombie endpoints).")
@click.option("--learn-routes/--no-learn-routes", default=True, show_default=True,
              help="Learn route templates from traffic (high-cardinality path segments become {param}).")
@click.option("--route-budget", type=click.IntRange(1), default=500, show_default=True,
              help="Routes kept per host; the least requested beyond it go to an {overflow} route "
                   "(reported in routes.csv).")
@click.option("--consumer-header", metavar="NAME",
              help="Header identifying the caller (X-API-Key, Authorization...): consumers are grouped by "
                   "a salted hash of its value; the value itself is never written.")
@click.option("--consumer-salt", metavar="TEXT",
              help="Salt of the consumer hashes: the same salt gives the same ids across runs (default: "
                   "a random salt per run, written nowhere: ids cannot be linked across runs).")
@click.option("--trust-proxy", "trust_proxies", metavar="CIDR", multiple=True,
              help="A proxy whose Forwarded / X-Forwarded-For / X-Real-IP is believed (repeatable): the "
                   "consumer is the first untrusted address walking the chain from the right.")
@click.option("--redact-header", "redact_headers", metavar="NAME", multiple=True,
              help="Never write this header (repeatable; Host, User-Agent, Content-Type are the only ones "
                   "netrum records; Authorization, Cookie, Set-Cookie and bodies never are).")
@click.option("--keep-query-values", is_flag=True,
              help="Write query-string values as sent (default: masked, /search?q=*&page=*).")
@click.option("--mask", "masks", metavar="REGEX|email|card|ipv4", multiple=True,
              help="Mask this pattern wherever text is written (repeatable); presets: email, card "
                   "(Luhn-checked), ipv4.")
def analyze(captures: tuple[str, ...], out_dir: str, ports: tuple[int, ...], servers: tuple[str, ...],
            top: int, quiet: bool, progress: bool | None, max_flows: int, idle_timeout: float,
            workers: int, scheduler: str | None, engine: str, routes_file: str | None,
            openapi_file: str | None, learn_routes: bool, route_budget: int, consumer_header: str | None, consumer_salt: str | None,
            trust_proxies: tuple[str, ...], redact_headers: tuple[str, ...], keep_query_values: bool,
            masks: tuple[str, ...]) -> None:
    """Analyze pcap/pcapng captures (gzip too; '-' for stdin; several are merged in time order; a
    directory stands for the captures in it, e.g. rotated tcpdump -G/-C files)."""
    from dataclasses import replace

    from netrum.batch import AnalyzeOptions, analyze_files
    from netrum.export.summary import render

    try:
        addrs = frozenset(ipaddress.ip_address(s).packed for s in servers) or None
    except ValueError as e:
        fail(str(e), 2)
    limits: Limits = replace(DEFAULT_LIMITS, max_flows=max_flows,
                             flow_idle_timeout_ns=int(idle_timeout * 1e9))
    declared = _declared_routes(routes_file, openapi_file)
    consumer, privacy = _privacy_options(consumer_header, consumer_salt, trust_proxies, redact_headers,
                                         keep_query_values, masks)
    options = AnalyzeOptions(limits, frozenset(ports) or None, addrs, declared_routes=declared,
                             learn_routes=learn_routes, route_budget=route_budget, consumer=consumer,
                             privacy=privacy, engine=engine)
    show_progress = sys.stderr.isatty() if progress is None else progress
    from netrum.scale.inputs import expand_captures

    try:
        captures = tuple(expand_captures(captures))
    except NetrumError as e:
        fail(str(e), e.exit_code)
    total = 0
    for path in captures:
        try:
            total += os.path.getsize(path) if path != "-" else 0
        except OSError:
            pass
    try:
        if show_progress and total:
            with click.progressbar(length=total, label="reading", file=sys.stderr,
                                   show_eta=True, show_percent=True) as bar:
                result = analyze_files(captures, Path(out_dir), options, bar.update, workers, scheduler)
        else:
            result = analyze_files(captures, Path(out_dir), options, None, workers, scheduler)
    except NetrumError as e:
        fail(str(e), e.exit_code)
    except OSError as e:
        fail(f"{e.strerror or e}: {e.filename}" if e.filename else str(e), 1)
    c = result.counters
    if c["capture_packets"] and c["decode_unknown_linktype"] == c["capture_packets"]:
        kinds = ", ".join(str(t) for t in sorted(result.linktypes))
        fail(f"no frame could be decoded: link type {kinds} is not supported "
             f"({c['capture_packets']} frames skipped)", 2)
    if not quiet:
        click.echo(render(result.endpoint_rows, result.aggregator, c, result.span_ns, top,
                          result.problems, out_dir, result.consumer_rows, privacy))
        if result.routes is not None:
            line = _routes_summary(result.routes.report)
            if line:
                click.echo(line)
            if declared is not None:
                click.echo(privacy.text(_coverage_summary(result.routes.coverage, top)))
    if c["capture_snaplen_cut"]:
        click.echo(f"netrum: warning: {c['capture_snaplen_cut']} of {c['capture_packets']} frames were "
                   f"cut short by the capture's snaplen ({c['capture_snaplen_bytes']} bytes missing); "
                   "sizes come from headers, bodies were not seen", err=True)
    if result.partial:
        what = privacy.text(result.problems[0]) if result.problems else "interrupted"
        more = f" (+{len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        fail(f"partial results: {what}{more}; what was read is written to {out_dir} "
             "(marked partial in health.csv)", EXIT_PARTIAL)


def _privacy_options(header: str | None, salt: str | None, trusted: tuple[str, ...], redact: tuple[str, ...],
                     keep_query_values: bool, masks: tuple[str, ...]) -> tuple[ConsumerConfig | None, Privacy]:
    """The consumer rule and the output privacy from the options (a bad CIDR, header or regex: exit 2)."""
    import re

    from netrum.export.privacy import make_privacy
    from netrum.http.consumer import make_config

    try:
        privacy = make_privacy(keep_query_values, masks)
    except re.error as e:
        fail(f"--mask: not a regular expression: {e}", 2)
    if not (header or trusted or redact):
        return None, privacy
    # A random salt per run unless given: it is never written, so ids cannot be linked across runs.
    key = salt.encode("utf-8") if salt is not None else os.urandom(32)
    try:
        return make_config(header, key, trusted, redact), privacy
    except ValueError as e:
        fail(f"{e}", 2)


def _declared_routes(routes_file: str | None, openapi_file: str | None) -> DeclaredRoutes | None:
    """The routes file's patterns first, then the OpenAPI operations (the first identical one wins)."""
    from netrum.aggregate.openapi import declared_from_openapi, load_document
    from netrum.aggregate.routes import DeclaredRoutes, parse_routes_file

    if routes_file is None and openapi_file is None:
        return None
    declared = DeclaredRoutes()
    if routes_file is not None:
        try:
            for r in parse_routes_file(Path(routes_file).read_text(encoding="utf-8")):
                declared.add(r)
        except (OSError, ValueError) as e:
            fail(f"{routes_file}: {e}", 2)
    if openapi_file is not None:
        try:
            for r in declared_from_openapi(load_document(openapi_file)):
                declared.add(r)
        except NetrumError as e:
            fail(str(e), e.exit_code)
    return declared


def _routes_summary(report: list[dict[str, object]]) -> str:
    """One line on what route learning and the budget merged (details in routes.csv), or ""."""
    learned = [r for r in report if r["source"] == "learned"]
    overflow = [r for r in report if r["source"] == "overflow"]
    if not learned and not overflow:
        return ""
    parts = []
    if learned:
        paths = sum(int(r["merged_paths"]) for r in learned)  # type: ignore[call-overload]
        parts.append(f"{paths} paths merged into {len(learned)} learned templates")
    if overflow:
        over = sum(int(r["merged_paths"]) for r in overflow)  # type: ignore[call-overload]
        reqs = sum(int(r["requests"]) for r in overflow)  # type: ignore[call-overload]
        parts.append(f"{over} routes ({reqs} requests) over --route-budget went to {{overflow}}")
    return "\nroutes: " + "; ".join(parts) + " -> routes.csv"


def _coverage_summary(coverage: list[dict[str, object]], top: int) -> str:
    """API coverage section of the summary: documented operations seen, shadow and zombie endpoints."""
    documented = [r for r in coverage if r["kind"] == "documented"]
    zombies = [r for r in coverage if r["kind"] == "zombie"]
    shadows = [r for r in coverage if r["kind"] == "shadow"]
    shadow_requests = sum(int(r["requests"]) for r in shadows)  # type: ignore[call-overload]
    out = ["", (f"API coverage: {len(documented)} of {len(documented) + len(zombies)} documented operations "
               f"seen; {len(shadows)} undocumented (shadow) endpoints with {shadow_requests} requests; "
               f"{len(zombies)} documented operations never seen (zombie candidates) -> api_coverage.csv")]
    for r in shadows[:top]:
        out.append(f"  shadow  {r['method']} {r['route']}  {r['host']}  {r['requests']} requests")
    for r in zombies[:top]:
        out.append(f"  zombie  {r['method']} {r['route']}  {r['operation_id']}")
    return "\n".join(out)


@main.command()
@click.argument("baseline")
@click.argument("candidate", required=False)
@click.option("--baseline-window", metavar="START..END",
              help="Only the baseline's requests started in this window (epoch seconds, ISO 8601, or +SECONDS "
                   "from its first request; either end may be empty).")
@click.option("--candidate-window", metavar="START..END",
              help="The same for the candidate. Without CANDIDATE, both windows are taken from BASELINE: two "
                   "time windows of one capture or run.")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), default="netrum-compare",
              show_default=True, help="Directory for compare.csv and compare.html.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True), default=0.01, show_default=True,
              help="Significance level of the Mann-Whitney U and error-rate tests.")
@click.option("--min-shift-ms", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Smallest median latency shift (ms) that counts as a change.")
@click.option("--min-shift-pct", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Smallest median latency shift, in percent of the baseline median, that counts.")
@click.option("--min-requests", type=click.IntRange(1), default=20, show_default=True,
              help="Fewer requests on either side: 'not enough data'.")
@click.option("--max-error-increase", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Largest error-rate increase (absolute, 0.01 = 1 point) tolerated.")
@click.option("--top", type=click.IntRange(1), default=None, help="Endpoints printed (default: all).")
def compare(baseline: str, candidate: str | None, baseline_window: str | None, candidate_window: str | None,
            out_dir: str, alpha: float, min_shift_ms: float, min_shift_pct: float, min_requests: int,
            max_error_increase: float, top: int | None) -> None:
    """Compare two runs per endpoint (canary check): BASELINE and CANDIDATE are each a netrum output
    directory or a capture, or one of them with two --*-window options. Writes compare.csv and
    compare.html. Exit code 1 when any endpoint got worse, 0 otherwise, 2 when an input cannot be read."""
    from netrum.report.compare import (
        Thresholds,
        any_regression,
        compare_runs,
        render_html,
        render_table,
        select_window,
        write_compare_csv,
    )
    from netrum.report.runs import load_run

    if candidate is None and not (baseline_window and candidate_window):
        fail("give CANDIDATE, or --baseline-window and --candidate-window to compare two windows of "
             "BASELINE", 2)
    try:
        base = load_run([baseline])
        cand = base if candidate is None else load_run([candidate])
        base_rows = select_window(base.transactions, baseline_window)
        cand_rows = select_window(cand.transactions, candidate_window)
    except NetrumError as e:
        fail(str(e), e.exit_code)
    except ValueError as e:
        fail(str(e), 2)
    thresholds = Thresholds(alpha, min_shift_ms, min_shift_pct, min_requests, max_error_increase)
    result = compare_runs(base_rows, cand_rows, thresholds)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_compare_csv(Path(out_dir) / "compare.csv", result)
    html_path = Path(out_dir) / "compare.html"
    labels = (f"{baseline} {baseline_window or ''}".strip(),
              f"{candidate or baseline} {candidate_window or ''}".strip())
    html_path.write_text(render_html(result, labels[0], labels[1], thresholds), encoding="utf-8",
                         errors="surrogateescape")
    click.echo(render_table(result, top))
    if any_regression(result):
        sys.exit(1)


@main.command()
@click.argument("source", nargs=-1, required=True)
@click.option("--objective", "objectives", metavar="TEXT", multiple=True,
              help="An objective (repeatable): 'p99 duration < 300ms', 'p95 ttfb <= 0.2s', "
                   "'error rate < 1%', '5xx rate < 0.5%', 'availability >= 99.9%'.")
@click.option("--route", "routes", metavar="[METHOD:]ROUTE", multiple=True,
              help="Check the --objective values on this route (repeatable; e.g. GET:/users/{id}); "
                   "default: over every request.")
@click.option("--file", "objectives_file", type=click.Path(exists=True, dir_okay=False),
              help="Objectives from a YAML or JSON file: a list of 'TEXT' or {objective: TEXT, route: ROUTE}.")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), default="netrum-slo",
              show_default=True, help="Directory for slo.csv.")
def slo(source: tuple[str, ...], objectives: tuple[str, ...], routes: tuple[str, ...],
        objectives_file: str | None, out_dir: str) -> None:
    """Check service-level objectives on a run (a netrum output directory or captures): compliance and
    error budget consumed per objective, written to slo.csv. Exit code 0 all objectives met (or no
    data), 4 an objective is breached, 2 an unreadable input or a bad objective."""
    from netrum.report.runs import load_run
    from netrum.report.slo import breached, evaluate_all, objectives_from_options, render_table, write_slo_csv

    try:
        parsed = objectives_from_options(objectives, routes, Path(objectives_file) if objectives_file else None)
        run = load_run(source)
    except NetrumError as e:
        fail(str(e), e.exit_code)
    results = evaluate_all(parsed, run.transactions)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_slo_csv(Path(out_dir) / "slo.csv", results)
    click.echo(render_table(results))
    if breached(results):
        click.echo("netrum: SLO breached", err=True)
        sys.exit(EXIT_SLO_BREACH)


@main.command()
@click.option("--interface", "-i", "interfaces", multiple=True, metavar="IFACE",
              help="Capture on this interface through libpcap (repeatable; 'any' for all).")
@click.option("--filter", "-f", "bpf", metavar="BPF", help="libpcap filter, e.g. 'tcp port 80'.")
@click.option("--replay", multiple=True, metavar="CAPTURE",
              help="Replay a capture file through the live path instead of an interface (no root needed).")
@click.option("--speed", default="1.0", show_default=True,
              help="Replay speed: a factor of the recorded speed, or 'max' (no pacing, no queue drops).")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False), default="netrum-live",
              show_default=True, help="Directory for endpoints-rolling.csv (and transactions-live.csv).")
@click.option("--interval", default="10s", show_default=True,
              help="Rolling CSV interval (packet time): 10s, 1m, 500ms...")
@click.option("--windows", default="10s,1m,5m", show_default=True,
              help="Rolling windows of the dashboard (packet time), comma-separated.")
@click.option("--metrics", default="127.0.0.1:9109", show_default=True, metavar="HOST:PORT|off",
              help="Prometheus /metrics listen address (loopback unless you give another address).")
@click.option("--transactions", is_flag=True, help="Also write transactions-live.csv.")
@click.option("--rotate-size", metavar="SIZE", default="64M", show_default=True,
              help="Rotate a rolling CSV file past this size.")
@click.option("--rotate-every", metavar="DURATION", help="Rotate a rolling CSV file after this packet time.")
@click.option("--route-budget", type=click.IntRange(1), default=500, show_default=True,
              help="Distinct routes in the metrics labels; beyond it the route label is {overflow}.")
@click.option("--port", "ports", type=click.IntRange(1, 65535), multiple=True,
              help="Only connections whose server uses this port (repeatable).")
@click.option("--server", "servers", multiple=True,
              help="Only connections whose server has this IP address (repeatable).")
@click.option("--max-flows", type=click.IntRange(1), default=DEFAULT_LIMITS.max_flows, show_default=True,
              help="Connections tracked at once; the idlest is evicted beyond it.")
@click.option("--idle-timeout", type=click.FloatRange(0.001), default=DEFAULT_LIMITS.flow_idle_timeout_ns / 1e9,
              show_default=True, help="Seconds of packet time after which a silent connection is closed.")
@click.option("--quiet", "-q", is_flag=True, help="No dashboard (it is shown only when stdout is a terminal).")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Endpoints listed in each dashboard table.")
@click.option("--user", metavar="NAME", help="Drop root to this user after opening the capture.")
def live(interfaces: tuple[str, ...], bpf: str | None, replay: tuple[str, ...], speed: str, out_dir: str,
         interval: str, windows: str, metrics: str, transactions: bool, rotate_size: str,
         rotate_every: str | None, route_budget: int, ports: tuple[int, ...], servers: tuple[str, ...],
         max_flows: int, idle_timeout: float, quiet: bool, top: int, user: str | None) -> None:
    """Monitor live traffic (-i IFACE, -f BPF) or replay a capture (--replay): dashboard, Prometheus
    metrics, rolling CSV. SIGINT/SIGTERM flush a final interval and exit 0; SIGHUP reopens the files."""
    from netrum.live.command import run_live

    try:
        code = run_live(interfaces, bpf, replay, speed, out_dir, interval, windows, metrics, transactions,
                        rotate_size, rotate_every, route_budget, ports, servers, max_flows, idle_timeout,
                        quiet, top, user)
    except NetrumError as e:
        fail(str(e), e.exit_code)
    except (ValueError, KeyError, PermissionError) as e:
        fail(str(e), 2)
    sys.exit(code)


@main.command("export-requests")
@click.argument("source", nargs=-1, required=True)
@click.option("--har", "har_path", type=click.Path(dir_okay=False), help="Write a HAR 1.2 log here.")
@click.option("--postman", "postman_path", type=click.Path(dir_okay=False),
              help="Write a Postman collection v2.1 here (one folder per route).")
@click.option("--route", "routes", metavar="[METHOD:]ROUTE", multiple=True,
              help="Only requests of this route (repeatable; e.g. GET:/users/{id}).")
@click.option("--status", "statuses", metavar="CODE|Nxx", multiple=True,
              help="Only requests answered with this status or class (repeatable; e.g. 200, 5xx).")
@click.option("--since", metavar="TIME", help="Only requests at or after TIME (epoch seconds or ISO 8601, UTC).")
@click.option("--until", metavar="TIME", help="Only requests before TIME (epoch seconds or ISO 8601, UTC).")
def export_requests(source: tuple[str, ...], har_path: str | None, postman_path: str | None,
                    routes: tuple[str, ...], statuses: tuple[str, ...], since: str | None,
                    until: str | None) -> None:
    """Export the recorded requests of a run (a netrum output directory or captures) for synthetic
    monitoring: HAR 1.2 and/or a Postman collection v2.1. Only Host, User-Agent and Content-Type headers
    exist (netrum never records others); query values stay masked unless the run kept them."""
    from netrum.report.requests import (
        RequestFilter,
        exportable,
        parse_status,
        parse_time,
        to_har,
        to_postman,
        write_json,
    )
    from netrum.report.runs import load_run

    if not har_path and not postman_path:
        fail("nothing to write: give --har and/or --postman", 2)
    try:
        flt = RequestFilter(routes, tuple(parse_status(s) for s in statuses),
                            parse_time(since) if since else None, parse_time(until) if until else None)
    except ValueError as e:
        fail(str(e), 2)
    try:
        run = load_run(source)
    except NetrumError as e:
        fail(str(e), e.exit_code)
    rows = exportable(run.transactions, flt)
    if har_path:
        write_json(Path(har_path), to_har(rows))
    if postman_path:
        write_json(Path(postman_path), to_postman(rows))
    click.echo(f"{len(rows)} requests on {len({t.endpoint for t in rows})} endpoints exported "
               f"(of {len(run.transactions)} in the run)")


@main.command()
@click.argument("source", nargs=-1, required=True)
@click.option("--out", "-o", "out_file", type=click.Path(dir_okay=False), default="report.html",
              show_default=True, help="The HTML file to write.")
@click.option("--title", default="netrum report", show_default=True, help="Title of the report.")
def report(source: tuple[str, ...], out_file: str, title: str) -> None:
    """Write one self-contained, offline HTML report of a run (a netrum output directory or captures):
    overview, capture health, sortable endpoint table and plots; printable."""
    from netrum.report.html import render_report
    from netrum.report.runs import load_run

    try:
        run = load_run(source)
    except NetrumError as e:
        fail(str(e), e.exit_code)
    path = Path(out_file)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(render_report(run, title), encoding="utf-8", errors="surrogateescape")
    tmp.replace(path)
    click.echo(f"report: {path} ({len(run.transactions)} requests, {len(run.endpoints)} endpoints)")


def run() -> None:
    """The console entry point: any failure is one line on stderr and a non-zero exit, never a traceback
    (set NETRUM_DEBUG=1 to see one)."""
    try:
        main(standalone_mode=True)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as e:
        if os.environ.get("NETRUM_DEBUG"):
            raise
        fail(f"internal error: {type(e).__name__}: {e}", 1)
