"""Capture files -> raw frames ``(ts_ns, linktype, data, wire_len)``.

Formats (told apart by their magic number, never by the file name):
- pcap (https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/): both byte orders, microsecond
  (0xa1b2c3d4) and nanosecond (0xa1b23c4d) timestamps. A plain file is read through mmap with
  ``struct.unpack_from`` and may be read by byte range (``start``/``stop``) for scale-out workers. A caller
  with a record loop of its own (netrum.scale.scan) takes the mapped records with ``claim_records`` and
  reports back through ``report_truncated``/``report_corrupt``/``count_read``, so that the damage rules
  and the capture counters stay the reader's.
- pcapng (draft-ietf-opsawg-pcapng): sections in either byte order, several interfaces with their own
  link types and ``if_tsresol``/``if_tsoffset``, Enhanced / Simple / obsolete Packet Blocks; other blocks
  are skipped and counted ``capture_unsupported_block``.
- either of them gzip-compressed, read streaming; ``"-"`` reads standard input (streaming, no seek).

A capture that cannot be read at all raises ``CaptureError`` (one line, for the user). Damage found while
reading never raises: iteration stops cleanly, the damage is counted and described in ``problems``.
"""
from __future__ import annotations

import heapq
import mmap
import os
import stat
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from netrum.counters import Counters
from netrum.errors import CaptureError
from netrum.records import Frame

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
GZIP_MAGIC = b"\x1f\x8b"

PCAP_HEADER_BYTES = 24
PCAP_RECORD_BYTES = 16
MAX_CAPLEN = 256 * 1024  # larger records are impossible (libpcap's own MAXIMUM_SNAPLEN is 262144)
MAX_BLOCK_BYTES = 16 * 1024 * 1024  # pcapng blocks beyond this are taken as corruption
STREAM_CHUNK = 1 << 20

# pcapng block types (draft-ietf-opsawg-pcapng section 11.1)
BLOCK_IDB = 0x00000001
BLOCK_PB = 0x00000002  # obsolete Packet Block
BLOCK_SPB = 0x00000003
BLOCK_EPB = 0x00000006
OPT_ENDOFOPT = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

_PCAP_MAGICS: dict[bytes, tuple[str, int]] = {  # first 4 bytes -> (struct byte order, ns per fraction unit)
    struct.pack("<I", PCAP_MAGIC_US): ("<", 1000),
    struct.pack(">I", PCAP_MAGIC_US): (">", 1000),
    struct.pack("<I", PCAP_MAGIC_NS): ("<", 1),
    struct.pack(">I", PCAP_MAGIC_NS): (">", 1),
}
_PCAPNG_MAGIC = struct.pack("<I", PCAPNG_SHB)  # a palindrome: the same in both byte orders


def _max_caplen(snaplen: int) -> int:
    """Largest plausible captured length for a file announcing ``snaplen`` (writers do lie a little)."""
    if snaplen <= 0:
        return MAX_CAPLEN
    return min(MAX_CAPLEN, max(2 * snaplen, 65535))


# What report_corrupt says of each impossible record or block (also the compiled lane's words: netrum.lane).
DAMAGE = {
    "caplen": "captured length {}",
    "byte_order": "section header with a bad byte-order magic",
    "block_length": "block length {}",
    "block_lengths": "block lengths disagree",
    "packet_block_short": "packet block too short",
    "undeclared_interface": "packet for undeclared interface {}",
    "spb_without_interface": "simple packet block without interface",
    "idb_short": "interface description too short",
}

RELEASE_BYTES = 32 * 1024 * 1024  # consumed capture bytes returned to the kernel at a time (mmap reads)


