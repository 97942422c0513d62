"""Properties of ids, work units and the accounting invariant (hypothesis, no Ray)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate import config as cfg
from curate import io, runner
from curate.io import Shard, plan_units
from tests.conftest import read_ids

texts = st.one_of(st.none(), st.text(max_size=60), st.just("   "), st.just(""))


@given(st.text(min_size=1, max_size=30), st.integers(0, 10**9), st.integers(0, 200))
def test_derived_ids_are_unique_and_stable(relpath, first, n):
    a = io.derive_ids(relpath, first, n).to_pylist()
    assert len(set(a)) == n
    assert a == io.derive_ids(relpath, first, n).to_pylist()


@given(
    st.lists(
        st.tuples(st.integers(0, 2000), st.integers(0, 5000)),
        min_size=2,
        max_size=20,
        unique_by=lambda t: t,
    )
)
def test_dense_row_ids_follow_corpus_order(pairs):
    pairs = sorted(pairs)
    ids = [io.dense_row_ids(s, r, 1).to_pylist()[0] for s, r in pairs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


@given(st.lists(st.integers(1, 50), min_size=1, max_size=30), st.integers(1, 200))
def test_units_cover_every_row_group_once_in_order(groups, unit_rows):
    shard = Shard(0, "x.parquet", "x.parquet", "parquet", sum(groups), tuple(groups))
    units = plan_units([shard], unit_rows)
    covered = [g for u in units for g in (u.row_groups or range(len(groups)))]
    assert covered == list(range(len(groups)))
    starts = np.cumsum([0] + groups)
    for u in units:
        assert u.first_row == (starts[u.row_groups[0]] if u.row_groups else 0)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.lists(texts, max_size=12), min_size=1, max_size=4),
    st.integers(1, 8),
    st.integers(0, 6),
    st.integers(1, 7),
)
def test_every_row_ends_in_exactly_one_place(tmp_path_factory, shards, batch, min_words, unit_rows):
    root = tmp_path_factory.mktemp("acc")
    ids = []
    for s, rows in enumerate(shards):
        shard_ids = [f"{s}:{i}" for i in range(len(rows))]
        ids += shard_ids
        pq.write_table(
            pa.table({"id": pa.array(shard_ids, pa.string()), "text": pa.array(rows, pa.string())}),
            root / f"in-{s}.parquet",
            row_group_size=3,
        )
    config = cfg.load(
        base={
            "input": {
                "path": str(root / "in-*.parquet"),
                "id_column": "id",
                "batch_size": batch,
                "unit_rows": unit_rows,
            },
            "output": {"path": str(root / "out")},
            "executor": "local",
            "steps": [
                {"use": "tests.doubles:MinWords", "params": {"min_words": min_words}},
                {"use": "tests.doubles:TextDedup", "id": "dedup"},
            ],
        }
    )
    result = runner.run(config, progress="quiet")
    # A unit writes no file it would leave empty: read what the folders hold.
    kept = read_ids(root / "out" / "data")
    ledger = sorted((root / "out" / "rejected").glob("*.parquet"))
    tables = [pq.read_table(p) for p in ledger]  # segments 0 and 1: other score columns
    rejected = pa.concat_tables(tables, promote_options="default") if ledger else None
    assert sorted(kept + (rejected["id"].to_pylist() if ledger else [])) == sorted(ids)
    assert not ledger or rejected["reason"].null_count == 0
    for p in ledger:
        assert pq.ParquetFile(p).metadata.num_rows > 0
    assert result.stats["total"]["consistent"]
