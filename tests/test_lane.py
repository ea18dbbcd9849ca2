"""netrum.lane's pure helpers and its packed hand-over (the lane itself is held to the Python reference by
tests/integration/test_lane_equivalence.py)."""
from __future__ import annotations

from array import array
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest

from netrum import lane
from netrum.capture.pcapfile import open_capture
from netrum.counters import Counters
from netrum.lane import available, run_lane, scan_share, time_order, unpack_transactions
from netrum.limits import DEFAULT_LIMITS, SECOND_NS, Limits
from netrum.pipeline import Analyzer
from netrum.records import Transaction

PCAP = Path(__file__).resolve().parents[1] / "pcaps" / "nginx-mix.pcap"


def test_files_in_time_order_keep_it() -> None:
    assert time_order([(1, 5), (6, 9), (10, 12)]) == [0, 1, 2]


def test_files_given_out_of_order_are_read_in_time_order() -> None:
    assert time_order([(10, 12), (1, 5), (6, 9)]) == [1, 2, 0]


def test_overlapping_files_have_no_order() -> None:
    assert time_order([(1, 7), (6, 9)]) is None
    assert time_order([(6, 9), (1, 7)]) is None


def test_a_shared_boundary_instant_follows_read_merged_ties() -> None:
    # read_merged takes, on equal timestamps, the file given first: the later file may start at the
    # instant the earlier ends only if it was given after it.
    assert time_order([(1, 5), (5, 9)]) == [0, 1]
    assert time_order([(5, 9), (1, 5)]) is None


def test_empty_files_do_not_matter() -> None:
    assert time_order([None, (1, 5), None, (6, 7)]) is not None
    assert time_order([None]) == [0]


# ------------------------------------------------------------------ the packed hand-over
def _lane_run(path: Path, part: tuple[int, int], packed: bool) -> tuple[list[Transaction], list[bytes]]:
    """The lane's own transactions of one run over ``path``: as objects, or as the packed blobs."""
    got: list[Transaction] = []
    blobs: list[bytes] = []
    with open_capture(str(path), Counters()) as reader:
        a = Analyzer(got.append, DEFAULT_LIMITS, counters=Counters(), partition=part)
        outcome = run_lane([reader], a, DEFAULT_LIMITS, packed_sink=blobs.append if packed else None)
    assert outcome.used, outcome.reason
    return got, blobs


@pytest.mark.skipif(not available(), reason="netrum._lane is not built")
@pytest.mark.parametrize("part", [(0, 1), (1, 2)])
def test_packed_transactions_unpack_to_the_same_fields(part: tuple[int, int]) -> None:
    """What a streamed worker sends (netrum/scale/stream.py) is what the lane would have built: every field
    of every transaction, the emission keys when partitioned, strings with any byte (latin-1)."""
    direct, _ = _lane_run(PCAP, part, packed=False)
    _, blobs = _lane_run(PCAP, part, packed=True)
    keyed = part[1] > 1
    unpacked = [x for b in blobs for x in unpack_transactions(b"P" + b, 1, keyed)]
    if keyed:
        assert all(k[1:4] == (1, 0, "") for k, _ in unpacked)
        assert [k[0] for k, _ in unpacked] == sorted(k[0] for k, _ in unpacked)
        unpacked = [tx for _, tx in unpacked]
    fields = attrgetter(*Transaction.__slots__)  # type: ignore[attr-defined]
    # The direct run's sink also got the Python analyzer's transactions (the connections it was given):
    # the lane's own are those, in the same order, less those.
    rest = iter([fields(t) for t in direct])
    assert unpacked and all(fields(t) in rest for t in unpacked)
    assert len(direct) - len(unpacked) == sum(1 for t in direct if t.conn_id not in {u.conn_id for u in unpacked})


@pytest.mark.skipif(not available(), reason="netrum._lane is not built")
def test_packed_data_cut_short_is_refused() -> None:
    _, blobs = _lane_run(PCAP, (0, 1), packed=True)
    with pytest.raises(ValueError, match="ends inside a transaction"):
        unpack_transactions(blobs[0][:-3], 0, False)


# --- the first pass shared between two processes (netrum.scale.stream with --workers 2) ---------------------

def _sharing_captures(tmp_path: Path) -> list[Path]:
    """The bundled nginx capture and a synthetic one with every kind of connection the lane gives to Python
    (resets, losses, idle expiry, tunnels, fragments...)."""
    from tests.scale.synth import mixed_capture, write_pcap_exact

    return [PCAP, write_pcap_exact(tmp_path / "mixed.pcap", mixed_capture(seed=3))]


