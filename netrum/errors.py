"""The few errors a user can see. The CLI maps them to a one-line message and an exit code."""
from __future__ import annotations


class NetrumError(Exception):
    """Base of user-facing failures (never raised for bad traffic: bad traffic is counted)."""

    exit_code = 1


class CaptureError(NetrumError):
    """A capture cannot be read at all: missing path, empty file, not a pcap/pcapng, unknown format."""

    exit_code = 2


class UsageError(NetrumError):
    exit_code = 2
