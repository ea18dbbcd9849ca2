"""``netrum live``: wiring of the options (the click declaration lives in netrum.cli)."""
from __future__ import annotations

import ipaddress
import re
import signal
import sys
from dataclasses import replace
from pathlib import Path

from netrum.errors import NetrumError
from netrum.limits import DEFAULT_LIMITS

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?\Z")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"(\d+)([kKmMgG]?)[bB]?\Z")
_UNIT_B = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_duration(text: str) -> float:
    """'10s', '500ms', '5m', '1h', '2.5' (seconds) -> seconds (> 0)."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"not a duration: {text!r} (e.g. 10s, 500ms, 5m)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_size(text: str) -> int:
    """'64M', '512k', '1G', '1000' (bytes) -> bytes (> 0)."""
    m = _SIZE.match(text.strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"not a size: {text!r} (e.g. 64M)")
    return int(m.group(1)) * _UNIT_B[m.group(2).lower()]


def parse_speed(text: str) -> float | None:
    """'1', '2.5' (times the recorded speed) or 'max' (no pacing) -> factor, None for max."""
    if text.strip().lower() == "max":
        return None
    try:
        v = float(text)
    except ValueError:
        v = 0.0
    if v <= 0:
        raise ValueError(f"--speed {text!r}: a positive factor or 'max'")
    return v


def run_live(interfaces: tuple[str, ...], bpf: str | None, replay: tuple[str, ...], speed: str, out_dir: str | None,
             interval: str, windows: str, metrics: str, transactions: bool, rotate_size: str | None,
             rotate_every: str | None, route_budget: int, ports: tuple[int, ...], servers: tuple[str, ...],
             max_flows: int, idle_timeout: float, quiet: bool, top: int, user: str | None) -> int:
    """Run the live monitor; returns the exit code (0 when stopped by SIGINT/SIGTERM or at the end of a
    replay). Raises ValueError for bad option values, NetrumError when a capture cannot be opened."""
    from netrum.capture.live import LiveSource, PcapSource, ReplaySource
    from netrum.live.metrics import MetricsExporter, parse_listen, serve
    from netrum.live.runner import LiveOptions, LiveRunner, drop_privileges

    if bool(interfaces) == bool(replay):
        raise ValueError("give either -i IFACE (live capture) or --replay CAPTURE")
    interval_s = parse_duration(interval)
    windows_s = tuple(parse_duration(w) for w in windows.split(",") if w.strip())
    factor = parse_speed(speed)
    addrs = frozenset(ipaddress.ip_address(s).packed for s in servers) or None
    limits = replace(DEFAULT_LIMITS, max_flows=max_flows, flow_idle_timeout_ns=int(idle_timeout * 1e9))
    exporter = None
    listen = None
    if metrics.lower() != "off":
        listen = parse_listen(metrics)
        exporter = MetricsExporter(route_budget=route_budget)
    source: LiveSource
    if replay:
        source = ReplaySource(replay, factor)
    else:
        source = PcapSource(interfaces, bpf)
    server = None
    try:
        if exporter is not None and listen is not None:
            try:
                server, _thread = serve(exporter, *listen)
            except OSError as e:
                raise NetrumError(f"--metrics {metrics}: {e.strerror or e}") from e
        if user:
            drop_privileges(user)  # after the capture handles and the metrics socket are open
        options = LiveOptions(
            out_dir=Path(out_dir) if out_dir else None, interval_s=interval_s, windows_s=windows_s,
            transactions=transactions, rotate_bytes=parse_size(rotate_size) if rotate_size else None,
            rotate_s=parse_duration(rotate_every) if rotate_every else None, route_budget=route_budget,
            metrics=exporter, limits=limits, server_ports=frozenset(ports) or None, server_addrs=addrs,
            dashboard=not quiet and sys.stdout.isatty(), top=top)
        runner = LiveRunner(source, options)
        signal.signal(signal.SIGINT, runner.request_stop)
        signal.signal(signal.SIGTERM, runner.request_stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, runner.request_reopen)
        ready = f"netrum live: {'replaying ' + ', '.join(replay) if replay else 'capturing on ' + ', '.join(interfaces)}"
        if listen is not None and server is not None:
            ready += f"; metrics on http://{listen[0]}:{server.server_port}/metrics"  # type: ignore[attr-defined]
        print(ready, file=sys.stderr, flush=True)
        result = runner.run()
    finally:
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
    for p in result.problems:
        print(f"netrum: warning: {p}", file=sys.stderr)
    c = result.counters
    print(f"netrum live: {c['capture_packets']} packets, {result.transactions} transactions, "
          f"{result.intervals} intervals; kernel drops {c['capture_kernel_drops']}, "
          f"queue drops {c['capture_queue_drops']}", file=sys.stderr)
    return 0
