"""The terminal dashboard of ``netrum live``: plain ANSI, redrawn in place on every refresh.

Top endpoints of the shortest window by traffic, by errors and by p99 latency (sketch, 1%), and the
capture's health: packets/s, kernel and queue drops, gaps, open flows, resident memory.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netrum.live.windows import OVERALL, Table

if TYPE_CHECKING:
    from netrum.live.runner import LiveRunner

HOME_CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
BOLD, RESET = "\x1b[1m", "\x1b[0m"


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def _table(title: str, table: Table, keys: list[tuple[str, str, str]], span_s: float) -> list[str]:
    out = [f"{BOLD}{title}{RESET}",
           f"{'rps':>8} {'err%':>6} {'p50 ms':>9} {'p99 ms':>9}  endpoint"]
    for k in keys:
        st = table[k]
        d = st.duration_ms
        err = 100.0 * st.errors / st.responses if st.responses else None
        out.append(f"{st.requests / span_s if span_s > 0 else 0:>8.1f} {_f(err):>6} {_f(d.quantile(0.5)):>9} "
                   f"{_f(d.quantile(0.99)):>9}  {k[1]} {k[0]}{k[2]}")
    return out


def render_dashboard(runner: LiveRunner) -> str:
    o = runner.o
    w = runner.windows
    seconds = w.windows_s[0]
    table = w.window(seconds)
    span = w.span_s(seconds)
    keys = [k for k in table if k != OVERALL]
    top = o.top
    busiest = sorted(keys, key=lambda k: (-table[k].requests, k))[:top]
    errors = sorted((k for k in keys if table[k].errors), key=lambda k: (-table[k].errors, k))[:top]
    slowest = sorted((k for k in keys if table[k].duration_ms.count),
                     key=lambda k: (-(table[k].duration_ms.quantile(0.99) or 0.0), k))[:top]
    c = runner.counters
    head = (f"{BOLD}netrum live{RESET}  window {seconds:g}s  transactions {runner.transactions}  "
            f"intervals {runner.intervals}")
    lines = [head]
    tot = table.get(OVERALL)
    if tot is not None:
        d = tot.duration_ms
        lines.append(f"all: {tot.requests / span if span > 0 else 0:.1f} req/s  errors {tot.errors}  "
                     f"p50 {_f(d.quantile(0.5))} ms  p99 {_f(d.quantile(0.99))} ms")
    lines += ["", *_table("busiest", table, busiest, span), "",
              *_table("most errors", table, errors, span), "",
              *_table("slowest (p99)", table, slowest, span), ""]
    lines.append(f"{BOLD}capture{RESET}  {runner.pps:,.0f} packets/s  packets {c['capture_packets']:,}  "
                 f"kernel drops {c['capture_kernel_drops']:,}  queue drops {c['capture_queue_drops']:,}  "
                 f"gaps {c['tcp_gap']:,}  resyncs {c['http_resync']:,}  flows open {len(runner.analyzer.flows):,}  "
                 f"memory {rss_bytes() / 2**20:,.0f} MB")
    return HOME_CLEAR + "\n".join(lines) + "\n"
