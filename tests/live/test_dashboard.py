"""The terminal dashboard: rendered from a replayed capture's windows."""
from __future__ import annotations

import io
from pathlib import Path

from netrum.capture.live import ReplaySource
from netrum.live.dashboard import HOME_CLEAR, render_dashboard, rss_bytes
from netrum.live.runner import LiveOptions, LiveRunner

PCAP = Path(__file__).resolve().parents[2] / "pcaps" / "nginx-mix.pcap"


def test_dashboard_refreshes_in_place() -> None:
    out = io.StringIO()
    runner = LiveRunner(ReplaySource([str(PCAP)], None),
                        LiveOptions(out_dir=None, dashboard=True, refresh_s=0.0, top=5, out=out))
    runner.run()
    frames = out.getvalue().split(HOME_CLEAR)[1:]
    assert frames, "no refresh drawn"
    screen = render_dashboard(runner)
    assert screen.startswith(HOME_CLEAR)
    for title in ("busiest", "most errors", "slowest (p99)", "capture", "packets/s", "kernel drops",
                  "queue drops", "gaps", "flows open", "memory"):
        assert title in screen
    assert "gt.test" in screen  # an endpoint of the capture is listed
    assert "packets 1,675" in screen
    assert rss_bytes() > 1 << 20
