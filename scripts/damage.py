#!/usr/bin/env python3
"""Make damaged copies of a pcap file, the way real captures get damaged.

    damage.py IN.pcap OUT.pcap [--reorder-window 8] [--duplicate 0.05] [--drop 0.01]
                               [--snaplen 96] [--cut-at BYTES] [--seed S]

Options combine and apply in this order: drop, duplicate, reorder, snaplen, cut.

- ``--drop P``: remove each packet with probability P.
- ``--duplicate P``: after each packet, with probability P, insert an identical copy (same timestamp).
- ``--reorder-window W``: shuffle the packets inside consecutive windows of W packets, then give the
  packets the original timestamp sequence, so timestamps stay in file order (what a multi-queue capture
  card or a mirror port merging several links produces: the order changes, the clock does not).
- ``--snaplen N``: store at most N bytes of each packet (caplen = min(caplen, N)), keeping the original
  wire length, and write N as the file's snaplen (as ``tcpdump -s N`` does).
- ``--cut-at BYTES``: end the file at that offset, and make sure the cut falls inside a record (if the
  offset is a record boundary it moves 10 bytes into the next record), as a capture copied while it was
  being written or a full disk leaves it.

Timestamps are kept exactly (integer seconds and fractions, micro- or nanosecond files alike); records are
read and written with dpkt's pcap header structures. Only classic pcap is accepted (not pcapng).
"""
from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import dpkt

Record = tuple[int, int, int, bytes]  # (ts_sec, ts_frac, wire_len, data)
MAGICS = {
    dpkt.pcap.TCPDUMP_MAGIC, dpkt.pcap.TCPDUMP_MAGIC_NANO,
    dpkt.pcap.PMUDPCT_MAGIC, dpkt.pcap.PMUDPCT_MAGIC_NANO,
}


class PcapFile:
    """A classic pcap file held in memory: its global header and its records."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) < 24:
            raise ValueError("too short for a pcap header")
        fh = dpkt.pcap.FileHdr(raw[:24])
        if fh.magic not in MAGICS:
            raise ValueError(f"not a classic pcap file (magic 0x{fh.magic:08x}); pcapng is not supported")
        little = fh.magic in (dpkt.pcap.PMUDPCT_MAGIC, dpkt.pcap.PMUDPCT_MAGIC_NANO)
        self.file_hdr_cls = dpkt.pcap.LEFileHdr if little else dpkt.pcap.FileHdr
        self.pkt_hdr_cls = dpkt.pcap.LEPktHdr if little else dpkt.pcap.PktHdr
        self.file_hdr = self.file_hdr_cls(raw[:24])
        self.records: list[Record] = []
        self.offsets: list[int] = []  # byte offset of each record in the input
        off = 24
        hdr_len = self.pkt_hdr_cls.__hdr_len__
        while off + hdr_len <= len(raw):
            ph = self.pkt_hdr_cls(raw[off:off + hdr_len])
            end = off + hdr_len + ph.caplen
            if end > len(raw):
                raise ValueError(f"input is cut inside the record at offset {off}")
            self.offsets.append(off)
            self.records.append((ph.tv_sec, ph.tv_usec, ph.len, raw[off + hdr_len:end]))
            off = end
        if off != len(raw):
            raise ValueError(f"input is cut inside the record header at offset {off}")

    def encode(self, records: list[Record]) -> bytes:
        out = [bytes(self.file_hdr)]
        for sec, frac, wire_len, data in records:
            out.append(bytes(self.pkt_hdr_cls(tv_sec=sec, tv_usec=frac, caplen=len(data), len=wire_len)))
            out.append(data)
        return b"".join(out)


def drop(records: list[Record], p: float, rng: random.Random) -> list[Record]:
    return [r for r in records if rng.random() >= p]


def duplicate(records: list[Record], p: float, rng: random.Random) -> list[Record]:
    out: list[Record] = []
    for r in records:
        out.append(r)
        if rng.random() < p:
            out.append(r)
    return out


def reorder(records: list[Record], window: int, rng: random.Random) -> list[Record]:
    """Shuffle inside consecutive windows; the timestamps keep their original sequence."""
    out: list[Record] = []
    for i in range(0, len(records), window):
        chunk = records[i:i + window]
        shuffled = chunk[:]
        rng.shuffle(shuffled)
        out += [(t[0], t[1], s[2], s[3]) for t, s in zip(chunk, shuffled)]
    return out


def snaplen(records: list[Record], n: int) -> Iterator[Record]:
    for sec, frac, wire_len, data in records:
        yield sec, frac, wire_len, data[:n]


def cut_offset(encoded: bytes, pcap: PcapFile, records: list[Record], at: int) -> int:
    """An offset inside a record, at or just after `at` (never on a record boundary)."""
    if not 24 < at < len(encoded):
        raise ValueError(f"--cut-at must lie inside the records (24 < BYTES < {len(encoded)})")
    hdr_len = pcap.pkt_hdr_cls.__hdr_len__
    off = 24
    for r in records:
        if off == at:
            return at + min(10, hdr_len - 1)
        off += hdr_len + len(r[3])
        if at < off:
            return at
    return at  # pragma: no cover - at < len(encoded) ends the loop above


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Make damaged copies of a pcap file.")
    ap.add_argument("input", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--drop", type=float, metavar="P", help="drop each packet with probability P")
    ap.add_argument("--duplicate", type=float, metavar="P", help="duplicate each packet with probability P")
    ap.add_argument("--reorder-window", type=int, metavar="W", help="shuffle inside windows of W packets")
    ap.add_argument("--snaplen", type=int, metavar="N", help="keep at most N bytes of each packet")
    ap.add_argument("--cut-at", type=int, metavar="BYTES", help="end the file inside the record at BYTES")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = ap.parse_args(argv)
    try:
        pcap = PcapFile(args.input.read_bytes())
    except (OSError, ValueError) as e:
        print(f"damage: {args.input}: {e}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    records = pcap.records
    n_in = len(records)
    if args.drop is not None:
        records = drop(records, args.drop, rng)
    if args.duplicate is not None:
        records = duplicate(records, args.duplicate, rng)
    if args.reorder_window is not None:
        if args.reorder_window < 1:
            ap.error("--reorder-window must be >= 1")
        records = reorder(records, args.reorder_window, rng)
    if args.snaplen is not None:
        if args.snaplen < 1:
            ap.error("--snaplen must be >= 1")
        records = list(snaplen(records, args.snaplen))
        pcap.file_hdr.snaplen = args.snaplen
    encoded = pcap.encode(records)
    note = ""
    if args.cut_at is not None:
        try:
            at = cut_offset(encoded, pcap, records, args.cut_at)
        except ValueError as e:
            print(f"damage: {e}", file=sys.stderr)
            return 2
        encoded = encoded[:at]
        note = f", cut at byte {at}"
    args.output.write_bytes(encoded)
    print(f"damage: {n_in} packets in, {len(records)} out{note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
