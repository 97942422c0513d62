"""`curate plan`: footers read, per-step estimates, fit warnings, and the command itself."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate_tools import plan
from tests.conftest import words, write_corpus

STEPS = [("gq", "gopher_quality", {}), ("minhash", "minhash", {"bands": 14})]


def test_read_footer_counts_rows_and_text_bytes(tmp_path: Path):
    folder = write_corpus(tmp_path, [[words(50, i) for i in range(20)]])
    footer = plan.read_footer(str(folder / "shard-0.parquet"), "text")
    assert footer.rows == 20 and footer.file_bytes > 0 and footer.text_bytes > 20 * 100


def test_estimate_scales_with_rows_and_cores():
    one = plan.ShardFooter("a", 100_000, 50 * 2**20, 140 * 10**6)
    p1 = plan.estimate([one], STEPS, cores=1)
    p2 = plan.estimate([one, one], STEPS, cores=2)
    assert p1.steps[0].seconds == 100_000 / plan.RATES["gopher_quality"]
    assert abs(p2.seconds - p1.seconds) < 1e-9  # twice the rows on twice the cores
    assert p1.steps[1].sidecar_bytes == 100_000 * (16 + 8 * 14)
    assert p1.driver_bytes == plan.dedup_driver_bytes("minhash", 100_000, {})
    # The driver holds a piece index, not the duplicates: 1e9 documents need well under 1 GiB.
    assert plan.dedup_driver_bytes("minhash", 10**9, {}) < 2**30
    assert p1.disk_bytes > one.file_bytes


def test_longer_documents_take_longer():
    short = plan.estimate([plan.ShardFooter("a", 1000, 1, 700_000)], STEPS, cores=1)
    long = plan.estimate([plan.ShardFooter("a", 1000, 1, 2_800_000)], STEPS, cores=1)
    assert long.seconds == 4 * short.seconds


def test_check_fit_warns_only_when_it_does_not_fit():
    p = plan.estimate([plan.ShardFooter("a", 10**9, 500 * 2**30, 1400 * 10**9)], STEPS, cores=8)
    assert plan.check_fit(p, free_disk=10**15, free_memory=10**13) == []
    warnings = plan.check_fit(p, free_disk=2**30, free_memory=2**30)
    assert len(warnings) == 2 and "disk" in warnings[0] and "dedup driver" in warnings[1]
    assert plan.check_fit(p, None, None) == []


def test_plan_command_prints_estimates_and_warns(tmp_path: Path):
    folder = write_corpus(tmp_path / "in", [[words(30, i) for i in range(10)]] * 2)
    conf = tmp_path / "p.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(folder)},
                "output": {"path": str(tmp_path / "out")},
                "steps": [{"use": "gopher_quality"}, {"use": "exact_dedup"}],
            }
        )
    )
    result = CliRunner().invoke(app, ["plan", str(conf), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "gopher_quality" in result.output and "20 documents" in result.output
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    bad = CliRunner().invoke(app, ["plan", str(conf), "--set", "input.path=/nope"])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_minhash_with_default_bands_is_estimated():
    # Resolved params hold `bands: None` (14 x 8 by default, or chosen from `threshold`).
    one = plan.ShardFooter("a", 1000, 2**20, 10**6)
    p = plan.estimate([one], [("mh", "minhash", {"bands": None})], cores=1)
    assert p.steps[0].sidecar_bytes == 1000 * (16 + 8 * 14)
