"""The combiner model and the `learned_quality` step, on small hand-made tables (no Ray)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from curate_filters.learned import (
    CombinerError,
    LearnedQuality,
    canonical_hash,
    load,
    quantile_transform,
)

pytest.importorskip("sklearn")

from curate_filters._combine_fit import CombineSettings, _estimator, _prepare, fit, fit_once  # noqa: E402

FEATURES = ["gopher_quality_stop_words", "ppl_perplexity", "quality_prob"]


def labelled(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stop words up and perplexity down with the label; one uninformative column; some NaN."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    stop = rng.poisson(np.where(y, 40, 15)).astype(float)
    ppl = np.exp(rng.normal(np.where(y, 6.0, 7.5), 0.6))
    noise = rng.random(n)
    x = np.column_stack([stop, ppl, noise])
    x[::17, 1] = np.nan  # rows a step did not score
    return x, y


def columns(x: np.ndarray) -> list[np.ndarray]:
    return [x[:, j] for j in range(x.shape[1])]


@pytest.mark.parametrize("kind", ["logistic_regression", "gradient_boosting"])
def test_stored_model_predicts_what_scikit_learn_predicts(kind):
    x, y = labelled()
    s = CombineSettings(kind=kind)
    model = fit_once(x, y, FEATURES, s)
    _, _, transformed = _prepare(x)
    reference = _estimator(s).fit(transformed, y).predict_proba(transformed)[:, 1]
    np.testing.assert_allclose(model.predict(columns(x)), reference, rtol=0, atol=1e-12)


def test_cross_validation_reports_folds_and_beats_the_noise_column():
    x, y = labelled(200)
    report = fit(x, y, FEATURES, CombineSettings(folds=4))
    cv = report.model.body["cv"]
    assert cv["folds"] == 4 and len(cv["roc_auc_folds"]) == 4
    assert report.cv_auc > 0.85
    assert report.single_auc["quality_prob"] < report.cv_auc
    assert np.isfinite(report.oof_prob).all()


def test_fit_is_deterministic():
    x, y = labelled()
    a = fit(x, y, FEATURES, CombineSettings(kind="gradient_boosting")).model
    b = fit(x, y, FEATURES, CombineSettings(kind="gradient_boosting")).model
    assert canonical_hash(a.body) == canonical_hash(b.body)


def test_one_class_labels_are_refused():
    x, _ = labelled(20)
    with pytest.raises(CombinerError, match="at least 2 rows of each class"):
        fit(x, np.ones(20, bool), FEATURES)


def test_saved_model_round_trips_and_an_edited_one_is_refused(tmp_path):
    x, y = labelled()
    path = tmp_path / "combine.json"
    model = fit(x, y, FEATURES).model
    model.save(str(path))
    loaded = load(path)
    assert loaded.features == FEATURES and loaded.sha256 == model.sha256
    np.testing.assert_array_equal(loaded.predict(columns(x)), model.predict(columns(x)))
    body = json.loads(path.read_text())
    body["model"]["intercept"] += 1.0
    path.write_text(json.dumps(body))
    with pytest.raises(CombinerError, match="does not match the sha256"):
        load(path)


def test_other_files_are_refused_with_their_name(tmp_path):
    with pytest.raises(CombinerError, match="not found: .*nope.json"):
        load(tmp_path / "nope.json")
    bad = tmp_path / "quality.ftz.json"
    bad.write_text(json.dumps({"format": "curate-fasttext/1"}))
    with pytest.raises(CombinerError, match="not a curate combiner model"):
        load(bad)


@pytest.fixture
def step(tmp_path) -> LearnedQuality:
    x, y = labelled()
    path = tmp_path / "combine.json"
    fit(x, y, FEATURES).model.save(str(path))
    instance = LearnedQuality(LearnedQuality.Params(model=str(path), min_prob=0.5))
    instance.setup()
    return instance


def batch_of(x: np.ndarray, names=FEATURES) -> pa.Table:
    cols = {"text": pa.array(["doc"] * len(x))}
    cols.update({n: pa.array(x[:, j]) for j, n in enumerate(names)})
    return pa.table(cols)


def test_step_keeps_likely_keeps_and_fills_missing_scores(step):
    x = np.array([[60.0, 300.0, 0.5], [5.0, 5000.0, 0.5], [60.0, np.nan, 0.5]])
    prob = step.score(batch_of(x))["prob"]
    assert prob.type == pa.float32()
    assert step.keep({"prob": prob}).to_pylist() == [True, False, True]


def test_step_refuses_an_input_without_its_feature_columns_naming_them(step):
    x, _ = labelled(5)
    with pytest.raises(CombinerError, match="lacks: ppl_perplexity, quality_prob"):
        step.score(batch_of(x[:, :1], FEATURES[:1]))


def test_step_declares_its_threshold_for_calibrate():
    assert LearnedQuality.calibration == {"score": "prob", "param": "min_prob", "direction": "min"}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=50),
    st.lists(st.floats(-1e7, 1e7), min_size=1, max_size=30),
)
@example(train=[0.0] * 8 + [2.225073858507203e-309], values=[2.225073858507e-311])  # subnormal
def test_quantile_transform_is_monotone_and_bounded(train, values):
    quantiles = np.quantile(np.asarray(train), np.linspace(0, 1, 11))
    v = np.sort(np.asarray(values))
    out = quantile_transform(v, quantiles)
    assert ((out >= 0) & (out <= 1)).all()
    assert (np.diff(out) >= -1e-12).all()
