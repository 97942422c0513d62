"""The tokens step: regex estimates, a tokenizer trained by `curate train tokenizer`, the funnel."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate import runner
from curate.cli import app
from curate.config import PipelineConfig
from curate_filters.tokens import Tokens
from tests.conftest import SAMPLE

pytest.importorskip("tokenizers")
cli = CliRunner()


def _count(params: dict, texts: list[str]) -> list[int]:
    step = Tokens(Tokens.Params.model_validate(params))
    step.setup()
    return step.score(pa.table({"text": texts}))["count"].to_pylist()


def test_regex_estimate_counts_words_numbers_and_punctuation():
    assert _count({}, ["Hello, world! 42", ""]) == [5, 0]


def test_whitespace_estimate_with_a_scale():
    assert _count({"estimator": "whitespace", "scale": 1.5}, ["one two three four"]) == [6]


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tok.json"
    result = cli.invoke(
        app,
        ["train", "tokenizer", "--input", str(SAMPLE), "-o", str(out), "--vocab-size", "600"],
    )
    assert result.exit_code == 0, result.output
    return out


def test_trained_tokenizer_counts_what_the_library_counts(tokenizer_file):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    assert tok.get_vocab_size() == 600
    texts = ["The quick brown fox.", "def main():\n    return 42", "ünïcödé"]
    assert _count({"tokenizer": str(tokenizer_file)}, texts) == [
        len(tok.encode(t, add_special_tokens=False).ids) for t in texts
    ]


def test_a_file_that_is_no_tokenizer_is_named(tmp_path):
    bad = tmp_path / "tok.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a tokenizers JSON"):
        _count({"tokenizer": str(bad)}, ["x"])


def test_training_on_a_missing_input_exits_2(tmp_path):
    result = cli.invoke(
        app, ["train", "tokenizer", "--input", str(tmp_path / "nope"), "-o", str(tmp_path / "t")]
    )
    assert result.exit_code == 2 and "not found" in result.output


def test_the_funnel_counts_tokens_in_kept_and_dropped(tmp_path, tokenizer_file):
    config = PipelineConfig.model_validate(
        {
            "input": {"path": str(SAMPLE), "id_column": "id"},
            "output": {"path": str(tmp_path / "out")},
            "executor": "local",
            "steps": [
                {"use": "tokens", "params": {"tokenizer": str(tokenizer_file)}},
                {"use": "gopher_quality"},
            ],
        }
    )
    stats = runner.run(config, progress="plain").stats
    kept = pq.read_table(tmp_path / "out" / "data")
    rejected = pq.read_table(tmp_path / "out" / "rejected")
    tok, gopher = stats["steps"]["tokens"], stats["steps"]["gopher_quality"]
    kept_tokens = pc.sum(kept["tokens_count"]).as_py()
    dropped = pc.sum(
        rejected.filter(pc.equal(rejected["reason"], "gopher_quality"))["tokens_count"]
    )
    assert tok["tokens_in"] == tok["tokens_kept"] == gopher["tokens_in"]
    assert gopher["tokens_kept"] == kept_tokens and gopher["tokens_dropped"] == dropped.as_py()
    assert stats["total"]["tokens"] == {"in": tok["tokens_in"], "kept": kept_tokens}
    result = cli.invoke(app, ["inspect", str(tmp_path / "out")])
    assert result.exit_code == 0 and "tokens" in result.output


def test_an_unloaded_tokenizer_is_an_error_not_an_estimate(tokenizer_file):
    step = Tokens(Tokens.Params(tokenizer=str(tokenizer_file)))
    with pytest.raises(RuntimeError, match="not set up"):
        step.score(pa.table({"text": ["x"]}))
