"""The shared corpus: public captures from Zeek's and Suricata's test suites, scored by their own
score.py against Zeek/Suricata baselines and tshark. Skipped when ../shared is absent."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCORE = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "score.py"


@pytest.mark.skipif(not SCORE.exists(), reason="../shared/corpus is not beside the repo")
def test_corpus_recall_status_and_timing() -> None:
    p = subprocess.run([sys.executable, str(SCORE), "--netrum", f"{sys.executable} -m netrum"],
                       capture_output=True, text=True, timeout=900, check=False)
    last = p.stdout.strip().splitlines()[-1]
    print(p.stdout)
    m = re.search(r"recall ([\d.]+) .*count-only ([\d.]+), status ([\d.]+) .*timing ([\d.]+) .*"
                  r"failed runs (\d+)", last)
    assert m, p.stdout + p.stderr
    recall, count_only, status, timing, failed = (float(g) for g in m.groups())
    assert failed == 0, p.stdout
    assert recall >= 0.98, p.stdout
    assert count_only >= 0.98, p.stdout
    assert status >= 0.98, p.stdout
    assert timing >= 0.99, p.stdout