@dataclass(frozen=True, slots=True)
class MappedPcap:
    """The records of a plain pcap file to walk in place: what ``CaptureReader.claim_records`` hands to a
    caller with a record loop of its own, which then applies the reader's rules (``_iter_pcap_mmap`` is the
    reference): a record header is 16 bytes, ``struct`` format ``byte_order + "IIII"`` (seconds, fraction,
    captured length, wire length), the timestamp ``seconds * 10**9 + fraction * ts_unit_ns``; a header or a
    body running past ``file_bytes`` is a truncated file, a captured length above ``max_caplen_bytes`` a
    corrupt record; either ends the reading. The buffer is valid until the reader is closed."""

    buffer: mmap.mmap  # the whole file
    start_offset: int  # the first record header to read (past the file header)
    stop_offset: int  # records whose header starts before this are read (never past ``file_bytes``)
    file_bytes: int  # len(buffer)
    byte_order: str  # struct byte order of the record headers, "<" or ">"
    ts_unit_ns: int  # nanoseconds per unit of the timestamp fraction (1000: microseconds, 1: nanoseconds)
    max_caplen_bytes: int  # larger captured lengths are corruption (see _max_caplen)
    linktype: int


def _pcap_header_params(hdr: bytes) -> tuple[str, int, int, int]:
    """(struct byte order, nanoseconds per fraction unit, largest plausible captured length, link type) from
    the 24-byte file header of a classic pcap file."""
    order, ns_unit = _PCAP_MAGICS[hdr[:4]]
    snaplen, network = struct.unpack_from(order + "II", hdr, 16)
    return order, ns_unit, _max_caplen(snaplen), network & 0xFFFF


def _record_range(start: int, stop: int | None, file_bytes: int) -> tuple[int, int]:
    """The offsets [first, stop) of the record headers a byte range ``start``/``stop`` selects in a file of
    ``file_bytes``: never the file header, never past the end (a range may be cut from a larger file)."""
    return max(start, PCAP_HEADER_BYTES), file_bytes if stop is None else min(stop, file_bytes)


