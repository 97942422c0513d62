"""The perplexity step: CCNet's document perplexity, buckets, thresholds, and the hf backend."""

from __future__ import annotations

import math
import pickle
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

kenlm = pytest.importorskip("kenlm")

from curate_filters._ccnet_normalize import normalized_lines  # noqa: E402
from curate_filters.perplexity import Perplexity, PerplexityParams, assign_buckets  # noqa: E402

CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the rug",
    "a cat and a dog played in the garden",
    "the garden was green and the sun was warm",
    "in 1990 the cat was 3 years old",
]


def write_bigram_arpa(path, sentences: list[str]) -> str:
    """A small, valid bigram ARPA model estimated from `sentences` (no lmplz needed)."""
    unigrams, bigrams = Counter(), Counter()
    for sentence in sentences:
        words = ["<s>", *sentence.split(), "</s>"]
        unigrams.update(words)
        bigrams.update(zip(words[:-1], words[1:], strict=True))
    total = sum(unigrams.values())
    vocab = sorted(unigrams)
    lines = ["\\data\\", f"ngram 1={len(vocab) + 1}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    lines.append(f"{math.log10(0.5 / total):.6f}\t<unk>\t0")
    for w in vocab:
        prob = -99.0 if w == "<s>" else math.log10(unigrams[w] / total)
        lines.append(f"{prob:.6f}\t{w}\t{math.log10(0.3):.6f}")
    lines += ["", "\\2-grams:"]
    for (a, b), n in sorted(bigrams.items()):
        lines.append(f"{math.log10(0.7 * n / unigrams[a]):.6f}\t{a} {b}")
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines))
    return str(path)


@pytest.fixture(scope="module")
def arpa(tmp_path_factory) -> str:
    return write_bigram_arpa(tmp_path_factory.mktemp("lm") / "tiny.arpa", CORPUS)


def make(arpa: str, **params) -> Perplexity:
    step = Perplexity(PerplexityParams(model=arpa, **params))
    step.setup()
    return step


def table(*texts) -> pa.Table:
    return pa.table({"text": pa.array(list(texts), pa.string())})


def ccnet_reference(model, doc: str) -> float:
    """CCNet's formula spelled out: sum of line log10 scores over sum of (words + 1)."""
    lines, _ = normalized_lines(pa.array([doc]))
    log_score = sum(model.score(line, bos=True, eos=True) for line in lines.to_pylist())
    length = sum(len(line.split()) + 1 for line in lines.to_pylist())
    return 10.0 ** (-log_score / length)


def test_document_perplexity_is_ccnets_length_weighted_formula(arpa):
    docs = ["The cat sat on the mat.\nThe dog sat on the rug", "In 2024 the cat was 7 years old"]
    scores = make(arpa).score(table(*docs))
    model = kenlm.Model(arpa)
    expected = [ccnet_reference(model, d) for d in docs]
    np.testing.assert_allclose(scores["perplexity"].to_numpy(), expected, rtol=1e-12)


def test_in_domain_text_scores_lower_than_word_salad(arpa):
    ppl = make(arpa).score(table("The cat sat on the mat.", "Zebra quantum ferry oblique vortex"))
    in_domain, salad = ppl["perplexity"].to_pylist()
    assert in_domain < salad / 5


def test_scores_are_float64_and_typed_for_an_empty_batch(arpa):
    step = make(arpa, bucket_cutoffs=[10, 100])
    empty = step.score(table().cast(pa.schema([("text", pa.string())])))
    assert empty["perplexity"].type == pa.float64() and len(empty["perplexity"]) == 0
    assert empty["bucket"].type == pa.string() and len(empty["bucket"]) == 0
    assert set(make(arpa).score(table("the cat"))) == {"perplexity"}


def test_text_that_normalises_to_nothing_has_undefined_perplexity(arpa):
    scores = make(arpa, bucket_cutoffs=[10, 100]).score(table("\x01\u200b", "the cat"))
    assert math.isnan(scores["perplexity"][0].as_py())
    assert scores["bucket"].to_pylist()[0] is None


def test_undefined_perplexity_is_kept_without_conditions_and_dropped_with_any(arpa):
    batch = table("\x01", "the cat sat on the mat")
    assert make(arpa).keep(make(arpa).score(batch)).to_pylist() == [True, True]
    step = make(arpa, max_perplexity=1e9)
    assert step.keep(step.score(batch)).to_pylist() == [False, True]


def test_thresholds_keep_the_band_between_min_and_max(arpa):
    step = make(arpa)
    batch = table("the cat sat on the mat", "the garden was warm", "zebra quantum ferry")
    ppl = step.score(batch)["perplexity"].to_numpy()
    middle = float(np.sort(ppl)[1])
    banded = make(arpa, min_perplexity=middle, max_perplexity=middle)
    assert banded.keep(banded.score(batch)).to_pylist() == list(ppl == middle)


def test_buckets_split_at_the_cutoffs_with_lower_perplexity_at_the_head():
    ppl = np.array([5.0, 10.0, 50.0, 100.0, 1e6, np.nan])
    buckets = assign_buckets(ppl, [10.0, 100.0]).to_pylist()
    assert buckets == ["head", "middle", "middle", "tail", "tail", None]


def test_keep_selects_buckets(arpa):
    step = make(arpa, bucket_cutoffs=[1.0, 1e12], keep=["middle"])
    scores = step.score(table("the cat sat on the mat", "\x01"))
    assert scores["bucket"].to_pylist() == ["middle", None]
    assert step.keep(scores).to_pylist() == [True, False]
    head_only = make(arpa, bucket_cutoffs=[1.0, 1e12], keep=["head"])
    assert head_only.keep(scores).to_pylist() == [False, False]


