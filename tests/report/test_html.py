"""netrum report: the HTML renders offline with its tables and plots; a headless Chromium screenshot is not
blank (skipped without chromium unless CI is set)."""
from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from netrum.report.html import TABLE_COLUMNS, render_report
from netrum.report.runs import Run

from .synth_service import write_capture

REPO = Path(__file__).resolve().parents[2]
PLOTS = ("latency-over-time", "latency-distribution", "errors-throughput", "status-mix", "slowest-endpoints")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, run_netrum) -> Path:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("report")
    cap = write_capture(d / "s.pcap", seed=21, slow_route="POST /api/login", fail_route="GET /api/orders",
                        connections=12, requests_per_connection=30)
    out = d / "report.html"
    proc = run_netrum(["report", cap, "--out", out, "--title", "Synth <API> & co"])
    assert proc.returncode == 0, proc.stderr
    assert "360 requests, 4 endpoints" in proc.stdout
    return out


def test_report_is_self_contained_with_tables_and_plots(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<title>Synth &lt;API&gt; &amp; co</title>" in text  # escaped
    # offline: nothing is fetched (no external script, stylesheet, image or font)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "@import" not in text and "<script src" not in text
    # the endpoint table: every column, one row per endpoint, numeric sort keys
    table = text[text.index('<table class="sortable" id="endpoints">'):]
    table = table[:table.index("</table>")]
    assert all(f"<th>{label}</th>" in table for _k, label in TABLE_COLUMNS)
    assert table.count("<tr>") == 1 + 4
    for route in ("/api/users/{id}", "/api/orders", "/api/login", "/api/products/{id}"):
        assert f"<td>{route}</td>" in table
    assert 'data-v="' in table and "addEventListener(\"click\"" in text
    # five plots, each a decodable PNG of a sensible size
    for name in PLOTS:
        m = re.search(rf'<figure id="{name}"><img alt="{name}" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
        assert m, name
        png = base64.b64decode(m.group(1))
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
    # overview and health
    assert "requests</span>" in text and "p99 duration" in text and "Complete run" in text
    assert "@media print" in text


def test_render_report_empty_run() -> None:
    run = Run("empty", [], {"partial": "1", "problem_1": "cut <mid> record"}, [])
    text = render_report(run)
    assert "<figure" not in text and "Partial results" in text and "cut &lt;mid&gt; record" in text


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_screenshot_in_headless_chromium(report: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required when CI is set (scripts/test installs it)")
        pytest.skip("chromium not installed")
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "report-screenshot.png"
    shot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--hide-scrollbars", "--window-size=1280,2400", "--enable-logging=stderr", "--v=0",
             f"--screenshot={shot}", report.as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    # no console message at all from the page (a script error logs 'INFO:CONSOLE... "Uncaught ...')
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1200
    # not blank: plenty of non-white pixels (text, table rules, plot lines) and many distinct colours
    rgb = pixels[..., :3]
    non_white = (rgb < 0.95).any(axis=-1).mean()
    assert non_white > 0.02, non_white
    colours = {tuple(c) for c in (rgb[::7, ::7].reshape(-1, 3) * 255).astype(int).tolist()}
    assert len(colours) > 50
