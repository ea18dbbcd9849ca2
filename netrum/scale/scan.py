"""The partitioned read of one plain pcap file: record framing, ownership and skipping in one loop.

A worker reads every frame of the capture but analyses only its own (``Analyzer(partition=(k, n))``), so
what a foreign frame costs bounds the speed-up: through the general frame iterator it is a generator
step, a copied slice and a tuple per frame plus the loop's own work, about 4.5 us, near a third of the
whole single-process work per frame (about 15 us on a 2-core EPYC). Here the loop walks the pcap records in
the mmap'd file itself, peeks at the Ethernet/IPv4/TCP headers in place and only slices the frames this
worker owns (or must decode to place): a foreign frame costs about 1.5 us.

It keeps the capture reader's rules exactly, through the reader's public record API: the records come
from ``CaptureReader.claim_records`` (the mapped file, the byte range to walk, byte order, timestamp unit,
largest plausible captured length, link type: a ``MappedPcap``, whose docstring states the record checks),
damage goes back through ``report_truncated``/``report_corrupt`` and the tallies through ``count_read``, so
health.csv is the same as through the reader. Plain pcap files read through mmap take this path
(``can_claim_records``): one alone, or several one after another (rotated captures) as long as none goes
back in time (``Overlap``, see ``run_partition``). pcapng, gzip, standard input and overlapping files go
through ``read_merged`` and ``Analyzer.feed``.
"""
from __future__ import annotations

import mmap
import struct

from netrum.capture.pcapfile import DAMAGE, RELEASE_BYTES, CaptureReader
from netrum.pipeline import Analyzer, peek_endpoints

# From the 12th byte of an Ethernet frame: ethertype, then an option-less IPv4 header and the TCP ports.
_PEEK_ETH_IPV4_TCP = struct.Struct("!HBxHxxHxBxxIIHHxxxxxxxxB").unpack_from
_ETHERTYPE_IPV4 = 0x0800


class Overlap(Exception):
    """A file holds a packet earlier than ``floor_ts_ns``: reading files one after another would not be
    the timestamp-merged stream."""


def can_scan(readers: list[CaptureReader]) -> bool:
    """True when ``scan_pcap`` can read the input: one plain pcap file mapped in memory, not started."""
    return len(readers) == 1 and readers[0].can_claim_records()


