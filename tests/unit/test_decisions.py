"""The decision per source shard: split by `row_id >> 40`, and a unit reads only its rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate import io, ownership
from curate.decisions import DecisionSlice, unit_row_range, write_by_shard


def _decision(rows: list[int]) -> pa.Table:
    return pa.table(
        {
            "row_id": pa.array(rows, pa.int64()),
            "drop": pa.array([r % 2 == 1 for r in rows]),
            "duplicate_of": pa.array([f"s{r}" if r % 2 else None for r in rows]),
            "cluster_size": pa.array([2] * len(rows), pa.int64()),
        }
    )


def test_split_by_shard_and_named_as_curate_owns(tmp_path):
    rows = [(2 << 40) + 5, 3, 1, (2 << 40) + 1]
    result = write_by_shard(_decision(rows), str(tmp_path / "_global" / "mh" / "decision"))
    assert sorted(result["shards"]) == ["0", "2"]
    assert result["decision_rows"] == 4 and result["to_drop"] == 4
    first = pq.read_table(result["shards"]["0"])
    assert first["row_id"].to_pylist() == [1, 3]  # sorted, only shard 0
    for uri in result["shards"].values():
        assert ownership.is_owned_file(str(tmp_path.joinpath(uri).relative_to(tmp_path)))


def test_a_unit_reads_only_its_row_range(tmp_path):
    shard = io.Shard(1, "x.parquet", "x.parquet", "parquet", 300, (100, 100, 100))
    unit = io.WorkUnit(4, shard, (1,), 100)
    assert unit_row_range(unit) == ((1 << 40) + 100, (1 << 40) + 200)
    rows = [(1 << 40) + r for r in (5, 99, 100, 150, 199, 200, 250)]
    result = write_by_shard(_decision(rows), str(tmp_path))
    part = DecisionSlice.read(result["shards"], unit)
    assert part.row_ids.tolist() == [(1 << 40) + r for r in (100, 150, 199)]
    found, pos = part.lookup(np.array([(1 << 40) + r for r in (100, 101, 199)]))
    assert found.tolist() == [True, False, True]
    # A shard with nothing in the decision: an empty slice, every row kept.
    other = io.WorkUnit(0, io.Shard(7, "y", "y", "parquet", 10, (10,)), None, 0)
    assert not DecisionSlice.read(result["shards"], other).lookup(np.array([7 << 40]))[0].any()


def test_owned_names_of_decisions_and_indexes():
    owned = ownership.is_owned_file
    assert owned("_global/mh/decision/shard-000012.parquet")
    assert owned("_global/mh/decision/shard-000012.a0123456789ab.parquet")
    assert owned("dedup_index/mh/index.json")
    assert owned("dedup_index/mh/part-0123456789abcdef-00003.parquet")
    assert not owned("dedup_index/mh/mine.parquet")
    assert not owned("_global/mh/decision/notes.md")
