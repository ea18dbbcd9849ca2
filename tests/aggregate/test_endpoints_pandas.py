"""endpoints.csv recomputed independently with pandas from transactions.csv (groupby + exact quantiles,
linear interpolation) on the bundled nginx capture: every figure must agree."""
from __future__ import annotations

from pathlib import Path

import pytest

from netrum.batch import analyze_files

ROOT = Path(__file__).resolve().parents[2]
PCAP = ROOT / "pcaps" / "nginx-mix.pcap"


@pytest.mark.skipif(not PCAP.exists(), reason="bundled capture missing")
def test_endpoint_figures_match_pandas(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    analyze_files([str(PCAP)], tmp_path)
    tx = pd.read_csv(tmp_path / "transactions.csv", keep_default_na=False, na_values=[""])
    ep = pd.read_csv(tmp_path / "endpoints.csv", keep_default_na=False, na_values=[""])
    tx = tx[tx["method"].notna()].copy()
    tx["host"] = tx["host"].fillna(tx["server_ip"] + ":" + tx["server_port"].astype(str))
    groups = tx.groupby(["host", "method", "route"])
    assert len(ep) == groups.ngroups
    checked = 0
    for (host, method, route), g in groups:
        row = ep[(ep["host"] == host) & (ep["method"] == method) & (ep["route"] == route)]
        assert len(row) == 1, (host, method, route)
        r = row.iloc[0]
        assert r["requests"] == len(g)
        assert r["errors_4xx"] == ((g["status"] >= 400) & (g["status"] < 500)).sum()
        assert r["errors_5xx"] == (g["status"] >= 500).sum()
        assert r["no_response"] == g["status"].isna().sum()
        for col, src, q in (("duration_p50_ms", "duration_ms", 0.5), ("duration_p95_ms", "duration_ms", 0.95),
                            ("duration_p99_ms", "duration_ms", 0.99), ("ttfb_p99_ms", "ttfb_ms", 0.99)):
            values = g[src].dropna()
            if values.empty:
                assert pd.isna(r[col])
                continue
            # transactions.csv rounds to the microsecond; the endpoint figure is computed on nanoseconds
            assert r[col] == pytest.approx(values.quantile(q), abs=2e-3), (route, col)
            checked += 1
        assert r["duration_max_ms"] == pytest.approx(g["duration_ms"].max(), abs=2e-3)
    assert checked > 20
