"""netrum.lane's pure helpers and its packed hand-over (the lane itself is held to the Python reference by
tests/integration/test_lane_equivalence.py)."""
from __future__ import annotations

from operator import attrgetter
from pathlib import Path

import pytest

from netrum.capture.pcapfile import open_capture
from netrum.counters import Counters
from netrum.lane import available, run_lane, time_order, unpack_transactions
from netrum.limits import DEFAULT_LIMITS
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
