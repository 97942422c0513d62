"""The ledger keeps the document (every input column by default); annotate says what it would
drop; steps with a `rule` score are counted per failing rule."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import config as cfg
from curate import io, runner, stats
from tests.conftest import words


def corpus(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    texts = [words(3), words(8), words(2), words(9), words(4)]
    table = pa.table(
        {
            "id": [f"d{i}" for i in range(5)],
            "text": texts,
            "url": [f"https://x/{i}" for i in range(5)],
            "reason": ["user column"] * 5,  # clashes with the ledger's own column
        }
    )
    pq.write_table(table, inp / "a.parquet")
    return inp


def run(tmp_path, inp, steps, name="out", **output):
    conf = cfg.load(
        base={
            "input": {"path": str(inp), "id_column": "id"},
            "output": {"path": str(tmp_path / name), **output},
            "executor": "local",
            "steps": steps,
        }
    )
    return runner.run(conf, progress="quiet")


WORDS = {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 5}}


def test_the_ledger_keeps_every_input_column_by_default(tmp_path):
    run(tmp_path, corpus(tmp_path), [WORDS])
    ledger = pq.read_table(tmp_path / "out" / "rejected")
    assert ledger.schema.names == ["id", "text", "reason", "url", "input_reason", "words_words"]
    assert ledger["url"].to_pylist() == ["https://x/0", "https://x/2", "https://x/4"]
    assert set(ledger["input_reason"].to_pylist()) == {"user column"}
    assert set(ledger["reason"].to_pylist()) == {"words"}


@pytest.mark.parametrize(
    "setting, names",
    [
        ("minimal", ["id", "text", "reason", "words_words"]),
        (["url"], ["id", "text", "reason", "url", "words_words"]),
    ],
)
def test_ledger_columns_minimal_or_a_list(tmp_path, setting, names):
    run(tmp_path, corpus(tmp_path), [WORDS], ledger_columns=setting)
    assert pq.read_schema(io.list_files(str(tmp_path / "out" / "rejected"))[0]).names == names


def test_a_ledger_column_the_input_lacks_is_named(tmp_path):
    with pytest.raises(io.InputError, match="output.ledger_columns: the input has no column lang"):
        run(tmp_path, corpus(tmp_path), [WORDS], ledger_columns=["lang"])


def test_annotate_reports_what_it_would_drop(tmp_path):
    result = run(tmp_path, corpus(tmp_path), [{**WORDS, "mode": "annotate"}])
    step = result.stats["steps"]["words"]
    assert (step["dropped"], step["would_drop"], step["kept"]) == (0, 3, 5)
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(stats.funnel_table(result.stats))
    text = console.export_text()
    assert "words (annotate)" in text and "would drop 3" in text


def test_steps_with_a_rule_score_are_counted_per_rule(tmp_path):
    steps = [{"use": "gopher_quality", "id": "gq", "params": {"min_doc_words": 5}}]
    result = run(tmp_path, corpus(tmp_path), steps)
    rules = result.stats["steps"]["gq"]["rules"]
    assert sum(rules.values()) == result.stats["steps"]["gq"]["dropped"] > 0
    ledger = pq.read_table(tmp_path / "out" / "rejected")
    expected = {}
    for rule in ledger["gq_rule"].to_pylist():
        expected[rule] = expected.get(rule, 0) + 1
    assert rules == expected
