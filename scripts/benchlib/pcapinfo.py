"""A quick pass over a classic pcap file: packet/byte counts and HTTP facts for the bench report.

Reads the file through mmap with ``struct.unpack_from`` (no per-packet objects).  It counts what a
benchmark table needs (packets, bytes, duration) and a few facts that describe the traffic: TCP
connections opened (SYN without ACK), segments whose payload starts an HTTP request line or a status
line, the largest TCP payload (the MSS actually seen).  pcapng files fall back to ``capinfos``.
"""

from __future__ import annotations

import json
import mmap
import re
import shutil
import struct
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

# libpcap file format: https://www.tcpdump.org/manpages/pcap-savefile.5.html
_MAGIC_US = 0xA1B2C3D4
_MAGIC_NS = 0xA1B23C4D
_PCAPNG_SHB = 0x0A0D0D0A
_PCAP_MAGICS = {struct.pack(o + "I", m) for o in "<>" for m in (_MAGIC_US, _MAGIC_NS)}  # as the file starts
_PCAPNG_SHB_BYTES = struct.pack("<I", _PCAPNG_SHB)  # a palindrome: the same in both byte orders
_PCAPNG_BOM_LE = struct.pack("<I", 0x1A2B3C4D)  # a little-endian section's byte-order magic
_PCAPNG_PACKET_BLOCKS = {2, 3, 6}  # obsolete packet, simple packet, enhanced packet

# link type -> bytes of link header before the network layer, and where the ethertype sits
# (https://www.tcpdump.org/linktypes.html)
_LINK_ETHERNET = 1
_LINK_RAW = 101
_LINK_SLL = 113
_LINK_SLL2 = 276
_LINK_HEADER: dict[int, tuple[int, int]] = {  # linktype -> (header length, ethertype offset or -1)
    _LINK_ETHERNET: (14, 12),
    _LINK_SLL: (16, 14),
    _LINK_SLL2: (20, 0),
    _LINK_RAW: (0, -1),
}
_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = 0x8100
_IPPROTO_TCP = 6
_REQUEST_STARTS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"PATCH ", b"OPTIONS ")


@dataclass(frozen=True, slots=True)
class CaptureFacts:
    path: str
    file_bytes: int
    linktype: int
    packets: int
    captured_bytes: int
    wire_bytes: int
    first_ts_ns: int
    last_ts_ns: int
    tcp_packets: int
    tcp_payload_bytes: int
    tcp_syn: int
    http_request_starts: int
    http_response_starts: int
    max_tcp_payload_bytes: int
    source: str  # "quickpass" or "capinfos"

    @property
    def duration_s(self) -> float:
        return max(0, self.last_ts_ns - self.first_ts_ns) / 1e9

    @property
    def packets_per_request(self) -> float:
        return self.packets / self.http_request_starts if self.http_request_starts else float("nan")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["duration_s"] = round(self.duration_s, 3)
        d["packets_per_request"] = round(self.packets_per_request, 2) if self.http_request_starts else None
        return d


def _quickpass(path: Path) -> CaptureFacts:
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        size = len(buf)
        if size < 24:
            raise ValueError(f"{path}: too short for a pcap header")
        (magic,) = struct.unpack_from("<I", buf, 0)
        if magic in (_MAGIC_US, _MAGIC_NS):
            endian = "<"
        else:
            (magic,) = struct.unpack_from(">I", buf, 0)
            if magic not in (_MAGIC_US, _MAGIC_NS):
                raise ValueError(f"{path}: not a classic pcap file (magic {magic:#x})")
            endian = ">"
        frac_ns = 1 if magic == _MAGIC_NS else 1000
        (linktype,) = struct.unpack_from(endian + "I", buf, 20)
        linktype &= 0x0FFFFFFF
        link_len, ethertype_off = _LINK_HEADER.get(linktype, (-1, -1))
        rec = struct.Struct(endian + "IIII")
        rec_unpack = rec.unpack_from
        u16 = struct.Struct(">H").unpack_from
        off = 24
        packets = captured = wire = 0
        first_ts = last_ts = 0
        tcp_packets = tcp_payload = syns = req = resp = max_payload = 0
        starts = _REQUEST_STARTS
        while off + 16 <= size:
            sec, frac, incl, orig = rec_unpack(buf, off)
            data_off = off + 16
            off = data_off + incl
            if off > size:
                break  # truncated last record
            ts = sec * 1_000_000_000 + frac * frac_ns
            if packets == 0:
                first_ts = ts
            last_ts = ts
            packets += 1
            captured += incl
            wire += orig
            if link_len < 0:
                continue
            p = data_off + link_len
            if ethertype_off >= 0:
                (etype,) = u16(buf, data_off + ethertype_off)
                if etype == _ETH_VLAN:
                    (etype,) = u16(buf, p + 2)
                    p += 4
            else:
                etype = _ETH_IPV4 if buf[p] >> 4 == 4 else _ETH_IPV6
            if etype == _ETH_IPV4:
                ihl = (buf[p] & 0x0F) * 4
                if buf[p + 9] != _IPPROTO_TCP:
                    continue
                (ip_total,) = u16(buf, p + 2)
                ip_end = p + ip_total
                t = p + ihl
            elif etype == _ETH_IPV6:
                if buf[p + 6] != _IPPROTO_TCP:
                    continue  # extension headers: not counted here
                (plen,) = u16(buf, p + 4)
                ip_end = p + 40 + plen
                t = p + 40
            else:
                continue
            tcp_packets += 1
            doff = (buf[t + 12] >> 4) * 4
            flags = buf[t + 13]
            if flags & 0x12 == 0x02:
                syns += 1
            pl = min(ip_end, off) - (t + doff)
            if pl > 0:
                tcp_payload += pl
                max_payload = max(max_payload, pl)
                head = buf[t + doff : t + doff + 8]
                if head.startswith(b"HTTP/1."):
                    resp += 1
                elif head.startswith(starts):
                    req += 1
        return CaptureFacts(
            path=str(path),
            file_bytes=size,
            linktype=linktype,
            packets=packets,
            captured_bytes=captured,
            wire_bytes=wire,
            first_ts_ns=first_ts,
            last_ts_ns=last_ts,
            tcp_packets=tcp_packets,
            tcp_payload_bytes=tcp_payload,
            tcp_syn=syns,
            http_request_starts=req,
            http_response_starts=resp,
            max_tcp_payload_bytes=max_payload,
            source="quickpass",
        )


