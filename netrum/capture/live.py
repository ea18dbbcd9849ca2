"""Live frame sources for ``netrum live``: capture threads that put batches of frames on a bounded queue.

Two sources share one contract (``LiveSource``): ``start()`` runs the capture in background threads,
each putting ``list[Frame]`` batches on ``queue``; ``stop()`` asks them to end (they notice within one
read timeout); ``done`` is set when every thread has ended; ``queue_drops`` / ``kernel_drops`` are plain
integers written only by the capture threads and read by the analysis thread, which copies them into its
Counters ledger (``capture_queue_drops``, ``capture_kernel_drops``): the ledger has one writer.

- ``PcapSource``: one libpcap handle per interface (pcapy-ng), opened in the constructor, so a caller can
  drop root right after (``--user``). Non-blocking reads behind ``select`` with a timeout, so a thread
  notices ``stop()`` even when no packet matches. A full queue drops the batch (a live interface cannot
  wait) and counts its frames; the kernel's drops come from ``pcap_stats``.
- ``ReplaySource``: a capture file replayed through the same queue, paced at its recorded speed times
  ``speed`` (the wall clock is used only for that pacing) or as fast as possible (``speed=None``). At
  recorded speed a full queue drops like a live interface; at full speed the thread waits instead
  (back-pressure), so a replay at full speed is exact and repeatable.

Frames carry packet timestamps; nothing downstream reads the wall clock for its figures.
"""
from __future__ import annotations

import queue
import select
import threading
import time
from collections.abc import Callable, Sequence

from netrum.capture.pcapfile import CaptureReader, open_capture, read_merged
from netrum.counters import Counters
from netrum.errors import CaptureError
from netrum.records import Frame

BATCH_FRAMES = 512  # frames per queue item at most
BATCH_WAIT_S = 0.05  # a partial batch is handed over after this much wall time
READ_TIMEOUT_S = 0.1  # how long a capture thread waits for packets before checking stop()
QUEUE_BATCHES = 256  # queue capacity in batches (so at most QUEUE_BATCHES * BATCH_FRAMES frames)
SNAPLEN = 262_144

Batch = list[Frame]


