"""Damaged versions of the nginx ground-truth captures (scripts/damage.py), as real captures get damaged.

- packets reordered within windows of 8 (timestamps left in file order), 5% duplicated, and both: exactly
  the transactions of the clean capture on the key columns (connection endpoints, depth, request line,
  status, body sizes);
- 1% of packets dropped at random: >= 97% of the logged requests found, and not one wrong status;
- the file cut in the middle of a record: exit 3, one line on stderr, the results so far written and
  marked partial in health.csv;
- a 96-byte snaplen: a clear message, no traceback, results written.

Run on the committed pcaps/nginx-mix.pcap and on the >= 5,000-request capture made in this session.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest

from .groundtruth import KEY_COLUMNS, Capture, Run, by_uri, keys

EXACT_DAMAGE = {
    "reorder8": ("--reorder-window", "8", "--seed", "11"),
    "duplicate5": ("--duplicate", "0.05", "--seed", "12"),
    "reorder8+duplicate5": ("--duplicate", "0.05", "--reorder-window", "8", "--seed", "13"),
}


def _diff(clean: list[tuple[str, ...]], damaged: list[tuple[str, ...]]) -> str:
    a, b = set(clean), set(damaged)
    return (f"{len(clean)} clean vs {len(damaged)} damaged transactions; only clean: {sorted(a - b)[:3]}; "
            f"only damaged: {sorted(b - a)[:3]} (columns {KEY_COLUMNS})")


@pytest.mark.parametrize("damage", list(EXACT_DAMAGE))
def test_reordered_and_duplicated_packets_give_exactly_the_clean_transactions(
        any_capture: Capture, analyzed: Callable[..., Run], damage: str) -> None:
    clean = analyzed(any_capture.pcap)
    run = analyzed(any_capture.pcap, *EXACT_DAMAGE[damage])
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert len(clean.transactions) == len(any_capture.rows)
    clean_keys, damaged_keys = keys(clean.transactions), keys(run.transactions)
    assert damaged_keys == clean_keys, _diff(clean_keys, damaged_keys)
    assert run.health[("run", "partial")] == "0"


def test_duplicates_are_counted(any_capture: Capture, analyzed: Callable[..., Run]) -> None:
    run = analyzed(any_capture.pcap, *EXACT_DAMAGE["duplicate5"])
    values = [int(v) for (g, c), v in run.health.items() if c == "tcp_duplicate"]
    assert values and values[0] > 0, "5% duplicated packets but tcp_duplicate is 0"


def test_one_percent_dropped_finds_97_percent_and_no_wrong_status(
        any_capture: Capture, analyzed: Callable[..., Run]) -> None:
    run = analyzed(any_capture.pcap, "--drop", "0.01", "--seed", "21")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    idx = by_uri(run.transactions)
    found = [r for r in any_capture.rows if r["request_uri"] in idx]
    wrong = [(r["request_uri"], r["status"], [t["status"] for t in idx[r["request_uri"]]]) for r in found
             if any(t["status"] not in ("", r["status"]) for t in idx[r["request_uri"]])]
    n = len(any_capture.rows)
    assert len(found) >= 0.97 * n, f"only {len(found)} of {n} requests found after dropping 1% of packets"
    # Including a connection that lost both its SYN-ACK and its first response (its server stream starts at
    # the client's ACK: the lost response is a gap, nothing shifts), and a request found by hunting through
    # the body of a lost one (it gets the ACK of its own segment, not the body's).
    assert not wrong, f"{len(wrong)} wrong statuses (uri, nginx, netrum): {wrong[:5]}"
    # and nothing invented: every status netrum reports belongs to a logged request or has no request
    logged = {r["request_uri"] for r in any_capture.rows}
    invented = [t["uri"] for t in run.transactions if t["uri"] and t["uri"] not in logged]
    assert not invented, f"request-targets that nginx never logged: {invented[:5]}"
    gaps = [int(v) for (g, c), v in run.health.items() if c == "tcp_gap"]
    assert gaps and gaps[0] > 0, "1% of packets dropped but no tcp_gap counted"


def test_file_cut_mid_record_exits_3_with_results_so_far(
        any_capture: Capture, analyzed: Callable[..., Run]) -> None:
    size = any_capture.pcap.stat().st_size
    run = analyzed(any_capture.pcap, "--cut-at", str(size // 2))
    assert run.returncode == 3, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr
    lines = run.stderr_lines()
    assert len(lines) == 1 and lines[0].startswith("netrum: "), run.stderr
    assert (run.out_dir / "transactions.csv").exists() and (run.out_dir / "endpoints.csv").exists()
    health = run.health
    assert health[("run", "partial")] == "1"
    truncated = [int(v) for (g, c), v in health.items() if c == "capture_truncated_file"]
    assert truncated == [1]
    txs = run.transactions
    n = len(any_capture.rows)
    assert len(txs) >= 0.3 * n, f"only {len(txs)} transactions from the first half of {n}"
    status = {r["request_uri"]: r["status"] for r in any_capture.rows}
    wrong = [(t["uri"], t["status"]) for t in txs
             if t["uri"] and t["status"] and t["status"] != status.get(t["uri"])]
    assert not wrong, f"wrong statuses before the cut: {wrong[:5]}"


def test_snaplen_96_says_so_and_writes_results(any_capture: Capture, analyzed: Callable[..., Run]) -> None:
    run = analyzed(any_capture.pcap, "--snaplen", "96")
    assert run.returncode in (0, 3), (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout
    lines = run.stderr_lines()
    assert lines and all(line.startswith("netrum: ") for line in lines), run.stderr
    assert "snaplen" in run.stderr.lower(), f"no word about the snaplen: {run.stderr!r}"
    for name in ("transactions.csv", "endpoints.csv", "health.csv"):
        assert (run.out_dir / name).exists(), name
    cut = [int(v) for (g, c), v in run.health.items() if c == "capture_snaplen_cut"]
    assert cut and cut[0] > 0
