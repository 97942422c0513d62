"""benchmarks/_compare.py: which corpus a text benchmark reads, and the sentence when a script's
real data is absent (a clone alone)."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import _compare  # noqa: E402


def test_a_given_corpus_is_used_as_it_is(tmp_path):
    (tmp_path / "mine").mkdir()
    pq.write_table(
        pq.read_table(_compare.REPO / "examples/quickstart/data"),
        tmp_path / "mine" / "shard_00.parquet",
    )
    assert _compare.text_corpus(tmp_path / "mine", 10, tmp_path) == tmp_path / "mine"
    with pytest.raises(SystemExit, match="no shard_"):
        _compare.text_corpus(tmp_path, 10, tmp_path)


def test_without_shared_data_a_corpus_is_built_from_the_sample(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_compare, "SHARED_DATA", tmp_path / "no-shared")
    folder = _compare.text_corpus(None, 300, tmp_path)
    table = pq.read_table(sorted(folder.glob("shard_*.parquet")), columns=["id", "text"])
    assert table.num_rows == 300
    truth = pq.read_table(folder / "ground_truth.parquet", columns=["id", "kind"])
    assert set(truth["id"].to_pylist()) <= set(table["id"].to_pylist())
    assert "make_corpus.py --docs 300" in capsys.readouterr().out


def test_shared_bench_100k_is_the_default_when_it_is_there(tmp_path, monkeypatch):
    (tmp_path / "bench_100k").mkdir()
    (tmp_path / "bench_100k" / "shard_00.parquet").write_bytes(b"")
    monkeypatch.setattr(_compare, "SHARED_DATA", tmp_path)
    assert _compare.text_corpus(None, 10, tmp_path / "w") == tmp_path / "bench_100k"


def test_missing_real_data_exits_2_naming_the_file(tmp_path, capsys):
    here = tmp_path / "labels.parquet"
    here.write_bytes(b"x")
    _compare.needs_shared(here, why="labels")  # present: nothing happens
    with pytest.raises(SystemExit) as stop:
        _compare.needs_shared(here, tmp_path / "gone.parquet", why="the labelled pairs")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert str((tmp_path / "gone.parquet").resolve()) in err and "the labelled pairs" in err
    assert len(err.strip().splitlines()) == 1
