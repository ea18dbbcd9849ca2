"""CSV writers: transactions (streamed as they are found), endpoints and capture health.

Timestamps are written as epoch seconds with microsecond precision, durations as milliseconds with
three decimals (microseconds). Files are written to a temporary name and renamed when complete, so a
reader never sees half a file.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from netrum.counters import Counters
from netrum.export.privacy import DEFAULT_PRIVACY, Privacy, mask_target
from netrum.records import Transaction

TRANSACTION_COLUMNS = (
    "request_ts", "request_end_ts", "response_ts", "response_end_ts",
    "client_ip", "client_port", "server_ip", "server_port", "connection", "depth",
    "method", "host", "uri", "route", "operation_id", "version", "status", "reason", "response_version",
    "request_body_bytes", "response_body_bytes", "request_header_bytes", "response_header_bytes",
    "ttfb_ms", "duration_ms", "request_content_type", "response_content_type", "user_agent",
    "interim_statuses", "tunnel_bytes", "notes", "consumer",
)
# Columns that hold free text (everything else is a number, a timestamp, an id or a note): the user's
# masks apply to them (netrum.export.privacy).
_TEXT_CELLS = tuple(TRANSACTION_COLUMNS.index(c) for c in (
    "client_ip", "server_ip", "method", "host", "route", "version", "reason", "response_version",
    "request_content_type", "response_content_type", "user_agent", "consumer"))
_URI_CELL = TRANSACTION_COLUMNS.index("uri")
_TEXT_CELLS += (_URI_CELL,)


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


def transaction_row(tx: Transaction, route: str, privacy: Privacy = DEFAULT_PRIVACY) -> list[str]:
    """One transactions.csv row, its text passed through ``privacy`` (query values masked by default)."""
    req, req_end = tx.request_ts_ns, tx.request_end_ts_ns
    resp, resp_end = tx.response_ts_ns, tx.response_end_ts_ns
    row = [
        fmt_ts(req), fmt_ts(req_end), fmt_ts(resp), fmt_ts(resp_end),
        tx.client_ip, str(tx.client_port), tx.server_ip, str(tx.server_port), tx.conn_id, str(tx.depth),
        tx.method or "", tx.host or "", tx.uri or "", route, "", tx.version or "",
        "" if tx.status is None else str(tx.status), tx.reason or "", tx.response_version or "",
        _s(tx.request_body_bytes), _s(tx.response_body_bytes),
        _s(tx.request_header_bytes), _s(tx.response_header_bytes),
        "" if resp is None or req_end is None else fmt_ms(resp - req_end),
        "" if resp_end is None or req is None else fmt_ms(resp_end - req),
        tx.request_content_type or "", tx.response_content_type or "", tx.user_agent or "",
        ";".join(map(str, tx.interim_statuses)) if tx.interim_statuses else "", str(tx.tunnel_bytes),
        ";".join(tx.notes), tx.consumer or tx.client_ip,
    ]
    if privacy.masks:
        if row[_URI_CELL] and not privacy.keep_query_values:
            row[_URI_CELL] = mask_target(row[_URI_CELL])
        privacy.cells(row, _TEXT_CELLS)
    elif row[_URI_CELL] and not privacy.keep_query_values:
        row[_URI_CELL] = mask_target(row[_URI_CELL])
    return row


# The C accelerator (netrum/_csvrow.c, optional): the whole transactions.csv line of ``transaction_row``
# without user masks, the text csv.writer would write. This module's Python stays the reference.
_transaction_line: Callable[[Transaction, str, bool], str] | None
try:
    from netrum._csvrow import configure as _configure_csvrow
    from netrum._csvrow import transaction_line as _c_transaction_line
except ImportError:  # not built (no C compiler): the pure-Python path
    _transaction_line = None
else:
    _configure_csvrow(Transaction, mask_target, fmt_ts, fmt_ms)
    _transaction_line = _c_transaction_line


def _accelerated(privacy: Privacy) -> Callable[[Transaction, str, bool], str] | None:
    """The C line formatter when it applies: built, no user masks, NETRUM_PURE not "1"."""
    if privacy.masks or os.environ.get("NETRUM_PURE") == "1":
        return None
    return _transaction_line


class _Lines:
    """A file-like sink for csv.writer that keeps the last line written."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line = ""

    def write(self, s: str) -> int:
        self.line = s
        return len(s)


