"""`curate select` through the CLI: budget, mix, ledger, report, and Ray = local, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate import runner
from curate.cli import app
from curate.config import PipelineConfig
from curate_tools.selection import parse_budget
from tests.conftest import SAMPLE

cli = CliRunner()
MIX = "wikipedia_en=0.5,python_docs=0.3,gutenberg=0.2"


@pytest.fixture(scope="module")
def annotated(tmp_path_factory) -> Path:
    """Token counts and DSIR weights toward the sample's first shard, for every row."""
    out = tmp_path_factory.mktemp("select") / "annotated"
    config = PipelineConfig.model_validate(
        {
            "input": {"path": str(SAMPLE), "id_column": "id"},
            "output": {"path": str(out)},
            "executor": "local",
            "steps": [
                {"use": "tokens"},
                {
                    "use": "dsir",
                    "params": {"target": str(SAMPLE / "part-0.parquet"), "pool": str(SAMPLE)},
                },
            ],
        }
    )
    runner.run(config, progress="plain")
    return out


def _select(annotated: Path, out: Path, *extra: str):
    args = ["select", str(annotated), "-o", str(out), "--budget", "200k", "--by", "source"]
    return cli.invoke(app, [*args, "--mix", MIX, "--progress", "plain", *extra])


def test_select_fills_the_budget_to_the_mix_and_ledgers_the_rest(annotated, tmp_path):
    result = _select(annotated, tmp_path / "sel", "--executor", "local", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert abs(report["budget_error_pct"]) < 2  # ~300 documents: a few hundred tokens each
    for group, share in (("wikipedia_en", 0.5), ("python_docs", 0.3), ("gutenberg", 0.2)):
        assert abs(report["groups"][group]["share"] - share) < 0.01
    assert report["groups"]["peps"]["selected_tokens"] == 0
    kl = report["kl"]["kl_target_to"]
    assert set(kl) == {"pool", "selection", "random_selection"}
    kept = pq.read_table(tmp_path / "sel" / "data")
    rejected = pq.read_table(tmp_path / "sel" / "rejected")
    assert kept.num_rows + rejected.num_rows == pq.read_table(annotated / "data").num_rows
    assert set(rejected["reason"].to_pylist()) == {"select"}
    assert pc.min(kept["select_repeat"]).as_py() >= 1
    chosen = pc.sum(pc.multiply(kept["select_repeat"], kept["tokens_count"])).as_py()
    assert chosen == report["selected_tokens"]
    stats = json.loads((tmp_path / "sel" / "stats.json").read_text())
    assert (
        stats["steps"]["select"]["tokens_in"]
        == pc.sum(pq.read_table(annotated / "data")["tokens_count"]).as_py()
    )


def test_a_short_group_is_repeated_up_to_the_cap_and_flagged(annotated, tmp_path):
    pool_wiki = pc.sum(
        pq.read_table(annotated / "data").filter(
            pc.equal(pq.read_table(annotated / "data")["source"], "wikipedia_en")
        )["tokens_count"]
    ).as_py()
    assert 2 * pool_wiki < 100_000  # half of 200k asked, more than two copies hold
    result = _select(annotated, tmp_path / "sel", "--executor", "local", "--max-repeat", "2")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "sel" / "select.json").read_text())
    wiki = report["groups"]["wikipedia_en"]
    assert wiki["short"] and wiki["selected_tokens"] == 2 * pool_wiki
    kept = pq.read_table(tmp_path / "sel" / "data")
    repeat = kept.filter(pc.equal(kept["source"], "wikipedia_en"))["select_repeat"]
    assert set(repeat.to_pylist()) == {2}
    assert (
        "short"
        in _select(
            annotated, tmp_path / "again", "--executor", "local", "--max-repeat", "2", "--no-report"
        ).output
    )


@pytest.mark.ray
def test_ray_and_local_choose_the_same_bytes(annotated, tmp_path, ray_session):
    local = _select(annotated, tmp_path / "local", "--executor", "local", "--no-report")
    on_ray = _select(annotated, tmp_path / "ray", "--workers", "2", "--no-report")
    assert local.exit_code == 0 and on_ray.exit_code == 0, on_ray.output
    for name in sorted(p.name for p in (tmp_path / "local" / "data").iterdir()):
        a = (tmp_path / "local" / "data" / name).read_bytes()
        assert a == (tmp_path / "ray" / "data" / name).read_bytes(), name


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mix", "wikipedia_en=0.5,klingon=0.5"], "no tokens in it"),
        (["--mix", "wikipedia_en=0.5,python_docs=0.2"], "sum to 1"),
        (["--tokens", "nope"], "--tokens nope: no such column"),
    ],
)
def test_a_bad_request_exits_2_and_says_why(annotated, tmp_path, extra, message):
    args = ["select", str(annotated), "-o", str(tmp_path / "s"), "--budget", "1M"]
    result = cli.invoke(app, [*args, "--by", "source", "--executor", "local", *extra])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "s").exists()


def test_budgets_read_like_people_write_them():
    assert parse_budget("2B") == 2_000_000_000
    assert parse_budget("1.5M") == 1_500_000
    assert parse_budget("10_000") == 10_000
    with pytest.raises(ValueError, match="not a token count"):
        parse_budget("lots")


def test_topk_keeps_every_row_scoring_above_every_row_it_drops(annotated, tmp_path):
    args = ["select", str(annotated), "-o", str(tmp_path / "top"), "--budget", "100k"]
    extra = ["--method", "topk", "--score", "dsir_log_weight", "--executor", "local"]
    result = cli.invoke(app, [*args, *extra, "--no-report", "--progress", "plain"])
    assert result.exit_code == 0, result.output
    kept = pq.read_table(tmp_path / "top" / "data")
    dropped = pq.read_table(tmp_path / "top" / "rejected")
    kept_ids = set(kept["id"].to_pylist())
    source = pq.read_table(annotated / "data")
    scores = dict(zip(source["id"].to_pylist(), source["dsir_log_weight"].to_pylist(), strict=True))
    assert min(scores[i] for i in kept_ids) >= max(scores[i] for i in dropped["id"].to_pylist())
    report = json.loads((tmp_path / "top" / "select.json").read_text())
    assert list(report["groups"]) == ["all"] and report["kl"] is None


def test_inspect_and_the_html_report_show_the_selection(annotated, tmp_path):
    assert _select(annotated, tmp_path / "sel", "--executor", "local").exit_code == 0
    shown = cli.invoke(app, ["inspect", str(tmp_path / "sel")])
    assert shown.exit_code == 0 and "python_docs" in shown.output and "KL" in shown.output
    page = tmp_path / "report.html"
    assert cli.invoke(app, ["inspect", str(tmp_path / "sel"), "--html", str(page)]).exit_code == 0
    text = page.read_text()
    assert "id='selection'" in text and "tokens in" in text
