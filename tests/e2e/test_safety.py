"""Safe with the user's data: a run owns its output, knows its inputs, and destroys nothing else.

Each test reproduces one way a user could lose or mix data, through the CLI, and checks the exit
code, that the message names the culprit, and that no user file was touched (hashes before and
after).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import REPO, SAMPLE, assert_accounted, read_ids, words, write_corpus

cli = CliRunner()
WORDS = [{"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 6}}]
EXECUTORS = ["local", pytest.param("ray", marks=pytest.mark.ray)]


def tree(folder: Path) -> dict[str, str]:
    """Every file under a folder with its sha256: what 'untouched' means here."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def corpus(tmp_path: Path, shards: int = 3, rows: int = 8, name: str = "in") -> Path:
    texts = [[words(3 + (i * 5 + s) % 7, i + s) for i in range(rows)] for s in range(shards)]
    return write_corpus(tmp_path / name, texts)


def config(tmp_path: Path, inp: Path | list[Path], steps=WORDS, **input_extra) -> Path:
    paths = [str(p) for p in inp] if isinstance(inp, list) else str(inp)
    data = {
        "input": {"path": paths, "batch_size": 4, **input_extra},
        "output": {"path": str(tmp_path / "out")},
        "steps": steps,
    }
    if "id_column" not in input_extra:
        data["input"]["id_column"] = "id"
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def curate(*args: str, executor: str = "local"):
    extra = ["--executor", executor] if executor and "--executor" not in args else []
    return cli.invoke(app, ["run", *args, "--quiet", *extra], catch_exceptions=False)


def message(result) -> str:
    return " ".join((result.stderr if hasattr(result, "stderr") else result.output).split())


@pytest.fixture
def ray_if(request):
    """The session Ray for the ray-parametrised cases only."""
    if request.node.callspec.params.get("executor") == "ray":
        request.getfixturevalue("ray_session")


# ----------------------------------------------------------------------------- ownership
@pytest.mark.parametrize("executor", EXECUTORS)
def test_output_equal_to_the_input_is_refused_even_with_overwrite(tmp_path, executor, ray_if):
    inp = corpus(tmp_path)
    before = tree(inp)
    conf = config(tmp_path, inp)
    for flags in ([], ["--overwrite"]):
        result = curate(str(conf), "--output", str(inp), *flags, executor=executor)
        assert result.exit_code == 2
        assert f"output folder {inp} is the input {inp}" in message(result)
    assert tree(inp) == before


@pytest.mark.parametrize("executor", EXECUTORS)
def test_output_that_contains_the_input_is_refused(tmp_path, executor, ray_if):
    inp = corpus(tmp_path)
    conf = config(tmp_path, inp)
    before = tree(tmp_path)
    result = curate(str(conf), "--output", str(tmp_path), "--overwrite", executor=executor)
    assert result.exit_code == 2
    assert f"output folder {tmp_path} contains the input" in message(result)
    assert tree(tmp_path) == before


