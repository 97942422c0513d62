"""`decontaminate`: documents sharing normalised n-grams with an eval item are dropped, named."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from curate_filters.decontaminate import Decontaminate
from tests.conftest import REPO

EVAL = REPO / "tests" / "data" / "eval_tiny.jsonl"
QUESTION = json.loads(EVAL.read_text().splitlines()[1])["question"]


def scores(texts, **params):
    step = Decontaminate(Decontaminate.Params(eval_sets=[str(EVAL)], id_field="id", **params))
    step.setup()
    result = step.score(pa.table({"text": pa.array(texts, pa.string())}))
    return result, step.keep(result).to_pylist()


def rewrap(text: str, width: int = 5) -> str:
    words = text.split()
    return "\n".join(" ".join(words[i : i + width]) for i in range(0, len(words), width))


@pytest.mark.parametrize(
    "variant",
    [
        lambda q: q,
        lambda q: rewrap(q),
        lambda q: q.lower(),
        lambda q: q.upper().replace(" ", "   ").replace(",", " ,"),
        lambda q: q.replace("?", "!").replace(";", ""),
        lambda q: " ".join(q.split()[3:20]),  # a partial copy, still 17 words
    ],
)
def test_a_copied_eval_question_is_dropped_and_named(variant):
    doc = "Some forum chatter before the copy. " + variant(QUESTION) + " And some after."
    result, keep = scores([doc])
    assert keep == [False]
    assert result["eval_item"].to_pylist() == ["eval_tiny.jsonl:sci-1"]
    assert result["matches"].to_pylist()[0] >= 1


def test_clean_text_and_short_overlaps_are_kept():
    texts = [
        "Green plants are wonderful and the atmosphere is large.",
        " ".join(QUESTION.split()[:12]),  # 12 words: no 13-gram in common
        "",
    ]
    result, keep = scores(texts)
    assert keep == [True, True, True]
    assert result["eval_item"].to_pylist() == [None, None, None]


def test_min_overlap_and_ngram_are_configurable():
    partial = " ".join(QUESTION.split()[:14])  # two 13-grams
    assert scores([partial], min_overlap=3)[1] == [True]
    assert scores([partial], min_overlap=2)[1] == [False]
    assert scores([" ".join(QUESTION.split()[:8])], ngram=8)[1] == [False]


def test_the_best_matching_item_is_named():
    passage = json.loads(EVAL.read_text().splitlines()[2])["passage"]
    result, _ = scores([QUESTION[:60] + " " + passage])
    assert result["eval_item"].to_pylist() == ["eval_tiny.jsonl:read-1"]


def test_parquet_and_text_eval_sets(tmp_path):
    pq.write_table(pa.table({"prompt": [QUESTION]}), tmp_path / "set.parquet")
    (tmp_path / "set.txt").write_text("first paragraph is short.\n\n" + rewrap(QUESTION) + "\n")
    for name, item in (("set.parquet", "set.parquet:0"), ("set.txt", "set.txt:1")):
        step = Decontaminate(Decontaminate.Params(eval_sets=[str(tmp_path / name)]))
        step.setup()
        result = step.score(pa.table({"text": [QUESTION.upper()]}))
        assert result["eval_item"].to_pylist() == [item]


def test_a_missing_or_unknown_eval_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValidationError, match="is not a file"):
        Decontaminate.Params(eval_sets=[str(tmp_path / "nope.jsonl")])
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(ValidationError, match="use a .jsonl"):
        Decontaminate.Params(eval_sets=[str(tmp_path / "x.csv")])
