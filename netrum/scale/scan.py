"""The partitioned read of one plain pcap file: record framing, ownership and skipping in one loop.

A worker reads every frame of the capture but analyses only its own (``Analyzer(partition=(k, n))``), so
what a foreign frame costs bounds the speed-up: through the general frame iterator it is a generator
step, a copied slice and a tuple per frame, about as much as a quarter of the whole single-process work
per frame. Here the loop walks the pcap records in the mmap'd file itself, peeks at the Ethernet/IPv4/TCP
headers in place and only slices the frames this worker owns (or must decode to place), which cuts the
cost of a foreign frame by about three.

It keeps the capture reader's rules exactly: the same record checks, the same damage reports (through
the reader's own helpers) and the same capture counters, so health.csv is the same as through the
reader. Only a plain pcap read through mmap, alone, takes this path; pcapng, gzip, standard input and
several files (merged by timestamp) go through ``Analyzer.feed``.
"""
from __future__ import annotations

import struct

from netrum.capture.pcapfile import CaptureReader
from netrum.pipeline import _MASK32, _OWNER_MIX, Analyzer, peek_owner

# From the 12th byte of an Ethernet frame: ethertype, then an option-less IPv4 header and the TCP ports.
_PEEK_ETH_IPV4_TCP = struct.Struct("!HBxHxxHxBxxIIHHxxxxxxxxB").unpack_from
_ETHERTYPE_IPV4 = 0x0800


def can_scan(readers: list[CaptureReader]) -> bool:
    """True when ``scan_pcap`` can read the input: one plain pcap file mapped in memory, not started."""
    return len(readers) == 1 and readers[0].format == "pcap" and readers[0]._mm is not None \
        and not readers[0]._iterated


def scan_pcap(reader: CaptureReader, analyzer: Analyzer) -> None:
    """Feed one plain mmap'd pcap to a partitioned analyzer (see the module docstring). Damage ends the
    reading as with the reader (counted, described in ``reader.problems``)."""
    mm = reader._mm
    assert mm is not None and analyzer.partition is not None
    reader._iterated = True
    k, n = analyzer.partition
    order, ns_unit, max_caplen, linktype = reader._pcap_params()
    rec = struct.Struct(order + "IIII").unpack_from
    peek = _PEEK_ETH_IPV4_TCP
    own = analyzer.own_frame
    filtered = analyzer.server_ports is not None or analyzer.server_addrs is not None
    eth = linktype == 1 and not filtered  # the in-place peek; otherwise slice and use peek_owner
    size = len(mm)
    pos = max(reader._start, 24)
    stop = size if reader._stop is None else min(reader._stop, size)
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
    try:
        while pos < stop:
            if pos + 16 > size:
                reader._truncated(packets, pos)
                break
            sec, frac, caplen, wirelen = rec(mm, pos)
            if caplen > max_caplen:
                reader._corrupt(packets, pos, f"captured length {caplen}")
                break
            end = pos + 16 + caplen
            if end > size:
                reader._truncated(packets, pos)
                break
            ts = sec * 1_000_000_000 + frac * ns_unit
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
                        if t <= 14 + total and t <= caplen:
                            owner = (((((srci + dsti + sport + dport) & _MASK32) * _OWNER_MIX) & _MASK32) * n) >> 32
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
                owner = peek_owner(linktype, data, n)
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
            clock = analyzer._clock
            synced = analyzer._synced
            next_sweep = analyzer._next_sweep
            pos = end
    finally:
        analyzer._clock = clock
        analyzer._synced = synced
        reader._bytes_read = min(pos, size)
        reader._flush(packets, wire, cut, cut_bytes, ooo)
        analyzer.frames = i
        analyzer.first_ts_ns = first
        analyzer.last_ts_ns = last if last >= 0 else None
