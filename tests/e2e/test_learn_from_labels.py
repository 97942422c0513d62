"""Labels through the CLI: eval, train combine, learned_quality, calibrate, labels and teacher.

The labels are built by hand from the quickstart sample (shippable text): reference sources
(Wikipedia, books, Python docs, PEPs) are keeps, the crawled web pages drops. Runs use
`--executor local`; the models are the quickstart's, trained by curate's own commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import REPO, SAMPLE

pytest.importorskip("sklearn")
pytest.importorskip("fasttext")

cli = CliRunner()
MODELS = REPO / "examples" / "quickstart" / "models"
KEEP_SOURCES = ["wikipedia_en", "gutenberg", "python_docs", "peps"]
FAST = ["--epoch", "10", "--dim", "8", "--bucket", "50000", "--max-chars", "2000"]


def steps(mode: str = "annotate") -> list[dict]:
    return [
        {"use": "gopher_quality", "mode": mode, "params": {"min_doc_words": 30}},
        {"use": "fineweb_quality", "mode": mode},
        {
            "use": "fasttext_quality",
            "id": "quality",
            "mode": mode,
            "params": {"model": str(MODELS / "quality.ftz"), "min_prob": 0.5},
        },
    ]


def write_config(path: Path, src: str, out: Path, step_list: list[dict]) -> Path:
    config = {
        "input": {"path": src, "id_column": "id"},
        "output": {"path": str(out)},
        "executor": "local",
        "steps": step_list,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def invoke(*args: str):
    return cli.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> dict[str, Path]:
    """An annotate-mode output of the sample, and labels for 80 + 80 of its documents."""
    tmp = tmp_path_factory.mktemp("labels")
    sample = pq.read_table(SAMPLE).sort_by("id")
    keep = pc.is_in(sample["source"], pa.array(KEEP_SOURCES))
    web = sample.filter(pc.equal(sample["source"], "cc_web")).slice(0, 80)
    good = sample.filter(keep).slice(0, 80)
    rows = pa.concat_tables([good, web])
    label = pa.array([1] * good.num_rows + [0] * web.num_rows, pa.int64())
    labels = tmp / "labels.parquet"
    pq.write_table(rows.select(["id", "text"]).append_column("label", label), labels)
    config = write_config(tmp / "annotate.yaml", str(SAMPLE), tmp / "out", steps())
    result = invoke("run", config, "--quiet")
    assert result.exit_code == 0, result.output
    return {"labels": labels, "out": tmp / "out", "config": config, "tmp": tmp}


def test_eval_reports_every_score_column_with_intervals(labelled):
    result = invoke("eval", labelled["out"], "--labels", labelled["labels"], "--json",
                    "--resamples", "200")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rows"] == 160 and report["unmatched_labels"] == 0
    by_name = {c["column"]: c for c in report["columns"]}
    prob = by_name["quality_prob"]
    assert prob["better"] == "higher" and prob["direction_from"] == "step"
    lo, hi = prob["roc_auc_ci95"]
    assert lo <= prob["roc_auc"] <= hi
    assert [t["keep_rate"] for t in prob["trade_off"]] == [0.1, 0.25, 0.5, 0.75, 0.9]
    assert {s["step"] for s in report["steps"]} == {"gopher_quality", "fineweb_quality", "quality"}


def test_eval_of_a_config_scores_the_labelled_documents_first(labelled, tmp_path):
    result = invoke("eval", labelled["config"], "--labels", labelled["labels"], "--json",
                    "--resamples", "50", "--step", "quality")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rows"] == 160
    assert [c["column"] for c in report["columns"]] == ["quality_prob"]


def test_eval_html_has_roc_curves(labelled, tmp_path):
    pytest.importorskip("matplotlib")
    page = tmp_path / "report.html"
    result = invoke("eval", labelled["out"], "--labels", labelled["labels"], "--html", page,
                    "--resamples", "50")  # fmt: skip
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "id='evaluation'" in text and "id='roc-curves'" in text and "<svg" in text
    assert "id='funnel'" in text  # the rest of the report is there too


def test_eval_with_labels_of_other_documents_says_so(labelled, tmp_path):
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": ["nope-1", "nope-2"], "label": [1, 0]}), other)
    result = invoke("eval", labelled["out"], "--labels", other)
    assert result.exit_code == 2
    assert "none of the 2 ids" in result.output


@pytest.fixture(scope="module")
def combiner(labelled) -> Path:
    model = labelled["tmp"] / "combine.json"
    result = invoke("train", "combine", labelled["out"], "--labels", labelled["labels"],
                    "-o", model, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["cv"]["folds"] == 5 and 0.5 < report["cv"]["roc_auc_mean"] <= 1.0
    assert "quality_prob" in report["features"]
    return model


def test_combine_writes_a_versioned_hashed_model(combiner):
    body = json.loads(combiner.read_text())
    assert body["format"] == "curate-combine/1" and len(body["sha256"]) == 64
    assert body["labels"]["rows"] == 160 and body["labels"]["positives"] == 80


def test_learned_quality_over_stored_scores_is_deterministic_and_calibratable(
    labelled, combiner, tmp_path
):
    outs = []
    for name in ("a", "b"):
        step = {"use": "learned_quality", "id": "learned", "mode": "annotate",
                "params": {"model": str(combiner)}}  # fmt: skip
        config = write_config(tmp_path / f"{name}.yaml", str(labelled["out"] / "data"),
                              tmp_path / name, steps() + [step])  # fmt: skip
        result = invoke("run", config, "--quiet")
        assert result.exit_code == 0, result.output
        outs.append(tmp_path / name)
    files = [sorted((o / "data").glob("*.parquet")) for o in outs]
    assert [pq.read_table(f) for f in files[0]] == [pq.read_table(f) for f in files[1]]
    probs = pq.read_table(outs[0] / "data", columns=["learned_prob"]).column(0)
    assert 0.0 <= pc.min(probs).as_py() <= pc.max(probs).as_py() <= 1.0
    result = invoke("calibrate", outs[0], "--step", "learned", "--keep", "0.3", "--json",
                    "--patch", tmp_path / "patch.yaml")  # fmt: skip
    assert result.exit_code == 0, result.output
    group = json.loads(result.output)["groups"][0]
    assert group["keep_rate"] == pytest.approx(0.3, abs=0.01)


def test_learned_quality_refuses_an_input_without_its_columns(combiner, tmp_path):
    step = {"use": "learned_quality", "params": {"model": str(combiner)}}
    config = write_config(tmp_path / "c.yaml", str(SAMPLE), tmp_path / "o", [steps()[0], step])
    result = invoke("run", config, "--quiet")
    assert result.exit_code == 2
    assert "lacks" in result.output and "quality_prob" in result.output
    assert "fineweb_quality_" in result.output


def test_train_quality_from_labels_reports_held_out_figures(labelled, tmp_path):
    model = tmp_path / "from-labels.ftz"
    result = invoke("train", "quality", "--labels", labelled["labels"], "-o", model,
                    *FAST, "--holdout", "0.2")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "held-out roc_auc" in result.output
    side = json.loads(Path(f"{model}.json").read_text())
    assert side["source"]["labels"] == [str(labelled["labels"])]
    assert side["metrics"]["roc_auc"] > 0.5


def test_train_quality_refuses_graded_labels_without_a_grade(labelled, tmp_path):
    graded = tmp_path / "graded.parquet"
    table = pq.read_table(labelled["labels"])
    grades = pc.multiply(table["label"], 4)
    pq.write_table(table.set_column(2, "label", pc.add(grades, 1)), graded)
    result = invoke("train", "quality", "--labels", graded, "-o", tmp_path / "g.ftz")
    assert result.exit_code == 2 and "--min-grade" in result.output
    result = invoke("train", "quality", "--labels", graded, "--min-grade", "3",
                    "-o", tmp_path / "g.ftz", *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output


def test_distilled_student_reports_agreement_and_throughput(labelled, combiner, tmp_path):
    step = {"use": "learned_quality", "id": "learned", "mode": "annotate",
            "params": {"model": str(combiner)}}  # fmt: skip
    config = write_config(tmp_path / "t.yaml", str(SAMPLE), tmp_path / "teacher",
                          steps() + [step])  # fmt: skip
    assert invoke("run", config, "--quiet").exit_code == 0
    model = tmp_path / "student.ftz"
    result = invoke("train", "quality", "--teacher", tmp_path / "teacher", "--teacher-column",
                    "learned_prob", "-o", model, *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "vs teacher: ROC-AUC" in result.output
    side = json.loads(Path(f"{model}.json").read_text())
    agreement = side["agreement"]
    assert agreement["auc_vs_teacher"] > 0.5
    assert agreement["student_docs_per_s"] > 0 and agreement["teacher_docs_per_s"] > 0
    assert set(agreement["teacher_steps"]) == {"learned", "gopher_quality", "fineweb_quality",
                                               "quality"}  # fmt: skip
    assert side["source"]["teacher_rows"] == 904 and side["source"]["labelled_rows"] == 0
    # Labelled documents join the teacher's when both are given.
    result = invoke("train", "quality", "--teacher", tmp_path / "teacher", "--teacher-column",
                    "learned_prob", "--labels", labelled["labels"], "-o", model, *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    side = json.loads(Path(f"{model}.json").read_text())
    assert side["source"]["labelled_rows"] == 160


def test_teacher_without_its_column_names_the_columns_it_has(labelled, tmp_path):
    result = invoke("train", "quality", "--teacher", labelled["out"], "--teacher-column",
                    "nope_prob", "-o", tmp_path / "s.ftz")  # fmt: skip
    assert result.exit_code == 2
    assert "no column 'nope_prob'" in result.output and "quality_prob" in result.output


def test_train_quality_needs_exactly_one_source(tmp_path):
    result = invoke("train", "quality", "-o", tmp_path / "x.ftz")
    assert result.exit_code == 2 and "--labels" in result.output


def test_eval_finds_labelled_rows_in_the_rejected_ledger_too(labelled, tmp_path):
    strict = [{"use": "gopher_quality", "params": {"min_doc_words": 400}}]  # drops short docs
    config = write_config(tmp_path / "f.yaml", str(SAMPLE), tmp_path / "filtered", strict)
    assert invoke("run", config, "--quiet").exit_code == 0
    rejected = pq.read_table(tmp_path / "filtered" / "rejected").num_rows
    assert rejected > 0
    result = invoke("eval", tmp_path / "filtered", "--labels", labelled["labels"], "--json",
                    "--resamples", "50")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rows"] == 160 and report["unmatched_labels"] == 0
    (decision,) = report["steps"]
    assert decision["step"] == "gopher_quality" and decision["kept"] < 160
