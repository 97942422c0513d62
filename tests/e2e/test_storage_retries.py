"""A store that answers 503 SlowDown: the driver's reads and each unit are retried, the output
is byte-identical to a clean run and every document is accounted for exactly once; a store
that never recovers ends the run with exit 2 and one sentence naming the unit."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import assert_accounted, read_ids, words, write_corpus
from tests.storage_doubles import SLOW_DOWN, recording

cli = CliRunner()
SHARDS, ROWS = 4, 40  # row groups of 8, units of 16 rows: 3 units a shard, 12 in all


def _corpus(tmp_path: Path) -> Path:
    texts = [[words(4 + (i % 7), s * 100 + i) for i in range(ROWS)] for s in range(SHARDS)]
    return write_corpus(tmp_path / "in", texts, row_group_size=8)


def _config(tmp_path: Path, inp: Path, name: str) -> Path:
    data = {
        "input": {"path": str(inp), "id_column": "id", "unit_rows": 16, "batch_size": 8},
        "output": {"path": str(tmp_path / name)},
        "storage": {"retries": 3},
        "steps": [
            {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 6}},
            {"use": "minhash", "id": "mh"},
        ],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(conf: Path):
    return cli.invoke(app, ["run", str(conf), "--executor", "local", "-q"])


def _files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("data", "rejected")
        for p in sorted((out / sub).glob("*"))
    }


def _clean(tmp_path: Path, inp: Path) -> dict[str, bytes]:
    result = _run(_config(tmp_path, inp, "clean"))
    assert result.exit_code == 0, result.output
    return _files(tmp_path / "clean")


def _check_like_clean(tmp_path: Path, inp: Path, name: str) -> None:
    out = tmp_path / name
    assert _files(out) == _clean(tmp_path, inp)
    assert_accounted(read_ids(inp), out)
    assert not list(out.rglob("*.tmp"))


def test_a_unit_whose_input_read_fails_twice_is_retried_and_the_output_is_unchanged(tmp_path):
    inp = _corpus(tmp_path)
    conf = _config(tmp_path, inp, "flaky")
    # The driver's footer read and the id check's read of shard-1 go through; the next two
    # reads (its first unit's) get 503 SlowDown.
    with recording(fail_glob="*/in/shard-1.parquet", fail_skip=2, fail_times=2) as rec:
        result = _run(conf)
    assert result.exit_code == 0, result.output
    assert rec.handler.fail_left == 0  # both failures happened
    _check_like_clean(tmp_path, inp, "flaky")


def test_a_unit_that_fails_after_committing_some_files_is_redone_without_duplicates(tmp_path):
    inp = _corpus(tmp_path)
    conf = _config(tmp_path, inp, "half")
    # Unit part-00004 commits its sidecar and data file, then its ledger's rename gets a 503:
    # the retry writes the whole unit again; nothing is doubled, nothing lost.
    glob = "*/half/rejected/part-00004.parquet"
    with recording(fail_glob=glob, fail_times=1, fail_ops=("move",)) as rec:
        result = _run(conf)
    assert result.exit_code == 0, result.output
    assert rec.handler.fail_left == 0 and rec.total("move", glob) == 2
    _check_like_clean(tmp_path, inp, "half")


def test_the_drivers_footer_reads_and_the_id_check_are_retried_too(tmp_path):
    inp = _corpus(tmp_path)
    # Two 503s on the footer read while planning; then, in a second run, one on the id check.
    for name, skip, times in (("plan", 0, 2), ("ids", 1, 1)):
        conf = _config(tmp_path, inp, name)
        with recording(fail_glob="*/in/shard-2.parquet", fail_skip=skip, fail_times=times) as rec:
            result = _run(conf)
        assert result.exit_code == 0, result.output
        assert rec.handler.fail_left == 0
        _check_like_clean(tmp_path, inp, name)


def test_a_store_that_never_recovers_is_one_sentence_naming_the_unit(tmp_path):
    inp = _corpus(tmp_path)
    conf = _config(tmp_path, inp, "down")
    with recording(fail_glob="*/in/shard-1.parquet", fail_skip=2, fail_times=-1):
        result = _run(conf)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert said.startswith("error: work unit part-00003 (shard-1.parquet row groups 0-1): ")
    assert "storage kept failing after 3 attempts" in said and SLOW_DOWN in said
    assert "Traceback" not in result.output and said.count("error:") == 1
    assert not list((tmp_path / "down").rglob("*.tmp"))
    # Units before it are published and kept; a rerun once the store is back resumes.
    again = _run(conf)
    assert again.exit_code == 0, again.output
    _check_like_clean(tmp_path, inp, "down")


def test_a_global_steps_shuffle_task_whose_read_fails_is_retried(tmp_path):
    inp = _corpus(tmp_path)
    conf = _config(tmp_path, inp, "shuffle")
    # The first two reads of one sidecar are the minhash shuffle's (a `parallel_map` task, not
    # a unit): each gets a 503, and the task is run again.
    with recording(fail_glob="*/_sidecar/mh/part-00001*", fail_times=2) as rec:
        result = _run(conf)
    assert result.exit_code == 0, result.output
    assert rec.handler.fail_left == 0  # both failures happened
    _check_like_clean(tmp_path, inp, "shuffle")
