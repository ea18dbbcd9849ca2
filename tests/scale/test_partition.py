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
from netrum.pipeline import Analyzer, EmissionKey, FlowAssigner, endpoint, peek_endpoints
from netrum.records import Transaction
from netrum.scale.partition import PartitionTask, read_part, run_partition

from .conftest import CORPUS
from .synth import mixed_capture

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


def test_peek_endpoints_agree_with_the_decoded_segment(mixed_pcap: Path) -> None:
    paths = [mixed_pcap, *corpus_pcaps()]
    placed = 0
    for path in paths:
        counters = Counters()
        dec = Decoder(counters)
        with open_capture(str(path), counters) as r:
            for ts, linktype, data, _ in r:
                ends = peek_endpoints(linktype, data)
                if ends is not None:
                    seg = dec.decode(ts, linktype, data)
                    assert seg is not None, f"{path.name}: the prefilter placed a frame the decoder drops"
                    assert ends == (endpoint(seg[0], seg[2]), endpoint(seg[1], seg[3]))
                    placed += 1
    assert placed > 1000


def test_assigner_is_symmetric_sticky_and_least_loaded() -> None:
    a = endpoint(bytes([10, 0, 0, 1]), 40000)
    b = endpoint(bytes([10, 0, 0, 2]), 80)
    fa = FlowAssigner(2, forget_ns=10)
    assert fa.owner(a, b, 0) == fa.owner(b, a, 1) == 0
    # eight long connections opened one after another split 4/4 (a hash may split them 6/2)
    fa = FlowAssigner(2, forget_ns=10**12)
    owners = []
    for c in range(8):
        ca = endpoint(bytes([10, 0, 0, 1]), 40000 + 2 * c)
        owners.append(fa.owner(ca, b, c))
        for t in range(100):
            fa.owner(b, ca, c + t)
    assert sorted(owners) == [0, 0, 0, 0, 1, 1, 1, 1] and fa.load == [404, 404]
    # an entry survives a generation while seen, and is forgotten after two silent periods
    fa = FlowAssigner(3, forget_ns=10)
    c1 = endpoint(bytes([10, 0, 0, 9]), 1)
    assert fa.owner(a, b, 0) == 0
    assert fa.owner(c1, b, 5) == 1
    assert fa.owner(c1, b, 12) == 1 and fa.owner(a, b, 13) == 0  # rotated at 12: both moved back
    for t in (25, 40, 55):
        fa.owner(endpoint(bytes([10, 0, 1, t]), 1), b, t)  # other flows move the generations on
    assert (min(a, b), max(a, b)) not in fa.cur and (min(a, b), max(a, b)) not in fa.old


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


def test_scan_reads_through_the_readers_record_api(mixed_pcap: Path, tmp_path: Path) -> None:
    """scan_pcap claims the reader's records (a second read of the reader raises) and reads and counts what
    feeding the iterated reader does: over a byte range, a file cut mid-record and a corrupt record."""
    from netrum.scale.scan import can_scan, scan_pcap

    data = mixed_pcap.read_bytes()
    offsets = [24]
    while offsets[-1] + 16 <= len(data):
        offsets.append(offsets[-1] + 16 + int.from_bytes(data[offsets[-1] + 8:offsets[-1] + 12], "little"))
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:offsets[600] + 30])
    corrupt = tmp_path / "corrupt.pcap"
    corrupt.write_bytes(data[:offsets[900] + 8] + (10**7).to_bytes(4, "little") + data[offsets[900] + 12:])
    for path, start, stop in [(mixed_pcap, offsets[100], offsets[700] + 1), (cut, 0, None), (corrupt, 0, None)]:
        for k in (0, 1):
            runs = []
            for how in ("feed", "scan"):
                out: list[Transaction] = []
                counters = Counters()
                a = Analyzer(out.append, SHORT_IDLE, counters=counters, partition=(k, 2))
                with open_capture(str(path), counters, start, stop) as r:
                    if how == "feed":
                        a.feed(r)
                    else:
                        assert can_scan([r])
                        scan_pcap(r, a)
                        assert not can_scan([r])
                        with pytest.raises(RuntimeError, match="only once"):
                            list(r)
                    problems = r.problems
                a.finish()
                runs.append((out, dict(counters), problems, a.frames, a.first_ts_ns, a.last_ts_ns))
            assert runs[0] == runs[1], (path.name, k)
            assert runs[0][0] and (path is mixed_pcap) == (not runs[0][2])
