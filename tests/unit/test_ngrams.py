"""Hashed n-gram features: words, hashes stable across batchings, KL divergence."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate_filters._ngrams import (
    feature_counts,
    hash_strings,
    kl_divergence,
    ngram_features,
    word_hashes,
)


def test_words_are_lowercased_runs_of_letters_and_digits():
    rows, hashes = word_hashes(pa.array(["Hello, World! hello", None, "", "wörds 42—x"]))
    assert rows.tolist() == [0, 0, 0, 3, 3, 3]
    assert hashes[0] == hashes[2] != hashes[1]  # "Hello" == "hello" != "World"


def test_words_never_run_across_rows():
    _, joined = word_hashes(pa.array(["abcd"]))
    rows, split = word_hashes(pa.array(["ab", "cd"]))
    assert rows.tolist() == [0, 1] and joined[0] not in split


def test_long_words_differ_by_their_last_byte():
    _, h = word_hashes(pa.array(["abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyq"]))
    assert h[0] != h[1]


def test_bigrams_stay_inside_a_row():
    rows, buckets = ngram_features(pa.array(["a b c", "d"]), 1000)
    assert len(buckets) == 4 + 2  # unigrams a b c d, bigrams (a b) (b c)
    assert rows.tolist() == [0, 0, 0, 1, 0, 0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=40), st.integers(0, 39))
def test_hashes_do_not_depend_on_the_batch(texts, cut):
    arr = pa.array(texts, pa.string())
    whole = hash_strings(arr, seed=3)
    parts = np.concatenate([hash_strings(arr.slice(0, cut), 3), hash_strings(arr.slice(cut), 3)])
    assert np.array_equal(whole, parts)
    counts = feature_counts(arr, 64)
    split = feature_counts(arr.slice(0, cut), 64) + feature_counts(arr.slice(cut), 64)
    assert np.array_equal(counts, split)


def test_kl_is_zero_for_equal_distributions_and_positive_otherwise():
    p = np.array([5.0, 3.0, 2.0])
    assert kl_divergence(p, p) == 0.0
    assert kl_divergence(p, 2 * p, alpha=0.0) == pytest.approx(0.0, abs=1e-12)
    assert kl_divergence(p, np.array([1.0, 1.0, 8.0])) > 0.1
