"""Capture readers: pcap (both orders, us/ns), pcapng, gzip, stdin, byte ranges, damage, merging."""
from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest

from netrum.capture.pcapfile import CaptureReader, MappedPcap, open_capture, read_merged
from netrum.counters import COUNTER_DOCS, Counters
from netrum.errors import CaptureError

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / ".." / "shared" / "corpus" / "pcaps"

# (ts_ns, payload, wire_len)
PACKETS = [
    (1_700_000_000_123_456_000, b"A" * 60, 60),
    (1_700_000_000_223_456_000, b"B" * 42, 100),  # snaplen cut: 58 bytes missing
    (1_700_000_001_000_001_000, b"C" * 1, 1),
]


def pcap_bytes(packets: list[tuple[int, bytes, int]] = PACKETS, order: str = "<", nano: bool = False,
               linktype: int = 1, snaplen: int = 65535) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for ts, data, wire in packets:
        sec, frac = divmod(ts, 1_000_000_000)
        out.append(struct.pack(order + "IIII", sec, frac if nano else frac // 1000, len(data), wire) + data)
    return b"".join(out)


def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, linktype: int, tsresol: int | None = None, snaplen: int = 0, tsoffset: int = 0) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(order, 9, bytes([tsresol]))
    if tsoffset:
        opts += option(order, 14, struct.pack(order + "q", tsoffset))
    if opts:
        opts += option(order, 0, b"")
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts)


def epb(order: str, iface: int, units: int, data: bytes, wire: int) -> bytes:
    return block(order, 6, struct.pack(order + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(data), wire)
                 + data)


def pcapng_bytes(order: str = "<") -> tuple[bytes, list[tuple[int, int, bytes, int]]]:
    """Two interfaces (Ethernet in microseconds, raw IP in 2^-20 s with an offset), an SPB, an obsolete PB,
    a name resolution block (skipped), then a second section in the other byte order."""
    other = ">" if order == "<" else "<"
    parts = [shb(order), idb(order, 1), idb(order, 101, tsresol=0x80 | 20, tsoffset=10)]
    expect: list[tuple[int, int, bytes, int]] = []
    parts.append(epb(order, 0, 1_700_000_000_123_456, b"E" * 61, 61))
    expect.append((1_700_000_000_123_456_000, 1, b"E" * 61, 61))
    units = (5 << 20) + (1 << 19)  # 5.5 s
    parts.append(epb(order, 1, units, b"R" * 20, 1500))
    expect.append((15_500_000_000, 101, b"R" * 20, 1500))
    parts.append(block(order, 4, b"\x00\x00\x00\x00"))  # name resolution block: skipped
    parts.append(block(order, 3, struct.pack(order + "I", 9) + b"S" * 9))  # SPB on interface 0
    expect.append((15_500_000_000, 1, b"S" * 9, 9))
    parts.append(block(order, 2, struct.pack(order + "HHIIII", 0, 0, 0, 2_000_000, 3, 3) + b"PPP"))  # obsolete PB
    expect.append((2_000_000_000, 1, b"PPP", 3))
    parts.append(shb(other))
    parts.append(idb(other, 228, tsresol=9))
    parts.append(epb(other, 0, 1_700_000_002_000_000_001, b"N" * 8, 8))
    expect.append((1_700_000_002_000_000_001, 228, b"N" * 8, 8))
    return b"".join(parts), expect


def write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def read_all(path: str, counters: Counters | None = None, **kw: int) -> tuple[list[tuple[int, int, bytes, int]],
                                                                          CaptureReader]:
    c = counters if counters is not None else Counters()
    with open_capture(path, c, **kw) as r:
        frames = list(r)
    for name in c:
        assert name in COUNTER_DOCS
    return frames, r


EXPECTED = [(ts, 1, data, wire) for ts, data, wire in PACKETS]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_orders_and_resolutions(tmp_path: Path, order: str, nano: bool) -> None:
    path = write(tmp_path, "a.pcap", pcap_bytes(order=order, nano=nano))
    c = Counters()
    frames, r = read_all(path, c)
    assert frames == EXPECTED
    assert all(type(f[0]) is int and type(f[2]) is bytes for f in frames)
    assert c.nonzero() == {"capture_files": 1, "capture_packets": 3, "capture_bytes": 161,
                           "capture_snaplen_cut": 1, "capture_snaplen_bytes": 58}
    assert r.size_bytes == r.bytes_read == os.path.getsize(path)
    assert r.problems == []


