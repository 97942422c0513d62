"""`line_dedup`: lines repeated across the corpus lose every occurrence but the first."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io import ROW_ID
from curate_filters.dedup.line_dedup import LineDedup

DOCS = [
    "Gardens need water.\nSubscribe to our newsletter!\nShare this page",
    "Rivers carry boats.\nSUBSCRIBE to our   newsletter\nShare this page",
    "Subscribe to our newsletter!\nShare this page",
    "A unique text.\nShare this page",
]


def decide(tmp_path, docs, **params):
    step = LineDedup(LineDedup.Params(**params))
    tmp_path.mkdir(parents=True, exist_ok=True)
    table = pa.table({"text": docs, ROW_ID: pa.array(range(len(docs)), pa.int64())})
    # Two sidecar files, as two units would write them.
    paths = []
    for k, (lo, hi) in enumerate(((0, 2), (2, len(docs)))):
        part = table.slice(lo, hi - lo)
        sig = step.signature(part, part[ROW_ID].combine_chunks(), part[ROW_ID].combine_chunks())
        paths.append(str(tmp_path / f"sig-{k}.parquet"))
        pq.write_table(sig, paths[-1])
    decision = step.decide(paths, lambda fn, items: [fn(i) for i in items], str(tmp_path / "w"))
    return step, table, decision


def test_repeats_are_removed_and_the_first_occurrence_survives(tmp_path):
    step, table, decision = decide(tmp_path, DOCS)
    result = step.rewrite(table, decision)
    assert result.text.to_pylist() == [
        DOCS[0],
        "Rivers carry boats.",  # its two lines repeat doc 0's (after normalisation)
        "",  # every line was seen before: the runner rejects it
        "A unique text.",
    ]
    assert result.changes.to_pylist() == [0, 2, 2, 1]


def test_max_count_spares_lines_seen_that_many_times(tmp_path):
    step, table, decision = decide(tmp_path, DOCS, max_count=3)
    # "Share this page" occurs 4 times (> 3): only its first survives; the newsletter line 3.
    result = step.rewrite(table, decision)
    assert result.text.to_pylist()[1] == "Rivers carry boats.\nSUBSCRIBE to our   newsletter"
    assert result.changes.to_pylist() == [0, 1, 1, 1]


def test_the_decision_is_the_same_whatever_the_sidecar_split(tmp_path):
    _, _, first = decide(tmp_path / "a", DOCS)
    step = LineDedup()
    table = pa.table({"text": DOCS, ROW_ID: pa.array(range(4), pa.int64())})
    (tmp_path / "b").mkdir()
    pq.write_table(
        step.signature(table, table[ROW_ID].combine_chunks(), None), tmp_path / "b/s.parquet"
    )
    second = step.decide(
        [str(tmp_path / "b/s.parquet")], lambda f, i: [f(x) for x in i], str(tmp_path / "b/w")
    )
    assert first.equals(second)


def test_record_changes_lists_removed_lines(tmp_path):
    step, table, decision = decide(tmp_path, DOCS)
    step.record_changes = True
    assert step.rewrite(table, decision).removed.to_pylist()[3] == ["Share this page"]
