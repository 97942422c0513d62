"""`curate check` through the CLI: exit 0 / 1 / 2, the table, JUnit XML and JSON."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate_tools.check import psi
from tests.conftest import SAMPLE

cli = CliRunner()


def config(tmp_path: Path) -> Path:
    data = {
        "input": {"path": str(SAMPLE), "id_column": "id"},
        "output": {"path": str(tmp_path / "never-written")},
        "steps": [{"use": "gopher_quality"}, {"use": "fineweb_quality"}, {"use": "exact_dedup"}],
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def expect(tmp_path: Path, **sections) -> Path:
    path = tmp_path / "expect.yaml"
    path.write_text(yaml.safe_dump({"sample": 300, "seed": 1, **sections}))
    return path


PASSING = {
    "schema": {"id": "string", "text": "string", "gopher_quality_word_count": "int64"},
    "keep_rate": {"gopher_quality": [0.5, 1.0], "total": [0.3, 1.0]},
    "max_duplicate_rate": {"exact_dedup": 0.2},
    "min_documents": {"input": 300, "kept": 100},
}


def run_check(tmp_path: Path, target: Path, exp: Path, *extra: str):
    junit, js = tmp_path / "check.xml", tmp_path / "check.json"
    args = [
        "check",
        str(target),
        "--expect",
        str(exp),
        "--junit",
        str(junit),
        "--json-file",
        str(js),
    ]
    result = cli.invoke(app, [*args, *extra])
    return result, junit, js


def test_passing_expectations_exit_0_with_a_junit_suite(tmp_path):
    result, junit, js = run_check(tmp_path, config(tmp_path), expect(tmp_path, **PASSING))
    assert result.exit_code == 0, result.output
    assert "keep_rate[gopher_quality]" in result.output and "pass" in result.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) == 8
    report = json.loads(js.read_text())
    assert report["status"] == "pass" and report["sample"] == 300


def test_a_failing_band_exits_1_and_names_the_expectation(tmp_path):
    sections = {**PASSING, "keep_rate": {"gopher_quality": [0.999, 1.0]}}
    result, junit, js = run_check(tmp_path, config(tmp_path), expect(tmp_path, **sections))
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    cases = ET.parse(junit).getroot().iter("testcase")
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert list(failed) == ["keep_rate[gopher_quality]"]
    assert "outside [0.999, 1.0]" in failed["keep_rate[gopher_quality]"].get("message")
    report = json.loads(js.read_text())
    assert report["status"] == "fail" and report["exit_code"] == 1


def test_schema_type_mismatch_fails(tmp_path):
    sections = {"schema": {"gopher_quality_word_count": "string", "nope": None}}
    result, junit, _ = run_check(tmp_path, config(tmp_path), expect(tmp_path, **sections))
    assert result.exit_code == 1
    names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
    assert names == ["schema[gopher_quality_word_count]", "schema[nope]"]


def test_drift_against_a_baseline_reports_the_statistic(tmp_path):
    drift = {
        "baseline": "base.json",
        "columns": ["gopher_quality_alpha_words_frac"],
        "max_statistic": 0.2,
    }
    exp = expect(tmp_path, drift=drift)
    result, _, _ = run_check(tmp_path, config(tmp_path), exp, "--write-baseline")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "base.json").exists()
    # Another seed draws other documents of the same corpus: a small KS statistic, passes.
    exp.write_text(yaml.safe_dump({"sample": 300, "seed": 7, "drift": drift}))
    result, _, js = run_check(tmp_path, config(tmp_path), exp)
    assert result.exit_code == 0, result.output
    (res,) = json.loads(js.read_text())["expectations"]
    assert 0 < res["statistic"] < 0.2 and res["observed"].startswith("KS ")
    # A ceiling below that statistic fails.
    exp.write_text(
        yaml.safe_dump(
            {"sample": 300, "seed": 7, "drift": {**drift, "max_statistic": res["statistic"] / 2}}
        )
    )
    result, _, _ = run_check(tmp_path, config(tmp_path), exp)
    assert result.exit_code == 1


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(size=5000)
    assert psi(base, base) == pytest.approx(0, abs=1e-9)
    assert psi(base, rng.normal(size=5000)) < 0.05 < psi(base, rng.normal(1.0, size=5000))


def test_an_existing_output_is_read_not_rerun(tmp_path):
    cfg = config(tmp_path)
    out = tmp_path / "out"
    run = cli.invoke(app, ["run", str(cfg), "--quiet", "--executor", "local", "--output", str(out)])
    assert run.exit_code == 0, run.output
    result, _, js = run_check(tmp_path, out, expect(tmp_path, **PASSING))
    assert result.exit_code == 0, result.output
    report = json.loads(js.read_text())
    assert report["sample"] is None and report["output"] == str(out)
    observed = {r["name"]: r["observed"] for r in report["expectations"]}
    assert observed["min_documents[input]"] == "904"  # the whole corpus, not a sample


@pytest.mark.parametrize("content", [None, "{broken", "[]"])
def test_missing_or_corrupt_stats_exit_2_with_a_clear_message(tmp_path, content):
    cfg = config(tmp_path)
    out = tmp_path / "out"
    assert (
        cli.invoke(
            app, ["run", str(cfg), "--quiet", "--executor", "local", "--output", str(out)]
        ).exit_code
        == 0
    )
    if content is None:
        (out / "stats.json").unlink()
    else:
        (out / "stats.json").write_text(content)
    result, junit, js = run_check(tmp_path, out, expect(tmp_path, **PASSING))
    assert result.exit_code == 2
    assert "stats.json" in " ".join(result.output.split())
    assert ET.parse(junit).getroot().find("testsuite").get("errors") == "1"
    assert json.loads(js.read_text())["status"] == "error"


def test_bad_config_or_expectations_exit_2(tmp_path):
    result, _, _ = run_check(tmp_path, tmp_path / "missing.yaml", expect(tmp_path, **PASSING))
    assert result.exit_code == 2 and "does not exist" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("keep_rates: {}\n")
    result, _, _ = run_check(tmp_path, config(tmp_path), bad)
    assert result.exit_code == 2 and "keep_rates: unknown key" in result.output


def test_the_shipped_quickstart_expectations_pass():
    repo = SAMPLE.parents[2]
    if (
        shutil.which("lmplz") is None
        and not (repo / "examples/quickstart/models/lm.binary").exists()
    ):
        pytest.skip("quickstart models absent")
    result = cli.invoke(
        app,
        [
            "check",
            str(repo / "examples/quickstart/pipeline.yaml"),
            "--expect",
            str(repo / "examples/check/expect.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