def test_nanosecond_exact(tmp_path: Path) -> None:
    ts = 1_700_000_000_999_999_999
    frames, _ = read_all(write(tmp_path, "n.pcap", pcap_bytes([(ts, b"x", 1)], nano=True)))
    assert frames[0][0] == ts


def test_linktype_fcs_bits_masked(tmp_path: Path) -> None:
    frames, _ = read_all(write(tmp_path, "f.pcap", pcap_bytes(linktype=(1 << 26) | (4 << 28) | 1)))
    assert {f[1] for f in frames} == {1}


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng(tmp_path: Path, order: str) -> None:
    data, expect = pcapng_bytes(order)
    c = Counters()
    frames, r = read_all(write(tmp_path, "a.pcapng", data), c)
    assert frames == expect
    assert c["capture_unsupported_block"] == 1
    assert c["capture_packets"] == len(expect) and c["capture_snaplen_cut"] == 1
    assert c["capture_out_of_order_ts"] == 2
    assert r.bytes_read == len(data) and r.problems == []


def test_pcapng_tsresol_powers_of_ten(tmp_path: Path) -> None:
    for resol, units, ts in [(3, 1_500, 1_500_000_000), (9, 7, 7), (12, 123_456_789, 123_456)]:
        data = shb("<") + idb("<", 1, tsresol=resol) + epb("<", 0, units, b"x", 1)
        frames, _ = read_all(write(tmp_path, "r.pcapng", data))
        assert frames == [(ts, 1, b"x", 1)]


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_gzip(tmp_path: Path, kind: str) -> None:
    raw, expect = (pcap_bytes(), EXPECTED) if kind == "pcap" else pcapng_bytes()
    path = write(tmp_path, "x.gz", gzip.compress(raw))
    frames, r = read_all(path)
    assert frames == expect
    assert r.size_bytes == r.bytes_read == os.path.getsize(path)  # compressed bytes, for progress
    assert r.format == kind + "+gzip"


def test_gzip_cut_short_is_truncated_not_raised(tmp_path: Path) -> None:
    big = pcap_bytes([(i * 1000, bytes([i % 256]) * 500, 500) for i in range(2000)])
    comp = gzip.compress(big)
    path = write(tmp_path, "cut.gz", comp[: len(comp) // 2])
    c = Counters()
    frames, r = read_all(path, c)
    assert 0 < len(frames) < 2000
    assert frames == [(i * 1000, 1, bytes([i % 256]) * 500, 500) for i in range(len(frames))]
    assert c["capture_truncated_file"] == 1 and len(r.problems) == 1


def test_gzip_every_cut_point_never_raises(tmp_path: Path) -> None:
    comp = gzip.compress(pcap_bytes())
    for cut in range(len(comp) + 1):
        path = write(tmp_path, "g.gz", comp[:cut])
        try:
            with open_capture(path, Counters()) as r:
                frames = list(r)
        except CaptureError:
            continue  # too short to tell what it is
        assert frames == EXPECTED[: len(frames)]
        assert (r.problems == []) == (cut == len(comp))


def test_gzip_concatenated_members(tmp_path: Path) -> None:
    raw = pcap_bytes()
    frames, _ = read_all(write(tmp_path, "m.gz", gzip.compress(raw[:50]) + gzip.compress(raw[50:])))
    assert frames == EXPECTED


def test_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expect in [(pcap_bytes(), EXPECTED), (pcapng_bytes()[0], pcapng_bytes()[1]),
                        (gzip.compress(pcap_bytes()), EXPECTED)]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
        frames, r = read_all("-")
        assert frames == expect
        assert r.size_bytes is None


def test_stdin_real_pipe(tmp_path: Path) -> None:
    code = ("from netrum.capture.pcapfile import open_capture; from netrum.counters import Counters; "
            "r = open_capture('-', Counters()); print(sum(1 for _ in r), r.bytes_read)")
    out = subprocess.run([sys.executable, "-c", code], input=pcap_bytes(), capture_output=True, cwd=REPO,
                         check=True)
    assert out.stdout.split() == [b"3", str(len(pcap_bytes())).encode()]


def test_truncated_pcap_at_every_cut_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = pcap_bytes()
    boundaries = {24}
    pos = 24
    for _, data, _ in PACKETS:
        pos += 16 + len(data)
        boundaries.add(pos)
    for cut in range(len(raw) + 1):
        path = write(tmp_path, "t.pcap", raw[:cut])
        if cut < 24:
            with pytest.raises(CaptureError):
                open_capture(path, Counters())
            continue
        for mode in ("file", "stdin"):
            c = Counters()
            if mode == "stdin":
                monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw[:cut])))
            frames, r = read_all(path if mode == "file" else "-", c)
            assert frames == EXPECTED[: len(frames)]
            complete = sum(1 for b in boundaries if 24 < b <= cut)
            assert len(frames) == complete
            if cut in boundaries:
                assert c["capture_truncated_file"] == 0 and r.problems == []
            else:
                assert c["capture_truncated_file"] == 1
                at = max(b for b in boundaries if b <= cut)
                assert r.problems == [f"{r.path}: cut in the middle of a record after {complete} packets (byte {at})"]


