"""netrum compare: the statistics (unit) and the acceptance test on synthetic captures of one service."""
from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from netrum.report.compare import (
    BETTER,
    NOT_ENOUGH,
    SAME,
    WORSE,
    Side,
    Thresholds,
    compare_endpoint,
    latency_test,
    proportion_test,
)

from .synth_service import write_capture

KEY = ("h", "GET", "/x")


def _side(durations: list[float], errors: int = 0) -> Side:
    return Side(len(durations), len(durations), errors, tuple(sorted(durations)))


def test_cliffs_delta_extremes() -> None:
    p, delta = latency_test(tuple(range(30)), tuple(range(100, 130)))
    assert delta == pytest.approx(1.0) and p < 1e-6
    p, delta = latency_test(tuple(range(100, 130)), tuple(range(30)))
    assert delta == pytest.approx(-1.0)
    p, delta = latency_test(tuple(range(30)), tuple(range(30)))
    assert delta == pytest.approx(0.0) and p == pytest.approx(1.0)


def test_proportion_test_picks_fisher_for_small_counts() -> None:
    p, kind = proportion_test(0, 100, 6, 100)  # expected error counts 3: Fisher
    assert kind == "fisher" and 0.01 < p < 0.05
    p, kind = proportion_test(0, 300, 15, 300)  # expected 7.5: z
    assert kind == "z" and p < 0.001
    p, kind = proportion_test(30, 300, 60, 300)
    assert kind == "z" and p < 0.01
    p, kind = proportion_test(30, 300, 31, 300)
    assert kind == "z" and p > 0.5


def test_verdicts_and_thresholds() -> None:
    rng = random.Random(3)
    base = [20 * rng.lognormvariate(0, 0.3) for _ in range(300)]
    slow = [x + 50 for x in base]
    t = Thresholds()
    assert compare_endpoint(KEY, _side(base), _side(slow), t).verdict == WORSE
    assert compare_endpoint(KEY, _side(slow), _side(base), t).verdict == BETTER
    # a significant shift of 3 ms (15%) is below --min-shift-ms 5
    tiny = [x + 3 for x in base]
    c = compare_endpoint(KEY, _side(base), _side(tiny), t)
    assert c.latency_verdict == SAME
    assert compare_endpoint(KEY, _side(base), _side(tiny), Thresholds(min_shift_ms=2)
                            ).latency_verdict == WORSE
    assert compare_endpoint(KEY, _side(base), _side(tiny), Thresholds(min_shift_ms=2, min_shift_pct=20)
                            ).latency_verdict == SAME
    assert compare_endpoint(KEY, _side(base[:10]), _side(slow[:10]), t).verdict == NOT_ENOUGH
    errs = compare_endpoint(KEY, _side(base, 0), _side(base, 15), t)
    assert (errs.latency_verdict, errs.error_verdict, errs.verdict) == (SAME, WORSE, WORSE)
    # a significant increase smaller than --max-error-increase is tolerated
    assert compare_endpoint(KEY, _side(base, 0), _side(base, 15), Thresholds(max_error_increase=0.1)
                            ).verdict == SAME


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("synth")
    return {
        "base": write_capture(d / "base.pcap", seed=11),
        "same": write_capture(d / "same.pcap", seed=12),
        "canary": write_capture(d / "canary.pcap", seed=13, slow_route="GET /api/orders",
                                fail_route="GET /api/products/{id}"),
    }


def _verdicts(out: Path) -> dict[str, str]:
    with open(out / "compare.csv", newline="") as fh:
        return {f"{r['method']} {r['route']}": r["verdict"] for r in csv.DictReader(fh)}


def test_compare_flags_exactly_the_changed_routes(captures: dict[str, Path], tmp_path: Path,
                                                  run_netrum) -> None:  # type: ignore[no-untyped-def]
    proc = run_netrum(["compare", captures["base"], captures["canary"], "--out", tmp_path])
    assert proc.returncode == 1, proc.stderr
    verdicts = _verdicts(tmp_path)
    assert verdicts == {"GET /api/orders": WORSE, "GET /api/products/{id}": WORSE,
                        "POST /api/login": SAME, "GET /api/users/{id}": SAME}
    with open(tmp_path / "compare.csv", newline="") as fh:
        rows = {f"{r['method']} {r['route']}": r for r in csv.DictReader(fh)}
    slow = rows["GET /api/orders"]
    assert (slow["latency_verdict"], slow["error_verdict"]) == (WORSE, SAME)
    assert 40 < float(slow["median_shift_ms"]) < 60 and float(slow["cliffs_delta"]) > 0.8
    failing = rows["GET /api/products/{id}"]
    assert (failing["latency_verdict"], failing["error_verdict"]) == (SAME, WORSE)
    assert 0.02 < float(failing["error_rate_change"]) < 0.09
    assert "2 worse" in proc.stdout
    page = (tmp_path / "compare.html").read_text()
    assert page.count("<tr>") == 1 + 4 and page.count(">worse</td>") == 4  # verdict + one sub-verdict each
    assert "src=" not in page and "href=" not in page and "<link" not in page  # self-contained


def test_compare_identical_behaviour_flags_nothing(captures: dict[str, Path], tmp_path: Path,
                                                   run_netrum) -> None:  # type: ignore[no-untyped-def]
    # baseline as a previous run's directory, candidate as a capture: both inputs kinds
    run_dir = tmp_path / "run"
    assert run_netrum(["analyze", captures["base"], "--out", run_dir, "-q"]).returncode == 0
    proc = run_netrum(["compare", run_dir, captures["same"], "--out", tmp_path / "cmp"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(_verdicts(tmp_path / "cmp").values()) == {SAME}


def test_compare_bad_input_exit_2(tmp_path: Path, run_netrum) -> None:  # type: ignore[no-untyped-def]
    proc = run_netrum(["compare", tmp_path / "missing.pcap", tmp_path / "missing2.pcap", "--out", tmp_path])
    assert proc.returncode == 2 and proc.stderr.startswith("netrum: error:")


def test_compare_two_time_windows_of_one_capture(captures: dict[str, Path], tmp_path: Path,
                                                 run_netrum) -> None:  # type: ignore[no-untyped-def]
    # One capture holding the baseline traffic, then (an hour later) the canary's: before/after a deploy.
    dpkt = pytest.importorskip("dpkt")
    merged = tmp_path / "deploy.pcap"
    with open(captures["base"], "rb") as fb, open(captures["canary"], "rb") as fc, open(merged, "wb") as out:
        w = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB)
        last = 0.0
        for ts, frame in dpkt.pcap.Reader(fb):
            w.writepkt(frame, ts)
            last = max(last, ts)
        cand = list(dpkt.pcap.Reader(fc))
        shift = last + 3600 - cand[0][0]
        for ts, frame in cand:
            w.writepkt(frame, ts + shift)
    split = f"{last + 1800:.6f}"
    proc = run_netrum(["compare", merged, "--baseline-window", f"..{split}", "--candidate-window",
                       f"{split}..", "--out", tmp_path / "cmp"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    verdicts = _verdicts(tmp_path / "cmp")
    assert {k for k, v in verdicts.items() if v == WORSE} == {"GET /api/orders", "GET /api/products/{id}"}
    # relative windows (+SECONDS from the first request) select the same halves
    proc = run_netrum(["compare", merged, "--baseline-window", "..+1800", "--candidate-window", "+1800..",
                       "--out", tmp_path / "rel"])
    assert proc.returncode == 1 and _verdicts(tmp_path / "rel") == verdicts
    # one input without both windows is a usage error
    assert run_netrum(["compare", merged, "--out", tmp_path / "x"]).returncode == 2
