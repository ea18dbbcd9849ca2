"""Live frame sources (netrum/capture/live.py): replay pacing, bounded queue and drops, libpcap on lo."""
from __future__ import annotations

import http.server
import os
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from netrum.capture.live import PcapSource, ReplaySource
from netrum.capture.pcapfile import open_capture
from netrum.counters import Counters
from netrum.errors import CaptureError
from netrum.live.runner import LiveOptions, LiveRunner

REPO = Path(__file__).resolve().parents[2]
PCAP = REPO / "pcaps" / "nginx-mix.pcap"  # 1675 frames over 1.97 s


def _drain(src: ReplaySource, timeout: float = 20) -> list[tuple[int, int, bytes, int]]:
    frames: list[tuple[int, int, bytes, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frames += src.queue.get(timeout=0.1)
        except queue.Empty:
            if src.done.is_set() and src.queue.empty():
                break
    src.stop()
    src.join()
    src.close()
    return frames


def test_replay_at_recorded_speed_is_paced() -> None:
    src = ReplaySource([str(PCAP)], 4.0)  # 1.97 s of packet time in about 0.49 s
    t0 = time.monotonic()
    src.start()
    frames = _drain(src)
    took = time.monotonic() - t0
    assert len(frames) == 1675
    with open_capture(str(PCAP), Counters()) as reader:
        assert frames == list(reader)  # every frame, in the file's order
    assert 0.4 <= took < 5.0


def test_replay_max_speed_never_drops_and_full_queue_drops_at_paced_speed() -> None:
    src = ReplaySource([str(PCAP)], None, max_batches=1)
    src.start()
    assert len(_drain(src)) == 1675 and src.queue_drops == 0  # back-pressure, no loss
    paced = ReplaySource([str(PCAP)], 1000.0, max_batches=1)
    paced.start()
    assert paced.done.wait(10)  # nobody reads: the queue fills and the rest is dropped, counted
    got = _drain(paced)
    assert paced.queue_drops > 0 and len(got) + paced.queue_drops == 1675


def test_stop_is_prompt() -> None:
    src = ReplaySource([str(PCAP)], 0.01)  # would take minutes
    src.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    src.stop()
    assert src.done.wait(2) and time.monotonic() - t0 < 1.0
    src.close()


def test_replay_bad_input() -> None:
    with pytest.raises(CaptureError):
        ReplaySource([str(REPO / "no-such.pcap")])
    with pytest.raises(ValueError):
        ReplaySource([str(PCAP)], 0)


needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="live capture needs root")


@needs_root
def test_pcap_source_on_loopback(tmp_path: Path) -> None:
    pytest.importorskip("pcapy")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        src = PcapSource(["lo"], f"tcp port {port}")
    except CaptureError as e:
        server.shutdown()
        pytest.skip(f"cannot capture on lo here: {e}")
    runner = LiveRunner(src, LiveOptions(out_dir=tmp_path, interval_s=1.0, refresh_s=0.2))

    codes: list[int] = []

    def traffic() -> None:
        time.sleep(0.3)
        for i in range(6):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/missing/{i}", timeout=5) as r:
                    codes.append(r.status)
            except urllib.error.HTTPError as e:  # 404: the exchange happened
                codes.append(e.code)
        time.sleep(0.5)
        runner.request_stop()

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        result = runner.run()
    finally:
        server.shutdown()
        t.join(10)
    assert codes == [404] * 6
    assert result.transactions >= 6
    assert result.counters["http_requests"] >= 6
    assert result.counters["capture_kernel_drops"] == 0
    assert (tmp_path / "endpoints-rolling.csv").exists()
    with socket.socket() as s:  # the capture handle is released: nothing left listening
        s.bind(("127.0.0.1", 0))