def test_truncated_pcapng_at_every_cut_point(tmp_path: Path) -> None:
    raw, expect = pcapng_bytes()
    for cut in range(len(raw) + 1):
        path = write(tmp_path, "t.pcapng", raw[:cut])
        if cut < 12:
            with pytest.raises(CaptureError):
                open_capture(path, Counters())
            continue
        c = Counters()
        frames, r = read_all(path, c)
        assert frames == expect[: len(frames)]
        assert c["capture_corrupt_record"] == 0
        assert c["capture_truncated_file"] == len(r.problems) <= 1
    assert c["capture_truncated_file"] == 0 and len(frames) == len(expect)


def test_truncated_pcapng_reports_only_inside_blocks(tmp_path: Path) -> None:
    raw, _ = pcapng_bytes()
    first = struct.unpack_from("<I", raw, 4)[0]
    for cut, truncated in [(first, 0), (first + 3, 1), (len(raw) - 1, 1)]:
        c = Counters()
        read_all(write(tmp_path, "b.pcapng", raw[:cut]), c)
        assert c["capture_truncated_file"] == truncated


def test_corrupt_record_stops_file(tmp_path: Path) -> None:
    raw = pcap_bytes() + struct.pack("<IIII", 1, 0, 10_000_000, 10_000_000) + b"junk"
    c = Counters()
    frames, r = read_all(write(tmp_path, "c.pcap", raw), c)
    assert frames == EXPECTED
    assert c["capture_corrupt_record"] == 1 and c["capture_truncated_file"] == 0
    assert len(r.problems) == 1 and "impossible record" in r.problems[0] and "\n" not in r.problems[0]
    bad_block = struct.pack("<II", 6, 7)  # length not a multiple of 4
    c = Counters()
    raw_ng = pcapng_bytes()[0]
    frames, r = read_all(write(tmp_path, "c.pcapng", raw_ng + bad_block + b"\x00" * 20), c)
    assert len(frames) == len(pcapng_bytes()[1]) and c["capture_corrupt_record"] == 1


def test_caplen_over_twice_snaplen_is_corrupt(tmp_path: Path) -> None:
    raw = pcap_bytes([(0, b"x" * 70_000, 70_000)], snaplen=1500)
    c = Counters()
    frames, _ = read_all(write(tmp_path, "s.pcap", raw), c)
    assert frames == [] and c["capture_corrupt_record"] == 1
    frames, _ = read_all(write(tmp_path, "s2.pcap", pcap_bytes([(0, b"x" * 70_000, 70_000)], snaplen=262144)))
    assert len(frames) == 1