def _capinfos(path: Path) -> CaptureFacts:
    exe = shutil.which("capinfos")
    if exe is None:
        raise ValueError(f"{path}: not a classic pcap and capinfos is not installed")
    out = subprocess.run(
        [exe, "-M", "-T", "-r", "-c", "-d", "-a", "-e", "-E", "-S", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fields = out.strip().split("\t")
    # -T -r: no header row; order: name, encapsulation, packets, data size, first, last
    packets = int(fields[2])
    data_bytes = int(fields[3])
    first = float(fields[4]) if re.match(r"^[0-9.]+$", fields[4]) else 0.0
    last = float(fields[5]) if re.match(r"^[0-9.]+$", fields[5]) else 0.0
    return CaptureFacts(
        path=str(path),
        file_bytes=path.stat().st_size,
        linktype=-1,
        packets=packets,
        captured_bytes=data_bytes,
        wire_bytes=data_bytes,
        first_ts_ns=int(first * 1e9),
        last_ts_ns=int(last * 1e9),
        tcp_packets=0,
        tcp_payload_bytes=0,
        tcp_syn=0,
        http_request_starts=0,
        http_response_starts=0,
        max_tcp_payload_bytes=0,
        source="capinfos",
    )


def capture_facts(path: Path) -> CaptureFacts:
    """Facts about ``path``; cached beside it as ``PATH.facts.json`` (keyed on size and mtime)."""
    st = path.stat()
    cache = path.with_name(path.name + ".facts.json")
    if cache.exists():
        try:
            cached = json.loads(cache.read_text())
            if cached.get("_size") == st.st_size and cached.get("_mtime_ns") == st.st_mtime_ns:
                fields = {k: v for k, v in cached["facts"].items() if k in CaptureFacts.__dataclass_fields__}
                return CaptureFacts(**fields)
        except (ValueError, KeyError, TypeError):
            pass
    with path.open("rb") as fh:
        head = fh.read(4)
    if (len(head) == 4 and struct.unpack("<I", head)[0] == _PCAPNG_SHB) or head[:2] == b"\x1f\x8b":
        facts = _capinfos(path)  # pcapng, and gzip (capinfos reads through it)
    else:
        facts = _quickpass(path)
    try:
        cache.write_text(
            json.dumps({"_size": st.st_size, "_mtime_ns": st.st_mtime_ns, "facts": facts.to_dict()}, indent=1)
        )
    except OSError:
        pass
    return facts


def empty_twin(capture: Path, out: Path) -> Path | None:
    """``capture`` without its packets, written to ``out``: the file header of a classic pcap, the blocks
    before the first packet block of a pcapng; None for anything else (gzip)."""
    with capture.open("rb") as fh:
        head = fh.read(24)
        if len(head) == 24 and head[:4] in _PCAP_MAGICS:
            out.write_bytes(head)
            return out
        if head[:4] != _PCAPNG_SHB_BYTES:
            return None
        fh.seek(0)
        kept = bytearray()
        order = "<"
        while True:
            hdr = fh.read(8)
            if len(hdr) < 8:
                break
            if hdr[:4] == _PCAPNG_SHB_BYTES:  # a section's byte order is its header's byte-order magic
                bom = fh.read(4)
                order = "<" if bom == _PCAPNG_BOM_LE else ">"
                (length,) = struct.unpack(order + "I", hdr[4:])
                if length < 28:  # shorter than any section header: damaged, keep what came before
                    break
                kept += hdr + bom + fh.read(length - 12)
                continue
            kind, length = struct.unpack(order + "II", hdr)
            if kind in _PCAPNG_PACKET_BLOCKS or length < 12:
                break
            kept += hdr + fh.read(length - 8)
    out.write_bytes(bytes(kept))
    return out
