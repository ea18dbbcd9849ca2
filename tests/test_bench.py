"""scripts/bench: a quick run on the repository's own capture (netrum only, --workers 2) writes a report whose
ratios and ceilings are computed from its own rows."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO / "pcaps" / "api-routes.pcap"


def test_workers_row_has_its_ratio_to_one_process_and_the_ceilings(tmp_path: Path) -> None:
    cap = shutil.copy(CAPTURE, tmp_path / CAPTURE.name)  # the bench caches the capture's facts beside it
    report = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench"), "--capture", str(cap), "--no-tshark",
                           "--workers", "2", "--ceiling-rounds", "1", "--report", str(report)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(report.with_suffix(".json").read_text())
    rows = {r["tool"]: r for r in data["rows"]}
    one, two = rows["netrum"], rows["netrum --workers 2"]
    assert one["transactions"] == two["transactions"] == 600
    assert one["ratio_to_one_process"] is None
    assert two["ratio_to_one_process"] == round(two["transactions_per_s"] / one["transactions_per_s"], 2)
    cpu = [c for c in data["parallel_ceiling"] if "capture" not in c]
    work = [c for c in data["parallel_ceiling"] if "capture" in c]
    assert [c["when"] for c in cpu] == ["before", "after"]
    assert [c["capture"] for c in work] == [CAPTURE.name]
    for c in cpu + work:
        assert c["processes"] == 2 and len(c["rounds"]) == 1 and c["median"] == c["rounds"][0] > 0
    text = report.read_text()
    assert "x 1 process" in text and "Parallel ceiling of this machine" in text and "Workload ceiling" in text
