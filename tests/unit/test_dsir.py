"""The dsir step: importance weights toward a target, and the deterministic pool sample."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate_filters import dsir
from curate_filters.dsir import DSIR, SampleError, sample_text

CATS = [f"the cat sat on the mat and the cat purred softly {i}" for i in range(40)]
MONEY = [f"the bank raised interest rates and the market fell {i}" for i in range(40)]


@pytest.fixture
def corpus(tmp_path):
    target = tmp_path / "target.parquet"
    pq.write_table(pa.table({"body": CATS}), target)
    pool = tmp_path / "pool"
    pool.mkdir()
    pq.write_table(pa.table({"text": CATS[:20] + MONEY[:20]}), pool / "a.parquet", row_group_size=7)
    pq.write_table(pa.table({"text": MONEY[20:]}), pool / "b.parquet", row_group_size=7)
    return target, pool


def _step(target, pool, **extra) -> DSIR:
    params = {"target": str(target), "pool": str(pool), "target_text_column": "body", **extra}
    step = DSIR(DSIR.Params.model_validate(params))
    step.setup()
    return step


def test_text_like_the_target_weighs_more(corpus):
    step = _step(*corpus)
    texts = ["a cat purred on the mat", "interest rates and the market", "the"]
    weights = step.score(pa.table({"text": texts}))["log_weight"].to_pylist()
    assert weights[0] > 0 > weights[1]
    assert weights[0] > weights[2] > weights[1]


def test_the_weight_is_the_sum_of_feature_log_ratios(corpus):
    step = _step(*corpus)
    one = step.score(pa.table({"text": ["cat"]}))["log_weight"][0].as_py()
    two = step.score(pa.table({"text": ["cat cat"]}))["log_weight"][0].as_py()
    bigram = two - 2 * one  # "cat cat" = two unigrams + one bigram
    assert bigram == pytest.approx(step.log_ratio[_bucket_of_bigram(step)])


def _bucket_of_bigram(step: DSIR) -> int:
    from curate_filters._ngrams import ngram_features

    _, buckets = ngram_features(pa.array(["cat cat"]), step.params.num_buckets)
    return int(buckets[-1])


def test_the_pool_sample_is_seeded_bounded_and_drawn_from_the_pool(corpus, monkeypatch):
    _, pool = corpus
    everything = set(CATS[:20] + MONEY)
    sample = sample_text(str(pool), "text", 3, seed=4)
    assert len(sample) == 3 and set(sample.to_pylist()) <= everything
    assert sample_text(str(pool), "text", 3, seed=4).equals(sample)
    seeds = {tuple(sample_text(str(pool), "text", 3, seed=s).to_pylist()) for s in range(5)}
    assert len(seeds) > 1
    assert set(sample_text(str(pool), "text", 1000, seed=4).to_pylist()) == everything
    read = []
    original = dsir._read_groups
    monkeypatch.setattr(
        dsir, "_read_groups", lambda col, groups: read.extend(groups) or original(col, groups)
    )
    sample_text(str(pool), "text", 3, seed=4)
    assert sum(n for _, _, n in read) < dsir.OVERSAMPLE * 3 + 7  # not all 60 rows


def test_a_missing_column_or_folder_is_named(corpus, tmp_path):
    target, pool = corpus
    with pytest.raises(SampleError, match="no column 'text'"):
        sample_text(str(target), "text", 5, 0)
    with pytest.raises(SampleError, match="no Parquet or JSONL files"):
        sample_text(str(tmp_path / "nowhere"), "text", 5, 0)


def test_an_empty_batch_is_typed(corpus):
    step = _step(*corpus)
    assert step.score(pa.table({"text": pa.array([], pa.string())}))["log_weight"].type == (
        pa.float64()
    )
