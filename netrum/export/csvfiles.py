"""CSV writers: transactions (streamed as they are found), endpoints and capture health.

Timestamps are written as epoch seconds with microsecond precision, durations as milliseconds with
three decimals (microseconds). Files are written to a temporary name and renamed when complete, so a
reader never sees half a file.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import IO

from netrum.counters import Counters
from netrum.records import Transaction

TRANSACTION_COLUMNS = (
    "request_ts", "request_end_ts", "response_ts", "response_end_ts",
    "client_ip", "client_port", "server_ip", "server_port", "connection", "depth",
    "method", "host", "uri", "route", "version", "status", "reason", "response_version",
    "request_body_bytes", "response_body_bytes", "request_header_bytes", "response_header_bytes",
    "ttfb_ms", "duration_ms", "request_content_type", "response_content_type", "user_agent",
    "interim_statuses", "tunnel_bytes", "notes",
)


def fmt_ts(ts_ns: int | None) -> str:
    """Epoch seconds with 6 decimals, exact (integer arithmetic, no float rounding)."""
    if ts_ns is None:
        return ""
    us = str(ts_ns // 1000)
    if len(us) > 6:  # any real capture time: cut the digits instead of dividing twice
        return f"{us[:-6]}.{us[-6:]}"
    return f"0.{us:0>6}"


def fmt_ms(delta_ns: int | None) -> str:
    """Milliseconds with 3 decimals (microsecond resolution), exact, negative values kept."""
    if delta_ns is None:
        return ""
    sign = "-" if delta_ns < 0 else ""
    us = abs(delta_ns) // 1000
    return f"{sign}{us // 1000}.{us % 1000:03d}"


def _s(v: object) -> str:
    return "" if v is None else str(v)


def transaction_row(tx: Transaction, route: str) -> list[str]:
    req, req_end = tx.request_ts_ns, tx.request_end_ts_ns
    resp, resp_end = tx.response_ts_ns, tx.response_end_ts_ns
    return [
        fmt_ts(req), fmt_ts(req_end), fmt_ts(resp), fmt_ts(resp_end),
        tx.client_ip, str(tx.client_port), tx.server_ip, str(tx.server_port), tx.conn_id, str(tx.depth),
        tx.method or "", tx.host or "", tx.uri or "", route, tx.version or "",
        "" if tx.status is None else str(tx.status), tx.reason or "", tx.response_version or "",
        _s(tx.request_body_bytes), _s(tx.response_body_bytes),
        _s(tx.request_header_bytes), _s(tx.response_header_bytes),
        "" if resp is None or req_end is None else fmt_ms(resp - req_end),
        "" if resp_end is None or req is None else fmt_ms(resp_end - req),
        tx.request_content_type or "", tx.response_content_type or "", tx.user_agent or "",
        ";".join(map(str, tx.interim_statuses)) if tx.interim_statuses else "", str(tx.tunnel_bytes),
        ";".join(tx.notes),
    ]


class AtomicCsv:
    """A CSV file written under a temporary name and renamed into place by ``close``."""

    def __init__(self, path: Path, header: tuple[str, ...] | list[str]) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.part")
        # surrogateescape: request-targets keep any byte (decoded latin-1 upstream; this keeps str safe)
        self._fh: IO[str] = open(  # noqa: SIM115 - closed (and renamed) by close()
            self._tmp, "w", newline="", encoding="utf-8", errors="surrogateescape")
        self.writer = csv.writer(self._fh)
        self.writer.writerow(header)
        self.rows = 0

    def writerow(self, row: list[str]) -> None:
        self.writer.writerow(row)
        self.rows += 1

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
            os.replace(self._tmp, self.path)


class TransactionWriter(AtomicCsv):
    def __init__(self, path: Path) -> None:
        super().__init__(path, TRANSACTION_COLUMNS)

    def write(self, tx: Transaction, route: str) -> None:
        self.writerow(transaction_row(tx, route))


def write_endpoints(path: Path, rows: list[dict[str, object]], columns: tuple[str, ...]) -> None:
    out = AtomicCsv(path, columns)
    for r in rows:
        out.writerow([_fmt_cell(k, r.get(k)) for k in columns])
    out.close()


def _fmt_cell(key: str, v: object) -> str:
    if v is None:
        return ""
    if key in ("first_seen", "last_seen"):
        return fmt_ts(v)  # type: ignore[arg-type]
    if isinstance(v, float):
        return f"{v:.6f}" if key in ("error_rate",) else f"{v:.3f}"
    return str(v)


HEALTH_COLUMNS = ("group", "counter", "value", "meaning")


def write_health(path: Path, counters: Counters, run_facts: dict[str, object]) -> None:
    """Every documented counter (zeros included, so the file's shape is stable) plus the run's facts
    (group ``run``: partial, capture span, files...)."""
    out = AtomicCsv(path, HEALTH_COLUMNS)
    for name, value in run_facts.items():
        out.writerow(["run", name, _s(value), ""])
    for group, name, value, meaning in counters.rows():
        out.writerow([group, name, str(value), meaning])
    out.close()
