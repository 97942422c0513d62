"""End to end through the `curate` CLI on local Ray: identity across executors, kills, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import REPO, assert_accounted, read_ids, words, write_corpus

pytestmark = pytest.mark.ray
cli = CliRunner()


def corpus(tmp_path: Path, shards: int = 4, rows: int = 12) -> Path:
    texts = [[words(4 + (i * 7 + s) % 9, i + s) for i in range(rows)] for s in range(shards)]
    texts[1][3] = texts[0][2]  # exact duplicates across shards for the global step
    texts[3][5] = texts[0][2]
    return write_corpus(tmp_path / "in", texts, row_group_size=3)


def config_file(
    tmp_path: Path, inp: Path, steps: list[dict], name: str = "p.yaml", **input_extra
) -> Path:
    data = {
        "input": {"path": str(inp), "id_column": "id", "batch_size": 4, **input_extra},
        "output": {"path": str(tmp_path / "out")},
        "steps": steps,
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


STEPS = [
    {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 6}},
    {"use": "tests.doubles:TextDedup", "id": "dedup"},
    {"use": "tests.doubles:MinWords", "id": "tag", "mode": "annotate"},
]


def files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("data", "rejected")
        for p in sorted((out / sub).glob("*.parquet"))
    }


def invoke(*args: str):
    result = cli.invoke(app, list(args), catch_exceptions=False)
    return result


def test_ray_one_and_two_workers_and_local_give_identical_bytes(ray_session, tmp_path):
    inp = corpus(tmp_path)
    conf = config_file(tmp_path, inp, STEPS, unit_rows=6)
    outs = {}
    for name, extra in (
        ("w1", ["--workers", "1"]),
        ("w2", ["--workers", "2"]),
        ("local", ["--executor", "local"]),
    ):
        out = tmp_path / name
        result = invoke("run", str(conf), "--output", str(out), "--quiet", *extra)
        assert result.exit_code == 0, result.output
        assert_accounted(read_ids(inp), out)
        outs[name] = files(out)
    assert outs["w1"] == outs["w2"] == outs["local"]
    assert len(outs["w1"]) >= 8 * 2
    stats = json.loads((tmp_path / "w2" / "stats.json").read_text())
    texts = pq.read_table(inp)["text"].to_pylist()
    long_enough = [t for t in texts if len(t.split()) >= 6]
    assert stats["steps"]["dedup"]["dropped"] == len(long_enough) - len(set(long_enough)) > 0
    assert stats["total"]["consistent"]


def test_run_prints_the_funnel_and_writes_resolved_config(ray_session, tmp_path):
    conf = config_file(tmp_path, corpus(tmp_path), STEPS)
    out = tmp_path / "out"
    result = invoke(
        "run", str(conf), "--set", "steps.words.params.min_words=7", "--progress", "plain"
    )
    assert result.exit_code == 0, result.output
    assert "curate funnel" in result.output and "dedup" in result.output
    resolved = yaml.safe_load((out / "run.yaml").read_text())
    assert resolved["steps"][0]["params"]["min_words"] == 7


def test_killed_worker_is_retried_and_output_is_unchanged(ray_session, tmp_path):
    inp = corpus(tmp_path)
    marker = tmp_path / "killed"
    steps = [
        {"use": "tests.doubles:KillOnce", "id": "kill", "params": {"marker": str(marker)}},
        *STEPS,
    ]
    conf = config_file(tmp_path, inp, steps)
    result = invoke("run", str(conf), "--output", str(tmp_path / "ray"), "--quiet")
    assert result.exit_code == 0, result.output
    assert marker.exists()  # a worker really died mid-unit
    # The reference: the same config in process, with the kill already spent.
    result = invoke(
        "run", str(conf), "--output", str(tmp_path / "ref"), "--quiet", "--executor", "local"
    )
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "ray") == files(tmp_path / "ref")
    assert_accounted(read_ids(inp), tmp_path / "ray")


def test_driver_killed_mid_run_resumes_to_identical_output(ray_session, tmp_path):
    inp = corpus(tmp_path, shards=6)
    steps = [{"use": "tests.doubles:Slow", "params": {"seconds": 0.3}}, *STEPS]
    conf = config_file(tmp_path, inp, steps)
    out = tmp_path / "out"
    address = ray_session.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "curate.cli",
            "run",
            str(conf),
            "--quiet",
            "--ray-address",
            address,
            "--workers",
            "1",
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "_manifest").glob("s0-*.json")):
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = list((out / "_manifest").glob("s0-*.json"))
    assert 0 < len(done) < 6
    result = invoke("run", str(conf), "--quiet")
    assert result.exit_code == 0, result.output
    invoke("run", str(conf), "--output", str(tmp_path / "ref"), "--quiet", "--executor", "local")
    assert files(out) == files(tmp_path / "ref")
    assert_accounted(read_ids(inp), out)
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda t, c: (t / "in" / "shard-9.parquet").write_bytes(b"PAR1 garbage"),
            "shard-9.parquet: not a readable Parquet file",
        ),
        (
            lambda t, c: c.write_text(c.read_text().replace("text_column", "text_colum")),
            "input.text_colum: unknown key",
        ),
        (
            lambda t, c: c.write_text(c.read_text().replace("tests.doubles:MinWords", "nope", 1)),
            "unknown step 'nope'",
        ),
        (
            lambda t, c: c.write_text(c.read_text().replace("min_words: 6", "min_wordz: 6")),
            "steps.0.params.min_wordz: unknown key",
        ),
        (
            lambda t, c: c.write_text(c.read_text().replace("batch_size: 4", "batch_size: -1")),
            "input.batch_size",
        ),
    ],
    ids=["corrupt-parquet", "unknown-key", "unknown-step", "unknown-param", "bad-value"],
)
def test_bad_input_gives_a_clear_error_and_no_output(tmp_path, mutate, message):
    conf = config_file(tmp_path, corpus(tmp_path), STEPS, text_column="text")
    mutate(tmp_path, conf)
    result = invoke("run", str(conf), "--executor", "local")
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "data").exists()


def test_missing_text_column_through_the_cli(tmp_path):
    conf = config_file(tmp_path, corpus(tmp_path), STEPS, text_column="body")
    result = invoke("run", str(conf), "--executor", "local")
    assert result.exit_code == 2
    assert "no text column 'body'" in " ".join(result.output.split())


def test_filters_list_show_and_config_show(tmp_path):
    listing = invoke("filters", "list")
    assert listing.exit_code == 0 and "gopher_quality" in listing.output
    shown = invoke("filters", "show", "tests.doubles:MinWords")
    assert shown.exit_code == 0 and "min_words" in shown.output
    missing = invoke("filters", "show", "no_such_filter")
    assert missing.exit_code == 2
    conf = config_file(tmp_path, corpus(tmp_path), STEPS)
    resolved = invoke("config", "show", str(conf), "--set", "steps.dedup.mode=annotate")
    assert resolved.exit_code == 0
    assert yaml.safe_load(resolved.output)["steps"][1]["mode"] == "annotate"


def test_more_workers_than_the_cluster_has_is_refused_not_hung(ray_session, tmp_path):
    conf = config_file(tmp_path, corpus(tmp_path), STEPS)
    result = invoke("run", str(conf), "--workers", "3")
    assert result.exit_code == 2
    assert "3 workers x 1 CPU each need 3 CPUs but the Ray cluster has 2" in " ".join(
        result.output.split()
    )


def test_an_error_inside_a_ray_worker_is_one_sentence_not_a_traceback(ray_session, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.jsonl").write_text('{"id": "a", "body": "hello world"}\n')
    conf = tmp_path / "p.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(inp), "id_column": "id"},
                "output": {"path": str(tmp_path / "out")},
                "steps": [{"use": "tests.doubles:MinWords"}],
            }
        )
    )
    result = invoke("run", str(conf))
    assert result.exit_code == 2
    assert "a.jsonl: no text column 'text' (columns: id, body)" in " ".join(result.output.split())
    assert "Traceback" not in result.output and "process.py" not in result.output