def test_reference_file_sets_cutoffs_at_its_percentiles(arpa, tmp_path):
    docs = CORPUS + ["zebra quantum ferry", "oblique vortex cat", "the mat", "dog garden sun"]
    ref = tmp_path / "ref.parquet"
    pq.write_table(table(*docs), ref)
    step = make(arpa, reference=str(ref), buckets=[25, 75])
    ppl = step.score(table(*docs))["perplexity"].to_numpy()
    np.testing.assert_allclose(step.cutoffs, np.percentile(ppl, [25, 75]))
    txt = tmp_path / "ref.txt"
    txt.write_text("\n".join(docs) + "\n\n")
    np.testing.assert_allclose(make(arpa, reference=str(txt), buckets=[25, 75]).cutoffs,
                               step.cutoffs)  # fmt: skip


@pytest.mark.parametrize(
    "params",
    [
        {"keep": ["head"]},
        {"bucket_cutoffs": [1, 2], "reference": "ref.parquet"},
        {"bucket_cutoffs": [5, 2]},
        {"buckets": [60, 30]},
        {"buckets": [30]},
        {"backend": "onnx"},
        {"max_perplexity": 10, "unknown": 1},
    ],
)
def test_invalid_params_are_rejected_when_the_config_is_read(params):
    with pytest.raises(ValidationError):
        PerplexityParams(model="lm.arpa", **params)


def test_step_is_picklable_before_and_after_setup(arpa):
    step = Perplexity(PerplexityParams(model=arpa, bucket_cutoffs=[10, 100]))
    batch = table("the cat sat on the mat", "zebra quantum")
    clone = pickle.loads(pickle.dumps(step))
    step.setup()
    clone_after = pickle.loads(pickle.dumps(step))
    assert clone.score(batch)["perplexity"].equals(step.score(batch)["perplexity"])
    assert clone_after.score(batch)["bucket"].equals(step.score(batch)["bucket"])


def test_deterministic_and_independent_of_batch_split(arpa):
    step = make(arpa)
    docs = ["the cat sat on the mat", "Zebra\n\nquantum", "the dog\tsat", "ÉLAN 42 — yes"] * 5
    whole = step.score(table(*docs))["perplexity"].to_numpy()
    chunked = step.perplexity(pa.chunked_array([docs[:7], docs[7:]], pa.string()))
    np.testing.assert_array_equal(whole, chunked)
    np.testing.assert_array_equal(whole, step.score(table(*docs))["perplexity"].to_numpy())


def test_missing_model_file_is_a_clear_error(tmp_path):
    step = Perplexity(PerplexityParams(model=str(tmp_path / "nope.binary")))
    with pytest.raises(FileNotFoundError, match="nope.binary"):
        step.setup()


# --- hf backend -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory) -> str:
    """A 2-layer GPT-2 with random weights and a word-level tokenizer, saved locally."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from curate.testing import tiny_causal_lm

    return tiny_causal_lm(tmp_path_factory.mktemp("gpt2"), CORPUS)


def hf(folder: str, **params) -> Perplexity:
    return make(folder, backend="hf", device="cpu", **params)


def test_hf_perplexity_is_exp_of_the_models_mean_token_loss(tiny_gpt2):
    import torch
    import transformers

    doc = "the cat sat on the mat"
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_gpt2)
    ids = torch.tensor([[1, *tokenizer(doc, add_special_tokens=False)["input_ids"]]])
    with torch.inference_mode():
        expected = math.exp(model(ids, labels=ids).loss.item())
    ppl = hf(tiny_gpt2).score(table(doc))["perplexity"][0].as_py()
    assert ppl == pytest.approx(expected, rel=1e-5)


def test_hf_padding_and_batching_do_not_change_scores(tiny_gpt2):
    docs = ["the cat", "the garden was green and the sun was warm in the garden", "a dog"]
    alone = [hf(tiny_gpt2).score(table(d))["perplexity"][0].as_py() for d in docs]
    together = hf(tiny_gpt2, batch_size=3).score(table(*docs))["perplexity"].to_pylist()
    np.testing.assert_allclose(together, alone, rtol=1e-5)


def test_hf_truncates_to_max_tokens(tiny_gpt2):
    long_doc = "the cat sat on the mat " * 40
    short = hf(tiny_gpt2, max_tokens=7).score(table(long_doc, "the cat sat on the mat"))
    a, b = short["perplexity"].to_pylist()
    assert a == pytest.approx(b, rel=1e-5)


def test_hf_max_tokens_set_beyond_the_models_positions_is_refused_the_default_capped(tiny_gpt2):
    import transformers

    positions = transformers.AutoConfig.from_pretrained(tiny_gpt2).n_positions
    long_doc = "the cat sat on the mat " * 40  # more tokens than the model has positions

    def score(step: Perplexity) -> float:
        return step.score(table(long_doc))["perplexity"][0].as_py()

    at_most = score(hf(tiny_gpt2, max_tokens=positions))
    assert at_most > 0
    # The default (1024) yields to the model's positions: the same score, no IndexError.
    assert score(hf(tiny_gpt2)) == at_most
    with pytest.raises(
        ValueError, match=f"max_tokens {positions + 1} is more than the {positions}"
    ):
        hf(tiny_gpt2, max_tokens=positions + 1)


def test_hf_empty_text_is_undefined_and_empty_batch_typed(tiny_gpt2):
    step = hf(tiny_gpt2)
    assert math.isnan(step.score(table(""))["perplexity"][0].as_py())
    assert step.score(table().cast(pa.schema([("text", pa.string())])))["perplexity"].type == (
        pa.float64()
    )


def test_hf_without_torch_says_what_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    step = Perplexity(PerplexityParams(model=str(tmp_path), backend="hf"))
    with pytest.raises(ImportError, match=r"curate\[torch\]"):
        step.setup()
