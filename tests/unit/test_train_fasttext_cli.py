"""`curate train quality` / `curate train langid` through Typer: reports, files, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("fasttext")

from curate_tools.commands.train_fasttext import register  # noqa: E402

PROSE = "scholars describe the treaty as a turning point for regional trade and culture".split()
WEB = "click here login sign up cookie policy home menu share subscribe now cart".split()
FAST = ["--epoch", "20", "--dim", "8", "--bucket", "100000"]


def docs(words: list[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=rng.integers(8, 20))) for _ in range(n)]


@pytest.fixture
def cli():
    app, train = typer.Typer(), typer.Typer()
    register(train)
    app.add_typer(train, name="train")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["train", *args])


@pytest.fixture
def mixed(tmp_path):
    path = tmp_path / "mixed.parquet"
    texts = docs(PROSE, 80, 1) + docs(WEB, 80, 2)
    pq.write_table(pa.table({"text": texts, "source": ["wiki"] * 80 + ["web"] * 80}), path)
    return str(path)


def test_train_quality_prints_held_out_metrics_and_writes_model_and_sidecar(cli, mixed, tmp_path):
    out = tmp_path / "q.ftz"
    result = cli(
        "quality", "--positive", mixed, "--positive-where", "source=wiki",
        "--negative", mixed, "--negative-where", "source=web", "-o", str(out),
        "--cutoff", "1000", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for field in ("precision", "recall", "f1", "roc_auc", "model size", "training time"):
        assert field in result.output
    side = json.loads((tmp_path / "q.ftz.json").read_text())
    assert side["train"]["quantize"] is True and side["labels"] == ["hq", "lq"]


def test_train_langid_prints_accuracy_per_language(cli, mixed, tmp_path):
    out = tmp_path / "lid.bin"
    result = cli("langid", "--input", mixed, "--label-column", "source", "-o", str(out), *FAST)
    assert result.exit_code == 0, result.output
    assert "wiki" in result.output and "held-out accuracy" in result.output and out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--positive", "nope.parquet"], "input file not found: nope.parquet"),
        (["--positive", "{mixed}", "--text-column", "body"], "no column 'body'"),
        (["--positive", "{mixed}", "--positive-where", "source=none"], "no positive text"),
        (["--positive", "{mixed}", "--positive-where", "source"], "COLUMN=VALUE"),
    ],
)
def test_bad_inputs_exit_2_with_a_sentence_before_training(cli, mixed, tmp_path, args, message):
    args = [a.format(mixed=mixed) for a in args]
    result = cli("quality", *args, "--negative", mixed, "-o", str(tmp_path / "m.bin"))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "m.bin").exists()