class LiveSource:
    """Common part of the sources: the bounded queue, the stop flag, the drop counts."""

    clock_follows_wall = False  # True when packet time is the host's clock (a live interface)

    def __init__(self, max_batches: int = QUEUE_BATCHES) -> None:
        self.queue: queue.Queue[Batch] = queue.Queue(max_batches)
        self.queue_drops = 0
        self.kernel_drops = 0
        self.problems: list[str] = []  # errors met by capture threads (one line each)
        self.done = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running = 0
        self._lock = threading.Lock()

    def _offer(self, batch: Batch, block: bool = False) -> None:
        """Put a batch on the queue; when it is full, drop it (counted) or, with ``block``, wait."""
        if not batch:
            return
        if block:
            while not self._stop.is_set():
                try:
                    self.queue.put(batch, timeout=READ_TIMEOUT_S)
                    return
                except queue.Full:
                    continue
            return
        try:
            self.queue.put_nowait(batch)
        except queue.Full:
            self.queue_drops += len(batch)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        def run() -> None:
            try:
                target()
            except Exception as e:  # noqa: BLE001 - a capture error ends this thread, said once, not the process
                self.problems.append(f"{name}: {type(e).__name__}: {e}")
            finally:
                with self._lock:
                    self._running -= 1
                    if self._running == 0:
                        self.done.set()

        t = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(t)

    def start(self) -> None:
        self._running = len(self._threads)
        if not self._threads:
            self.done.set()
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Release capture handles (after join)."""


class ReplaySource(LiveSource):
    """A capture file (or several, merged in time order) replayed through the live path."""

    def __init__(self, paths: Sequence[str], speed: float | None = 1.0, max_batches: int = QUEUE_BATCHES) -> None:
        super().__init__(max_batches)
        if speed is not None and speed <= 0:
            raise ValueError("replay speed must be > 0")
        self.speed = speed
        # The readers count into their own ledger (this thread's), merged by the caller after join().
        self.reader_counters = Counters()
        self._readers: list[CaptureReader] = []
        try:
            for p in paths:
                self._readers.append(open_capture(p, self.reader_counters))
        except CaptureError:
            self.close()
            raise
        self._spawn(self._run, "replay")

    def _run(self) -> None:
        speed = self.speed
        block = speed is None
        stop = self._stop
        batch: Batch = []
        t0_wall = time.monotonic()
        t0_pkt: int | None = None
        last_put = t0_wall
        for frame in read_merged(self._readers):
            if stop.is_set():
                break
            if speed is not None:
                if t0_pkt is None:
                    t0_pkt = frame[0]
                due = t0_wall + (frame[0] - t0_pkt) / 1e9 / speed
                now = time.monotonic()
                if due > now:
                    # Hand over what is ready before sleeping, then sleep in short steps (stop stays quick).
                    self._offer(batch)
                    batch = []
                    last_put = now
                    while due > now and not stop.is_set():
                        time.sleep(min(due - now, READ_TIMEOUT_S))
                        now = time.monotonic()
            batch.append(frame)
            if len(batch) >= BATCH_FRAMES or (not block and time.monotonic() - last_put >= BATCH_WAIT_S):
                self._offer(batch, block)
                batch = []
                last_put = time.monotonic()
        self._offer(batch, block)

    @property
    def problems_found(self) -> list[str]:
        return [m for r in self._readers for m in r.problems]

    def close(self) -> None:
        for r in self._readers:
            r.close()


class PcapSource(LiveSource):
    """Live capture from network interfaces through libpcap (pcapy-ng), one thread per interface."""

    clock_follows_wall = True

    def __init__(self, interfaces: Sequence[str], bpf: str | None = None, snaplen: int = SNAPLEN,
                 promiscuous: bool = True, max_batches: int = QUEUE_BATCHES) -> None:
        super().__init__(max_batches)
        try:
            import pcapy
        except ImportError as e:  # pragma: no cover - pcapy-ng is a dependency
            raise CaptureError(f"live capture needs pcapy-ng (pip install pcapy-ng): {e}") from e
        self._handles: list[object] = []
        self._kernel: dict[str, int] = {}
        for iface in interfaces:
            try:
                h = pcapy.open_live(iface, snaplen, 1 if promiscuous else 0, int(READ_TIMEOUT_S * 1000))
                if bpf:
                    h.setfilter(bpf)
                h.setnonblock(1)
            except Exception as e:  # pcapy.PcapError: no such device, permission, bad filter
                self.close()
                raise CaptureError(f"cannot capture on {iface}: {e}") from e
            self._handles.append(h)
            self._spawn(self._reader(iface, h), f"capture-{iface}")

    def _reader(self, iface: str, h: object) -> Callable[[], None]:
        linktype = h.datalink()  # type: ignore[attr-defined]
        fd = h.getfd()  # type: ignore[attr-defined]
        dispatch = h.dispatch  # type: ignore[attr-defined]

        def run() -> None:
            stop = self._stop
            batch: Batch = []
            append = batch.append

            def on_packet(hdr: object, data: bytes) -> None:
                sec, usec = hdr.getts()  # type: ignore[attr-defined]
                append((sec * 1_000_000_000 + usec * 1000, linktype, data, hdr.getlen()))  # type: ignore[attr-defined]

            last_put = time.monotonic()
            while not stop.is_set():
                ready, _, _ = select.select([fd], [], [], READ_TIMEOUT_S)
                if ready:
                    dispatch(BATCH_FRAMES, on_packet)
                now = time.monotonic()
                if batch and (len(batch) >= BATCH_FRAMES or now - last_put >= BATCH_WAIT_S or not ready):
                    self._offer(batch)
                    batch = []
                    append = batch.append
                    last_put = now
                self._stats(iface, h)
            self._offer(batch)
            self._stats(iface, h)

        return run

    def _stats(self, iface: str, h: object) -> None:
        try:
            _recv, drop, ifdrop = h.stats()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - some link types have no stats: nothing to count
            return
        total = drop + ifdrop
        prev = self._kernel.get(iface, 0)
        if total > prev:
            with self._lock:  # several interface threads add to one count
                self.kernel_drops += total - prev
            self._kernel[iface] = total

    def close(self) -> None:
        for h in self._handles:
            try:
                h.close()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001,S110 - closing a dead handle
                pass
        self._handles = []