def transaction_formatter(privacy: Privacy = DEFAULT_PRIVACY) -> Callable[[Transaction, str], str]:
    """``(tx, route) -> str``: the transactions.csv line of ``transaction_row(tx, route, privacy)``, CRLF
    included, exactly as csv.writer writes it (in C when ``_accelerated``)."""
    c_line = _accelerated(privacy)
    if c_line is not None:
        keep = privacy.keep_query_values
        return lambda tx, route: c_line(tx, route, keep)
    sink = _Lines()
    writerow = csv.writer(sink).writerow

    def line(tx: Transaction, route: str) -> str:
        writerow(transaction_row(tx, route, privacy))
        return sink.line

    return line


class AtomicCsv:
    """A CSV file written under a temporary name and renamed into place by ``close``."""

    def __init__(self, path: Path, header: tuple[str, ...] | list[str], buffering: int = -1) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.part")
        # surrogateescape: request-targets keep any byte (decoded latin-1 upstream; this keeps str safe)
        self._fh: IO[str] = open(  # noqa: SIM115 - closed (and renamed) by close()
            self._tmp, "w", buffering, newline="", encoding="utf-8", errors="surrogateescape")
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
    """transactions.csv. Without user masks, the rows are formatted in C when the accelerator is built
    and NETRUM_PURE is not "1" (the same text: tests/export/test_csvrow.py)."""

    def __init__(self, path: Path, privacy: Privacy = DEFAULT_PRIVACY) -> None:
        # a 1 MiB buffer: half the cost of writing a line with the default 8 KiB (one row per transaction)
        super().__init__(path, TRANSACTION_COLUMNS, 1 << 20)
        self.privacy = privacy
        self._line = _accelerated(privacy)
        self._keep_query_values = privacy.keep_query_values
        self._write = self._fh.write  # the csv.writer writes to the same handle, in order

    def write(self, tx: Transaction, route: str) -> None:
        line = self._line
        if line is None:
            self.writerow(transaction_row(tx, route, self.privacy))
        else:
            self._write(line(tx, route, self._keep_query_values))
            self.rows += 1


def rewrite_routes(path: Path, mapping: dict[tuple[str, str, str], tuple[str, str]],
                   privacy: Privacy = DEFAULT_PRIVACY) -> None:
    """Rewrite the ``route`` and ``operation_id`` columns of a finished transactions.csv in one streaming
    pass (temporary file, then rename): ``mapping`` takes (host, method, rule-based route) to (route,
    operationId); the host is the Host column, else ``server_ip:server_port`` (as the aggregator keys).
    The file's text went through ``privacy`` (``transaction_row``): so do the mapping's keys and routes."""
    if privacy.masks:
        text = privacy.text
        mapping = {(text(h), text(m), text(r)): (text(route), op) for (h, m, r), (route, op) in mapping.items()}
    tmp = path.with_name(f".{path.name}.part")
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as src, \
            open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        header = next(reader)
        writer.writerow(header)
        col = {name: i for i, name in enumerate(header)}
        i_method, i_host, i_route, i_op = col["method"], col["host"], col["route"], col["operation_id"]
        i_ip, i_port = col["server_ip"], col["server_port"]
        get = mapping.get
        for row in reader:
            method = row[i_method]
            if method:
                hit = get((row[i_host] or f"{row[i_ip]}:{row[i_port]}", method, row[i_route]))
                if hit is not None:
                    row[i_route], row[i_op] = hit
            writer.writerow(row)
    os.replace(tmp, path)


def write_endpoints(path: Path, rows: list[dict[str, object]], columns: tuple[str, ...],
                    privacy: Privacy = DEFAULT_PRIVACY) -> None:
    """A table of rows (endpoints.csv, consumers.csv); text cells pass through ``privacy``."""
    out = AtomicCsv(path, columns)
    cell = privacy.cell
    for r in rows:
        out.writerow([cell(k, v) if isinstance(v := r.get(k), str) else _fmt_cell(k, v) for k in columns])
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


def write_health(path: Path, counters: Counters, run_facts: dict[str, object],
                 privacy: Privacy = DEFAULT_PRIVACY) -> None:
    """Every documented counter (zeros included, so the file's shape is stable) plus the run's facts
    (group ``run``: partial, capture span, files...); the facts' text (problem lines, input paths)
    passes through ``privacy``."""
    out = AtomicCsv(path, HEALTH_COLUMNS)
    for name, value in run_facts.items():
        out.writerow(["run", name, privacy.text(value) if isinstance(value, str) else _s(value), ""])
    for group, name, value, meaning in counters.rows():
        out.writerow([group, name, str(value), meaning])
    out.close()