class CaptureReader:
    """Iterates the frames of one capture. Use as a context manager or call ``close()``."""

    def __init__(self, path: str, counters: Counters, start: int = 0, stop: int | None = None) -> None:
        self.path = path
        self.counters = counters
        self.size_bytes: int | None = None
        self.problems: list[str] = []
        self.format = ""  # "pcap", "pcapng", with "+gzip" when compressed
        self._kind = ""  # "pcap" or "pcapng"
        self.linktype: int | None = None  # pcap: the file's link type (pcapng: per interface)
        self._bytes_read = 0
        self._file: BinaryIO | None = None
        self._raw: BinaryIO | None = None  # the compressed file under gzip, for progress
        self._raw_pos: int | None = None  # its position when closed
        self._mm: mmap.mmap | None = None
        self._stream: BinaryIO | None = None
        self._head = b""  # bytes already read from the stream while sniffing the format
        self._start = start
        self._stop = stop
        self._iterated = False
        self.count_order = True  # read_merged turns this off and counts on the merged stream
        self._open()
        counters["capture_files"] += 1

    # ------------------------------------------------------------------ opening
    def _open(self) -> None:
        path = self.path
        name = "standard input" if path == "-" else path
        if path == "-":
            f: BinaryIO = sys.stdin.buffer
            self._file = None  # never close the process's stdin
        else:
            if not os.path.exists(path):
                raise CaptureError(f"{path}: no such file")
            if os.path.isdir(path):
                raise CaptureError(f"{path}: is a directory, not a capture file")
            try:
                f = open(path, "rb")  # noqa: SIM115 - closed by close()
            except OSError as e:
                raise CaptureError(f"{path}: cannot read ({e.strerror or e})") from None
            self._file = f
            try:
                st = os.fstat(f.fileno())
                self.size_bytes = st.st_size if stat.S_ISREG(st.st_mode) else None  # not for a FIFO
            except OSError:
                self.size_bytes = None
        try:
            head = _read_exact(f, 4)
        except OSError as e:
            self.close()
            raise CaptureError(f"{name}: cannot read ({e.strerror or e})") from None
        if not head:
            self.close()
            raise CaptureError(f"{name}: empty file")
        if head[:2] == GZIP_MAGIC:
            self._raw = f
            gz = _GunzipStream(head, f)
            inner = _read_exact(gz, 4)
            if len(inner) < 4 and gz.damaged:
                self.close()
                raise CaptureError(f"{name}: damaged gzip data, not a capture")
            if inner[:4] not in _PCAP_MAGICS and inner[:4] != _PCAPNG_MAGIC:
                self.close()
                raise CaptureError(f"{name}: gzip file that is not a pcap or pcapng capture")
            self._stream = gz  # type: ignore[assignment]
            self._head = inner
            self.format = "+gzip"
            head = inner
        else:
            self._stream = f
            self._head = head
        if len(head) < 4 or (head not in _PCAP_MAGICS and head != _PCAPNG_MAGIC):
            self.close()
            if len(head) < 4:
                raise CaptureError(f"{name}: file too short to be a capture ({len(head)} bytes)")
            raise CaptureError(f"{name}: not a pcap or pcapng capture")
        self._kind = "pcap" if head in _PCAP_MAGICS else "pcapng"
        self.format = self._kind + self.format
        # Read the file header now so that a file shorter than its header fails at open time.
        assert self._stream is not None
        try:
            if self._kind == "pcap":
                hdr = head + _read_exact(self._stream, PCAP_HEADER_BYTES - 4)
                if len(hdr) < PCAP_HEADER_BYTES:
                    raise CaptureError(f"{name}: file too short to be a capture ({len(hdr)} bytes)")
                self._head = hdr
                order, _ = _PCAP_MAGICS[head]
                self.linktype = struct.unpack_from(order + "I", hdr, 20)[0] & 0xFFFF
            else:
                hdr = head + _read_exact(self._stream, 8)
                if len(hdr) < 12:
                    raise CaptureError(f"{name}: file too short to be a capture ({len(hdr)} bytes)")
                self._head = hdr
        except CaptureError:
            self.close()
            raise
        except OSError as e:
            self.close()
            raise CaptureError(f"{name}: cannot read ({e.strerror or e})") from None
        if (self._start or self._stop is not None) and self.format != "pcap":
            self.close()
            raise CaptureError(f"{name}: byte ranges can only be read from plain pcap files")
        if self.format in ("pcap", "pcapng") and self._file is not None and self.size_bytes:
            # pcapng files are mapped for the compiled lane only (mmap_buffer); they are iterated as a stream.
            try:
                self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                self._mm = None  # e.g. a pipe or special file: fall back to streaming
        if self._mm is None and (self._start or self._stop is not None):
            self.close()
            raise CaptureError(f"{name}: byte ranges need a regular file")

    # ------------------------------------------------------------------ public
    @property
    def bytes_read(self) -> int:
        """Offset consumed so far (compressed bytes for gzip), for a progress bar."""
        if self._raw is not None:
            try:
                return self._raw.tell()
            except (OSError, ValueError):  # a pipe, or closed: the last position known
                return self._raw_pos if self._raw_pos is not None else self._bytes_read
        return self._bytes_read

    def __iter__(self) -> Iterator[Frame]:
        self._start_reading()
        if self._mm is not None and self._kind == "pcap":
            return self._iter_pcap_mmap(self._mapped())
        if self._kind == "pcap":
            return self._iter_pcap_stream()
        return self._iter_pcapng()

    def can_claim_records(self) -> bool:
        """True when ``claim_records`` can hand out this file's records: a plain (uncompressed) pcap file
        mapped in memory, not read yet. Otherwise (pcapng, gzip, a pipe, already read) iterate the reader."""
        return self._mm is not None and self._kind == "pcap" and not self._iterated

    def claim_records(self) -> MappedPcap:
        """The mapped records of a plain pcap file (its byte range when opened with one), for a caller that
        walks them itself instead of iterating frames (netrum.scale.scan: a tuple and a copied slice per
        frame cost too much there). This counts as the reader's one iteration. The caller applies the rules
        described in ``MappedPcap``, reports damage with ``report_truncated``/``report_corrupt`` and ends
        with ``count_read`` (also when it stops early), exactly as the reader's own loop does."""
        if self._mm is None or self._kind != "pcap":
            raise RuntimeError(f"{self.path}: only an open, plain pcap file mapped in memory has records to "
                               f"claim (this is {self.format})")
        self._start_reading()  # a second claim or iteration raises
        return self._mapped()

    def close(self) -> None:
        if self._raw is not None and self._raw_pos is None:
            try:
                self._raw_pos = self._raw.tell()
            except (OSError, ValueError):
                self._raw_pos = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass  # slices are copies; this only happens with exported buffers
            self._mm = None
        if self._stream is not None and self._stream is not self._file and self._stream is not sys.stdin.buffer:
            self._stream.close()
        self._stream = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> CaptureReader:  # noqa: PYI034 - not meant to be subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ damage reports and counts
    # Public for callers that walk the records themselves (``claim_records``): the damage they find and
    # what they read reach health.csv in the same words and counters as through the reader.
    def report_truncated(self, packets: int, offset: int) -> None:
        """The file ends inside the record at byte ``offset``, after ``packets`` whole records."""
        self.counters["capture_truncated_file"] += 1
        self.problems.append(f"{self.path}: cut in the middle of a record after {packets} packets (byte {offset})")

    def report_corrupt(self, packets: int, offset: int, what: str) -> None:
        """The record at byte ``offset`` is impossible (``what``, e.g. "captured length 10000000"): the rest
        of the file is skipped."""
        self.counters["capture_corrupt_record"] += 1
        self.problems.append(
            f"{self.path}: impossible record ({what}) after {packets} packets (byte {offset}); rest of file skipped"
        )

    def count_read(self, packets: int, wire_bytes: int, cut: int, cut_bytes: int, out_of_order: int,
                   read_to_offset: int | None = None) -> None:
        """Add one read's tallies to the capture counters, once at its end (the per-record loop keeps them
        in locals): records read, their wire bytes, records cut by the snap length and the bytes missing from
        them, timestamps earlier than the record before (the caller counts them only when ``count_order``).
        ``read_to_offset``: where the reading stopped, for ``bytes_read``."""
        if read_to_offset is not None:
            self._bytes_read = read_to_offset
        c = self.counters
        c["capture_packets"] += packets
        c["capture_bytes"] += wire_bytes
        if cut:
            c["capture_snaplen_cut"] += cut
            c["capture_snaplen_bytes"] += cut_bytes
        if out_of_order:
            c["capture_out_of_order_ts"] += out_of_order

    def _start_reading(self) -> None:
        if self._iterated:
            raise RuntimeError(f"{self.path}: a capture can be iterated only once")
        self._iterated = True

    # ------------------------------------------------------------------ pcap
    def mmap_buffer(self) -> mmap.mmap | None:
        """The whole file, mapped, for a reader of records of its own (netrum.lane): uncompressed pcap and
        pcapng files read whole and not iterated yet; None otherwise (gzip, a pipe, a byte range)."""
        if self._mm is None or self._iterated or self._start or self._stop is not None:
            return None
        return self._mm

    @property
    def is_pcapng(self) -> bool:
        """The file is pcapng (compressed or not), not classic pcap."""
        return self._kind == "pcapng"

    def pcap_params(self) -> tuple[str, int, int, int, int]:
        """(struct byte order "<" or ">", nanoseconds per timestamp fraction unit, largest plausible captured
        length, link type, offset of the first record) of a classic pcap file."""
        return (*_pcap_header_params(self._head), PCAP_HEADER_BYTES)

    def _mapped(self) -> MappedPcap:
        mm = self._mm
        assert mm is not None and self._kind == "pcap"
        size = len(mm)
        first, stop = _record_range(self._start, self._stop, size)
        order, ns_unit, max_caplen, linktype = _pcap_header_params(self._head)
        return MappedPcap(mm, first, stop, size, order, ns_unit, max_caplen, linktype)

    def _iter_pcap_mmap(self, span: MappedPcap) -> Iterator[Frame]:
        mm = span.buffer
        unpack = struct.Struct(span.byte_order + "IIII").unpack_from
        ns_unit, max_caplen, linktype = span.ts_unit_ns, span.max_caplen_bytes, span.linktype
        size = span.file_bytes
        pos = span.start_offset
        stop = span.stop_offset
        count_order = self.count_order
        packets = wire = cut = cut_bytes = ooo = 0
        last_ts = -1
        # Pages already read are handed back to the kernel every RELEASE_BYTES, so the resident set stays
        # flat however large the file (an mmap'ed capture would otherwise count whole in RSS).
        released = pos - pos % mmap.PAGESIZE
        next_release = released + RELEASE_BYTES
        try:
            while pos < stop:
                if pos >= next_release:
                    upto = pos - pos % mmap.PAGESIZE
                    if hasattr(mm, "madvise"):
                        mm.madvise(mmap.MADV_DONTNEED, released, upto - released)
                    released = upto
                    next_release = upto + RELEASE_BYTES
                if pos + 16 > size:
                    self.report_truncated(packets, pos)
                    break
                sec, frac, caplen, wirelen = unpack(mm, pos)
                if caplen > max_caplen:
                    self.report_corrupt(packets, pos, DAMAGE["caplen"].format(caplen))
                    break
                end = pos + 16 + caplen
                if end > size:
                    self.report_truncated(packets, pos)
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
                self._bytes_read = end
                yield (ts, linktype, mm[pos + 16 : end], wirelen)
                pos = end
            else:
                self._bytes_read = pos
        finally:
            self.count_read(packets, wire, cut, cut_bytes, ooo)

    def _iter_pcap_stream(self) -> Iterator[Frame]:
        order, ns_unit, max_caplen, linktype = _pcap_header_params(self._head)
        unpack = struct.Struct(order + "IIII").unpack_from
        stream = self._stream
        assert stream is not None
        read = stream.read
        buf = b""
        p = 0
        base = PCAP_HEADER_BYTES  # file offset of buf[0]
        count_order = self.count_order
        packets = wire = cut = cut_bytes = ooo = 0
        last_ts = -1
        eof = False
        try:
            while True:
                if len(buf) - p < 16 and not eof:
                    buf, base, p, eof = _refill(read, buf, base, p, 16)
                if len(buf) - p < 16:
                    if len(buf) > p or getattr(stream, "damaged", False):
                        self.report_truncated(packets, base + p)
                    break
                sec, frac, caplen, wirelen = unpack(buf, p)
                if caplen > max_caplen:
                    self.report_corrupt(packets, base + p, DAMAGE["caplen"].format(caplen))
                    break
                end = p + 16 + caplen
                if end > len(buf) and not eof:
                    buf, base, p, eof = _refill(read, buf, base, p, 16 + caplen)
                    end = p + 16 + caplen
                if end > len(buf):
                    self.report_truncated(packets, base + p)
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
                self._bytes_read = base + end
                yield (ts, linktype, buf[p + 16 : end], wirelen)
                p = end
        except (OSError, EOFError, zlib.error):
            self.report_truncated(packets, base + p)  # a damaged gzip stream ends the capture here
        finally:
            self.count_read(packets, wire, cut, cut_bytes, ooo)

    # ------------------------------------------------------------------ pcapng
    def _iter_pcapng(self) -> Iterator[Frame]:
        stream = self._stream
        assert stream is not None
        read = stream.read
        buf = self._head  # the first 12 bytes of the first SHB
        p = 0
        base = 0
        eof = False
        count_order = self.count_order
        packets = wire = cut = cut_bytes = ooo = 0
        last_ts = -1
        order = "<"
        # per interface: (linktype, ns numerator, ns denominator, offset ns, max caplen)
        ifaces: list[tuple[int, int, int, int, int]] = []
        try:
            while True:
                if len(buf) - p < 12 and not eof:
                    buf, base, p, eof = _refill(read, buf, base, p, 12)
                if len(buf) - p < 12:
                    if len(buf) > p or getattr(stream, "damaged", False):
                        self.report_truncated(packets, base + p)
                    break
                btype_raw = buf[p : p + 4]
                if btype_raw == _PCAPNG_MAGIC:  # Section Header Block: its byte order applies from here
                    bom = buf[p + 8 : p + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        order = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        order = ">"
                    else:
                        self.report_corrupt(packets, base + p, DAMAGE["byte_order"])
                        break
                    ifaces = []
                btype, blen = struct.unpack_from(order + "II", buf, p)
                if blen < 12 or blen % 4 or blen > MAX_BLOCK_BYTES:
                    self.report_corrupt(packets, base + p, DAMAGE["block_length"].format(blen))
                    break
                if len(buf) - p < blen and not eof:
                    buf, base, p, eof = _refill(read, buf, base, p, blen)
                if len(buf) - p < blen:
                    self.report_truncated(packets, base + p)
                    break
                if struct.unpack_from(order + "I", buf, p + blen - 4)[0] != blen:
                    self.report_corrupt(packets, base + p, DAMAGE["block_lengths"])
                    break
                body = p + 8
                body_end = p + blen - 4
                self._bytes_read = base + p + blen
                frame: Frame | None = None
                if btype == BLOCK_EPB or btype == BLOCK_PB:
                    if body_end - body < 20:
                        self.report_corrupt(packets, base + p, DAMAGE["packet_block_short"])
                        break
                    if btype == BLOCK_EPB:
                        if_id, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "IIIII", buf, body)
                    else:
                        if_id, _drops, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(
                            order + "HHIIII", buf, body
                        )
                    if if_id >= len(ifaces):
                        self.report_corrupt(packets, base + p, DAMAGE["undeclared_interface"].format(if_id))
                        break
                    linktype, num, den, offset_ns, max_caplen = ifaces[if_id]
                    if caplen > max_caplen or body + 20 + caplen > body_end:
                        self.report_corrupt(packets, base + p, DAMAGE["caplen"].format(caplen))
                        break
                    ts = ((ts_hi << 32) | ts_lo) * num // den + offset_ns
                    frame = (ts, linktype, buf[body + 20 : body + 20 + caplen], wirelen)
                elif btype == BLOCK_SPB:
                    if not ifaces or body_end - body < 4:
                        self.report_corrupt(packets, base + p, DAMAGE["spb_without_interface"])
                        break
                    wirelen = struct.unpack_from(order + "I", buf, body)[0]
                    linktype, _, _, _, max_caplen = ifaces[0]
                    caplen = min(wirelen, body_end - body - 4)
                    # No timestamp in an SPB: it inherits the previous packet's time.
                    frame = (max(last_ts, 0), linktype, buf[body + 4 : body + 4 + caplen], wirelen)
                elif btype == BLOCK_IDB:
                    if body_end - body < 8:
                        self.report_corrupt(packets, base + p, DAMAGE["idb_short"])
                        break
                    ifaces.append(_parse_idb(buf, body, body_end, order))
                elif btype != PCAPNG_SHB:
                    self.counters["capture_unsupported_block"] += 1
                p += blen
                if frame is None:
                    continue
                ts, _, data, wirelen = frame
                caplen = len(data)
                if wirelen > caplen:
                    cut += 1
                    cut_bytes += wirelen - caplen
                wire += wirelen
                packets += 1
                if ts < last_ts and count_order:
                    ooo += 1
                last_ts = ts
                yield frame
        except (OSError, EOFError, zlib.error):
            self.report_truncated(packets, base + p)
        finally:
            self.count_read(packets, wire, cut, cut_bytes, ooo)


