"""Partitioned analysis (netrum.scale.partition and Analyzer(partition=...)): the owner of a frame is the
same on the fast prefilter and the decoded path, and the partitions together give exactly the single
run's transactions (same records, same order after the merge on emission keys) and counters."""
from __future__ import annotations

import heapq
from operator import itemgetter
from pathlib import Path

import pytest

from netrum.capture.pcapfile import open_capture
from netrum.counters import Counters
from netrum.decode.frames import Decoder
from netrum.limits import DEFAULT_LIMITS, SECOND_NS, Limits
from netrum.pipeline import Analyzer, EmissionKey, flow_owner, peek_owner
from netrum.records import Transaction
from netrum.scale.partition import PartitionTask, read_part, run_partition

from .conftest import CORPUS
from .synth import mixed_capture, tcp_frame

SHORT_IDLE = Limits(flow_idle_timeout_ns=2 * SECOND_NS)


def corpus_pcaps() -> list[Path]:
    return sorted(CORPUS.glob("*.pcap*")) if CORPUS.is_dir() else []


def single(path: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[list[Transaction], Counters]:
    out: list[Transaction] = []
    counters = Counters()
    a = Analyzer(out.append, limits, counters=counters)
    with open_capture(str(path), counters) as r:
        a.feed(r)
    a.finish()
    return out, counters


def partitioned(path: Path, n: int, limits: Limits = DEFAULT_LIMITS
                ) -> tuple[list[Transaction], Counters, list[int]]:
    """Every partition in this process; transactions merged on their emission keys."""
    parts: list[list[tuple[EmissionKey, Transaction]]] = []
    total = Counters()
    owned = []
    for k in range(n):
        keyed: list[tuple[EmissionKey, Transaction]] = []
        counters = Counters()
        holder: list[Analyzer] = []

        def sink(tx: Transaction, keyed: list[tuple[EmissionKey, Transaction]] = keyed,
                 holder: list[Analyzer] = holder) -> None:
            keyed.append((holder[0].emission_key, tx))

        a = Analyzer(sink, limits, counters=counters, partition=(k, n))
        holder.append(a)
        with open_capture(str(path), counters) as r:
            a.feed(r)
        a.finish()
        keys = [key for key, _ in keyed]
        assert keys == sorted(keys) and len(set(keys)) == len(keys), "a partition's keys are its order"
        if k:
            for name in [c for c in counters if c.startswith("capture_")]:
                del counters[name]
        total.merge(counters)
        owned.append(counters["tcp_packets"])
        parts.append(keyed)
    merged = [tx for _, tx in heapq.merge(*parts, key=itemgetter(0))]
    return merged, total, owned


def test_peek_owner_agrees_with_the_decoded_segment(mixed_pcap: Path) -> None:
    paths = [mixed_pcap, *corpus_pcaps()]
    placed = 0
    for path in paths:
        counters = Counters()
        dec = Decoder(counters)
        with open_capture(str(path), counters) as r:
            for ts, linktype, data, _ in r:
                for n in (2, 3, 5):
                    o = peek_owner(linktype, data, n)
                    if o >= 0:
                        seg = dec.decode(ts, linktype, data)
                        assert seg is not None, f"{path.name}: the prefilter placed a frame the decoder drops"
                        assert o == flow_owner(seg[0], seg[1], seg[2], seg[3], n)
                        placed += 1
    assert placed > 1000


def test_flow_owner_is_symmetric_and_spreads_even_ports() -> None:
    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    for port in range(40000, 40100):
        assert flow_owner(a, b, port, 80, 3) == flow_owner(b, a, 80, port, 3)
    even = [flow_owner(a, b, p, 80, 2) for p in range(40000, 42000, 2)]  # Linux connect() ports are even
    assert 0.4 < sum(even) / len(even) < 0.6
    frame = tcp_frame("10.0.0.1", "10.0.0.2", 40000, 80, 1, 1, 0x18, b"x")
    assert peek_owner(1, frame, 7) == flow_owner(a, b, 40000, 80, 7)
    frame6 = tcp_frame("fd00::1", "fd00::2", 40000, 80, 1, 1, 0x18, b"x")
    assert peek_owner(1, frame6, 7) == flow_owner(bytes.fromhex("fd00" + "00" * 13 + "01"),
                                                  bytes.fromhex("fd00" + "00" * 13 + "02"), 40000, 80, 7)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_partitions_merge_to_the_single_run_on_a_mixed_capture(mixed_pcap: Path, n: int) -> None:
    want, want_counters = single(mixed_pcap, SHORT_IDLE)
    got, got_counters, owned = partitioned(mixed_pcap, n, SHORT_IDLE)
    assert got == want
    assert got_counters.nonzero() == want_counters.nonzero()
    # the capture exercises what it claims to
    c = want_counters
    for name in ("flow_expired_idle", "flow_closed_rst", "flow_closed_fin", "flow_open_at_end", "tcp_gap",
                 "flow_reused", "decode_ip_fragment", "decode_ip_reassembled", "decode_non_tcp", "decode_non_ip",
                 "http_no_response"):
        assert c[name] > 0, name
    assert all(owned), f"a partition got no segment at all: {owned}"


def test_idle_expiry_in_a_worker_happens_at_the_single_runs_packet_time(tmp_path: Path) -> None:
    """A flow whose owner sees no packet for a long time is still expired when the other flows' packets
    move the clock: its transaction is written at the same place as in the single run."""
    packets = mixed_capture(seed=3, connections=12)
    from .synth import write_pcap_exact

    path = write_pcap_exact(tmp_path / "idle.pcap", packets)
    want, _ = single(path, SHORT_IDLE)
    for n in (2, 3):
        got, _, _ = partitioned(path, n, SHORT_IDLE)
        assert got == want


@pytest.mark.parametrize("path", corpus_pcaps(), ids=lambda p: p.name)
def test_partitions_merge_to_the_single_run_on_the_corpus(path: Path) -> None:
    want, want_counters = single(path)
    for n in (2, 3):
        got, got_counters, _ = partitioned(path, n)
        assert got == want
        assert got_counters.nonzero() == want_counters.nonzero()


def test_run_partition_parts_inline_and_on_disk_hold_the_same_rows(mixed_pcap: Path, tmp_path: Path) -> None:
    on_disk = run_partition(PartitionTask((str(mixed_pcap),), 1, 2, SHORT_IDLE, part_dir=str(tmp_path)))
    inline = run_partition(PartitionTask((str(mixed_pcap),), 1, 2, SHORT_IDLE))
    assert on_disk.part_path and on_disk.part_bytes is None
    assert inline.part_bytes and inline.part_path is None
    rows = list(read_part(on_disk.part_path))
    assert rows == list(read_part(data=inline.part_bytes))
    assert len(rows) == on_disk.transactions > 0
    assert not any(name.startswith("capture_") for name in on_disk.counters), "capture counters: partition 0"
    zero = run_partition(PartitionTask((str(mixed_pcap),), 0, 2, SHORT_IDLE, part_dir=str(tmp_path)))
    assert zero.counters["capture_packets"] == zero.frames == on_disk.frames
