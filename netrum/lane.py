"""The compiled lane of `netrum analyze`: clean connections analysed in C, the rest by the Python analyzer.

The pure-Python pipeline (decode -> flows -> http) is the reference. ``netrum._lane`` (netrum/_lane.c)
takes, on pcap and pcapng files, the TCP connections that stay on a narrow path the reference handles in
one obvious way: handshake seen, every segment in order with nothing lost or repeated, no RST, strictly
well-formed HTTP/1.x heads, Content-Length or plain chunked bodies. Any 4-tuple with anything else in it,
anywhere in one incarnation of it (a period of activity between silences longer than every timer of the
reference), is the Python analyzer's, whole. The output is the same, byte for byte
(tests/integration/test_lane_equivalence.py holds the two to it); only the time differs.

Two passes over the mmap'ed file:

1. ``Lane.scan``: the C state machine over every fast-path TCP frame marks the 4-tuples that leave the
   path; the frames the C decoder does not take (tunnels, VLANs, fragments, non-TCP...) are decoded here
   with a scratch ``Decoder`` and their 4-tuples given to Python too.
2. ``Lane.run``: clean connections are analysed in C, which builds each ``Transaction`` and hands it to
   the same sink the Python analyzer uses; every other frame goes, in capture order, to an ``Analyzer``
   in partitioned mode (``partition=(0, 1)``: it owns whatever it is given), told the packet clock of
   the frames it does not see so that its once-a-second sweeps run at the same packet times as in a
   run of its own (netrum.pipeline's scale-out rules).

The lane stands aside (the whole run is Python's, nothing written yet) when the extension is not built,
``NETRUM_PURE=1``, the engine is "python", the input is not seekable uncompressed files (several must
follow one another in time: ``time_order``), --port/--server filters meet partitioned workers, an identity
field is one the parser reads for framing, too many frames need Python's decoder, or the connection table
could approach ``max_flows`` (the reference would evict). A damaged file (cut in a record, an impossible
record or block) is read up to the damage, as the reader reads it, and the damage is reported through
the reader (``report_truncated`` / ``report_corrupt``, the same words and counters).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netrum.capture.pcapfile import DAMAGE, MAX_CAPLEN, CaptureReader
from netrum.counters import Counters
from netrum.decode.addr import addr_to_str
from netrum.decode.frames import Decoder
from netrum.flows.table import conn_id
from netrum.http.consumer import FORWARDING_FIELDS, ConsumerConfig, hash_identity, resolve_client
from netrum.http.parser import WANTED_FIELDS
from netrum.limits import Limits
from netrum.pipeline import Analyzer
from netrum.records import Transaction

try:
    from netrum import _lane  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - no C compiler where netrum was installed
    _lane = None

# The lane stands aside when more frames than this share need Python's decoder (each is decoded twice:
# the lane would save little) or when more than MAX_FOREIGN_TCP_SHARE of them are TCP segments it cannot
# decode (their connections are all Python's).
MAX_NONFAST_SHARE = 0.5
MAX_FOREIGN_TCP_SHARE = 0.2


def available() -> bool:
    """The extension is built and not disabled by ``NETRUM_PURE=1``."""
    return _lane is not None and os.environ.get("NETRUM_PURE") != "1"


@dataclass
class LaneOutcome:
    """What a lane run did: ``used`` False means it stood aside before analysing anything (``reason``)."""

    used: bool
    reason: str = ""
    stats: dict[str, object] = field(default_factory=dict)
    interrupted: bool = False
    error: str = ""


def takes(readers: list[CaptureReader], engine: str) -> bool:
    """The lane may take a run over these readers (it may still stand aside once it has looked at the
    files): the engine is "auto", the extension is built and not disabled, every input is a pcap or pcapng
    file mapped whole. (--port/--server filters are honoured in one analysing process, consumer options
    always; ``run_lane`` stands aside for filters when the connections are partitioned between workers, and
    for an identity field the lane reads for other purposes: ``_consumer_setup``.)"""
    return (engine == "auto" and available() and bool(readers) and all(r.mmap_buffer() is not None for r in readers))


_ONE_BY_ONE, _PACKED = 0, 2  # Lane.run's modes: a Transaction per sink call, or packed bytes


def unpack_transactions(data: bytes, offset: int, keyed: bool) -> list[Any]:
    """The Transaction objects packed in ``data[offset:]`` by a lane run with ``packed_sink`` (with
    ``keyed``, (emission key, Transaction) pairs)."""
    assert _lane is not None  # packed data only comes from a lane run
    return _lane.unpack_transactions(Transaction, _slots(), data, offset, keyed)  # type: ignore[no-any-return]


def time_order(spans: list[tuple[int, int] | None]) -> list[int] | None:
    """The order in which files whose (first, last) timestamps are ``spans`` (None: no frame) follow one
    another in time, or None when they overlap. That order is capture.pcapfile.read_merged's stream: its
    merge takes the earliest frame first and, on equal timestamps, the file given first; so a file may
    start at the instant the one before it ends only when it was given after it."""
    idx = sorted(range(len(spans)), key=lambda i: (spans[i] or (0, 0))[0])
    prev: tuple[int, int] | None = None  # (last timestamp, file index) of the file before
    for i in idx:
        span = spans[i]
        if span is None:
            continue
        if prev is not None and (span[0] < prev[0] or (span[0] == prev[0] and i < prev[1])):
            return None
        prev = (span[1], i)
    return idx


def _slots() -> list[object]:
    return [Transaction.__dict__[f] for f in Transaction.__slots__]  # type: ignore[attr-defined]


def _consumer_setup(cfg: ConsumerConfig | None) -> tuple[object, str]:
    """(the Lane's ``consumer`` argument, "" or the reason to stand aside) for the consumer options: the
    identity field's name, whether the forwarding fields are read (trusted proxies given), the redacted
    fields, and the callable that decides a request's consumer exactly as HttpConnection._emit does."""
    if cfg is None:
        return None, ""
    if cfg.header is not None and (cfg.header in WANTED_FIELDS or cfg.header in FORWARDING_FIELDS):
        return None, f"identity field {cfg.header.decode('latin-1')!r} is one the parser reads for framing or forwarding"
    salt, trusted = cfg.salt, cfg.trusted

    def consumer_of(client_ip: str, ident: bytes | None, fwd: bytes | None, xff: bytes | None,
                    real_ip: bytes | None) -> tuple[str | None, bool]:
        if ident is not None:
            return hash_identity(ident, salt), False
        if fwd is None and xff is None and real_ip is None:
            return None, False
        return resolve_client(client_ip, trusted, fwd, xff, real_ip)

    return (cfg.header, bool(trusted), sorted(cfg.redact), consumer_of), ""


def _conninfo(cip: bytes, cport: int, sip: bytes, sport: int, first_ts: int) -> tuple[str, str, int, str, int]:
    """What ConnInfo holds for a connection (netrum.flows.table): its id and printable endpoints."""
    return (conn_id(cip, cport, sip, sport, first_ts), addr_to_str(cip), cport, addr_to_str(sip), sport)


# Each damage the lane finds (_lane.c DMG_*) as the reader names it (capture.pcapfile.DAMAGE).
_DAMAGE_OF_CODE = {
    2: "caplen", 3: "byte_order", 4: "block_length", 5: "block_lengths", 6: "packet_block_short",
    7: "undeclared_interface", 8: "spb_without_interface", 9: "idb_short",
}
_DMG_TRUNCATED = 1


def run_lane(readers: list[CaptureReader], analyzer: Analyzer, limits: Limits,
             progress: Callable[[int], None] | None = None,
             packed_sink: Callable[[bytes], None] | None = None,
             report_to: list[CaptureReader] | None = None) -> LaneOutcome:
    """Analyse the readers' files with the lane, feeding ``analyzer`` the frames that are not the lane's.
    Several files (rotated captures) are one stream, read one after the other in time order: the lane
    stands aside unless each file ends before the next begins (then that is capture.pcapfile.read_merged's
    stream; see ``time_order``).

    ``analyzer`` is built with ``partition=(k, n)``: (0, 1) in one process, where the sink gets every
    transaction in the single run's order; worker k of n in a scale-out (netrum.scale.partition), where
    the lane decides the owner of every 4-tuple by pipeline.FlowAssigner's rule and every transaction
    reaches the sink with ``analyzer.emission_key`` set. Returns with ``used`` False, having fed nothing,
    when the lane stands aside. The caller calls ``analyzer.finish()`` afterwards, as after ``feed``.
    ``packed_sink``: the lane's own transactions reach it packed, as bytes (to be streamed to another process
    and rebuilt there by ``unpack_transactions``), a buffer at a time, always before anything the Python
    analyzer emits after them; with the emission key of each when partitioned. ``report_to``: the readers that report
    damage, one per reader (the original files when ``readers`` are spooled copies); ``readers`` by default."""
    report_to = readers if report_to is None else report_to
    if _lane is None:
        return LaneOutcome(False, "extension not built")
    maps = [r.mmap_buffer() for r in readers]
    if not maps or any(mm is None for mm in maps):
        return LaneOutcome(False, "not mmap-able pcap or pcapng files")
    files = []
    for r, mm in zip(readers, maps):
        if r.is_pcapng:  # blocks, interfaces and byte order are read by the lane (capture.pcapfile's rules)
            files.append((mm, 0, 0, False, 0, MAX_CAPLEN, True))
            continue
        order, ns_unit, max_caplen, linktype, data_off = r.pcap_params()
        files.append((mm, data_off, linktype, (order == ">") != (sys.byteorder == "big"), ns_unit, max_caplen,
                      False))
    part = analyzer.partition or (0, 1)
    ports, addrs = analyzer.server_ports, analyzer.server_addrs
    if part[1] > 1 and (ports is not None or addrs is not None):
        # Partitioned, the reference gives filtered segments an owner (FlowAssigner) before the filter.
        return LaneOutcome(False, "--port/--server with the connections partitioned between workers")
    consumer, aside = _consumer_setup(analyzer.consumer)
    if aside:
        return LaneOutcome(False, aside)
    lane = _lane.Lane(
        files,
        (limits.max_flows, limits.flow_idle_timeout_ns, limits.closed_flow_linger_ns, limits.max_header_bytes,
         limits.max_headers, limits.max_pending_requests, limits.max_uri_chars, limits.max_tunnel_depth),
        part,
        None if ports is None else sorted(ports),
        None if addrs is None else sorted(addrs),
        consumer,
    )
    size = sum(len(mm) for mm in maps if mm is not None)
    reported = [0]

    def report_at(done_bytes: int) -> None:
        # Progress in file bytes: each pass stands for half of the file.
        if progress is not None and done_bytes > reported[0]:
            progress(done_bytes - reported[0])
            reported[0] = done_bytes

    try:
        try:
            status, frames, max_live = lane.scan(lambda pos: report_at(pos // 2))
        except KeyboardInterrupt:
            # Ctrl-C before anything was analysed: the run ends here (not in the Python engine instead)
            return LaneOutcome(False, "interrupted during the first pass", interrupted=True)
        if status != "ok":
            if status == "files overlap in time":
                in_time = time_order(lane.file_spans())
                if in_time is not None and in_time != sorted(in_time):  # given out of order, yet one after another
                    lane.release()
                    return run_lane([readers[i] for i in in_time], analyzer, limits, progress, packed_sink,
                                    [report_to[i] for i in in_time])
                return LaneOutcome(False, "the files overlap in time: the merged stream is Python's")
            return LaneOutcome(False, status)  # too many frames for the general decoder; a pcapng beyond the lane
        if max_live * 2 > limits.max_flows:
            return LaneOutcome(False, f"{max_live} connections at once: too close to max_flows")
        nonfast = lane.nonfast()
        if frames and len(nonfast) > MAX_NONFAST_SHARE * frames:
            return LaneOutcome(False, f"{len(nonfast)} of {frames} frames need the general decoder")
        # Frames the C decoder does not take: decoded here (a scratch decoder: they are decoded and counted
        # again in pass 2). Their 4-tuples are Python's; their TCP segments move the packet clock, so the
        # first pass is run again with them when there are any (the lane's sweeps must fall when the
        # reference's do).
        decoder = Decoder(Counters(), limits)
        events: list[tuple[int, int, bytes, int, bytes, int]] = []
        for index, ts, off, caplen, f, linktype in nonfast:
            seg = decoder.decode(ts, linktype, maps[f][off:off + caplen])  # type: ignore[index]
            if seg is not None and (not analyzer._filtered or analyzer._takes(seg)):
                # (a segment the filters leave out moves no clock: it stays a plain frame for Python)
                events.append((index, ts, seg[0], seg[2], seg[1], seg[3]))
        if frames and len(events) > MAX_FOREIGN_TCP_SHARE * frames:
            return LaneOutcome(
                False, f"{len(events)} of {frames} frames are TCP segments that need the general decoder")
        if events:
            status, frames, max_live = lane.scan(None, events)
        for fi, code, offset, packets, value in lane.damage():  # committed: the lane reads as the reader would
            if code == _DMG_TRUNCATED:
                report_to[fi].report_truncated(packets, offset)
            else:
                report_to[fi].report_corrupt(packets, offset, DAMAGE[_DAMAGE_OF_CODE[code]].format(value))
        own_frame = analyzer.own_frame

        def frame(index: int, ts: int, data: bytes, clock: int, owner: int, linktype: int) -> tuple[int, int]:
            analyzer._clock = max(analyzer._clock, clock)
            own_frame(index, ts, linktype, data, owner)
            return analyzer._next_sweep, analyzer._clock

        def tick(index: int, ts: int, clock_before: int) -> int:
            analyzer._clock = max(analyzer._clock, clock_before)
            analyzer.skip_segment(index, ts)
            return analyzer._next_sweep

        base_sink = analyzer._sink
        sink: Callable[..., None] = base_sink
        if part[1] > 1:
            def keyed_sink(tx: Transaction, index: int) -> None:
                # A transaction of the lane's, emitted at frame ``index`` by that frame's own connection.
                analyzer._seq += 1
                analyzer.emission_key = (index, 1, 0, "", analyzer._seq)
                base_sink(tx)

            sink = keyed_sink
        outcome = LaneOutcome(True)
        try:
            clock = lane.run(frame, tick, packed_sink if packed_sink is not None else sink, _conninfo, Transaction,
                             _slots(), analyzer._next_sweep, lambda pos: report_at((size + pos) // 2),
                             _PACKED if packed_sink is not None else _ONE_BY_ONE)
            analyzer._clock = max(analyzer._clock, clock)
        except KeyboardInterrupt:
            outcome.interrupted = True
        except Exception as e:  # noqa: BLE001 - results so far are kept; the caller marks the run partial
            outcome.error = f"{type(e).__name__}: {e}"
        analyzer.frames = int(lane.stats()["frames"])  # type: ignore[call-overload]
        first, last = lane.span()
        analyzer.first_ts_ns, analyzer.last_ts_ns = first, last
        analyzer.linktypes.update(lane.linktypes())
        analyzer.counters.merge(lane.counters())
        analyzer.closed_elsewhere.extend(lane.end_transactions())
        outcome.stats = lane.stats()
        report_at(size)
        return outcome
    finally:
        lane.release()
        del maps


__all__ = ["LaneOutcome", "available", "run_lane"]
