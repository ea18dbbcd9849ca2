"""Helpers of the integration tests: read nginx access logs and netrum's CSV outputs, compare them.

The access log format is the one scripts/make_nginx_capture.py configures (its LOG_FIELDS, loaded from
the script so there is one definition). Every request-target carries a unique ``rid=<n>``, so access log
lines and transactions match one to one on the request-target (``uri`` column = nginx ``$request_uri``).
"""
from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
COMMITTED_PCAP = REPO_ROOT / "pcaps" / "nginx-mix.pcap"
COMMITTED_LOG = REPO_ROOT / "pcaps" / "nginx-mix.access.log"

# The columns that must come out identical when packets are reordered or duplicated: the connection's
# endpoints (not its id: ids follow the order of first sight, which reordering may change), position on
# the connection, request line, status and body sizes.
KEY_COLUMNS = ("client_ip", "client_port", "server_ip", "server_port", "depth", "method", "uri", "status",
               "request_body_bytes", "response_body_bytes")
# Flags that must never appear on a clean capture of nginx on loopback.
DAMAGE_NOTES = frozenset({"midstream", "no_response", "no_request", "gap_request", "gap_response", "resync",
                          "truncated_request", "truncated_response", "role_guessed", "reordered", "bad_chunk",
                          "snaplen", "http09"})


def load_script(name: str) -> ModuleType:
    """Import scripts/<name>.py as a module (scripts/ is not a package)."""
    path = SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"netrum_scripts_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parse_access_log(path: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = load_script("make_nginx_capture").parse_access_log(path)
    return rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_health(out_dir: Path) -> dict[tuple[str, str], str]:
    return {(r["group"], r["counter"]): r["value"] for r in read_csv(out_dir / "health.csv")}


def notes_of(tx: dict[str, str]) -> set[str]:
    return {n for n in tx["notes"].split(";") if n}