def _parse_idb(buf: bytes, body: int, body_end: int, order: str) -> tuple[int, int, int, int, int]:
    """Interface Description Block (pcapng section 4.2): link type, snaplen, options."""
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", buf, body)
    num, den = 1000, 1  # default resolution: microseconds
    offset_ns = 0
    q = body + 8
    while q + 4 <= body_end:
        code, length = struct.unpack_from(order + "HH", buf, q)
        q += 4
        if code == OPT_ENDOFOPT or q + length > body_end:
            break
        if code == OPT_IF_TSRESOL and length >= 1:
            v = buf[q]
            if v & 0x80:  # 2^-n seconds
                num, den = 1_000_000_000, 1 << (v & 0x7F)
            else:  # 10^-n seconds
                exp = v
                num, den = (10 ** (9 - exp), 1) if exp <= 9 else (1, 10 ** (exp - 9))
        elif code == OPT_IF_TSOFFSET and length >= 8:
            offset_ns = struct.unpack_from(order + "q", buf, q)[0] * 1_000_000_000
        q += (length + 3) & ~3
    return linktype, num, den, offset_ns, _max_caplen(snaplen)


def _refill(read: object, buf: bytes, base: int, p: int, need: int) -> tuple[bytes, int, int, bool]:
    """Drop consumed bytes and read until ``need`` bytes are available from ``p`` (or EOF)."""
    buf = buf[p:]
    base += p
    eof = False
    parts = [buf]
    have = len(buf)
    while have < need:
        chunk = read(max(STREAM_CHUNK, need - have))  # type: ignore[operator]
        if not chunk:
            eof = True
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts), base, 0, eof


