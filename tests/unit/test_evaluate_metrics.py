"""The metrics of `curate eval`: AUC and AP match scikit-learn; CIs, trade-offs, labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate_tools import evaluate as ev
from curate_tools.report import OutputError

metrics = pytest.importorskip("sklearn.metrics")

scored_rows = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 6), min_size=n, max_size=n),  # few values: many ties
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(scored_rows)
def test_weighted_auc_and_ap_equal_scikit_learn_with_sample_weights(rows):
    scores, labels, weights = (np.asarray(v) for v in rows)
    scores = scores.astype(float)
    labels = labels.astype(bool)
    weights = weights.astype(float)
    present = labels[weights > 0]
    if len(set(present.tolist())) < 2:
        return
    auc = ev.weighted_auc(scores, labels, weights[None, :])[0]
    ap = ev.weighted_average_precision(scores, labels, weights[None, :])[0]
    assert auc == pytest.approx(metrics.roc_auc_score(labels, scores, sample_weight=weights))
    assert ap == pytest.approx(
        metrics.average_precision_score(labels, scores, sample_weight=weights)
    )


def test_perfect_inverted_and_tied_scores():
    y = np.array([0, 0, 1, 1], bool)
    ones = np.ones((1, 4))
    assert ev.weighted_auc(np.array([1.0, 2, 3, 4]), y, ones)[0] == 1.0
    assert ev.weighted_auc(np.array([4.0, 3, 2, 1]), y, ones)[0] == 0.0
    assert ev.weighted_auc(np.zeros(4), y, ones)[0] == 0.5
    assert np.isnan(ev.weighted_auc(np.arange(4.0), np.ones(4, bool), ones)[0])


def test_roc_curve_runs_from_origin_to_one_one():
    fpr, tpr = ev.roc_curve(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool))
    ref_fpr, ref_tpr, _ = metrics.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert fpr.tolist() == ref_fpr.tolist() and tpr.tolist() == ref_tpr.tolist()


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.5
    scores = y + rng.normal(0, 1.0, 300)
    a = ev.score_column("s_x", "s", scores, y, None, 500, seed=1)
    b = ev.score_column("s_x", "s", scores, y, None, 500, seed=1)
    assert a.auc_ci == b.auc_ci
    assert a.auc_ci[0] < a.auc < a.auc_ci[1]
    assert a.ap_ci[0] < a.average_precision < a.ap_ci[1]


def test_lower_is_better_is_taken_from_the_step_or_read_from_the_data():
    y = np.array([1, 1, 1, 0, 0, 0], bool)
    perplexity = np.array([10.0, 20, 30, 400, 500, 600])
    declared = ev.score_column("ppl_perplexity", "ppl", perplexity, y, "max", 100, 0)
    assert declared.auc == 1.0 and not declared.higher_is_better
    assert declared.direction_from == "step"
    guessed = ev.score_column("x_y", "x", perplexity, y, None, 100, 0)
    assert guessed.auc == 1.0 and guessed.direction_from == "data"
    # The keep-rate table keeps the lowest perplexities first.
    half = next(t for t in declared.trade_off if t["keep_rate"] == 0.5)
    assert half == {"keep_rate": 0.5, "threshold": 30.0, "kept": 3, "precision": 1.0, "recall": 1.0}


def test_missing_scores_are_left_out_and_counted():
    y = np.array([1, 0, 1, 0], bool)
    res = ev.score_column("a_b", "a", np.array([1.0, 0.0, np.nan, 0.5]), y, "min", 50, 0)
    assert res.rows == 3 and res.missing == 1


def test_a_constant_or_one_class_column_cannot_rank_anything():
    assert (
        ev.score_column("a_b", "a", np.ones(4), np.array([1, 0, 1, 0], bool), None, 10, 0) is None
    )
    assert ev.score_column("a_b", "a", np.arange(4.0), np.ones(4, bool), None, 10, 0) is None


@pytest.mark.parametrize(
    "values, expected",
    [
        (pa.array([0, 1, 1]), [False, True, True]),
        (pa.array([True, False]), [True, False]),
        (pa.array(["1", "false", " TRUE "]), [True, False, True]),
    ],
)
def test_binary_labels_in_their_usual_spellings(values, expected):
    assert ev.binary_truth(pa.chunked_array([values]), None, "x").tolist() == expected


def test_graded_labels_need_a_min_grade_and_are_split_at_it():
    grades = pa.chunked_array([pa.array([0, 2, 3, 5])])
    with pytest.raises(OutputError, match="--min-grade"):
        ev.binary_truth(grades, None, "labels.parquet: column 'score'")
    assert ev.binary_truth(grades, 3, "x").tolist() == [False, False, True, True]


def test_empty_labels_and_words_are_refused():
    with pytest.raises(OutputError, match="1 empty labels"):
        ev.binary_truth(pa.chunked_array([pa.array([1, None])]), None, "x")
    with pytest.raises(OutputError, match="must be 0/1"):
        ev.binary_truth(pa.chunked_array([pa.array(["good", "bad"])]), None, "x")