def test_output_inside_the_input_or_matched_by_its_glob_is_refused(tmp_path):
    inp = corpus(tmp_path)
    result = curate(str(config(tmp_path, inp)), "--output", str(inp / "curated"))
    assert result.exit_code == 2
    assert "is inside the input" in message(result)
    assert not (inp / "curated").exists()
    glob = config(tmp_path, [tmp_path / "**" / "*.parquet"])
    result = curate(str(glob), "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "is inside the input" in message(result)
    # A glob that cannot match what curate writes leaves the folder beside it free.
    narrow = config(tmp_path, [inp / "shard-*.parquet"])
    assert curate(str(narrow), "--output", str(inp / "curated")).exit_code == 0


def test_overwrite_refuses_a_folder_curate_did_not_create(tmp_path):
    inp = corpus(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("four years of work")
    (mine / "data").mkdir()
    (mine / "data" / "part-00000.parquet").write_bytes(b"my own parquet, not curate's")
    before = tree(mine)
    for flags in ([], ["--overwrite"]):
        result = curate(str(config(tmp_path, inp)), "--output", str(mine), *flags)
        assert result.exit_code == 2
        assert f"output folder {mine} is not empty and was not created by curate" in message(result)
    assert tree(mine) == before


def test_a_forged_marker_is_not_trusted(tmp_path):
    inp = corpus(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".curate.json").write_text("{}")
    (out / "thesis.txt").write_text("mine")
    result = curate(str(config(tmp_path, inp)), "--overwrite")
    assert result.exit_code == 2
    assert "has a .curate.json that is not curate's" in message(result)
    assert (out / "thesis.txt").read_text() == "mine"


def test_overwrite_deletes_only_what_curate_wrote(tmp_path):
    inp = corpus(tmp_path)
    conf = config(tmp_path, inp)
    out = tmp_path / "out"
    assert curate(str(conf)).exit_code == 0
    (out / "notes.md").write_text("my notes")
    (out / "data" / "my-extra.parquet").write_bytes(b"mine")
    (out / "data" / "draft.tmp").write_text("mine too")
    (out / "_manifest" / ".scratch.tmp").write_text("and this")
    other = config(tmp_path, inp, [{**WORDS[0], "params": {"min_words": 4}}])
    result = curate(str(other), "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "notes.md").read_text() == "my notes"
    assert (out / "data" / "my-extra.parquet").read_bytes() == b"mine"
    assert (out / "data" / "draft.tmp").read_text() == "mine too"
    assert (out / "_manifest" / ".scratch.tmp").read_text() == "and this"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["total"]["consistent"] and stats["total"]["documents"] == 24


def test_a_user_tmp_file_survives_runs_and_resumes(tmp_path):
    inp = corpus(tmp_path)
    conf = config(tmp_path, inp)
    out = tmp_path / "out"
    assert curate(str(conf)).exit_code == 0
    (out / "keep.tmp").write_text("user")
    (out / "data" / ".part-00000.parquet.123.tmp").write_text("user, curate-like name")
    assert curate(str(conf)).exit_code == 0
    assert (out / "keep.tmp").read_text() == "user"
    assert (out / "data" / ".part-00000.parquet.123.tmp").exists()


def test_a_step_id_is_never_a_path(tmp_path):
    inp = corpus(tmp_path)
    steps = [{"use": "tests.doubles:TextDedup", "id": "../../../victim"}]
    result = curate(str(config(tmp_path, inp, steps)))
    assert result.exit_code == 2
    assert "step id '../../../victim' must be letters, digits" in message(result)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.parent.glob("victim*"))


# ----------------------------------------------------------------------------- run identity
def _kill_after_first_unit(conf: Path, out: Path) -> None:
    """Start `curate run` in its own process and kill -9 it once one unit is published."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "run", str(conf), "--quiet", "--executor", "local"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "_manifest").glob("s0-*.json")):
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    os.killpg(proc.pid, 9)
    proc.wait()


SLOW = [{"use": "tests.doubles:Slow", "params": {"seconds": 0.4}}, *WORDS]


def test_a_shard_added_between_crash_and_rerun_is_noticed_not_mixed(tmp_path):
    inp = corpus(tmp_path, shards=4)
    conf = config(tmp_path, inp, SLOW)
    out = tmp_path / "out"
    _kill_after_first_unit(conf, out)
    done = len(list((out / "_manifest").glob("s0-*.json")))
    assert 0 < done < 4
    # A new shard sorts first: under the old scheme every unit name would now point elsewhere.
    new = pa.table({"id": ["new-0", "new-1", "new-2"], "text": [words(9, 1)] * 3})
    pq.write_table(new, inp / "a-new.parquet")
    result = curate(str(conf))
    assert result.exit_code == 2
    text = message(result)
    assert "finished work units of a different run: input file added:" in text
    assert "a-new.parquet" in text and "--overwrite" in text
    assert not (out / "stats.json").exists()
    assert curate(str(conf), "--overwrite").exit_code == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["total"]["documents"] == stats["total"]["planned_documents"] == 35
    assert stats["total"]["consistent"]
    assert_accounted(read_ids(inp), out)


def test_a_changed_shard_is_named(tmp_path):
    inp = corpus(tmp_path)
    conf = config(tmp_path, inp)
    assert curate(str(conf)).exit_code == 0
    pq.write_table(pa.table({"id": ["z"], "text": [words(9)]}), inp / "shard-1.parquet")
    result = curate(str(conf))
    assert result.exit_code == 2
    assert "input file changed:" in message(result) and "shard-1.parquet" in message(result)


def test_a_steps_cpus_may_change_between_runs_but_not_its_gpus(tmp_path):
    inp = corpus(tmp_path)

    def with_resources(resources: dict) -> Path:
        return config(tmp_path, inp, [{**WORDS[0], "resources": resources}])

    assert curate(str(with_resources({"cpus": 1}))).exit_code == 0
    # CPUs only say how many actors fit: the same output, so the finished run stands.
    rerun = cli.invoke(app, ["run", str(with_resources({"cpus": 2})), "--executor", "local"])
    assert rerun.exit_code == 0 and "already complete" in rerun.output
    # A GPU is another device (and dtype): its scores may differ, so it is another run.
    result = curate(str(with_resources({"cpus": 2, "gpus": 1})))
    assert result.exit_code == 2
    assert "steps.0.resources" in message(result) and "--overwrite" in message(result)


def test_a_model_swapped_before_resume_is_refused_and_run_yaml_kept(tmp_path):
    pytest.importorskip("fasttext")
    model = tmp_path / "quality.ftz"
    shutil.copy(SAMPLE.parent / "models" / "quality.ftz", model)
    shutil.copy(SAMPLE.parent / "models" / "quality.ftz.json", tmp_path / "quality.ftz.json")
    steps = [{"use": "fasttext_quality", "id": "quality", "params": {"model": str(model)}}]
    inp = corpus(tmp_path)
    conf = config(tmp_path, inp, steps)
    assert curate(str(conf)).exit_code == 0
    run_yaml = (tmp_path / "out" / "run.yaml").read_text()
    shutil.copy(SAMPLE.parent / "models" / "lid.ftz", model)  # another model, same path
    result = curate(str(conf))
    assert result.exit_code == 2
    assert "model of step 'quality' (model) changed: sha256" in message(result)
    assert (tmp_path / "out" / "run.yaml").read_text() == run_yaml


def test_a_failed_attempt_that_published_nothing_does_not_block_the_fixed_rerun(tmp_path):
    inp = corpus(tmp_path)
    boom = [{"use": "tests.doubles:Boom", "id": "boom"}]
    assert curate(str(config(tmp_path, inp, boom))).exit_code == 2
    result = curate(str(config(tmp_path, inp)))
    assert result.exit_code == 0, message(result)


def test_stored_scores_are_reused_only_for_the_same_scoring_params(tmp_path):
    inp = corpus(tmp_path)
    first = tmp_path / "first"
    scaled = {"use": "tests.doubles:ScaledWords", "id": "sw", "mode": "annotate"}
    conf = config(tmp_path, inp, [{**scaled, "params": {"scale": 1.0}}])
    assert curate(str(conf), "--output", str(first)).exit_code == 0
    # Same scoring params, another threshold: thresholds re-applied, setup never runs.
    again = config(
        tmp_path,
        first / "data",
        [
            {
                "use": "tests.doubles:ScaledWords",
                "id": "sw",
                "params": {"min": 6, "forbid_setup": True},
            }
        ],
    )
    assert curate(str(again), "--output", str(tmp_path / "reuse")).exit_code == 0
    stats = json.loads((tmp_path / "reuse" / "stats.json").read_text())
    assert stats["steps"]["sw"].get("reused_scores") is True
    # Another scale changes the scores: they are computed afresh, not taken from the input.
    rescale = config(
        tmp_path,
        first / "data",
        [{"use": "tests.doubles:ScaledWords", "id": "sw", "params": {"scale": 2.0, "min": 6}}],
    )
    result = curate(str(rescale), "--output", str(tmp_path / "fresh"))
    assert result.exit_code == 0, message(result)
    stats = json.loads((tmp_path / "fresh" / "stats.json").read_text())
    assert "reused_scores" not in stats["steps"]["sw"]
    kept = pq.read_table(tmp_path / "fresh" / "data")
    source = pq.read_table(first / "data")
    doubled = dict(zip(source["id"].to_pylist(), source["sw_words"].to_pylist(), strict=True))
    pairs = zip(kept["id"].to_pylist(), kept["sw_words"].to_pylist(), strict=True)
    assert kept.num_rows and all(2 * doubled[i] == s for i, s in pairs)


# ----------------------------------------------------------------------------- ids
def test_derived_ids_are_unique_across_input_roots(tmp_path):
    one = write_corpus(tmp_path / "crawl1", [[words(8, i) for i in range(3)]])
    two = write_corpus(tmp_path / "crawl2", [[words(9, i) for i in range(3)]])
    data = {
        "input": {"path": [str(one), str(two)]},
        "output": {"path": str(tmp_path / "out")},
        "steps": [],
    }
    conf = tmp_path / "p.yaml"
    conf.write_text(yaml.safe_dump(data))
    assert curate(str(conf)).exit_code == 0
    ids = pq.read_table(tmp_path / "out" / "data")["curate_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 6
    assert "crawl1/shard-0.parquet#0" in ids and "crawl2/shard-0.parquet#0" in ids


def test_null_and_repeated_ids_are_counted_or_refused(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    texts = [words(8, i) for i in range(5)]
    # "a" repeats inside one shard, "c" across two shards: both are found.
    pq.write_table(pa.table({"id": ["a", "b", "a", None, "c"], "text": texts}), inp / "x.parquet")
    pq.write_table(pa.table({"id": ["c", "d"], "text": texts[:2]}), inp / "y.parquet")
    conf = config(tmp_path, inp, [])
    result = cli.invoke(app, ["run", str(conf), "--executor", "local", "--progress", "plain"])
    assert result.exit_code == 0
    assert "warning: id column 'id' has 1 null and 2 repeated ids (e.g." in message(result)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["total"]["id_checks"] == {"null_id": 1, "duplicate_id": 2}
    assert not list((tmp_path / "out" / "_ids").glob("work/*"))
    strict = config(tmp_path, inp, [], require_unique_ids=True)
    result = curate(str(strict), "--output", str(tmp_path / "strict"))
    assert result.exit_code == 2
    assert "id column 'id' has 1 null and 2 repeated ids" in message(result)
    assert "input.require_unique_ids is set" in message(result)
    assert not list((tmp_path / "strict").glob("data/*.parquet"))


# ----------------------------------------------------------------------------- the lease
def test_a_second_driver_on_the_same_output_is_refused(tmp_path):
    inp = corpus(tmp_path, shards=4)
    conf = config(tmp_path, inp, SLOW)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "run", str(conf), "--quiet", "--executor", "local"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (out / "_lock.json").exists():
            time.sleep(0.05)
        result = curate(str(conf))
        assert result.exit_code == 2
        text = message(result)
        assert f"output folder {out} is in use by another curate run (pid {proc.pid}" in text
        assert socket.gethostname() in text
    finally:
        proc.wait(timeout=120)
    assert proc.returncode == 0
    assert not (out / "_lock.json").exists()
    assert_accounted(read_ids(inp), out)


def test_a_stale_lease_is_taken_over_with_a_message(tmp_path):
    inp = corpus(tmp_path)
    conf = config(tmp_path, inp)
    out = tmp_path / "out"
    assert curate(str(conf)).exit_code == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lease = {
        "holder": "x",
        "pid": dead.pid,
        "host": socket.gethostname(),
        "started": 1.0,
        "heartbeat": time.time(),
    }
    (out / "_lock.json").write_text(json.dumps(lease))
    result = cli.invoke(app, ["run", str(conf), "--executor", "local", "--progress", "plain"])
    assert result.exit_code == 0, result.output
    assert "took over the lease of a run that is gone" in message(result)
    assert not (out / "_lock.json").exists()


# ----------------------------------------------------------------------------- workers
def test_more_embedded_workers_than_cpus_is_refused_before_ray_starts(tmp_path):
    inp = corpus(tmp_path)
    conf = config(tmp_path, inp)
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", str(conf), "--workers", "100000"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "RAY_ADDRESS": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    cpus = len(os.sched_getaffinity(0))
    assert f"--workers 100000: this machine has {cpus} CPUs" in " ".join(proc.stderr.split())
    assert time.time() - started < 60


def test_an_eval_set_edited_before_resume_is_noticed(tmp_path):
    inp = corpus(tmp_path)
    evals = tmp_path / "evals.jsonl"
    evals.write_text(json.dumps({"id": "q1", "text": words(20, 3)}) + "\n")
    steps = [{"use": "decontaminate", "params": {"eval_sets": [str(evals)], "ngram": 8}}]
    conf = config(tmp_path, inp, steps)
    assert curate(str(conf)).exit_code == 0
    evals.write_text(json.dumps({"id": "q1", "text": words(20, 5)}) + "\n")
    result = curate(str(conf))
    assert result.exit_code == 2
    text = message(result)
    assert "the files step 'decontaminate' reads besides the input changed" in text
    assert "evals.jsonl" in text