def test_byte_ranges_split_at_record_boundaries(tmp_path: Path) -> None:
    pkts = [(i * 1000, bytes([i]) * (i + 1), i + 1) for i in range(50)]
    raw = pcap_bytes(pkts)
    path = write(tmp_path, "r.pcap", raw)
    offsets = [24]
    for _, data, _ in pkts:
        offsets.append(offsets[-1] + 16 + len(data))
    whole, _ = read_all(path)
    cuts = [0, offsets[10] + 1, offsets[25] - 1, offsets[40], len(raw)]
    starts = [0, offsets[11], offsets[25], offsets[40]]
    got = []
    for start, stop in zip(starts, cuts[1:]):
        frames, _ = read_all(path, start=start, stop=stop)
        got.extend(frames)
    assert got == whole
    frames, _ = read_all(path, start=offsets[49])
    assert frames == whole[49:]


def test_byte_ranges_only_for_plain_pcap(tmp_path: Path) -> None:
    path = write(tmp_path, "r.pcapng", pcapng_bytes()[0])
    with pytest.raises(CaptureError, match="plain pcap"):
        open_capture(path, Counters(), start=100)


def walk_records(r: CaptureReader) -> list[tuple[int, int, bytes, int]]:
    """A record loop of its own over the public record API, as netrum.scale.scan's: the rules stated in
    MappedPcap's docstring, damage and tallies reported back to the reader."""
    span = r.claim_records()
    rec = struct.Struct(span.byte_order + "IIII").unpack_from
    mm = span.buffer
    pos = span.start_offset
    frames = []
    packets = wire = cut = cut_bytes = ooo = 0
    last_ts = -1
    try:
        while pos < span.stop_offset:
            if pos + 16 > span.file_bytes:
                r.report_truncated(packets, pos)
                break
            sec, frac, caplen, wirelen = rec(mm, pos)
            if caplen > span.max_caplen_bytes:
                r.report_corrupt(packets, pos, f"captured length {caplen}")
                break
            end = pos + 16 + caplen
            if end > span.file_bytes:
                r.report_truncated(packets, pos)
                break
            ts = sec * 1_000_000_000 + frac * span.ts_unit_ns
            if wirelen > caplen:
                cut += 1
                cut_bytes += wirelen - caplen
            wire += wirelen
            packets += 1
            if ts < last_ts and r.count_order:
                ooo += 1
            last_ts = ts
            frames.append((ts, span.linktype, mm[pos + 16:end], wirelen))
            pos = end
    finally:
        r.count_read(packets, wire, cut, cut_bytes, ooo, read_to_offset=min(pos, span.file_bytes))
    return frames


Read = tuple[list[tuple[int, int, bytes, int]], dict[str, int], list[str], int]


def read_both_ways(path: str, **kw: int) -> tuple[Read, Read]:
    """(frames, counters, problems, bytes_read) through iteration and through ``walk_records``. (Damage
    before the first record leaves the iterating reader's bytes_read, a progress figure, at 0; the walk
    reports where it stopped: only then do they differ.)"""
    out: list[Read] = []
    for read in (list, walk_records):
        c = Counters()
        with open_capture(path, c, **kw) as r:
            frames = read(r)
        out.append((frames, dict(c), r.problems, r.bytes_read if frames or not r.problems else 0))
    return out[0], out[1]


@pytest.mark.parametrize(("order", "nano"), [("<", False), (">", True)])
def test_claim_records_describes_the_file(tmp_path: Path, order: str, nano: bool) -> None:
    raw = pcap_bytes(order=order, nano=nano, linktype=101 | 0x10000000, snaplen=40_000)
    path = write(tmp_path, "m.pcap", raw)
    with open_capture(path, Counters()) as r:
        assert r.can_claim_records()
        span = r.claim_records()
        assert span == MappedPcap(span.buffer, 24, len(raw), len(raw), order, 1 if nano else 1000, 80_000, 101)
        assert span.buffer[:] == raw
        assert not r.can_claim_records()
        with pytest.raises(RuntimeError, match="only once"):
            r.claim_records()
        with pytest.raises(RuntimeError, match="only once"):
            list(r)
    assert not r.can_claim_records()  # closed
    with open_capture(path, Counters(), start=24 + 16 + 60, stop=10**9) as r:
        span = r.claim_records()
        assert (span.start_offset, span.stop_offset) == (24 + 16 + 60, len(raw))  # the range, cut to the file


