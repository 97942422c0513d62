"""`curate train lm`: finds KenLM's programs, trains a usable model, and fails with clear errors."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

kenlm = pytest.importorskip("kenlm")

from curate_filters import perplexity as ppl_module  # noqa: E402
from curate_filters._ccnet_normalize import normalized_lines  # noqa: E402
from curate_filters.perplexity import (  # noqa: E402
    KenLMNotFound,
    Perplexity,
    PerplexityParams,
    find_kenlm_bin,
    parse_prune,
    parse_where,
    write_training_corpus,
)
from curate_tools.commands.train_lm import register  # noqa: E402

TEXTS = [
    "The cat sat on the mat.\nThe dog sat on the rug.",
    "A cat and a dog played in the garden — happily.",
    "In 1990 the cat was 3 years old.",
    "Café society met in the garden.",
] * 30


def have_kenlm_programs() -> bool:
    try:
        find_kenlm_bin("lmplz")
        find_kenlm_bin("build_binary")
    except KenLMNotFound:
        return False
    return True


needs_lmplz = pytest.mark.skipif(
    not have_kenlm_programs(), reason="lmplz/build_binary absent: bash scripts/build_kenlm.sh"
)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "train.parquet"
    sources = ["wiki", "web", "wiki", "wiki"] * 30
    pq.write_table(pa.table({"text": TEXTS, "source": sources}), path)
    return path


@pytest.fixture
def cli():
    app, train = typer.Typer(), typer.Typer()
    register(train)
    app.add_typer(train, name="train")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["train", "lm", *map(str, args)])


def test_training_text_is_the_scoring_normalisation(corpus, tmp_path):
    out = tmp_path / "corpus.txt"
    stats = write_training_corpus([str(corpus)], out, where={"source": ["wiki"]})
    expected, _ = normalized_lines(pa.array([t for i, t in enumerate(TEXTS) if i % 4 != 1]))
    assert out.read_text().splitlines() == expected.to_pylist()
    assert stats.documents == 90 and stats.lines == len(expected)


def test_prune_and_where_parsing():
    assert parse_prune("0 0 1", 3) == [0, 0, 1]
    assert parse_prune("0,1,1", 5) == [0, 1, 1]
    assert parse_prune(None, 5) == []
    for bad in ("1 1", "0 2 1", "0 0 0 1"):
        with pytest.raises(ValueError):
            parse_prune(bad, 3)
    assert parse_where(["source=a,b", "lang=en"]) == {"source": ["a", "b"], "lang": ["en"]}
    with pytest.raises(ValueError, match="COLUMN=VALUE"):
        parse_where(["source"])


def test_kenlm_programs_are_looked_up_in_the_explicit_folder_first(tmp_path, monkeypatch):
    (tmp_path / "lmplz").write_text("#!/bin/sh\n")
    monkeypatch.setenv("CURATE_KENLM_BIN", "/nonexistent")
    assert find_kenlm_bin("lmplz", str(tmp_path)) == str(tmp_path / "lmplz")
    monkeypatch.setenv("CURATE_KENLM_BIN", str(tmp_path))
    assert find_kenlm_bin("lmplz") == str(tmp_path / "lmplz")


def test_missing_programs_say_how_to_build_them(tmp_path, monkeypatch, cli, corpus):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CURATE_KENLM_BIN", raising=False)
    monkeypatch.setattr(ppl_module, "REPO_KENLM_BIN", tmp_path / "none")
    with pytest.raises(KenLMNotFound, match="scripts/build_kenlm.sh"):
        find_kenlm_bin("lmplz")
    result = cli("--input", corpus, "-o", tmp_path / "m.binary")
    assert result.exit_code == 2
    assert "build_kenlm.sh" in result.output


@needs_lmplz
def test_trained_model_prefers_its_own_domain(cli, corpus, tmp_path):
    out = tmp_path / "lm.binary"
    result = cli("--input", corpus, "-o", out, "--order", "3", "--prune", "0 0 1")
    assert result.exit_code == 0, result.output
    assert "training lines" in result.output
    step = Perplexity(PerplexityParams(model=str(out)))
    scores = step.score(pa.table({"text": ["The cat sat on the mat.", "Quantum zebra ferries"]}))
    in_domain, salad = scores["perplexity"].to_pylist()
    assert in_domain < salad


@needs_lmplz
def test_arpa_and_quantized_trie_outputs(cli, corpus, tmp_path):
    arpa = tmp_path / "lm.arpa"
    assert cli("--input", corpus, "-o", arpa, "--order", "2").exit_code == 0
    assert arpa.read_text().lstrip().startswith("\\data\\")
    trie = tmp_path / "lm.trie"
    result = cli("--input", corpus, "-o", trie, "--order", "3", "--structure", "trie",
                 "--quantize", "8")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert kenlm.Model(str(trie)).order == 3


@needs_lmplz
def test_bad_inputs_are_sentences_not_tracebacks(cli, corpus, tmp_path):
    result = cli("--input", corpus, "-o", tmp_path / "m.binary", "--text-column", "body")
    assert result.exit_code == 2 and "'body'" in result.output
    result = cli("--input", corpus, "-o", tmp_path / "m.binary", "--prune", "1 1")
    assert result.exit_code == 2 and "--prune" in result.output
    result = cli("--input", tmp_path / "missing.parquet", "-o", tmp_path / "m.binary")
    assert result.exit_code == 2 and "missing.parquet" in result.output
