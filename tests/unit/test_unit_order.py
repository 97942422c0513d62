"""The order units are handed to the workers: biggest first, a permutation, deterministic."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from curate import io
from curate.runner import largest_first


def shard(index: int, size: int, groups: tuple[int, ...]) -> io.Shard:
    return io.Shard(
        index, f"/in/s{index}.parquet", f"s{index}.parquet", "parquet", sum(groups), groups, size, 0
    )


def test_the_biggest_units_go_first_and_ties_keep_their_order():
    big = shard(0, 9_000, (100, 100))  # 45 bytes a row
    small = shard(1, 1_000, (100,))
    units = [
        io.WorkUnit(0, big, (0,), 0),  # 4,500 bytes
        io.WorkUnit(1, big, (1,), 100),  # 4,500 bytes
        io.WorkUnit(2, small, None, 0),  # 1,000 bytes
        io.WorkUnit(3, shard(2, 20_000, (50,)), None, 0),  # 20,000 bytes
    ]
    assert [u.index for u in largest_first(units)] == [3, 0, 1, 2]


@given(st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 1000)), max_size=30))
def test_it_is_a_permutation_in_falling_size(specs):
    units = [
        io.WorkUnit(i, shard(i, size, (rows,)), None, 0) for i, (size, rows) in enumerate(specs)
    ]
    ordered = largest_first(units)
    assert sorted(u.index for u in ordered) == list(range(len(units)))
    sizes = [u.shard.size for u in ordered]
    assert sizes == sorted(sizes, reverse=True)
    assert largest_first(list(reversed(units))) == ordered
