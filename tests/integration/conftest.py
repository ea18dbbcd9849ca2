"""Session fixtures of the integration tests: the captures (committed and freshly made) and cached runs.

The big ground-truth capture (>= 5,000 requests through a private nginx, about 25 s to make) is made once
per session into a temporary directory; NETRUM_GT_REQUESTS overrides its size for quick local runs.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from .groundtruth import (
    COMMITTED_LOG,
    COMMITTED_PCAP,
    Capture,
    Run,
    RunNetrum,
    analyze,
    damage,
    make_capture,
    parse_access_log,
)

GT_REQUESTS = int(os.environ.get("NETRUM_GT_REQUESTS", "5000"))
GT_SEED = 1


@pytest.fixture(scope="session")
def committed_capture() -> Capture:
    assert COMMITTED_PCAP.exists() and COMMITTED_LOG.exists(), "pcaps/nginx-mix.pcap + log are committed"
    return Capture(COMMITTED_PCAP, COMMITTED_LOG, parse_access_log(COMMITTED_LOG))


@pytest.fixture(scope="session")
def gt_capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    return make_capture(tmp_path_factory.mktemp("nginx-gt"), GT_REQUESTS, GT_SEED)


@pytest.fixture(params=["committed", "generated"], scope="session")
def any_capture(request: pytest.FixtureRequest) -> Capture:
    """Both captures: the committed one (always) and the big one made here (needs nginx and tcpdump)."""
    name = "committed_capture" if request.param == "committed" else "gt_capture"
    capture: Capture = request.getfixturevalue(name)
    return capture


@pytest.fixture(scope="session")
def analyzed(tmp_path_factory: pytest.TempPathFactory, run_netrum: RunNetrum) -> Callable[..., Run]:
    """analyzed(capture_path, *damage_options) -> Run: netrum's run on the capture (damaged with those
    scripts/damage.py options first, if any), cached for the session."""
    cache: dict[tuple[str, ...], Run] = {}
    base = tmp_path_factory.mktemp("runs")

    def get(pcap: Path, *options: str) -> Run:
        key = (str(pcap), *options)
        if key not in cache:
            work = base / f"run{len(cache)}"
            work.mkdir()
            src = damage(pcap, work / "damaged.pcap", *options) if options else pcap
            cache[key] = analyze(run_netrum, [src], work / "out")
        return cache[key]

    return get