def _share(path: Path, k: int, n: int, limits: Limits = DEFAULT_LIMITS) -> tuple[set[int], int, dict[str, int]]:
    with open_capture(str(path), Counters()) as reader:
        got = scan_share([reader], limits, k, n, None)
    assert got is not None
    return set(array("q", got[0])), got[1], got[2]


@pytest.mark.skipif(not available(), reason="netrum._lane is not built")
@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, Limits(flow_idle_timeout_ns=2 * SECOND_NS)], ids=["default", "short idle"])
def test_the_halves_of_the_first_pass_join_to_the_whole(tmp_path: Path, limits: Limits) -> None:
    """Two processes scanning half of the 4-tuples each find, together, exactly the incarnations one process
    scanning all of them gives to Python (incarnations are named by their first frame, which is the same in
    both), with the same counts of 4-tuples and of reasons."""
    for path in _sharing_captures(tmp_path):
        whole, whole_n, whole_why = _share(path, 0, 1, limits)
        a, a_n, a_why = _share(path, 0, 2, limits)
        b, b_n, b_why = _share(path, 1, 2, limits)
        assert whole, f"{path.name}: nothing given to Python: the test would prove nothing"
        assert a and b and a != b
        assert a | b == whole
        assert a_n + b_n == whole_n
        assert {w: a_why.get(w, 0) + b_why.get(w, 0) for w in whole_why} == whole_why


def _run_all(path: Path, share: Any = None) -> tuple[list[tuple[object, ...]], dict[str, int], dict[str, object]]:
    """Every transaction of a lane run (the lane's and the Python analyzer's), its counters and its stats."""
    got: list[Transaction] = []
    counters = Counters()
    with open_capture(str(path), counters) as reader:
        a = Analyzer(got.append, DEFAULT_LIMITS, counters=counters, partition=(0, 1))  # (as netrum.batch builds it)
        outcome = run_lane([reader], a, DEFAULT_LIMITS, share=share)
        a.finish()
    assert outcome.used, outcome.reason
    fields = attrgetter(*Transaction.__slots__)  # type: ignore[attr-defined]
    return [fields(t) for t in got], dict(counters), outcome.stats


@pytest.mark.skipif(not available(), reason="netrum._lane is not built")
def test_a_run_whose_first_pass_was_shared_is_the_same_run(tmp_path: Path) -> None:
    """The second pass after a shared first pass (the other half from ``scan_share``) gives the same
    transactions, counters and stats as a run that scanned alone; and when the other half does not come
    (None: the other process could not do it), the run scans the whole itself, with the same result."""
    for path in _sharing_captures(tmp_path):
        alone, counters, stats = _run_all(path)

        def other_half(path: Path = path) -> Any:
            with open_capture(str(path), Counters()) as reader:
                return scan_share([reader], DEFAULT_LIMITS, 1, 2, None)

        shared, shared_counters, shared_stats = _run_all(path, other_half)
        assert len(alone) > 20 and stats["flows_python"]
        assert shared == alone and shared_counters == counters
        assert shared_stats.pop("first_pass_shared") is True
        assert {k: v for k, v in shared_stats.items() if k != "first_taint"} == \
            {k: v for k, v in stats.items() if k != "first_taint"}
        missing, missing_counters, missing_stats = _run_all(path, lambda: None)
        assert missing == alone and missing_counters == counters and "first_pass_shared" not in missing_stats


@pytest.mark.skipif(not available(), reason="netrum._lane is not built")
def test_the_share_methods_refuse_what_they_cannot_mean() -> None:
    with open_capture(str(PCAP), Counters()) as reader:
        opened = lane._open_lane([reader], DEFAULT_LIMITS, (0, 1), None, None, None)
        assert not isinstance(opened, lane.LaneOutcome)
        lane_obj, maps = opened
        with pytest.raises(ValueError, match="0 <= k < n"):
            lane_obj.partition(2, 2)
        with pytest.raises(ValueError, match="after scan"):
            lane_obj.add_taints(b"")  # before scan()
        lane_obj.scan(None)
        with pytest.raises(ValueError, match="after scan"):
            lane_obj.add_taints(b"\x01\x02\x03")  # not whole indexes
        with pytest.raises(ValueError, match="start at 1"):
            lane_obj.add_taints(bytes(8))
        lane_obj.release()
        del maps
