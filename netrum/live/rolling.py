"""Rolling CSV files of ``netrum live``: complete and valid at every moment.

- ``endpoints-rolling.csv``: at the end of every interval (packet time) one row per endpoint seen in it
  (and an overall row, host ``*``), with ``interval_start`` and ``interval_end`` (epoch seconds).
- ``transactions-live.csv`` (optional, ``--transactions``): one row per exchange, columns of
  transactions.csv, written at each interval end.

Each write makes a new file beside the target (a copy of the current one plus the new rows), flushes it
and renames it over the target (``os.replace``, atomic on POSIX): a reader, a crash or a kill sees the
old complete file or the new complete file, never half a row. The copy costs the file's size per
interval, so both files rotate: when a file passes ``rotate_bytes`` or has covered ``rotate_s`` seconds
of packet time it is renamed to ``NAME-<first interval start, UTC>.csv`` and a new one begins. ``reopen``
(SIGHUP) forgets what is known about the files: after logrotate moved one away, the next write starts a
new file with its header at the usual name.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from netrum.live.windows import WINDOW_COLUMNS

ROLLING_COLUMNS = ("interval_start", "interval_end", *WINDOW_COLUMNS)
DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024


def _cell(v: object) -> object:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    return v


class RollingCsvFile:
    """A CSV file appended to by whole batches of rows, each batch through write-then-rename."""

    def __init__(self, path: Path, columns: Sequence[str], rotate_bytes: int | None = DEFAULT_ROTATE_BYTES,
                 rotate_s: float | None = None) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.rotate_bytes = rotate_bytes
        self.rotate_ns = int(rotate_s * 1e9) if rotate_s else None
        self.started_ns: int | None = None  # packet time of the current file's first rows
        self.rotated: list[Path] = []

    def reopen(self) -> None:
        """Forget the current file's state (after it was moved away, e.g. by logrotate)."""
        self.started_ns = None

    def _header(self) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(self.columns)
        return buf.getvalue().encode("utf-8", "surrogateescape")

    def append(self, rows: Iterable[Sequence[object]], ts_ns: int) -> int:
        """Append rows (in column order) as of packet time ``ts_ns``; returns how many were written."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        n = 0
        for r in rows:
            w.writerow([_cell(v) for v in r])
            n += 1
        exists = self.path.exists()
        if exists and self._due(ts_ns):
            self._rotate()
            exists = False
        if not exists or self.started_ns is None:
            self.started_ns = ts_ns
        data = buf.getvalue().encode("utf-8", "surrogateescape")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        if exists:
            shutil.copyfile(self.path, tmp)  # sendfile(2) on Linux: in the kernel
        with open(tmp, "ab" if exists else "wb") as out:
            if not exists:
                out.write(self._header())
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        return n

    def _due(self, ts_ns: int) -> bool:
        if self.rotate_bytes is not None:
            try:
                if self.path.stat().st_size >= self.rotate_bytes:
                    return True
            except OSError:
                return False
        return self.rotate_ns is not None and self.started_ns is not None and ts_ns - self.started_ns >= self.rotate_ns

    def _rotate(self) -> None:
        start = self.started_ns if self.started_ns is not None else time.time_ns()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start / 1e9))
        target = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
        k = 1
        while target.exists():
            k += 1
            target = self.path.with_name(f"{self.path.stem}-{stamp}-{k}{self.path.suffix}")
        os.replace(self.path, target)
        self.rotated.append(target)
        self.started_ns = None


def rolling_rows(start_ns: int, end_ns: int, rows: Iterable[dict[str, object]]) -> list[list[object]]:
    """Window rows (``WINDOW_COLUMNS`` dicts) as rows of ``ROLLING_COLUMNS``."""
    s, e = f"{start_ns / 1e9:.6f}", f"{end_ns / 1e9:.6f}"
    return [[s, e, *(r[c] for c in WINDOW_COLUMNS)] for r in rows]
