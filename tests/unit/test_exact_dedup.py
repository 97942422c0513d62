"""The `exact_dedup` step: equal normalised text (or column) -> all but the first dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate_filters.dedup.exact import ExactDedup, ExactDedupParams


def run_step(step, shards: list[pa.Table], tmp_path: Path) -> pa.Table:
    step.setup()
    paths = []
    for s, batch in enumerate(shards):
        rows = pa.array((s << 40) + np.arange(batch.num_rows), pa.int64())
        path = tmp_path / "sidecar" / f"part-{s}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(step.signature(batch, rows, batch.column("id")), path)
        paths.append(str(path))
    return step.decide(paths, lambda fn, xs: [fn(x) for x in xs], str(tmp_path / "work"))


def test_case_and_whitespace_variants_are_duplicates_of_the_first(tmp_path):
    a = pa.table({"id": ["a0", "a1"], "text": ["Hello   World", "something else"]})
    b = pa.table({"id": ["b0", "b1"], "text": ["hello world", "HELLO WORLD\n"]})
    decision = run_step(ExactDedup(), [a, b], tmp_path)
    assert decision.to_pylist() == [
        {"row_id": 0, "drop": False, "duplicate_of": None, "cluster_size": 3},
        {"row_id": 1 << 40, "drop": True, "duplicate_of": "a0", "cluster_size": 3},
        {"row_id": (1 << 40) + 1, "drop": True, "duplicate_of": "a0", "cluster_size": 3},
    ]


def test_punctuation_matters_unless_stripped(tmp_path):
    t = pa.table({"id": [1, 2], "text": ["Hello, world!", "hello world"]})
    assert run_step(ExactDedup(), [t], tmp_path / "a").num_rows == 0
    stripped = run_step(ExactDedup(ExactDedupParams(strip_punctuation=True)), [t], tmp_path / "b")
    assert stripped.column("duplicate_of").to_pylist() == [None, "1"]


def test_column_mode_dedups_urls_and_ignores_missing_ones(tmp_path):
    t = pa.table(
        {
            "id": ["x", "y", "z", "w"],
            "text": ["one", "two", "three", "four"],
            "url": ["https://a.org/p", None, "https://a.org/p", None],
        }
    )
    decision = run_step(ExactDedup(ExactDedupParams(column="url")), [t], tmp_path)
    assert decision.column("row_id").to_pylist() == [0, 2]
    assert decision.column("drop").to_pylist() == [False, True]


def test_empty_batch_is_typed():
    step = ExactDedup()
    empty = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    out = step.signature(empty, pa.array([], pa.int64()), empty.column("id"))
    assert out.num_rows == 0 and out.schema == step.sidecar_schema()
    assert step.decision_schema() == {"duplicate_of": pa.string(), "cluster_size": pa.int64()}
