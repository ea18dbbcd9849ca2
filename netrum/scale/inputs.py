"""Capture arguments -> capture files: a directory stands for the captures inside it.

Rotated captures (``tcpdump -G`` strftime names, ``tcpdump -C`` numbered files ``cap``, ``cap1``,
``cap2`` ... ``cap10``) are listed in natural name order (digit runs compared as numbers); the analysis
merges all inputs into one stream by packet timestamp anyway, so the order only breaks ties between equal
timestamps (earlier file first, like mergecap). A file in the directory is taken when its first bytes are a
pcap, pcapng or gzip magic number; anything else (a README, a checksum list) is left out, as are hidden
files and subdirectories.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence

from netrum.errors import CaptureError

_CAPTURE_MAGICS = (
    b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4",  # pcap, microseconds, either byte order
    b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",  # pcap, nanoseconds
    b"\x0a\x0d\x0d\x0a",  # pcapng section header
)
_GZIP = b"\x1f\x8b"
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """``cap2`` before ``cap10``: digit runs compare as numbers, the rest as text."""
    return tuple((1, int(part)) if part.isdigit() else (0, part) for part in _DIGITS.split(name) if part)


def _looks_like_capture(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in _CAPTURE_MAGICS or head[:2] == _GZIP


def expand_captures(paths: Sequence[str]) -> list[str]:
    """Each directory replaced by its capture files (natural name order); other arguments kept as given.
    Raises CaptureError for a directory without a capture in it."""
    out: list[str] = []
    for p in paths:
        if p == "-" or not os.path.isdir(p):
            out.append(p)
            continue
        names = sorted((e.name for e in os.scandir(p) if not e.name.startswith(".") and e.is_file()),
                       key=natural_key)
        found = [os.path.join(p, n) for n in names if _looks_like_capture(os.path.join(p, n))]
        if not found:
            raise CaptureError(f"{p}: directory without a pcap or pcapng capture in it")
        out.extend(found)
    return out