def scan_pcap(reader: CaptureReader, analyzer: Analyzer, floor_ts_ns: int | None = None) -> None:
    """Feed one plain mmap'd pcap to a partitioned analyzer (see the module docstring). Damage ends the
    reading as with the reader (counted, described in ``reader.problems``). With ``floor_ts_ns`` (the
    latest packet time of the files read before this one), a packet earlier than it raises ``Overlap``."""
    assert analyzer.partition is not None
    span = reader.claim_records()
    mm = span.buffer
    k = analyzer.partition[0]
    assigner = analyzer.assigner
    cur = assigner.cur
    load = assigner.load
    ns_unit, max_caplen, linktype = span.ts_unit_ns, span.max_caplen_bytes, span.linktype
    rec = struct.Struct(span.byte_order + "IIII").unpack_from
    peek = _PEEK_ETH_IPV4_TCP
    own = analyzer.own_frame
    filtered = analyzer.server_ports is not None or analyzer.server_addrs is not None
    eth = linktype == 1 and not filtered  # the in-place peek; otherwise slice and use peek_endpoints
    size = span.file_bytes
    pos = span.start_offset
    stop = span.stop_offset
    count_order = reader.count_order
    packets = wire = cut = cut_bytes = ooo = 0
    last_ts = -1
    first = analyzer.first_ts_ns
    last = -1 if analyzer.last_ts_ns is None else analyzer.last_ts_ns
    i = analyzer.frames
    # Analyzer.own_frame and skip_segment, inlined for this worker's Ethernet/IPv4/TCP frames and for the
    # skipped ones: the packet clock (over skipped segments too), the clock the flow table was last told,
    # and the time of the next sweep live here and are handed over around every call into the analyzer.
    clock = analyzer._clock
    synced = analyzer._synced
    next_sweep = analyzer._next_sweep
    decode = analyzer.decoder.decode
    packet = analyzer.flows.packet
    advance = analyzer.flows.advance
    tick = analyzer._tick
    counters = analyzer.counters
    scratch = analyzer._scratch
    analyzer.linktypes.add(linktype)
    floor = -1 if floor_ts_ns is None else floor_ts_ns
    # As the reader does: pages already read go back to the kernel every RELEASE_BYTES (flat RSS).
    released = pos - pos % mmap.PAGESIZE
    next_release = released + RELEASE_BYTES
    release = getattr(mm, "madvise", None)
    try:
        while pos < stop:
            if pos >= next_release:
                upto = pos - pos % mmap.PAGESIZE
                if release is not None:
                    release(mmap.MADV_DONTNEED, released, upto - released)
                released = upto
                next_release = upto + RELEASE_BYTES
            if pos + 16 > size:
                reader.report_truncated(packets, pos)
                break
            sec, frac, caplen, wirelen = rec(mm, pos)
            if caplen > max_caplen:
                reader.report_corrupt(packets, pos, DAMAGE["caplen"].format(caplen))
                break
            end = pos + 16 + caplen
            if end > size:
                reader.report_truncated(packets, pos)
                break
            ts = sec * 1_000_000_000 + frac * ns_unit
            if ts < floor:
                raise Overlap(f"{reader.path}: a packet at {ts} ns, before {floor} ns in an earlier file")
            if wirelen > caplen:
                cut += 1
                cut_bytes += wirelen - caplen
            wire += wirelen
            packets += 1
            if ts < last_ts and count_order:
                ooo += 1
            last_ts = ts
            i += 1
            if ts > last:
                last = ts
                if first is None:
                    first = ts
            elif first is not None and ts < first:
                first = ts
            if eth:
                owner = -1
                if caplen >= 54:
                    etype, vihl, total, frag, proto, srci, dsti, sport, dport, doff = peek(mm, pos + 28)
                    if etype == _ETHERTYPE_IPV4 and vihl == 0x45 and proto == 6 and not frag & 0x3FFF \
                            and total >= 40 and doff >= 0x50:
                        t = 34 + ((doff >> 4) << 2)
                        if t <= 14 + total and t <= caplen:  # FlowAssigner.owner, inlined
                            a = (srci << 16) | sport
                            b = (dsti << 16) | dport
                            key = (a, b) if a < b else (b, a)
                            owner = cur.get(key, -1)
                            if owner < 0:
                                owner = assigner.assign(key, ts)
                                cur = assigner.cur
                            load[owner] += 1
                if owner == k:  # this worker's fast-path segment
                    seg = decode(ts, 1, mm[pos + 16:end])
                    if scratch:
                        counters.merge(scratch)
                        scratch.clear()
                    if clock > synced:
                        advance(clock)  # skipped segments moved the clock (no sweep: none was due)
                        synced = clock
                    analyzer._frame = i
                    if ts >= next_sweep:
                        analyzer._synced = synced
                        tick(ts, i)
                        synced = analyzer._synced
                        next_sweep = analyzer._next_sweep
                    packet(ts, *seg)  # type: ignore[misc]
                    if ts > clock:
                        clock = synced = ts
                    pos = end
                    continue
                if owner >= 0:  # another worker's segment: only the packet clock moves
                    if ts > clock:
                        clock = ts
                        if ts >= next_sweep:
                            analyzer._synced = synced
                            tick(ts, i)
                            synced = analyzer._synced
                            next_sweep = analyzer._next_sweep
                    pos = end
                    continue
                data = mm[pos + 16:end]
            else:
                data = mm[pos + 16:end]
                ends = peek_endpoints(linktype, data)
                owner = -1 if ends is None else assigner.owner(ends[0], ends[1], ts)
                cur = assigner.cur
                if owner >= 0 and owner != k and not filtered:
                    if ts > clock:
                        clock = ts
                        if ts >= next_sweep:
                            analyzer._synced = synced
                            tick(ts, i)
                            synced = analyzer._synced
                            next_sweep = analyzer._next_sweep
                    pos = end
                    continue
            # The general path (owner unknown before decoding, or filters to apply): own_frame.
            analyzer._clock = clock
            analyzer._synced = synced
            own(i, ts, linktype, data, owner)
            cur = assigner.cur
            clock = analyzer._clock
            synced = analyzer._synced
            next_sweep = analyzer._next_sweep
            pos = end
    finally:
        analyzer._clock = clock
        analyzer._synced = synced
        reader.count_read(packets, wire, cut, cut_bytes, ooo, read_to_offset=min(pos, size))
        analyzer.frames = i
        analyzer.first_ts_ns = first
        analyzer.last_ts_ns = last if last >= 0 else None
