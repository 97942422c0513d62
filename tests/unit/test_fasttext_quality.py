"""fasttext_quality: the shared normaliser, model loading errors, batch scoring, training."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

pytest.importorskip("fasttext")

from curate_filters import _fasttext as ft  # noqa: E402
from curate_filters.quality import (  # noqa: E402
    FastTextQuality,
    binary_metrics,
    roc_auc,
    train_quality,
)

PROSE = (
    "the committee published a detailed report on river ecology and its history "
    "scholars describe the treaty as a turning point for regional trade and culture"
).split()
WEB = "click here login sign up cookie policy home menu share subscribe now cart free".split()


def make_docs(words: list[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=rng.integers(8, 30))) for _ in range(n)]


def make_mixed_docs(n: int, seed: int) -> list[str]:
    """Documents whose share of prose words runs from 0 to 1: scores spread out, few ties."""
    rng = np.random.default_rng(seed)
    docs = []
    for share in rng.random(n):
        words = np.where(rng.random(20) < share, rng.choice(PROSE, 20), rng.choice(WEB, 20))
        docs.append(" ".join(words))
    return docs


def write(path, texts: list[str], **columns) -> str:
    pq.write_table(pa.table({"text": texts, **columns}), path)
    return str(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    return {
        "pos": write(root / "pos.parquet", make_docs(PROSE, 200, 1)),
        "neg": write(root / "neg.parquet", make_docs(WEB, 200, 2)),
        "root": root,
    }


@pytest.fixture(scope="module")
def model(data):
    out = str(data["root"] / "quality.bin")
    settings = ft.TrainSettings(epoch=20, dim=8, bucket=100_000)
    report = train_quality([data["pos"]], [data["neg"]], out, settings=settings)
    return out, report


def quality(path: str, **params) -> FastTextQuality:
    step = FastTextQuality(FastTextQuality.Params(model=path, **params))
    step.setup()
    return step


# --------------------------------------------------------------------------- normaliser


def test_normaliser_leaves_one_line_per_document_split_where_fasttext_splits():
    text = pa.array(["a\nb\r\n\tc\x0bd e\u00a0f\u2028g   h", None, "", "x\ny"])
    out = ft.Normaliser()(text).to_pylist()
    assert not any("\n" in line for line in out)
    assert [line.split() for line in out] == [list("abcdefgh"), [], [], ["x", "y"]]


def test_normaliser_truncates_then_lowercases_and_lines_end_in_one_newline():
    norm = ft.Normaliser(lowercase=True, max_chars=5)
    assert norm.lines(pa.array(["ÉCOLE normale", "Ab\ncd"])) == ["école\n", "ab cd\n"]
    assert norm.lines(pa.chunked_array([], pa.string())) == []


# --------------------------------------------------------------------------- scoring


def test_high_quality_text_scores_higher_than_web_boilerplate(model):
    step = quality(model[0])
    batch = pa.table({"text": make_docs(PROSE, 20, 7) + make_docs(WEB, 20, 8)})
    prob = step.score(batch)["prob"]
    assert prob.type == pa.float32() and len(prob) == 40
    prob = prob.to_numpy()
    assert prob[:20].min() > prob[20:].max()
    assert step.keep({"prob": pa.array(prob)}).to_pylist() == [True] * 20 + [False] * 20


def test_batch_scores_equal_the_library_predicting_one_line_at_a_time(model):
    step = quality(model[0])
    texts = make_mixed_docs(50, 9)
    batch_prob = step.score(pa.table({"text": texts}))["prob"].to_numpy()
    loaded = ft.load_model(model[0])
    single = []
    for line in ft.Normaliser(lowercase=True, max_chars=10_000).lines(pa.array(texts)):
        labels, probs = loaded.model.predict(line.rstrip("\n"), k=-1)
        single.append(dict(zip(labels, probs, strict=True))["__label__hq"])
    # The one-line API drops the end-of-line token; scoring keeps it as training saw it.
    agree = np.corrcoef(batch_prob, single)[0, 1]
    assert agree > 0.95


def test_empty_batch_odd_unicode_and_empty_text_are_typed_and_deterministic(model):
    step = quality(model[0])
    empty = step.score(pa.table({"text": pa.array([], pa.string())}))
    assert empty["prob"].type == pa.float32() and len(empty["prob"]) == 0
    odd = pa.table({"text": ["", "\u200b\ud7ff\U0001f600", "x" * 50_000, "\n\n", "日本語"]})
    first, second = step.score(odd)["prob"], step.score(odd)["prob"]
    assert len(first) == 5 and first.equals(second)
    assert np.all((first.to_numpy() >= 0) & (first.to_numpy() <= 1))


def test_label_is_accepted_with_or_without_the_fasttext_prefix(model):
    batch = pa.table({"text": make_docs(PROSE, 5, 3)})
    plain = quality(model[0], label="hq").score(batch)["prob"]
    assert quality(model[0], label="__label__hq").score(batch)["prob"].equals(plain)


def test_step_is_picklable_before_setup(model):
    step = FastTextQuality(FastTextQuality.Params(model=model[0]))
    assert pickle.loads(pickle.dumps(step)).params == step.params


# --------------------------------------------------------------------------- setup errors


def test_missing_model_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ft.FastTextError, match="not found: .*nope.bin"):
        quality(str(tmp_path / "nope.bin"))


def test_corrupt_model_file_is_an_error(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a model" * 10)
    with pytest.raises(ft.FastTextError, match="not a readable fastText model"):
        quality(str(bad))


def test_truncated_model_is_caught_by_the_sidecar_hash(model, tmp_path):
    path, _ = model
    cut = tmp_path / "cut.bin"
    data = open(path, "rb").read()
    cut.write_bytes(data[: len(data) // 2])
    (tmp_path / "cut.bin.json").write_text(open(path + ".json").read())
    with pytest.raises(ft.FastTextError, match="corrupt or was replaced"):
        quality(str(cut))


def test_unknown_label_lists_the_labels_the_model_has(model):
    with pytest.raises(ft.FastTextError, match="no label 'good'.*hq, lq|no label 'good'.*lq, hq"):
        quality(model[0], label="good")


def test_lowercase_that_contradicts_training_is_an_error(model):
    with pytest.raises(ft.FastTextError, match="lowercase=False contradicts"):
        quality(model[0], lowercase=False)


def test_without_a_sidecar_lowercase_follows_the_vocabulary(model, tmp_path):
    copy = tmp_path / "nosidecar.bin"
    copy.write_bytes(open(model[0], "rb").read())
    loaded = ft.load_model(copy)
    assert loaded.meta == {} and loaded.normaliser(None, None).lowercase is True


# --------------------------------------------------------------------------- thresholds


def test_keep_fraction_threshold_comes_from_the_calibration_sample(model, data):
    sample = write(data["root"] / "calib.parquet", make_mixed_docs(400, 11))
    step = quality(model[0], keep_fraction=0.3, calibration=sample)
    scores = step.score(pq.read_table(sample))
    kept = np.mean(step.keep(scores).to_numpy(zero_copy_only=False))
    assert 0.25 <= kept <= 0.35


@pytest.mark.parametrize(
    "params, message",
    [
        ({"keep_fraction": 0.5}, "needs a calibration file"),
        ({"keep_fraction": 0.5, "min_prob": 0.2, "calibration": "c.parquet"}, "not both"),
        ({"min_prob": 1.5}, "less than or equal to 1"),
        ({"treshold": 0.5}, "Extra inputs"),
    ],
)
def test_bad_threshold_params_are_rejected(params, message):
    with pytest.raises(ValidationError, match=message):
        FastTextQuality.Params(**params)


# --------------------------------------------------------------------------- training


def test_training_reports_held_out_metrics_and_writes_a_sidecar(model):
    path, report = model
    assert report.n_train == {"hq": 180, "lq": 180} and report.n_holdout == {"hq": 20, "lq": 20}
    assert report.metrics["roc_auc"] > 0.95 and report.metrics["f1"] > 0.9
    side = json.loads(open(path + ".json").read())
    assert side["normaliser"] == {"lowercase": True, "max_chars": 10_000}
    assert side["sha256"] == ft.sha256_file(path)


def test_training_that_diverges_says_what_to_change(data, tmp_path):
    out = tmp_path / "nan.bin"
    settings = ft.TrainSettings(epoch=2, dim=8, lr=1000.0, bucket=100_000)
    with pytest.raises(ft.FastTextError, match=r"diverged \(NaN\) with lr=1000.0: lower --lr"):
        train_quality([data["pos"]], [data["neg"]], str(out), settings=settings)
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".bin", ".ftz"])
def test_one_thread_and_a_seed_give_a_byte_identical_model(data, tmp_path, suffix):
    # Repeated in one process on purpose: reused heap memory is where a binding that reads
    # uninitialised weights (fasttext-numpy2 0.10.4) gave a different model or NaN.
    settings = ft.TrainSettings(epoch=5, dim=8, bucket=100_000, seed=3, threads=1, cutoff=500)
    paths = [str(tmp_path / f"{name}{suffix}") for name in ("a", "b", "c", "other")]
    reports = [
        train_quality([data["pos"]], [data["neg"]], path, settings=settings) for path in paths[:3]
    ]
    other = ft.TrainSettings(**{**settings.to_dict(), "seed": 4})
    train_quality([data["pos"]], [data["neg"]], paths[3], settings=other)
    digests = [ft.sha256_file(path) for path in paths]
    assert digests[0] == digests[1] == digests[2] != digests[3]
    assert reports[0].metrics == reports[1].metrics == reports[2].metrics


def test_ftz_output_is_quantized_and_small(data, tmp_path):
    out = str(tmp_path / "q.ftz")
    settings = ft.TrainSettings(epoch=2, dim=8, bucket=100_000, cutoff=500)
    report = train_quality([data["pos"]], [data["neg"]], out, settings=settings)
    assert ft.load_model(out).model.is_quantized() and report.model_bytes < 200_000


def test_row_filters_select_classes_from_one_file(tmp_path):
    mixed = write(
        tmp_path / "mixed.parquet",
        make_docs(PROSE, 60, 1) + make_docs(WEB, 60, 2),
        source=["wiki"] * 60 + ["web"] * 60,
    )
    report = train_quality(
        [mixed], [mixed], str(tmp_path / "m.bin"),
        positive_where=["source=wiki"], negative_where=["source=web,forum"],
        settings=ft.TrainSettings(epoch=50, dim=8, bucket=100_000),
    )  # fmt: skip
    assert report.n_train == {"hq": 54, "lq": 54} and report.metrics["roc_auc"] > 0.9


def test_training_input_errors_are_sentences_before_training(data, tmp_path):
    out = str(tmp_path / "x.bin")
    with pytest.raises(ft.FastTextError, match="input file not found: .*missing.parquet"):
        train_quality([str(tmp_path / "missing.parquet")], [data["neg"]], out)
    with pytest.raises(ft.FastTextError, match="no column 'body'; its columns are: text"):
        train_quality([data["pos"]], [data["neg"]], out, text_column="body")
    with pytest.raises(ft.FastTextError, match="no positive text"):
        train_quality([data["pos"]], [data["neg"]], out, positive_where=["text=nothing"])
    blank = write(tmp_path / "blank.parquet", ["   ", "\n"])
    with pytest.raises(ft.FastTextError, match="no negative text"):
        train_quality([data["pos"]], [blank], out)


def test_jsonl_gz_inputs_are_read(data, tmp_path):
    import gzip

    path = tmp_path / "neg.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for text in make_docs(WEB, 30, 5):
            f.write(json.dumps({"text": text, "n": 1}) + "\n")
    table = ft.read_text([str(path)], "text")
    assert table.num_rows == 30 and table.column_names == ["text"]


# --------------------------------------------------------------------------- metrics


def test_roc_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.4
    s = np.round(rng.random(200) + y * 0.3, 1)  # rounding makes ties
    pos, neg = s[y], s[~y]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert roc_auc(y, s) == pytest.approx(pairwise)
    assert roc_auc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0 and roc_auc([1, 0], [0.1, 0.9]) == 0.0


def test_precision_recall_f1_at_threshold():
    m = binary_metrics([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1])
    assert (m["precision"], m["recall"], m["f1"]) == (0.5, 0.5, 0.5)
