"""Fixtures shared by every test: where the repository and the shared corpus are, and how to run the CLI.

- ``repo_root``: the repository's root directory.
- ``shared_corpus``: ``../shared/corpus`` beside the repository (real third-party captures and their
  oracles); tests that use it are skipped when it is absent. Never copy those files into the repo.
- ``run_netrum``: ``run_netrum(args, stdin=None, timeout=600) -> CompletedProcess[str]`` runs
  ``[sys.executable, "-m", "netrum", *args]`` from the repository root, exactly as a user would, and
  returns its exit code, stdout and stderr (decoded as UTF-8 with replacement).
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = REPO_ROOT.parent / "shared" / "corpus"

RunNetrum = Callable[..., "subprocess.CompletedProcess[str]"]


def run_netrum(args: Sequence[str | PathLike[str]], stdin: bytes | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python -m netrum ARGS`` as a child process (stdin bytes optional); never raises on exit code."""
    cmd = [sys.executable, "-m", "netrum", *map(str, args)]
    proc = subprocess.run(cmd, input=stdin if stdin is not None else b"", capture_output=True,
                          cwd=REPO_ROOT, timeout=timeout, check=False)
    return subprocess.CompletedProcess(cmd, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                                       proc.stderr.decode("utf-8", "replace"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS} (it lives beside the repository)")
    return SHARED_CORPUS


@pytest.fixture(name="run_netrum", scope="session")
def run_netrum_fixture() -> RunNetrum:
    return run_netrum
