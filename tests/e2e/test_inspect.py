"""`curate inspect` through the CLI on a real small output: funnel, samples, histograms, HTML."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import REPO, SAMPLE

cli = CliRunner()
MODELS = REPO / "examples" / "quickstart" / "models"


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """The quickstart sample through heuristics, the quality classifier and exact dedup."""
    tmp = tmp_path_factory.mktemp("inspect")
    config = {
        "input": {"path": str(SAMPLE), "id_column": "id"},
        "output": {"path": str(tmp / "out")},
        "executor": "local",
        "steps": [
            {"use": "gopher_quality"},
            {
                "use": "fasttext_quality",
                "id": "quality",
                "params": {"model": str(MODELS / "quality.ftz"), "min_prob": 0.2},
            },
            {"use": "exact_dedup"},
        ],
    }
    path = tmp / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    result = cli.invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    return tmp / "out"


def test_funnel_lists_steps_in_pipeline_order(out):
    result = cli.invoke(app, ["inspect", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.index("gopher_quality") < text.index("quality ") < text.index("exact_dedup")
    stats = json.loads((out / "stats.json").read_text())
    assert f"{stats['total']['documents']:,}" in text


def test_reason_sample_json_gives_the_steps_scores(out):
    args = ["inspect", str(out), "--reason", "quality", "--sample", "4", "--seed", "3", "--json"]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    docs = json.loads(result.output)["documents"]
    assert len(docs) == 4
    assert all(d["quality_prob"] < 0.2 for d in docs)
    again = json.loads(cli.invoke(app, args).output)["documents"]
    assert [d["id"] for d in again] == [d["id"] for d in docs]  # seeded


def test_reason_table_shortens_text(out):
    result = cli.invoke(
        app, ["inspect", str(out), "--reason", "gopher_quality", "--sample", "2", "--width", "60"]
    )
    assert result.exit_code == 0, result.output
    assert "rejected by gopher_quality" in result.output
    assert "…" in result.output


def test_unknown_reason_is_a_clear_error(out):
    result = cli.invoke(app, ["inspect", str(out), "--reason", "nope"])
    assert result.exit_code == 2
    assert "no step 'nope'" in result.output


def test_scores_marks_the_threshold(out):
    result = cli.invoke(app, ["inspect", str(out), "--scores", "--step", "quality"])
    assert result.exit_code == 0, result.output
    assert "quality_prob" in result.output
    assert "threshold 0.2" in result.output
    hists = json.loads(cli.invoke(app, ["inspect", str(out), "--scores", "--json"]).output)
    quality = next(h for h in hists if h["column"] == "quality_prob")
    assert quality["threshold"] == {"direction": "min", "value": 0.2}
    assert sum(quality["counts"]) == quality["rows"] > 0


@pytest.mark.parametrize("content", [None, "{not json", '{"steps": {}}'])
def test_missing_or_corrupt_stats_exit_2(out, tmp_path, content):
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    if content is None:
        (broken / "stats.json").unlink()
    else:
        (broken / "stats.json").write_text(content)
    result = cli.invoke(app, ["inspect", str(broken)])
    assert result.exit_code == 2
    assert "stats.json" in result.output


def test_html_report_is_self_contained(out, tmp_path):
    pytest.importorskip("matplotlib")
    page = tmp_path / "report.html"
    result = cli.invoke(app, ["inspect", str(out), "--html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "<svg" in html and "id='funnel-chart'" in html
    for ref in ('src="http', "src='http", 'href="http', "<script", "@import"):
        assert ref not in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium package")
def test_html_report_renders_in_headless_chromium(out, tmp_path):
    pytest.importorskip("matplotlib")
    page = tmp_path / "report.html"
    assert cli.invoke(app, ["inspect", str(out), "--html", str(page)]).exit_code == 0
    dom = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "curate report" in dom
    for section in ("funnel-chart", "step-gopher_quality", "step-quality", "step-exact_dedup"):
        assert f'id="{section}"' in dom
    assert "rejected examples" in dom and "Duplicate clusters" in dom
    assert dom.count("<svg") >= 3
    assert "min 0.2" in dom  # the quality threshold drawn on its histogram
