"""The shared corpus: public captures from Zeek's and Suricata's test suites, scored with the corpus's own
score.py functions against Zeek/Suricata baselines and tshark. Skipped when ../shared is absent.

Every capture must match its oracles exactly, except for the few rows listed in ORACLE_ARTIFACTS, where
the oracle is wrong and netrum right (each one explained). A new miss anywhere fails the test.
"""
from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from netrum.batch import analyze_files

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
PCAPS = sorted((CORPUS / "pcaps").iterdir()) if (CORPUS / "pcaps").is_dir() else []

# capture -> (oracle rows netrum does not report, statuses that differ from the oracle), with the reason.
ORACLE_ARTIFACTS: dict[str, tuple[list[str], int, str]] = {
    "http_09.pcap": (
        ["None None -> None", "None None -> None"], 0,
        ("Zeek logs a second, empty entry (depth 2, no method, no status) on each HTTP/0.9 connection; the "
        "capture holds one request and one raw reply per connection")),
    "no-version.pcap": (
        ["None None -> None"], 0, "the same phantom depth-2 entry after an HTTP/0.9 exchange"),
    "methods.pcap": (
        [], 8,
        ("requests sent without a version ('GET /HTTP/1.1', 'PUT /HTTP/1.1'...) were answered with a real "
        "status line ('HTTP/1.0 403 Forbidden', '400', '411'): Zeek reads them as HTTP/0.9 and logs status 0, "
        "tshark and netrum report the status the server sent")),
}


def _load_score():
    spec = importlib.util.spec_from_file_location("corpus_score", CORPUS / "score.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not PCAPS, reason="../shared/corpus is not beside the repo")
@pytest.mark.parametrize("pcap", PCAPS, ids=[p.name for p in PCAPS])
def test_corpus_capture(pcap: Path, tmp_path: Path) -> None:
    score = _load_score()
    result = analyze_files([str(pcap)], tmp_path)
    assert not result.partial, result.problems
    with open(tmp_path / "transactions.csv", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        got = list(csv.DictReader(fh))
    expected_misses, expected_status_diffs, _why = ORACLE_ARTIFACTS.get(pcap.name, ([], 0, ""))
    exp_file = CORPUS / "expected" / f"{pcap.name}.jsonl"
    if exp_file.exists():
        expected = [json.loads(line) for line in exp_file.read_text().splitlines() if line.strip()]
        _matched, status_ok, status_checked, _extra, misses = score.match_expected(expected, got)
        assert misses == expected_misses
        assert status_checked - status_ok == expected_status_diffs
    count_file = CORPUS / "expected" / f"{pcap.name}.oracle.json"
    if count_file.exists() and not exp_file.exists():
        want = json.loads(count_file.read_text()).get("zeek_http_log_count")
        if want:
            assert len(got) >= want
    checked, ok = score.timing_vs_tshark(CORPUS / "expected" / f"{pcap.name}.tshark.tsv", got)
    assert ok == checked, f"{checked - ok} of {checked} response times differ from tshark's"
