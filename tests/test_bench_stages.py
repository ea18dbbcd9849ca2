"""scripts/bench_stages: a quick run on the repository's own capture writes a table and JSON of the right shape."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from netrum import lane

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO / "pcaps" / "api-routes.pcap"


def test_quick_run_shape(tmp_path: Path) -> None:
    out = tmp_path / "stages.json"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_stages"), "--capture", str(CAPTURE),
                           "--quick", "--json", str(out)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["capture"] == str(CAPTURE)
    assert data["packets"] == 2762  # the record count both floors agree on
    assert data["transactions"] == 600
    assert data["repeat"] == 1
    assert set(data["load_average"]) >= {"start", "end"}
    for floor in ("python_read_loop", "c_walk"):
        assert data["floors"][floor]["seconds"] > 0
        assert data["floors"][floor]["how"]
    engines = data["engines"]
    want = {"python": ["read: CaptureReader", "decode: Decoder.decode", "flows + reassembly + HTTP: Analyzer.feed"]}
    if lane.available():
        assert engines["lane"]["lane"]["used"] is True
        want["lane"] = ["pass 1: Lane.scan (C read+decode+TCP+HTTP, no output)",
                        "pass 2: C analysis + Transaction construction"]
    common = ["sink: route templating", "sink: writing transactions.csv", "sink: endpoint aggregation",
              "sink: consumer aggregation", "output: routes resolution", "output: endpoints.csv (percentiles)",
              "output: health.csv", "process start + imports", "whole `netrum analyze`"]
    for engine, names in want.items():
        table = engines[engine]
        stages = {s["stage"]: s for s in table["stages"]}
        for name in names + common:
            assert name in stages, (engine, name)
        whole = table["whole_s"]
        assert whole > 0
        assert stages["whole `netrum analyze`"]["share"] == 1.0
        summed = [s for s in table["stages"] if s["in_sum"]]
        assert abs(sum(s["seconds"] for s in summed) - table["sum_s"]) < 1e-9
        for s in table["stages"]:
            assert set(s) == {"stage", "seconds", "share", "how", "in_sum"}
            if s["in_sum"]:
                assert s["seconds"] is not None and s["share"] == s["seconds"] / whole
        assert data["closeness"][f"{engine}_whole_over_python_read_loop"] > 1
    assert "whole =" in proc.stdout and "| stage | seconds |" in proc.stdout
