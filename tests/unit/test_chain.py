"""The batch chain on hand-made tables: what each row becomes, with no files and no Ray."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curate import config as cfg
from curate import io
from curate.chain import SCORES_KEY, BatchResult, Chain, StepError, UnitCounts
from curate.process import bind_steps, build_instances, plan_segments
from tests.conftest import words

WORDS = "tests.doubles:MinWords"
DEDUP = "tests.doubles:TextDedup"
UNIT = io.WorkUnit(3, io.Shard(1, "/in/a.parquet", "a.parquet", "parquet", None), None, 0)


def chain(steps, **output):
    config = cfg.load(
        base={
            "input": {"path": "/in", "id_column": "id"},
            "output": {"path": "/out", **output},
            "executor": "local",
            "steps": steps,
        }
    )
    bound = bind_steps(config)
    segments = plan_segments(bound)
    return Chain(config, segments, build_instances(bound, config.input.text_column))


def table(texts, **extra):
    ids = [f"d{i}" for i in range(len(texts))]
    return pa.table({"id": ids, "text": pa.array(texts, pa.string()), **extra})


def reasons(result: BatchResult) -> dict[str, str]:
    ledger = result.rejected
    return dict(zip(ledger["id"].to_pylist(), ledger["reason"].to_pylist(), strict=True))


def test_input_checks_and_a_filter_send_each_row_to_one_place():
    c = chain([{"use": WORDS, "id": "words", "params": {"min_words": 3}}])
    batch = table([words(5), None, "   ", words(2), words(4, 1)])
    result = c.run(0, batch, UNIT, first_row=10)
    assert result.kept["id"].to_pylist() == ["d0", "d4"]
    assert reasons(result) == {"d1": "null_text", "d2": "empty_text", "d3": "words"}
    assert result.checks == {"rows": 5, "null_text": 1, "empty_text": 1, "invalid_utf8": 0}
    st = result.steps["words"]
    assert (st["in"], st["kept"], st["dropped"]) == (3, 2, 1)
    # The last segment's rows are ready to write: scores named by step, no internal row id.
    assert result.kept["words_words"].to_pylist() == [5, 4]
    assert io.ROW_ID not in result.kept.schema.names
    assert b'"words"' in result.kept.schema.metadata[SCORES_KEY]
    # The ledger carries the scores known at the drop (none for the input checks).
    ledger = {r["id"]: r for r in result.rejected.to_pylist()}
    assert ledger["d3"]["words_words"] == 2 and ledger["d1"]["words_words"] is None
    assert result.sidecar is None


def test_bytes_that_are_not_utf8_are_rejected_as_invalid_utf8():
    c = chain([{"use": WORDS, "params": {"min_words": 1}}])
    batch = pa.table({"id": ["a", "b"], "text": pa.array([b"fine text", b"\xff\xfe"])})
    result = c.run(0, batch, UNIT, first_row=0)
    assert reasons(result) == {"b": "invalid_utf8"}
    assert result.checks["invalid_utf8"] == 1


def test_annotate_drops_nothing_but_counts_what_it_would_drop():
    c = chain([{"use": WORDS, "mode": "annotate", "params": {"min_words": 4}}])
    result = c.run(0, table([words(5), words(2), words(1)]), UNIT, first_row=0)
    assert result.kept.num_rows == 3 and result.rejected.num_rows == 0
    assert result.steps["minwords"]["would_drop"] == 2


def test_a_segment_before_a_global_step_keeps_row_ids_and_returns_the_sidecar():
    c = chain([{"use": WORDS, "params": {"min_words": 1}}, {"use": DEDUP, "id": "dedup"}])
    dup = words(6, 2)
    result = c.run(0, table([dup, words(6, 3), dup]), UNIT, first_row=7)
    row_ids = io.dense_row_ids(UNIT.shard.index, 7, 3).to_pylist()
    assert result.kept[io.ROW_ID].to_pylist() == row_ids  # the next segment needs them
    assert result.sidecar["row_id"].to_pylist() == row_ids
    assert result.steps["dedup"]["signature_rows"] == 3

    # Segment 1 applies the decision: the second copy goes to the ledger as `dedup`.
    decision = pa.table(
        {
            "row_id": pa.array([row_ids[0], row_ids[2]], pa.int64()),
            "drop": [False, True],
            "duplicate_of": [None, "d0"],
            "cluster_size": pa.array([2, 2], pa.int64()),
        }
    )
    from curate.decisions import DecisionSlice

    after = c.run(1, result.kept, UNIT, first_row=7, decision=DecisionSlice.of(decision))
    assert after.kept["id"].to_pylist() == ["d0", "d1"]
    assert after.kept["dedup_cluster_size"].to_pylist() == [2, 1]  # 1: the step's default
    assert reasons(after) == {"d2": "dedup"}
    assert after.rejected["dedup_duplicate_of"].to_pylist() == ["d0"]
    assert io.ROW_ID not in after.kept.schema.names


def test_stored_scores_are_thresholded_again_without_scoring():
    config = cfg.load(
        base={
            "input": {"path": "/in", "id_column": "id"},
            "output": {"path": "/out"},
            "executor": "local",
            "steps": [{"use": WORDS, "params": {"min_words": 3, "forbid_setup": True}}],
        }
    )
    bound = bind_steps(config)
    reused = {"minwords": {"minwords_words": pa.int32()}}
    c = Chain(config, plan_segments(bound), build_instances(bound, "text"), reused)
    # The stored score disagrees with the text on purpose: the stored one decides.
    batch = table(["one", "two words here"], minwords_words=pa.array([9, 1], pa.int32()))
    result = c.run(0, batch, UNIT, first_row=0)
    assert result.kept["id"].to_pylist() == ["d0"]
    assert reasons(result) == {"d1": "minwords"}


def test_a_failing_step_is_named_with_the_unit():
    c = chain([{"use": "tests.doubles:Boom", "id": "boom"}])
    with pytest.raises(StepError, match=r"step 'boom' failed on a\.parquet: RuntimeError: boom"):
        c.run(0, table([words(3)]), UNIT, first_row=0)


def test_a_missing_text_column_is_named():
    c = chain([{"use": WORDS}])
    with pytest.raises(io.InputError, match="a.parquet: no text column 'text'"):
        c.run(0, pa.table({"id": ["a"], "body": ["x"]}), UNIT, first_row=0)


def test_an_empty_batch_keeps_the_schema_and_counts_nothing():
    c = chain([{"use": WORDS}])
    result = c.run(0, table([]), UNIT, first_row=0)
    assert result.kept.num_rows == 0 and "minwords_words" in result.kept.schema.names
    assert result.rejected.num_rows == 0 and "reason" in result.rejected.schema.names
    st = result.steps["minwords"]
    assert (st["in"], st["kept"], st["dropped"]) == (0, 0, 0)


def test_splitting_a_unit_into_batches_changes_no_row():
    c = chain([{"use": WORDS, "params": {"min_words": 4}}])
    texts = [words(n, n) for n in range(10)] + [None, ""]
    whole = c.run(0, table(texts), UNIT, first_row=0)
    batch = table(texts)
    parts = [c.run(0, batch.slice(i, 5), UNIT, first_row=i) for i in range(0, batch.num_rows, 5)]
    assert pa.concat_tables([p.kept for p in parts]).equals(whole.kept)
    # The ledger lists a batch's input checks before its steps' drops: compare by id.
    ledger = pa.concat_tables([p.rejected for p in parts]).sort_by("id")
    assert ledger.equals(whole.rejected.sort_by("id"))


def test_unit_counts_add_batches_and_merge_rules():
    c = chain([{"use": WORDS, "params": {"min_words": 4}}])
    counts = UnitCounts.start(c.segments[0], reused={})
    for texts in ([words(5), words(1), None], [words(2), words(6)]):
        result = c.run(0, table(texts), UNIT, first_row=0)
        result.steps["minwords"]["rules"] = {"short": 1}
        counts.add(result)
    assert (counts.kept, counts.rejected) == (2, 3)
    assert counts.checks == {"rows": 5, "null_text": 1, "empty_text": 0, "invalid_utf8": 0}
    st = counts.steps["minwords"]
    assert (st["in"], st["kept"], st["dropped"], st["rules"]) == (4, 2, 2, {"short": 2})


def test_without_an_id_column_ids_are_derived_from_the_shard_and_first_row():
    config = cfg.load(
        base={
            "input": {"path": "/in"},
            "output": {"path": "/out"},
            "executor": "local",
            "steps": [{"use": WORDS, "params": {"min_words": 1}}],
        }
    )
    bound = bind_steps(config)
    c = Chain(config, plan_segments(bound), build_instances(bound, "text"))
    result = c.run(0, pa.table({"text": [words(3), words(4)]}), UNIT, first_row=40)
    assert result.kept[io.DERIVED_ID].to_pylist() == ["a.parquet#40", "a.parquet#41"]
    assert pc.all(pc.is_valid(result.kept["minwords_words"])).as_py()