def _read_exact(f: BinaryIO | _GunzipStream, n: int) -> bytes:
    parts = []
    while n > 0:
        chunk = f.read(n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


class _GunzipStream:
    """Streaming gunzip (RFC 1952, concatenated members too) that hands out every byte it could
    decompress before damage or a cut: gzip.GzipFile raises and loses the last read instead.
    ``damaged`` tells the reader that the data ended early or was corrupt."""

    CHUNK = 64 * 1024

    def __init__(self, prefix: bytes, raw: BinaryIO) -> None:
        self._raw = raw
        self._pending = prefix  # compressed bytes already read while sniffing the magic
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._parts: list[bytes] = []
        self._have = 0
        self._done = False
        self.damaged = False

    def read(self, n: int) -> bytes:
        while self._have < n and not self._done:
            chunk = self._pending or self._raw.read(self.CHUNK)
            self._pending = b""
            if not chunk:
                self._done = True
                if not self._d.eof:
                    self.damaged = True  # cut before the end-of-member marker
                break
            self._feed(chunk)
        data = b"".join(self._parts)
        out, rest = data[:n], data[n:]
        self._parts = [rest] if rest else []
        self._have = len(rest)
        return out

    def _feed(self, chunk: bytes) -> None:
        while chunk and not self._done:
            if self._d.eof:  # a new member follows the previous one
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out = self._d.decompress(chunk)
            except zlib.error:
                self._done = True
                self.damaged = True
                return
            if out:
                self._parts.append(out)
                self._have += len(out)
            chunk = self._d.unused_data if self._d.eof else b""

    def drain_to(self, write: Callable[[bytes], object], chunk_bytes: int = 1 << 20) -> int:
        """Everything left, decompressed, to ``write`` as it comes (by the same rules as ``read``; ``damaged``
        tells whether it ended early); returns the bytes written. For copying a whole capture (the lane's
        spool, netrum.capture.spool) without ``read``'s joins."""
        total = 0
        while True:
            for part in self._parts:
                write(part)
                total += len(part)
            self._parts = []
            self._have = 0
            if self._done:
                return total
            chunk = self._pending or self._raw.read(chunk_bytes)
            self._pending = b""
            if not chunk:
                self._done = True
                if not self._d.eof:
                    self.damaged = True
                continue
            self._feed(chunk)

    def close(self) -> None:
        self._done = True


def open_capture(path: str, counters: Counters, start: int = 0, stop: int | None = None) -> CaptureReader:
    """Open a pcap, pcapng or gzip-compressed capture (``"-"``: standard input).

    ``start``/``stop`` (plain pcap only) select the records whose header starts in [start, stop);
    ``start`` must be a record boundary (or 0 for the first record)."""
    return CaptureReader(path, counters, start, stop)


def read_merged(readers: list[CaptureReader]) -> Iterator[Frame]:
    """Frames of several captures in timestamp order (like mergecap; ties keep the file order).
    A single reader passes straight through."""
    if len(readers) == 1:
        return iter(readers[0])
    for r in readers:
        r.count_order = False
    if not readers:
        return iter(())
    return _merged(readers)


def _merged(readers: list[CaptureReader]) -> Iterator[Frame]:
    counters = readers[0].counters
    ooo = 0
    last_ts = -1
    try:
        for frame in heapq.merge(*readers, key=lambda f: f[0]):
            if frame[0] < last_ts:
                ooo += 1
            last_ts = frame[0]
            yield frame
    finally:
        if ooo:
            counters["capture_out_of_order_ts"] += ooo
