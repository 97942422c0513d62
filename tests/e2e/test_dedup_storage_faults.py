"""The real `minhash` on the shipped fixture with its output on S3 (moto) and on a disk that
fills up: the same kept rows as a clean local run, and a rerun resumes."""

from __future__ import annotations

import subprocess

import pyarrow.fs as pafs
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import assert_accounted, read_ids
from tests.e2e.test_dedup_fixture import FIXTURE, files, fixture_table, shard
from tests.e2e.test_faults import _run, small_disk  # noqa: F401 - a fixture
from tests.e2e.test_s3 import _fs, _local_files, _s3_files, _upload, s3  # noqa: F401 - a fixture

cli = CliRunner()


def _config(tmp_path, inp: str, out: str, name: str = "p.yaml", **extra) -> str:
    data = {
        "input": {"path": inp, "id_column": "id", "batch_size": 16, "unit_rows": 32},
        "output": {"path": out, **extra},
        "steps": [
            {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 40}},
            {"use": "minhash", "id": "mh", "params": {"write_index": True}},
        ],
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_minhash_with_input_and_output_on_s3(s3, tmp_path):  # noqa: F811
    local_in = shard(fixture_table(), tmp_path / "in", 3)
    inp = _upload(local_in, "near-dup")
    out = "s3://curate-test/dedup/v1"
    result = cli.invoke(app, ["run", _config(tmp_path, inp, out), "--executor", "local", "-q"])
    assert result.exit_code == 0, result.output
    ref = tmp_path / "ref"
    conf = _config(tmp_path, str(local_in), str(ref), "ref.yaml")
    result = cli.invoke(app, ["run", conf, "--executor", "local", "-q"])
    assert result.exit_code == 0, result.output
    assert _s3_files(out) == _local_files(ref)
    fs = _fs()
    root = out[len("s3://") :]
    listed = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    names = [i.path[len(root) + 1 :] for i in listed if i.type == pafs.FileType.File]
    # Decision files per shard (attempt-unique keys), the index, and no work file left.
    assert [n for n in names if n.startswith("_global/mh/decision/shard-")]
    assert "dedup_index/mh/index.json" in names
    assert not [n for n in names if "/work/" in n]


def test_disk_full_during_minhash_is_a_clear_error_then_resumes(small_disk, tmp_path):  # noqa: F811
    inp = shard(fixture_table(), tmp_path / "in", 3)
    out = small_disk / "out"
    conf = tmp_path / "p.yaml"
    conf.write_text(open(_config(tmp_path, str(inp), str(out), compression="none")).read())
    failed = _run(conf, "--quiet")
    assert failed.returncode == 2, failed.stderr
    message = " ".join(failed.stderr.split())
    assert "No space left" in message and "Traceback" not in failed.stderr
    assert not list(out.rglob("*.tmp"))
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = _run(conf, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    clean = _run(conf, "--quiet", "--output", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    assert files(out) == files(tmp_path / "clean")
    assert_accounted(read_ids(inp), out)
    assert FIXTURE.exists()
