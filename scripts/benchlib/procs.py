"""Run one child process and measure it: wall time, CPU time, peak RSS.

CPU time and peak RSS come from ``os.wait4`` on the child (they include the child's own reaped
children: a process pool's workers add their CPU time, and ``ru_maxrss`` is the largest single
process).  A sampler thread also reads ``/proc`` every ``sample_s`` for the whole process tree and
keeps the peak of the summed RSS, split into anonymous and file-backed pages (an mmap'ed capture
shows up as file-backed RSS, which the kernel can drop at will; anonymous RSS is the memory the
program really holds).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RunResult:
    argv: tuple[str, ...]
    returncode: int
    timed_out: bool
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_bytes: int  # ru_maxrss of the child (largest single process in its tree)
    tree_rss_peak_bytes: int  # sampled: peak of the summed RSS of the process tree
    tree_anon_peak_bytes: int  # sampled: peak of the summed anonymous RSS
    major_faults: int  # pages read from disk (a capture not in the page cache)
    involuntary_switches: int  # preemptions: other load on the machine
    stderr_tail: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    out.extend(int(x) for x in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def _rss(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of one process in bytes; zeros when it is gone."""
    rss = anon = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return rss, anon


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval_s = interval_s
        self.stop_event = threading.Event()
        self.peak_rss = 0
        self.peak_anon = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            todo, rss, anon, seen = [self.pid], 0, 0, 0
            while todo and seen < 4096:
                p = todo.pop()
                seen += 1
                r, a = _rss(p)
                rss += r
                anon += a
                todo.extend(_children(p))
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_anon = max(self.peak_anon, anon)
            self.stop_event.wait(self.interval_s)


def measure(
    argv: list[str],
    *,
    stdout_path: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 3600.0,
    sample_s: float = 0.1,
) -> RunResult:
    """Run ``argv`` to completion (killed after ``timeout_s``) and measure it."""
    out_fh = stdout_path.open("wb") if stdout_path else subprocess.DEVNULL
    timed_out = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=out_fh, stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True
    )
    sampler = _Sampler(proc.pid, sample_s)
    sampler.start()
    err_chunks: list[bytes] = []

    def drain() -> None:
        assert proc.stderr is not None
        for chunk in iter(lambda: proc.stderr.read(65536), b""):  # type: ignore[union-attr]
            err_chunks.append(chunk)
            if len(err_chunks) > 64:
                del err_chunks[:32]

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()

    def kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        kill()  # interrupted: the child and its group go too
        proc.wait()
        raise
    finally:
        timer.cancel()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the child's group (e.g. orphaned workers)
    except (ProcessLookupError, PermissionError):
        pass
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop_event.set()
    sampler.join()
    drainer.join(timeout=5)
    if stdout_path:
        out_fh.close()  # type: ignore[union-attr]
    tail = b"".join(err_chunks)[-2000:].decode(errors="replace")
    return RunResult(
        argv=tuple(argv),
        returncode=proc.returncode,
        timed_out=timed_out.is_set(),
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        maxrss_bytes=usage.ru_maxrss * 1024,
        tree_rss_peak_bytes=sampler.peak_rss,
        tree_anon_peak_bytes=sampler.peak_anon,
        major_faults=usage.ru_majflt,
        involuntary_switches=usage.ru_nivcsw,
        stderr_tail=tail,
    )