def test_claim_records_only_for_mapped_plain_pcap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pcapng (mapped too, for the compiled lane), gzip and pipes are iterated: claiming them fails and
    leaves the reader to be iterated."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(pcap_bytes())))
    ng, ng_expect = pcapng_bytes()
    for path, expect in [(write(tmp_path, "n.pcapng", ng), ng_expect),
                         (write(tmp_path, "g.pcap.gz", gzip.compress(pcap_bytes())), EXPECTED), ("-", EXPECTED)]:
        with open_capture(path, Counters()) as r:
            assert not r.can_claim_records()
            with pytest.raises(RuntimeError, match="only an open, plain pcap file"):
                r.claim_records()
            assert list(r) == expect
    with open_capture(write(tmp_path, "ok.pcap", pcap_bytes()), Counters()) as r:
        list(r)
        assert not r.can_claim_records()  # iterated already


def test_claimed_records_read_as_the_reader_does(tmp_path: Path) -> None:
    """The rules in MappedPcap, applied by a caller of its own, give the reader's frames, counters, damage
    reports and bytes_read: over byte ranges, out-of-order and snap-length-cut records, a file cut at every
    point and a corrupt record."""
    pkts = [(i * 1000 if i % 7 else 500, bytes([i]) * (i + 1), i + 1 + i % 3) for i in range(50)]
    raw = pcap_bytes(pkts)
    path = write(tmp_path, "r.pcap", raw)
    offsets = [24]
    for _, data, _ in pkts:
        offsets.append(offsets[-1] + 16 + len(data))
    whole, walked = read_both_ways(path)
    assert walked == whole and whole[1]["capture_out_of_order_ts"] > 0 and whole[1]["capture_snaplen_cut"] > 0
    got = []
    for start, stop in [(0, offsets[10] + 1), (offsets[11], offsets[25] - 1), (offsets[25], offsets[40]),
                        (offsets[40], len(raw) + 100)]:
        iterated, walked = read_both_ways(path, start=start, stop=stop)
        assert walked == iterated
        got.extend(walked[0])
    assert got == whole[0]
    for cut in range(24, len(raw) + 1, 7):
        cut_path = write(tmp_path, "t.pcap", raw[:cut])
        iterated, walked = read_both_ways(cut_path)
        assert walked == iterated
        assert (iterated[1].get("capture_truncated_file", 0) == 0) == (cut in offsets)
        if cut > offsets[30]:  # a byte range running into the cut
            iterated, walked = read_both_ways(cut_path, start=offsets[30], stop=cut + 1)
            assert walked == iterated
    damaged = raw[:offsets[20] + 8] + struct.pack("<I", 10_000_000) + raw[offsets[20] + 12:]
    iterated, walked = read_both_ways(write(tmp_path, "c.pcap", damaged))
    assert walked == iterated
    assert iterated[1]["capture_corrupt_record"] == 1 and iterated[1]["capture_packets"] == 20
    problem = f"{tmp_path}/c.pcap: impossible record (captured length 10000000) after 20 packets (byte {offsets[20]})"
    assert iterated[2] == [problem + "; rest of file skipped"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("dir", "is a directory"), (b"", "empty file"), (b"\xd4\xc3", "too short"),
     (b"\xd4\xc3\xb2\xa1" + b"\x00" * 10, "too short"), (b"\x0a\x0d\x0d\x0a\x00", "too short"),
     (b"hello world, this is text", "not a pcap or pcapng capture"),
     (gzip.compress(b"hello world, this is text"), "gzip file that is not a pcap"),
     (b"\x1f\x8bgarbage-not-deflate", "damaged gzip")],
)
def test_bad_inputs(tmp_path: Path, content: bytes | str | None, message: str) -> None:
    path = tmp_path / "bad.pcap"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    c = Counters()
    with pytest.raises(CaptureError, match=message) as info:
        open_capture(str(path), c)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert c["capture_files"] == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.pcap"
    path.write_bytes(pcap_bytes())
    path.chmod(0)
    with pytest.raises(CaptureError, match="cannot read"):
        open_capture(str(path), Counters())


