"""The command line: options, wiring and exit codes. No protocol logic lives here.

Exit codes: 0 success; 1 unexpected failure; 2 an input cannot be read at all (or bad usage);
3 results were written but are partial (a capture was cut or corrupt, or the run was interrupted).
"""
from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from netrum import __version__
from netrum.errors import NetrumError
from netrum.limits import DEFAULT_LIMITS, Limits

EXIT_PARTIAL = 3


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
              help="Processes, each analysing the connections given to it (output identical to one "
                   "process; --max-flows applies per worker).")
@click.option("--scheduler", metavar="ADDR",
              help="Run the workers on dask.distributed: a scheduler address (tcp://host:8786; captures "
                   "must be readable at the same paths on every worker) or 'local' for a local cluster.")
def analyze(captures: tuple[str, ...], out_dir: str, ports: tuple[int, ...], servers: tuple[str, ...],
            top: int, quiet: bool, progress: bool | None, max_flows: int, idle_timeout: float,
            workers: int, scheduler: str | None) -> None:
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
    options = AnalyzeOptions(limits, frozenset(ports) or None, addrs)
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
                          result.problems, out_dir))
    if c["capture_snaplen_cut"]:
        click.echo(f"netrum: warning: {c['capture_snaplen_cut']} of {c['capture_packets']} frames were "
                   f"cut short by the capture's snaplen ({c['capture_snaplen_bytes']} bytes missing); "
                   "sizes come from headers, bodies were not seen", err=True)
    if result.partial:
        what = result.problems[0] if result.problems else "interrupted"
        more = f" (+{len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        fail(f"partial results: {what}{more}; what was read is written to {out_dir} "
             "(marked partial in health.csv)", EXIT_PARTIAL)


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
