"""Helpers for scripts/bench and scripts/bench_capture.py (not part of the netrum package)."""
