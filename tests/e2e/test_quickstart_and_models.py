"""The README quickstart end to end on Ray, both perplexity backends and bad models via the CLI."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import REPO, SAMPLE, assert_accounted, read_ids, words, write_corpus
from tests.unit.test_perplexity import tiny_gpt2  # noqa: F401  (a fixture)

cli = CliRunner()
MODELS = REPO / "examples" / "quickstart" / "models"
PIPELINE = REPO / "examples" / "quickstart" / "pipeline.yaml"


@pytest.mark.ray
def test_quickstart_pipeline_runs_on_ray_and_accounts_for_every_document(
    ray_session, tmp_path, monkeypatch
):
    monkeypatch.chdir(REPO)
    out = tmp_path / "qs"
    result = cli.invoke(app, ["run", str(PIPELINE), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "curate funnel" in result.output
    assert_accounted(read_ids(SAMPLE), out)
    stats = json.loads((out / "stats.json").read_text())
    steps = stats["steps"]
    assert list(steps) == [
        "lang",
        "gopher_quality",
        "gopher_repetition",
        "fineweb_quality",
        "c4_lines",
        "pii",
        "c4_quality",
        "quality",
        "ppl",
        "minhash",
    ]
    assert all(steps[s]["dropped"] > 0 for s in ("lang", "quality", "ppl", "minhash"))
    assert steps["c4_quality"]["dropped"] == 0  # annotate mode
    assert steps["c4_lines"]["changed"] > 0 and steps["c4_lines"]["chars_removed"] > 0
    assert steps["pii"]["changed"] > 0  # the web pages of the sample hold a few addresses
    models = yaml.safe_load((out / "run.yaml").read_text())["models"]
    assert set(models) == {"lang", "quality", "ppl"}
    assert all(len(m["model"]["sha256"]) == 64 for m in models.values())
    kept = pq.read_schema(out / "data" / "part-00000.parquet").names
    assert {
        "quality_prob",
        "ppl_perplexity",
        "lang_lang",
        "minhash_cluster_size",
        "c4_quality_rule",
    } <= set(kept)


def _config(tmp_path, steps):
    inp = write_corpus(tmp_path / "in", [[words(30, i) for i in range(6)]])
    path = tmp_path / "p.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(inp), "id_column": "id"},
                "output": {"path": str(tmp_path / "out")},
                "executor": "local",
                "steps": steps,
            }
        )
    )
    return path


def test_hf_and_kenlm_perplexity_through_curate_run(tmp_path, tiny_gpt2):  # noqa: F811
    conf = _config(
        tmp_path,
        [
            {
                "use": "perplexity",
                "id": "ngram",
                "params": {
                    "backend": "kenlm",
                    "model": str(MODELS / "lm.binary"),
                    "max_perplexity": 1e9,
                },
            },
            {
                "use": "perplexity",
                "id": "lm",
                "params": {
                    "backend": "hf",
                    "model": tiny_gpt2,
                    "max_perplexity": 1e9,
                    "device": "cpu",
                },
            },
        ],
    )
    result = cli.invoke(app, ["run", str(conf), "--quiet"])
    assert result.exit_code == 0, result.output
    kept = pq.read_table(tmp_path / "out" / "data")
    assert kept.num_rows == 6
    for col in ("ngram_perplexity", "lm_perplexity"):
        values = kept[col].to_pylist()
        assert all(v > 1 for v in values), (col, values)


@pytest.mark.parametrize("case", ["missing", "corrupt", "no-such-label"])
def test_bad_models_fail_before_any_work_with_a_clear_error(tmp_path, case):
    model = str(MODELS / "quality.ftz")
    label, expect = "hq", ""
    if case == "missing":
        model, expect = str(tmp_path / "nope.ftz"), "does not exist"
    elif case == "corrupt":
        bad = tmp_path / "bad.ftz"
        bad.write_bytes(b"not a fasttext model at all" * 10)
        model, expect = str(bad), "bad.ftz"
    else:
        label, expect = "excellent", "excellent"
    conf = _config(
        tmp_path,
        [{"use": "fasttext_quality", "params": {"model": model, "label": label, "min_prob": 0.5}}],
    )
    result = cli.invoke(app, ["run", str(conf)])
    assert result.exit_code == 2, result.output
    assert expect in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not list((tmp_path / "out").glob("data/*.parquet"))
