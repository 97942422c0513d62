"""`curate calibrate` through the CLI: thresholds for keep rates, re-applied without re-scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate import runner
from curate.cli import app
from curate_tools import patch
from tests.conftest import REPO, SAMPLE

cli = CliRunner()
MODELS = REPO / "examples" / "quickstart" / "models"


@pytest.fixture(scope="module")
def annotated(tmp_path_factory) -> tuple[Path, Path]:
    """Quality scores for every row (annotate mode) after a Gopher filter; returns config, OUT."""
    tmp = tmp_path_factory.mktemp("calibrate")
    config = {
        "input": {"path": str(SAMPLE), "id_column": "id"},
        "output": {"path": str(tmp / "out")},
        "executor": "local",
        "steps": [
            {"use": "gopher_quality"},
            {
                "use": "fasttext_quality",
                "id": "quality",
                "mode": "annotate",
                "params": {"model": str(MODELS / "quality.ftz"), "min_prob": 0.5},
            },
        ],
    }
    path = tmp / "annotate.yaml"
    path.write_text(yaml.safe_dump(config))
    result = cli.invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    return path, tmp / "out"


@pytest.fixture
def no_model(monkeypatch):
    """Any attempt to load a fastText model fails the test: thresholds must reuse scores."""
    from curate_filters import _fasttext

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded in a run that should reuse stored scores")

    monkeypatch.setattr(_fasttext, "load_model", refuse)


def kept_rows(out: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (out / "data").glob("*.parquet"))


@pytest.mark.parametrize("keep", [0.3, 0.75])
def test_calibrated_threshold_reproduces_keep_rate_without_a_model(
    annotated, tmp_path, no_model, keep
):
    config, out = annotated
    rows = kept_rows(out)
    patch_file = tmp_path / "patch.yaml"
    result = cli.invoke(
        app,
        [
            "calibrate",
            str(out),
            "--step",
            "quality",
            "--keep",
            str(keep),
            "--patch",
            str(patch_file),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (group,) = report["groups"]
    assert group["rows"] == rows
    assert abs(group["kept"] - round(keep * rows)) <= 1
    overrides = yaml.safe_load(patch_file.read_text())["set"]
    assert f"steps.quality.params.min_prob={group['threshold']!r}" in overrides
    # The patch's overrides are plain --set assignments: apply them to the original config.
    rerun = tmp_path / "rerun"
    args = ["run", str(config), "--quiet", "--set", f"output.path={rerun}"]
    for o in overrides:
        if not o.startswith("output.path="):
            args += ["--set", o]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    stats = json.loads((rerun / "stats.json").read_text())
    assert stats["steps"]["quality"]["reused_scores"] is True
    assert stats["steps"]["quality"]["kept"] == group["kept"] == kept_rows(rerun)
    assert abs(kept_rows(rerun) - round(keep * rows)) <= 1


def test_per_group_thresholds_keep_each_groups_rate(annotated, tmp_path, no_model):
    config, out = annotated
    patch_file = tmp_path / "by.yaml"
    result = cli.invoke(
        app,
        [
            "calibrate",
            str(out),
            "--step",
            "quality",
            "--keep",
            "0.5",
            "--by",
            "source",
            "--patch",
            str(patch_file),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    groups = json.loads(result.output)["groups"]
    assert len(groups) >= 3
    for g in groups:
        assert abs(g["kept"] - round(0.5 * g["rows"])) <= 1, g
    loaded = patch.load(config, [patch_file], [f"output.path={tmp_path / 'rerun'}"])
    result = runner.run(loaded, overwrite=True, progress="quiet")
    assert result.stats["steps"]["quality"]["reused_scores"] is True
    kept = pa.concat_tables([pq.read_table(p) for p in (tmp_path / "rerun" / "data").glob("*")])
    for g in groups:
        n = pc.sum(pc.equal(kept.column("source"), g["group"])).as_py() or 0
        assert n == g["kept"], g


def test_percentile_sets_the_threshold_at_that_score_quantile(annotated):
    _, out = annotated
    result = cli.invoke(
        app,
        [
            "calibrate",
            str(out),
            "--step",
            "quality",
            "--percentile",
            "40",
            "--json",
            "--patch",
            str(out.parent / "p40.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    (group,) = json.loads(result.output)["groups"]
    assert abs(group["kept"] / group["rows"] - 0.6) < 0.02


def test_a_step_without_a_single_threshold_is_refused(annotated):
    _, out = annotated
    result = cli.invoke(app, ["calibrate", str(out), "--step", "gopher_quality", "--keep", "0.5"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "cannot be calibrated" in text and "fasttext_quality" in text


def test_missing_stats_is_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli.invoke(app, ["calibrate", str(tmp_path / "empty"), "--step", "q", "--keep", "0.5"])
    assert result.exit_code == 2
    assert "stats.json does not exist" in " ".join(result.output.split())
