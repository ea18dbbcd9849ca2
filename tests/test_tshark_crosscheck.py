"""An independent cross-check through pyshark (tshark's dissectors): on our own bundled captures, every
response tshark pairs with a request is found by netrum on the same connection, with the same method,
status and response completion time (same packet: within 2 microseconds)."""
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = sorted((ROOT / "pcaps").glob("*.pcap"))

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def tshark_responses(pcap: Path) -> list[tuple[int, str, int, float]]:
    pyshark = pytest.importorskip("pyshark")
    cap = pyshark.FileCapture(str(pcap), display_filter="http.response && http.request_in",
                              keep_packets=False)
    out = []
    try:
        for pkt in cap:
            http = pkt.http
            method = getattr(http, "request_method", None)
            if method is None:  # pyshark names the request's fields only when tshark links them
                method = str(http.get_field_value("http.request.method") or "")
            out.append((int(pkt.tcp.dstport), method, int(http.response_code),
                        float(pkt.sniff_timestamp)))
    finally:
        cap.close()
    return out


@pytest.mark.parametrize("pcap", CAPTURES, ids=[p.name for p in CAPTURES])
def test_every_tshark_response_is_found_at_the_same_packet(pcap: Path, tmp_path: Path) -> None:
    if pcap.stat().st_size > 8_000_000:
        pytest.skip("cross-check kept to small captures (pyshark is slow)")
    subprocess.run([sys.executable, "-m", "netrum", "analyze", str(pcap), "--out", str(tmp_path), "-q"],
                   check=True)
    with open(tmp_path / "transactions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_port: dict[int, list[dict[str, str]]] = {}
    for r in rows:
        if r["response_end_ts"]:
            by_port.setdefault(int(r["client_port"]), []).append(r)
    responses = tshark_responses(pcap)
    assert responses, "tshark found no HTTP response"
    missing = []
    for port, _method, status, ts in responses:
        cands = by_port.get(port, [])
        if not any(abs(float(r["response_end_ts"]) - ts) <= 2e-6 and int(r["status"]) == status
                   for r in cands):
            missing.append((port, status, ts))
    assert not missing, f"{len(missing)} of {len(responses)} tshark responses not matched: {missing[:5]}"
