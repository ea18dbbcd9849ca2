"""Compressed captures for the compiled lane: each gzip input decompressed once into a temporary file (the
spool), which the lane maps and walks like any other capture.

The Python reader streams gzip and needs nothing more; the lane maps its files and walks them twice, so
a compressed capture would leave it out (the whole run pure Python, about 30 us per packet). Decompressing
costs about 5 ms per MB here (zlib), a fraction of what the lane saves: on a 100 MB capture, 0.5 s of
decompression and 0.4 s of lane against 3.4 s of pure Python (README, Performance).

The spool is written to the system's temporary directory ($TMPDIR), read through its own readers (their
counters are scratch: the run counts its inputs once, through the readers of the original files), and
deleted when the run ends. It is given up, and the run is then the pure-Python one reading the original
files, when an input is standard input, when the gzip data is damaged (the Python reader reports the damage, with the original name) or
when the disk would be left with less than SPOOL_MIN_FREE_BYTES free. Only the lane's single-process run
spools (``--workers`` with gzip inputs runs the pure-Python partitions, which stream).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field

from netrum.capture.pcapfile import CaptureReader, _GunzipStream, open_capture
from netrum.counters import Counters

SPOOL_MIN_FREE_BYTES = 1 << 30  # the spool stops before the disk has less than this left
SPOOL_CHECK_EVERY_BYTES = 64 << 20  # how often the free space is looked at while writing


class _NoRoom(Exception):
    pass


@dataclass
class Spool:
    """The lane's readers: each gzip input's spooled copy, the other inputs' own readers. ``reason``: why
    nothing was spooled ("" when it was). ``close()`` closes the spool's readers and deletes its files."""

    readers: list[CaptureReader]
    reason: str = ""
    directory: str | None = None
    own: list[CaptureReader] = field(default_factory=list)

    def close(self) -> None:
        for r in self.own:
            r.close()
        self.own = []
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def _spool_one(path: str, dst: str) -> str:
    """Decompress ``path`` into ``dst``; "" on success, else why not."""
    written = 0
    next_check = 0
    with open(path, "rb") as raw, open(dst, "wb") as out:
        gz = _GunzipStream(b"", raw)

        def write(part: bytes) -> None:
            nonlocal written, next_check
            out.write(part)
            written += len(part)
            if written >= next_check:
                next_check = written + SPOOL_CHECK_EVERY_BYTES
                if shutil.disk_usage(os.path.dirname(dst)).free < SPOOL_MIN_FREE_BYTES:
                    raise _NoRoom

        try:
            gz.drain_to(write)
        except _NoRoom:
            return f"less than {SPOOL_MIN_FREE_BYTES >> 20} MB would be left free in {os.path.dirname(dst)}"
        if gz.damaged:
            return "damaged gzip data: the Python reader reports it"
    return ""


def spool_inputs(readers: list[CaptureReader]) -> Spool:
    """The lane's readers for ``readers`` (see the module docstring); on failure ``reason`` says why, and
    ``readers`` are the inputs' own (the lane then stands aside: gzip is not mapped)."""
    if any(r.path == "-" for r in readers):
        return Spool(list(readers), "standard input cannot be read twice")
    try:
        directory = tempfile.mkdtemp(prefix="netrum-spool-")
    except OSError as e:
        return Spool(list(readers), f"no temporary directory for the spool ({e.strerror or e})")
    spool = Spool([], directory=directory)
    try:
        for i, r in enumerate(readers):
            if not r.format.endswith("+gzip"):
                spool.readers.append(r)
                continue
            dst = os.path.join(directory, f"{i}.{r.format.split('+')[0]}")
            why = _spool_one(r.path, dst)
            if why:
                spool.close()
                return Spool(list(readers), f"{r.path}: {why}")
            sr = open_capture(dst, Counters())
            spool.own.append(sr)
            spool.readers.append(sr)
    except Exception as e:  # noqa: BLE001 - any failure: the pure-Python run reads the original files
        spool.close()
        return Spool(list(readers), f"spool failed: {type(e).__name__}: {e}")
    except BaseException:  # Ctrl-C: nothing left behind in $TMPDIR
        spool.close()
        raise
    return spool
