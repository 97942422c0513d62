"""The plugin contract, run over every registered plugin (and the test doubles)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curate import plugins
from curate.filter import Filter, RowFilter
from curate.testing import check_filter_contract
from tests.conftest import REPO, SAMPLE

MODELS = REPO / "examples" / "quickstart" / "models"
# Plugins whose params have no usable default: what the contract runs them with.
PARAMS = {
    "fasttext_quality": {"model": str(MODELS / "quality.ftz"), "label": "hq", "min_prob": 0.5},
    "fasttext_langid": {"model": str(MODELS / "lid.ftz"), "languages": ["en"]},
    "perplexity": {"backend": "kenlm", "model": str(MODELS / "lm.binary"), "max_perplexity": 5000},
    "decontaminate": {"eval_sets": [str(REPO / "tests" / "data" / "eval_tiny.jsonl")]},
    "url_filter": {"url_column": "text"},  # the contract texts stand in for URLs
    "dsir": {"target": str(SAMPLE / "part-0.parquet"), "pool": str(SAMPLE)},
}


@pytest.mark.parametrize("name", sorted(plugins.available()))
def test_registered_plugin_keeps_the_contract(name, tmp_path):
    cls = plugins.load(name)
    if name == "learned_quality":  # reads earlier steps' scores: the batch carries them
        from tests.unit._learned_model import contract_model

        params, columns = contract_model(tmp_path)
        check_filter_contract(cls, params, columns=columns)
        return
    check_filter_contract(cls, PARAMS.get(name, {}))


@pytest.mark.parametrize("name", ["tests.doubles:MinWords", "tests.doubles:TextDedup"])
def test_test_doubles_keep_the_contract(name):
    check_filter_contract(plugins.load(name))


class Untyped(Filter):
    def score(self, batch):
        return {"x": pa.array([None] * batch.num_rows)}

    def keep(self, scores):
        return pa.array([True] * len(scores["x"]))


def test_contract_catches_an_untyped_empty_batch():
    with pytest.raises(AssertionError, match="untyped for an empty batch"):
        check_filter_contract(Untyped)


class CountVowels(RowFilter):
    """A per-document plugin written the slow, simple way."""

    schema = {"vowels": pa.int32()}

    def score_text(self, text):
        return {"vowels": sum(ch in "aeiou" for ch in text.lower())}

    def keep(self, scores):
        return pc.greater(scores["vowels"], 0)


def test_row_filter_helper_keeps_the_contract():
    check_filter_contract(CountVowels)
    scored = CountVowels().score(pa.table({"text": ["banana", "xyz"]}))
    assert scored["vowels"].to_pylist() == [3, 0]