def keys(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return sorted(tuple(r[c] for c in KEY_COLUMNS) for r in rows)


@dataclass
class Run:
    """One `netrum analyze` run: its exit code, output streams and the CSV files it wrote."""

    returncode: int
    stdout: str
    stderr: str
    out_dir: Path

    @property
    def transactions(self) -> list[dict[str, str]]:
        return read_csv(self.out_dir / "transactions.csv")

    @property
    def health(self) -> dict[tuple[str, str], str]:
        return read_health(self.out_dir)

    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


RunNetrum = Callable[..., "subprocess.CompletedProcess[str]"]


def analyze(run_netrum: RunNetrum, captures: list[Path | str], out_dir: Path,
            stdin: bytes | None = None, options: tuple[str, ...] = ("--keep-query-values",)) -> Run:
    """Access log lines and transactions match on the request-target's rid=<n> query value: it is kept."""
    proc = run_netrum(["analyze", *captures, "--out", out_dir, "--quiet", *options], stdin=stdin)
    return Run(proc.returncode, proc.stdout, proc.stderr, out_dir)


def by_uri(transactions: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for tx in transactions:
        out.setdefault(tx["uri"], []).append(tx)
    return out


INTERIM_100 = len(b"HTTP/1.1 100 Continue\r\n\r\n")


def body_bytes(row: dict[str, str]) -> int:
    """The response body nginx sent: $body_bytes_sent, less the interim "100 Continue" that nginx counts
    in it ($bytes_sent - $body_bytes_sent stays the final response's head)."""
    n = int(row["body_bytes_sent"])
    sent_100 = row["http_expect"] == "100-continue" and row["server_protocol"] == "HTTP/1.1"
    return n - INTERIM_100 if sent_100 else n


def compare_with_access_log(transactions: list[dict[str, str]],
                            log_rows: list[dict[str, str]]) -> dict[str, object]:
    """Match every access log line to its transaction (by request-target) and collect the disagreements.

    Returns counts and the first few examples of each kind of disagreement, so a failing assertion says
    what went wrong.
    """
    idx = by_uri(transactions)
    missing: list[str] = []
    dup: list[str] = []
    wrong_status: list[str] = []
    wrong_body: list[str] = []
    wrong_endpoint: list[str] = []
    wrong_method: list[str] = []
    wrong_version: list[str] = []
    wrong_interim: list[str] = []
    close: list[float] = []
    far: list[str] = []
    for row in log_rows:
        uri = row["request_uri"]
        found = idx.get(uri, [])
        if not found:
            missing.append(uri)
            continue
        if len(found) > 1:
            dup.append(uri)
        tx = found[0]
        if tx["status"] != row["status"]:
            wrong_status.append(f"{uri}: netrum {tx['status']!r} nginx {row['status']}")
        if tx["method"] != row["request_method"]:
            wrong_method.append(f"{uri}: {tx['method']} vs {row['request_method']}")
        if tx["version"] != row["server_protocol"]:
            wrong_version.append(f"{uri}: {tx['version']} vs {row['server_protocol']}")
        if (tx["client_ip"], tx["client_port"]) != (row["remote_addr"], row["remote_port"]):
            wrong_endpoint.append(f"{uri}: {tx['client_ip']}:{tx['client_port']} vs "
                                  f"{row['remote_addr']}:{row['remote_port']}")
        chunked = row["sent_http_transfer_encoding"] == "chunked"
        if not chunked and tx["response_body_bytes"] != str(body_bytes(row)):
            wrong_body.append(f"{uri}: netrum {tx['response_body_bytes']!r} nginx {body_bytes(row)}")
        if row["http_expect"] == "100-continue" and tx["interim_statuses"] != "100":
            wrong_interim.append(f"{uri}: interim {tx['interim_statuses']!r}")
        if tx["duration_ms"]:
            d = abs(float(tx["duration_ms"]) - float(row["request_time"]) * 1000)
            close.append(d)
            if d > 2.0:
                far.append(f"{uri}: netrum {tx['duration_ms']} ms nginx {row['request_time']} s")
        else:
            far.append(f"{uri}: no duration")
    within = sum(d <= 2.0 for d in close)
    return {
        "logged": len(log_rows), "transactions": len(transactions), "missing": missing, "duplicated": dup,
        "wrong_status": wrong_status, "wrong_body": wrong_body, "wrong_endpoint": wrong_endpoint,
        "wrong_method": wrong_method, "wrong_version": wrong_version, "wrong_interim": wrong_interim,
        "within_2ms": within, "far": far,
    }


def assert_matches_access_log(transactions: list[dict[str, str]], log_rows: list[dict[str, str]]) -> None:
    """The acceptance of the ground-truth capture, with readable failure messages."""
    r = compare_with_access_log(transactions, log_rows)
    n = len(log_rows)
    assert not r["missing"], f"{len(r['missing'])} of {n} logged requests not found, e.g. {r['missing'][:5]}"  # type: ignore[index, arg-type]
    assert not r["duplicated"], f"requests found twice: {r['duplicated'][:5]}"  # type: ignore[index]
    assert len(transactions) == n, f"{len(transactions)} transactions for {n} logged requests"
    for kind in ("wrong_status", "wrong_method", "wrong_version", "wrong_endpoint", "wrong_body",
                 "wrong_interim"):
        bad = r[kind]
        assert not bad, f"{kind}: {len(bad)} of {n}, e.g. {bad[:5]}"  # type: ignore[index, arg-type]
    assert r["within_2ms"] >= 0.999 * n, (  # type: ignore[operator]
        f"duration_ms within 2 ms of $request_time for only {r['within_2ms']} of {n}, e.g. {r['far'][:5]}")  # type: ignore[index]


# ------------------------------------------------------------------------------- making the big capture
@dataclass
class Capture:
    pcap: Path
    log: Path
    rows: list[dict[str, str]]


def tools_or_skip() -> None:
    """Skip when the capture cannot be made here; under CI (env CI set) a missing tool is a failure."""
    problems = [f"{t} is not installed" for t in ("nginx", "tcpdump", "curl")
                if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    if os.geteuid() != 0:
        problems.append("not running as root (tcpdump on lo and a private nginx need it)")
    if problems:
        msg = "cannot make the nginx ground-truth capture: " + "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI is set: scripts/test installs nginx and tcpdump and runs as root)")
        pytest.skip(msg)


def make_capture(out_dir: Path, requests: int, seed: int) -> Capture:
    tools_or_skip()
    pcap, log = out_dir / "nginx-gt.pcap", out_dir / "nginx-gt.access.log"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "make_nginx_capture.py"), str(pcap),
                           "--requests", str(requests), "--seed", str(seed), "--log", str(log)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"make_nginx_capture.py failed ({proc.returncode}):\n{proc.stderr}"
    return Capture(pcap, log, parse_access_log(log))


def damage(src: Path, dst: Path, *options: str) -> Path:
    proc = subprocess.run([sys.executable, str(SCRIPTS / "damage.py"), str(src), str(dst), *options],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"damage.py {' '.join(options)} failed:\n{proc.stderr}"
    return dst
