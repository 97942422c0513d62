"""The real `minhash` on the shipped near-duplicate fixture (tests/fixtures/near_dup, made by
scripts/make_near_dup_fixture.py from the quickstart sample): its ground truth found, the same
bytes for any workers and partitions, a worker killed inside the distributed components, the
driver killed there, dedup against an index of an earlier run. Runs on a fresh clone."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
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
from tests.conftest import REPO, assert_accounted, read_ids

pytestmark = pytest.mark.ray
cli = CliRunner()
FIXTURE = REPO / "tests" / "fixtures" / "near_dup" / "near_dup.parquet"


def fixture_table() -> pa.Table:
    return pq.read_table(FIXTURE)


def shard(table: pa.Table, folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [round(k * table.num_rows / n) for k in range(n + 1)]
    for k in range(n):
        part = table.slice(bounds[k], bounds[k + 1] - bounds[k])
        pq.write_table(part, folder / f"shard-{k:02d}.parquet", row_group_size=16)
    return folder


def config(tmp_path: Path, inp: Path, out: Path, mh: dict | None = None, name="p.yaml") -> Path:
    step = {"use": "minhash", "id": "mh", **(mh or {})}
    data = {
        "input": {"path": str(inp), "id_column": "id", "batch_size": 16, "unit_rows": 32},
        "output": {"path": str(out)},
        "steps": [step],
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def invoke(*args: str):
    return cli.invoke(app, list(args), catch_exceptions=False)


def run_ok(conf: Path, *extra: str) -> None:
    result = invoke("run", str(conf), "--quiet", *extra)
    assert result.exit_code == 0, result.output


def files(out: Path) -> dict[str, bytes]:
    return {
        f"{sub}/{p.name}": p.read_bytes()
        for sub in ("data", "rejected")
        for p in sorted((out / sub).glob("*.parquet"))
    }


def kept(out: Path) -> set[str]:
    return set(read_ids(out / "data"))


def check_truth(out: Path, table: pa.Table) -> None:
    """Every true cluster keeps exactly one document; nothing else is dropped."""
    truth = dict(zip(table["id"].to_pylist(), table["cluster_id"].to_pylist(), strict=True))
    survivors = [truth[i] for i in kept(out)]
    assert sorted(survivors) == sorted(set(truth.values()))


def test_fixture_truth_found_same_bytes_any_workers_and_partitions(ray_session, tmp_path):
    table = fixture_table()
    inp = shard(table, tmp_path / "in", 3)
    outs = {}
    for name, params, extra in (
        ("local", {}, ["--executor", "local"]),
        ("w1", {}, ["--workers", "1"]),
        ("w2", {}, ["--workers", "2"]),
        ("p7", {"params": {"partitions": 7}}, ["--workers", "2"]),
    ):
        out = tmp_path / name
        run_ok(config(tmp_path, inp, out, params, f"{name}.yaml"), *extra)
        outs[name] = files(out)
        check_truth(out, table)
        assert_accounted(table["id"].to_pylist(), out)
        record = json.loads((out / "_global" / "mh" / "decide.json").read_text())
        assert record["to_drop"] == table.num_rows - len(set(table["cluster_id"].to_pylist()))
        assert set(record["decision"]["shards"]) <= {"0", "1", "2"}
        assert not list((out / "_global" / "mh").glob("work/**/*.parquet"))
    assert outs["local"] == outs["w1"] == outs["w2"]
    # Other partitions: the same rows and values (the params in the file metadata differ).
    assert outs["p7"].keys() == outs["w1"].keys()
    for name in outs["w1"]:
        a, b = (pq.read_table(tmp_path / run / name) for run in ("w1", "p7"))
        assert a.replace_schema_metadata(None).equals(b.replace_schema_metadata(None))


def test_worker_killed_inside_the_distributed_components(ray_session, tmp_path):
    table = fixture_table()
    inp = shard(table, tmp_path / "in", 3)
    marker = tmp_path / "killed"
    mh = {"use": "tests.doubles:KilledMinHash", "params": {"marker": str(marker)}}
    run_ok(config(tmp_path, inp, tmp_path / "ray", mh), "--workers", "2")
    assert marker.exists()  # a task of a large-star round really died and was retried
    # The reference: the same step in process, the kill already spent.
    run_ok(config(tmp_path, inp, tmp_path / "ref", mh, "ref.yaml"), "--executor", "local")
    assert files(tmp_path / "ray") == files(tmp_path / "ref")
    assert_accounted(table["id"].to_pylist(), tmp_path / "ray")


def test_driver_killed_inside_the_distributed_components_resumes(ray_session, tmp_path):
    table = fixture_table()
    inp = shard(table, tmp_path / "in", 3)
    marker = tmp_path / "paused"
    mh = {
        "use": "tests.doubles:PausedMinHash",
        "params": {"marker": str(marker), "after": "large_star", "seconds": 120},
    }
    out = tmp_path / "out"
    conf = config(tmp_path, inp, out, mh)
    address = ray_session.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "run", str(conf), "--quiet"]
        + ["--ray-address", address, "--workers", "1"],
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not marker.exists():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list((out / "_global" / "mh" / "work" / "cc").glob("*-large-*.parquet"))
    assert not (out / "_global" / "mh" / "decide.json").exists()
    run_ok(conf)  # resumes: the marker makes it not pause
    run_ok(config(tmp_path, inp, tmp_path / "ref", mh, "ref.yaml"), "--executor", "local")
    assert files(out) == files(tmp_path / "ref")
    assert not list((out / "_global" / "mh").glob("work/**/*.parquet"))
    assert not list(out.rglob("*.tmp"))


def _sha(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_second_half_against_the_first_halfs_index(tmp_path):
    table = fixture_table()
    half = table.num_rows // 2
    whole = shard(table, tmp_path / "whole", 2)
    first = shard(table.slice(0, half), tmp_path / "first", 1)
    second = shard(table.slice(half), tmp_path / "second", 1)
    run_ok(config(tmp_path, whole, tmp_path / "all", name="all.yaml"), "--executor", "local")
    out_a = tmp_path / "a"
    conf_a = config(tmp_path, first, out_a, {"params": {"write_index": True}}, "a.yaml")
    run_ok(conf_a, "--executor", "local")
    index = out_a / "dedup_index" / "mh"
    manifest = json.loads((index / "index.json").read_text())
    assert manifest["kind"] == "curate dedup index" and manifest["rows"] == half
    assert pq.read_table(index / manifest["files"][0]["name"]).column_names[0] == "id"

    # A copy outside any output folder: the second run reads it, never changes it.
    shelf = tmp_path / "shelf"
    shutil.copytree(index, shelf)
    before = _sha(shelf)
    out_b = tmp_path / "b"
    conf_b = config(tmp_path, second, out_b, {"params": {"index": str(shelf)}}, "b.yaml")
    run_ok(conf_b, "--executor", "local")
    assert _sha(shelf) == before
    assert kept(out_a) | kept(out_b) == kept(tmp_path / "all")
    # Dropped against the index: the indexed document's id is the survivor.
    rejected = pa.concat_tables(pq.read_table(p) for p in (out_b / "rejected").glob("*-s1.parquet"))
    first_ids = set(table.slice(0, half)["id"].to_pylist())
    against = [d for d in rejected["mh_duplicate_of"].to_pylist() if d in first_ids]
    assert against
    plan = json.loads((out_b / "_manifest" / "plan.json").read_text())
    assert set(plan["references"]["mh"]) == {str(shelf / e["name"]) for e in manifest["files"]}

    # update_index appends this run's rows (new parts, index.json replaced), old parts as they
    # were; rerunning the same command (--overwrite) ignores what it added itself.
    conf_u = config(
        tmp_path, second, tmp_path / "u", {"params": {"index": str(shelf), "update_index": True}}
    )
    run_ok(conf_u, "--executor", "local")
    after = _sha(shelf)
    assert {k: after[k] for k in before if k != "index.json"} == {
        k: v for k, v in before.items() if k != "index.json"
    }
    grown = json.loads((shelf / "index.json").read_text())
    assert grown["rows"] == table.num_rows
    run_ok(conf_u, "--executor", "local", "--overwrite")
    assert kept(tmp_path / "u") == kept(out_b)
    assert json.loads((shelf / "index.json").read_text())["rows"] == table.num_rows


def test_an_index_built_with_other_params_is_refused(tmp_path):
    table = fixture_table()
    inp = shard(table, tmp_path / "in", 1)
    run_ok(
        config(tmp_path, inp, tmp_path / "a", {"params": {"write_index": True}}, "a.yaml"),
        "--executor",
        "local",
    )
    index = tmp_path / "a" / "dedup_index" / "mh"
    conf = config(tmp_path, inp, tmp_path / "b", {"params": {"index": str(index), "ngram": 3}})
    result = invoke("run", str(conf), "--quiet", "--executor", "local")
    assert result.exit_code == 2
    assert "was built with ngram=5" in " ".join(result.output.split())
    missing = config(tmp_path, inp, tmp_path / "c", {"params": {"index": str(tmp_path / "no")}})
    result = invoke("run", str(missing), "--quiet", "--executor", "local")
    assert result.exit_code == 2 and "no index.json" in result.output
    assert not (tmp_path / "c" / "data").exists()


def test_exact_dedup_against_an_index(tmp_path):
    table = fixture_table()
    first = shard(table.slice(0, 60), tmp_path / "first", 1)
    # The second crawl: new documents, and three pages of the first crawl again, renamed.
    again = table.slice(0, 3)
    again = again.set_column(0, "id", pa.array([f"again-{i}" for i in range(3)]))
    second = shard(pa.concat_tables([table.slice(60), again]), tmp_path / "second", 1)
    step = {"use": "exact_dedup", "id": "mh", "params": {"write_index": True}}
    run_ok(config(tmp_path, first, tmp_path / "a", step, "a.yaml"), "--executor", "local")
    index = tmp_path / "a" / "dedup_index" / "mh"
    step = {"use": "exact_dedup", "id": "mh", "params": {"index": [str(index)]}}
    run_ok(config(tmp_path, second, tmp_path / "b", step, "b.yaml"), "--executor", "local")
    rejected = pa.concat_tables(
        pq.read_table(p) for p in (tmp_path / "b" / "rejected").glob("*-s1.parquet")
    )
    ids, survivors = rejected["id"].to_pylist(), rejected["mh_duplicate_of"].to_pylist()
    dropped = dict(zip(ids, survivors, strict=True))
    assert dropped == {f"again-{i}": table["id"][i].as_py() for i in range(3)}
