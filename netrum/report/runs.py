"""Load a run for the report commands: a previous ``netrum analyze`` output directory, or captures that are
analyzed into a temporary directory first (through ``netrum.batch.analyze_files``, the same code as
``netrum analyze``)."""
from __future__ import annotations

import csv
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netrum.errors import UsageError


@dataclass(frozen=True, slots=True)
class TxRow:
    """The figures of one transactions.csv row the reports use (times in seconds / milliseconds)."""

    host: str
    method: str
    route: str
    uri: str
    status: int | None  # None: no response
    request_ts_s: float | None
    response_ts_s: float | None
    response_end_ts_s: float | None
    request_end_ts_s: float | None
    ttfb_ms: float | None
    duration_ms: float | None
    version: str
    response_body_bytes: int | None
    request_body_bytes: int | None
    request_content_type: str
    response_content_type: str
    user_agent: str
    server_ip: str
    server_port: int
    request_header_bytes: int | None = None
    response_header_bytes: int | None = None
    reason: str = ""
    response_version: str = ""
    client_ip: str = ""
    connection: str = ""

    @property
    def endpoint(self) -> tuple[str, str, str]:
        return (self.host, self.method, self.route)

    @property
    def is_error(self) -> bool:
        """4xx or 5xx, as in endpoints.csv's error_rate."""
        return self.status is not None and self.status >= 400


@dataclass
class Run:
    source: str  # the directory or the capture paths, for messages
    transactions: list[TxRow]
    health: dict[str, str]  # health.csv: counter (or run fact) -> value
    endpoints: list[dict[str, str]]  # endpoints.csv rows as written
    health_rows: list[dict[str, str]] = field(default_factory=list)  # health.csv rows (group, counter, ...)


def _f(s: str) -> float | None:
    return float(s) if s else None


def _i(s: str) -> int | None:
    return int(s) if s else None


def read_transactions(path: Path) -> list[TxRow]:
    """Every row of a transactions.csv that has a request (a response without its request is no endpoint,
    as in the aggregator); the host is the Host column, else ``server_ip:server_port``."""
    out: list[TxRow] = []
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        for r in csv.DictReader(fh):
            method = r["method"]
            if not method:
                continue
            out.append(TxRow(
                host=r["host"] or f"{r['server_ip']}:{r['server_port']}", method=method, route=r["route"],
                uri=r["uri"], status=_i(r["status"]), request_ts_s=_f(r["request_ts"]),
                response_ts_s=_f(r["response_ts"]), response_end_ts_s=_f(r["response_end_ts"]),
                request_end_ts_s=_f(r["request_end_ts"]), ttfb_ms=_f(r["ttfb_ms"]),
                duration_ms=_f(r["duration_ms"]), version=r["version"],
                response_body_bytes=_i(r["response_body_bytes"]), request_body_bytes=_i(r["request_body_bytes"]),
                request_content_type=r["request_content_type"], response_content_type=r["response_content_type"],
                user_agent=r["user_agent"], server_ip=r["server_ip"], server_port=int(r["server_port"] or 0),
                request_header_bytes=_i(r["request_header_bytes"]),
                response_header_bytes=_i(r["response_header_bytes"]), reason=r["reason"],
                response_version=r["response_version"], client_ip=r["client_ip"], connection=r["connection"]))
    return out


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def read_run_dir(path: Path) -> Run:
    tx = path / "transactions.csv"
    if not tx.is_file():
        raise UsageError(f"{path}: not a netrum output directory (no transactions.csv)")
    health_rows = _read_rows(path / "health.csv")
    health = {r["counter"]: r["value"] for r in health_rows}
    return Run(str(path), read_transactions(tx), health, _read_rows(path / "endpoints.csv"), health_rows)


def load_run(sources: Sequence[str]) -> Run:
    """A run directory (one path holding transactions.csv) or captures analyzed into a temporary directory.

    Raises UsageError / CaptureError (exit code 2) when the input is neither."""
    if len(sources) == 1 and Path(sources[0]).is_dir() and (Path(sources[0]) / "transactions.csv").exists():
        return read_run_dir(Path(sources[0]))
    from netrum.batch import AnalyzeOptions, analyze_files

    with tempfile.TemporaryDirectory(prefix="netrum-") as tmp:
        analyze_files(list(sources), Path(tmp), AnalyzeOptions())
        run = read_run_dir(Path(tmp))
    run.source = " ".join(sources)
    return run