def test_unreadable_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "locked.pcap", pcap_bytes())

    def deny(*args: object, **kw: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("netrum.capture.pcapfile.open", deny, raising=False)
    with pytest.raises(CaptureError, match=r"locked.pcap: cannot read \(Permission denied\)"):
        open_capture(path, Counters())


def test_merged_in_timestamp_order(tmp_path: Path) -> None:
    a = write(tmp_path, "a.pcap", pcap_bytes([(10_000, b"a1", 2), (30_000, b"a2", 2), (30_000, b"a3", 2), (50_000, b"a4", 2)]))
    b = write(tmp_path, "b.pcap", pcap_bytes([(20_000, b"b1", 2), (30_000, b"b2", 2), (40_000, b"b3", 2)], nano=True))
    c = Counters()
    merged = [f[2] for f in read_merged([open_capture(a, c), open_capture(b, c)])]
    assert merged == [b"a1", b"b1", b"a2", b"a3", b"b2", b"b3", b"a4"]  # ties: file order
    assert c["capture_files"] == 2 and c["capture_packets"] == 7 and c["capture_out_of_order_ts"] == 0


def test_merged_counts_out_of_order_in_the_merged_stream(tmp_path: Path) -> None:
    a = write(tmp_path, "a.pcap", pcap_bytes([(10_000, b"a1", 2), (5_000, b"a2", 2)]))
    b = write(tmp_path, "b.pcap", pcap_bytes([(7_000, b"b1", 2)], nano=True))
    c = Counters()
    assert [f[2] for f in read_merged([open_capture(a, c), open_capture(b, c)])] == [b"b1", b"a1", b"a2"]
    assert c["capture_out_of_order_ts"] == 1
    c = Counters()
    single = open_capture(a, c)
    it = read_merged([single])
    assert [f[2] for f in it] == [b"a1", b"a2"]
    assert c["capture_out_of_order_ts"] == 1


def test_counters_flushed_when_iteration_stops_early(tmp_path: Path) -> None:
    c = Counters()
    with open_capture(write(tmp_path, "e.pcap", pcap_bytes()), c) as r:
        it = iter(r)
        next(it)
        next(it)
        it.close()  # type: ignore[attr-defined]
    assert c["capture_packets"] == 2


def test_dpkt_written_files_agree(tmp_path: Path) -> None:
    for nano in (False, True):
        buf = io.BytesIO()
        w = dpkt.pcap.Writer(buf, nano=nano, linktype=101)
        w.writepkt(b"\x45" + b"\x00" * 19, ts=1_700_000_000.25)
        frames, _ = read_all(write(tmp_path, "d.pcap", buf.getvalue()))
        assert frames == [(1_700_000_000_250_000_000, 101, b"\x45" + b"\x00" * 19, 20)]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus absent")
def test_corpus_matches_dpkt() -> None:
    for path in sorted(CORPUS.iterdir()):
        with open(path, "rb") as f:
            reader = dpkt.pcapng.Reader(f) if path.suffix == ".pcapng" else dpkt.pcap.Reader(f)
            theirs = [bytes(buf) for _, buf in reader]
            linktype = reader.datalink()
        c = Counters()
        frames, r = read_all(str(path), c)
        assert [f[2] for f in frames] == theirs, path.name
        assert {f[1] for f in frames} == {linktype}
        assert r.problems == [] and c["capture_packets"] == len(theirs)


class Trickle(io.RawIOBase):
    """A pipe that hands out at most ``step`` bytes per read."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        k = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos : self._pos + k]
        self._pos += len(out)
        return out


@pytest.mark.parametrize("chunk", [1, 3, 17, 1 << 20])
@pytest.mark.parametrize("step", [1, 5, 4096])
def test_streaming_at_every_read_size(monkeypatch: pytest.MonkeyPatch, chunk: int, step: int) -> None:
    """Records and blocks straddling every read and buffer boundary come out whole."""
    monkeypatch.setattr("netrum.capture.pcapfile.STREAM_CHUNK", chunk)
    ng, ng_expect = pcapng_bytes()
    for raw, expect in [(pcap_bytes(), EXPECTED), (ng, ng_expect), (gzip.compress(ng), ng_expect)]:
        stdin = type("Stdin", (), {"buffer": Trickle(raw, step)})()
        monkeypatch.setattr(sys, "stdin", stdin)
        c = Counters()
        frames, r = read_all("-", c)
        assert frames == expect and r.problems == []
