"""netrum.lane's pure helpers (the lane itself is held to the Python reference by
tests/integration/test_lane_equivalence.py)."""
from __future__ import annotations

from netrum.lane import time_order


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
