"""Rolling CSV: write-then-rename files, rotation, reopen; `netrum live --replay` end to end, SIGTERM."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netrum.batch import AnalyzeOptions, analyze_files
from netrum.capture.live import ReplaySource
from netrum.live.rolling import ROLLING_COLUMNS, RollingCsvFile
from netrum.live.runner import LiveOptions, LiveRunner

REPO = Path(__file__).resolve().parents[2]
PCAP = REPO / "pcaps" / "nginx-mix.pcap"
S = 1_000_000_000


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_append_rotate_reopen(tmp_path: Path) -> None:
    f = RollingCsvFile(tmp_path / "r.csv", ("a", "b"), rotate_bytes=None, rotate_s=10)
    f.append([(1, 2.5), (3, None)], 1 * S)
    f.append([(5, 6)], 5 * S)
    assert (tmp_path / "r.csv").read_text() == "a,b\n1,2.500\n3,\n5,6\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    f.append([(7, 8)], 12 * S)  # 11 s after the file began: rotated first
    assert len(f.rotated) == 1 and _read(f.rotated[0]) == [{"a": "1", "b": "2.500"}, {"a": "3", "b": ""},
                                                          {"a": "5", "b": "6"}]
    assert _read(tmp_path / "r.csv") == [{"a": "7", "b": "8"}]
    os.rename(tmp_path / "r.csv", tmp_path / "moved.csv")  # logrotate
    f.reopen()
    f.append([(9, 9)], 13 * S)
    assert _read(tmp_path / "r.csv") == [{"a": "9", "b": "9"}]
    g = RollingCsvFile(tmp_path / "s.csv", ("a",), rotate_bytes=10)
    for i in range(5):
        g.append([(i,)], i * S)
    assert g.rotated and all(_read(p) for p in [*g.rotated, tmp_path / "s.csv"])


def test_intervals_cover_every_transaction_once(tmp_path: Path) -> None:
    opts = LiveOptions(out_dir=tmp_path / "live", interval_s=0.25, transactions=True)
    result = LiveRunner(ReplaySource([str(PCAP)], None), opts).run()
    batch = analyze_files([str(PCAP)], tmp_path / "batch", AnalyzeOptions(learn_routes=False, route_budget=None))
    rows = _read(tmp_path / "live" / "endpoints-rolling.csv")
    assert list(rows[0]) == list(ROLLING_COLUMNS)
    overall = [r for r in rows if r["host"] == "*"]
    assert result.intervals >= 7 and len(overall) >= 7
    want = {(r["host"], r["method"], r["route"]): r for r in batch.endpoint_rows}  # type: ignore[misc]
    per_ep: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        if r["host"] == "*":
            continue
        acc = per_ep.setdefault((r["host"], r["method"], r["route"]), [0, 0, 0])
        acc[0] += int(r["requests"])
        acc[1] += int(r["errors_4xx"]) + int(r["errors_5xx"])
        acc[2] += int(r["response_bytes"])
        assert float(r["interval_end"]) > float(r["interval_start"])
    assert set(per_ep) == set(want)
    for k, (req, err, rb) in per_ep.items():
        w = want[k]
        assert (req, err, rb) == (w["requests"], int(w["errors_4xx"]) + int(w["errors_5xx"]),  # type: ignore[call-overload]
                                  w["response_bytes"])
    assert sum(int(r["requests"]) for r in overall) == sum(a[0] for a in per_ep.values())
    assert len(_read(tmp_path / "live" / "transactions-live.csv")) == batch.transactions


def _netrum(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "netrum", "live", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_exits_0_with_valid_csvs(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "out"
    p = _netrum("--replay", str(PCAP), "--speed", "0.5", "--interval", "200ms", "--metrics", "127.0.0.1:0",
                "--transactions", "-o", str(out))
    try:
        deadline = time.monotonic() + 20
        while not (out / "endpoints-rolling.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / "endpoints-rolling.csv").exists(), "no interval written"
        time.sleep(0.3)
        p.send_signal(sig)
        _stdout, stderr = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert p.returncode == 0, stderr
    rolling = _read(out / "endpoints-rolling.csv")
    txs = _read(out / "transactions-live.csv")
    health = _read(out / "health-live.csv")
    assert rolling and txs and health
    assert all(len(r) == len(ROLLING_COLUMNS) and None not in r.values() for r in rolling)
    assert all(None not in r.values() for r in txs)
    total = sum(int(r["requests"]) for r in rolling if r["host"] == "*")
    assert 0 < total < 300  # stopped mid-run (the whole capture: 300 requests over 4 s at half speed)
    assert not [q for q in out.iterdir() if q.name.startswith(".")]


def test_bad_options_exit_2(tmp_path: Path) -> None:
    for args in (["--interval", "soon", "--replay", str(PCAP)], [], ["--replay", str(PCAP), "--speed", "0"],
                 ["--replay", str(tmp_path / "missing.pcap")]):
        p = _netrum(*args, "--metrics", "off", "-o", str(tmp_path / "o"))
        _out, err = p.communicate(timeout=20)
        assert p.returncode == 2 and err.startswith("netrum: error:"), (args, err)


def test_sighup_reopens_files_after_logrotate(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = _netrum("--replay", str(PCAP), "--speed", "0.5", "--interval", "200ms", "--metrics", "off", "-o", str(out))
    try:
        target = out / "endpoints-rolling.csv"
        deadline = time.monotonic() + 20
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert target.exists(), "no interval written"
        os.rename(target, out / "rotated.csv")  # what logrotate does, then it sends SIGHUP
        p.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        _stdout, stderr = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert p.returncode == 0, stderr
    old, new = _read(out / "rotated.csv"), _read(target)
    assert old and new and list(new[0]) == list(ROLLING_COLUMNS)
    assert max(float(r["interval_end"]) for r in old) <= min(float(r["interval_start"]) for r in new)
