"""The pipeline in process (no Ray): accounting, ledger reasons, segments, resume, bad input."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import config as cfg
from curate import io, runner
from curate.process import StepError
from tests.conftest import assert_accounted, read_ids, words, write_corpus

WORDS = "tests.doubles:MinWords"
DEDUP = "tests.doubles:TextDedup"


def pipeline(inp, out, steps, **extra):
    data = {
        "input": {"path": str(inp), "batch_size": 3, "id_column": "id"},
        "output": {"path": str(out)},
        "executor": "local",
        "steps": steps,
    }
    for key, value in extra.items():
        data[key].update(value) if isinstance(value, dict) else data.__setitem__(key, value)
    return cfg.load(base=data)


def run(config, **kw):
    return runner.run(config, progress="quiet", **kw)


def all_input_ids(folder):
    return read_ids(folder)


def test_every_row_ends_in_kept_or_rejected_once(small_corpus, tmp_path):
    out = tmp_path / "out"
    result = run(
        pipeline(small_corpus, out, [{"use": WORDS, "id": "words", "params": {"min_words": 5}}])
    )
    assert_accounted(all_input_ids(small_corpus), out)
    total = result.stats["total"]
    assert total["consistent"] and total["documents"] == 16
    rejected = pq.read_table(out / "rejected")
    reasons = dict(zip(rejected["id"].to_pylist(), rejected["reason"].to_pylist(), strict=False))
    assert reasons["s0-6"] == "words"  # 3 words
    assert reasons["s0-7"] == "null_text"
    assert reasons["s0-8"] == "empty_text"
    assert rejected.filter(pa.compute.equal(rejected["reason"], "words"))[
        "words_words"
    ].to_pylist() == [3, 2]
    kept = pq.read_table(out / "data")
    assert "words_words" in kept.schema.names and "id" in kept.schema.names


def test_annotate_mode_scores_and_drops_nothing(small_corpus, tmp_path):
    out = tmp_path / "out"
    run(
        pipeline(
            small_corpus, out, [{"use": WORDS, "mode": "annotate", "params": {"min_words": 50}}]
        )
    )
    kept = pq.read_table(out / "data")
    assert kept.num_rows == 14  # all but the null and the blank text
    assert kept["minwords_words"].null_count == 0


def test_global_step_splits_segments_and_keeps_smallest_id(tmp_path):
    dup = words(8, 3)
    inp = write_corpus(tmp_path / "in", [[words(8, 1), dup, words(8, 2)], [dup, dup, words(9)]])
    out = tmp_path / "out"
    run(
        pipeline(
            inp,
            out,
            [
                {"use": WORDS, "params": {"min_words": 1}},
                {"use": DEDUP, "id": "dedup"},
                {"use": WORDS, "id": "after", "params": {"min_words": 9}},
            ],
        )
    )
    assert_accounted(read_ids(inp), out)
    rejected = pq.read_table(out / "rejected").to_pylist()
    dups = {r["id"]: r for r in rejected if r["reason"] == "dedup"}
    assert set(dups) == {"s1-0", "s1-1"}
    assert {r["dedup_duplicate_of"] for r in dups.values()} == {"s0-1"}
    assert {r["dedup_cluster_size"] for r in dups.values()} == {3}
    kept = pq.read_table(out / "data").to_pylist()
    assert [r["id"] for r in kept] == ["s1-2"]
    assert kept[0]["dedup_cluster_size"] == 1
    # shard-0 keeps nothing after `after`: no data file, its manifest still counts its rows
    assert not (out / "data" / "part-00000.parquet").exists()
    manifest = json.loads((out / "_manifest" / "s1-part-00000.json").read_text())
    assert (manifest["kept"], manifest["rejected"], "data" in manifest["files"]) == (0, 3, False)
    assert "__curate_row_id" not in pq.read_schema(out / "data" / "part-00001.parquet").names
    assert not any((out / "_segments" / "s0").iterdir())


def test_derived_ids_when_no_id_column(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    pq.write_table(pa.table({"text": [words(6), words(7)]}), inp / "a.parquet")
    out = tmp_path / "out"
    data = {"input": {"path": str(inp)}, "output": {"path": str(out)}, "executor": "local"}
    run(cfg.load(base=data))
    assert pq.read_table(out / "data")["curate_id"].to_pylist() == ["a.parquet#0", "a.parquet#1"]


def test_invalid_utf8_is_rejected_with_its_reason(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    texts = pa.array([b"fine text here", b"bad \xff\xfe bytes", b"more fine text"], pa.binary())
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": texts}), inp / "x.parquet")
    out = tmp_path / "out"
    run(pipeline(inp, out, []))
    rejected = pq.read_table(out / "rejected").to_pylist()
    assert [(r["id"], r["reason"]) for r in rejected] == [("b", "invalid_utf8")]
    assert pq.read_table(out / "data")["id"].to_pylist() == ["a", "c"]


def test_a_ten_megabyte_document_passes(tmp_path):
    big = ("lorem ipsum dolor sit amet " * 400_000)[:10_000_000]
    inp = write_corpus(tmp_path / "in", [[big, "small doc with five words"]])
    out = tmp_path / "out"
    run(pipeline(inp, out, [{"use": WORDS, "params": {"min_words": 5}}]))
    assert pq.read_table(out / "data")["minwords_words"].to_pylist() == [len(big.split()), 5]


def test_missing_text_column_is_named_before_any_output(small_corpus, tmp_path):
    out = tmp_path / "out"
    config = pipeline(small_corpus, out, [], input={"text_column": "body"})
    with pytest.raises(io.InputError, match=r"shard-0.parquet: no text column 'body'"):
        run(config)
    assert not (out / "data").exists()


def test_missing_id_column_is_named(small_corpus, tmp_path):
    config = pipeline(small_corpus, tmp_path / "out", [], input={"id_column": "doc_id"})
    with pytest.raises(io.InputError, match="no id column 'doc_id'"):
        run(config)


def test_failing_step_names_itself_and_publishes_nothing_half_written(small_corpus, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(StepError, match=r"step 'boom' failed on shard-0.parquet: RuntimeError"):
        run(pipeline(small_corpus, out, [{"use": "tests.doubles:Boom", "id": "boom"}]))
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.suffix == ".parquet"]
    assert leftovers == []
    assert not [p for p in out.rglob("*.tmp")]


def test_rerun_resumes_and_output_is_identical(small_corpus, tmp_path):
    out = tmp_path / "out"
    steps = [{"use": WORDS, "params": {"min_words": 5}}]
    run(pipeline(small_corpus, out, steps))
    first = {p.name: p.read_bytes() for p in (out / "data").iterdir()}
    (out / "_manifest" / "s0-part-00001.json").unlink()  # as if killed before unit 1 finished
    (out / "data" / "part-00001.parquet").unlink()
    result = run(pipeline(small_corpus, out, steps))
    assert result.skipped_units == 2
    assert {p.name: p.read_bytes() for p in (out / "data").iterdir()} == first
    assert result.stats["total"]["documents"] == 16
    assert json.loads((out / "stats.json").read_text())["total"]["consistent"]


def test_rerun_with_another_config_is_refused_unless_overwrite(small_corpus, tmp_path):
    out = tmp_path / "out"
    run(pipeline(small_corpus, out, [{"use": WORDS, "params": {"min_words": 5}}]))
    other = pipeline(small_corpus, out, [{"use": WORDS, "params": {"min_words": 6}}])
    with pytest.raises(
        runner.RunError,
        match=r"different run: config changed: "
        r"steps\.0\.params\.min_words \(5 -> 6\).*--overwrite",
    ):
        run(other)
    run(other, overwrite=True)
    assert "min_words: 6" in (out / "run.yaml").read_text()


def test_same_output_for_any_batch_of_units(small_corpus, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    steps = [{"use": WORDS, "params": {"min_words": 5}}]
    run(pipeline(small_corpus, a, steps))
    run(pipeline(small_corpus, b, steps, input={"unit_rows": 4}))
    kept_a = pq.read_table(a / "data").to_pylist()
    kept_b = pq.read_table(b / "data").to_pylist()
    assert kept_a == kept_b


def test_jsonl_gz_input_runs_like_parquet(tmp_path):
    import gzip
    import json as _json

    inp = tmp_path / "in"
    inp.mkdir()
    with gzip.open(inp / "a.jsonl.gz", "wt") as f:
        for i in range(7):
            f.write(_json.dumps({"id": f"j{i}", "text": words(3 + i)}) + "\n")
    out = tmp_path / "out"
    run(pipeline(inp, out, [{"use": WORDS, "params": {"min_words": 6}}]))
    assert pq.read_table(out / "data")["id"].to_pylist() == ["j3", "j4", "j5", "j6"]
    assert sorted(read_ids(out / "rejected")) == ["j0", "j1", "j2"]


def test_an_output_inside_the_input_folder_is_refused_before_writing(small_corpus, tmp_path):
    out = small_corpus / "curated"
    steps = [{"use": WORDS, "params": {"min_words": 5}}]
    with pytest.raises(runner.RunError, match="is inside the input"):
        run(pipeline(small_corpus, out, steps))
    assert not out.exists()


def test_an_empty_jsonl_shard_passes_through_a_global_step(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.jsonl").write_text("")
    (inp / "b.jsonl").write_text('{"id": "x", "text": "one two three"}\n')
    out = tmp_path / "out"
    result = run(pipeline(inp, out, [{"use": DEDUP, "id": "dedup"}]))
    assert result.stats["total"]["documents"] == 1
    assert pq.read_table(out / "data")["id"].to_pylist() == ["x"]
