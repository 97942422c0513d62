"""fasttext_langid: scores are (lang, score), keep thresholds them, training reports accuracy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("fasttext")

from curate_filters import _fasttext as ft  # noqa: E402
from curate_filters.langid import FastTextLangID, accuracy_by_language, train_langid  # noqa: E402

WORDS = {
    "en": "the house is very old and the garden behind it is full of flowers".split(),
    "fr": "la maison est très vieille et le jardin derrière elle est plein de fleurs".split(),
    "de": "das haus ist sehr alt und der garten dahinter ist voller blumen".split(),
}


def sentences(lang: str, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS[lang], size=rng.integers(5, 15))) for _ in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("langid")
    texts, langs = [], []
    for i, lang in enumerate(WORDS):
        texts += sentences(lang, 100, i)
        langs += [lang] * 100
    path = root / "lid.parquet"
    pq.write_table(pa.table({"text": texts, "lang": langs}), path)
    return str(path), root


@pytest.fixture(scope="module")
def model(corpus):
    path, root = corpus
    out = str(root / "lid.bin")
    settings = ft.TrainSettings(epoch=20, dim=8, minn=2, maxn=4, word_ngrams=1, bucket=100_000)
    return out, train_langid([path], out, settings=settings)


def langid(path: str, **params) -> FastTextLangID:
    step = FastTextLangID(FastTextLangID.Params(model=path, **params))
    step.setup()
    return step


def test_scores_are_the_language_code_and_its_probability(model):
    step = langid(model[0])
    batch = pa.table({"text": sentences("fr", 5, 10) + sentences("de", 5, 11)})
    scores = step.score(batch)
    assert scores["lang"].type == pa.string() and scores["score"].type == pa.float32()
    assert scores["lang"].to_pylist() == ["fr"] * 5 + ["de"] * 5
    assert all(0.0 < s <= 1.0 + 1e-4 for s in scores["score"].to_pylist())


def test_keep_selects_languages_and_a_minimum_score(model):
    step = langid(model[0], languages=["__label__en", "fr"], min_score=0.5)
    scores = {"lang": pa.array(["en", "fr", "de", "en"]), "score": pa.array([0.9, 0.6, 0.99, 0.4])}
    assert step.keep(scores).to_pylist() == [True, True, False, False]
    assert langid(model[0]).keep(scores).to_pylist() == [True] * 4


def test_empty_batch_and_odd_text_are_typed(model):
    step = langid(model[0])
    empty = step.score(pa.table({"text": pa.array([], pa.string())}))
    assert empty["lang"].type == pa.string() and empty["score"].type == pa.float32()
    assert len(empty["lang"]) == len(empty["score"]) == 0
    odd = step.score(pa.table({"text": ["", "\U0001f600\u200b", "a\nb\tc"]}))
    assert len(odd["lang"]) == 3 and odd["lang"].null_count == 0


def test_a_language_the_model_lacks_is_a_setup_error_listing_its_labels(model):
    with pytest.raises(ft.FastTextError, match="no label 'xx'; its labels are: .*de"):
        langid(model[0], languages=["xx"])


def test_training_reports_accuracy_per_language(model):
    report = model[1]
    assert report.n_train == {"de": 90, "en": 90, "fr": 90}
    assert report.n_holdout == {"de": 10, "en": 10, "fr": 10}
    assert report.accuracy >= 0.8 and set(report.per_language) == {"de", "en", "fr"}


def test_one_thread_and_a_seed_give_a_byte_identical_model(corpus, model, tmp_path):
    path, _ = corpus
    settings = ft.TrainSettings(epoch=20, dim=8, minn=2, maxn=4, word_ngrams=1, bucket=100_000)
    again = str(tmp_path / "again.bin")
    report = train_langid([path], again, settings=settings)
    assert ft.sha256_file(again) == ft.sha256_file(model[0])
    assert report.per_language == model[1].per_language


def test_training_input_errors(corpus, tmp_path):
    path, _ = corpus
    with pytest.raises(ft.FastTextError, match="no column 'language'"):
        train_langid([path], str(tmp_path / "x.bin"), label_column="language")
    spaced = tmp_path / "spaced.parquet"
    pq.write_table(pa.table({"text": ["hello there"] * 4, "lang": ["en us"] * 4}), spaced)
    with pytest.raises(ft.FastTextError, match="cannot use as labels"):
        train_langid([str(spaced)], str(tmp_path / "x.bin"))
    with pytest.raises(ft.FastTextError, match="no input text"):
        train_langid([path], str(tmp_path / "x.bin"), where=["lang=xx"])


def test_accuracy_by_language():
    overall, per = accuracy_by_language(["en", "en", "fr", "fr"], ["en", "fr", "fr", "fr"])
    assert overall == 0.75 and per == {"en": 0.5, "fr": 1.0}
