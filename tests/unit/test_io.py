"""Input discovery, work units, streaming readers and ids."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import io
from tests.conftest import write_corpus


def test_directory_glob_and_list_find_the_same_shards(tmp_path):
    folder = write_corpus(tmp_path / "in", [["a b c"] * 3, ["d e f"] * 2])
    by_dir = io.discover(str(folder))
    by_glob = io.discover(str(folder / "*.parquet"))
    by_list = io.discover([str(folder / "shard-0.parquet"), str(folder / "shard-1.parquet")])
    assert [s.uri for s in by_dir] == [s.uri for s in by_glob] == [s.uri for s in by_list]
    assert [s.relpath for s in by_dir] == ["shard-0.parquet", "shard-1.parquet"]
    assert [s.num_rows for s in by_dir] == [3, 2]


def test_missing_path_and_empty_glob_are_named(tmp_path):
    with pytest.raises(io.InputError, match="does not exist"):
        io.discover(str(tmp_path / "nope"))
    with pytest.raises(io.InputError, match="matches no files"):
        io.discover(str(tmp_path / "*.parquet"))


def test_truncated_parquet_is_named_before_any_work(tmp_path):
    folder = write_corpus(tmp_path / "in", [["a b c"] * 3])
    bad = folder / "shard-9.parquet"
    bad.write_bytes((folder / "shard-0.parquet").read_bytes()[:100])
    with pytest.raises(io.InputError, match="shard-9.parquet: not a readable Parquet file"):
        io.discover(str(folder))


def test_big_shards_split_into_row_group_ranges_covering_every_row(tmp_path):
    folder = write_corpus(tmp_path / "in", [[f"doc {i}" for i in range(50)]], row_group_size=4)
    shards = io.discover(str(folder))
    units = io.plan_units(shards, unit_rows=10)
    assert len(units) == 6
    groups = [g for u in units for g in u.row_groups]
    assert groups == list(range(13))
    rows = sum(b.num_rows for u in units for b in io.read_unit(u, 3))
    assert rows == 50
    assert [u.first_row for u in units] == [0, 8, 16, 24, 32, 40]


def test_jsonl_gz_streams_in_batches(tmp_path):
    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for i in range(25):
            f.write(json.dumps({"id": i, "text": f"document number {i}"}) + "\n")
    (unit,) = io.plan_units(io.discover(str(path)), 100)
    batches = list(io.read_unit(unit, 10))
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert pa.Table.from_batches(batches)["text"][24].as_py() == "document number 24"


def test_derived_ids_are_stable_and_unique():
    ids = io.derive_ids("sub/shard.parquet", 5, 3).to_pylist()
    assert ids == ["sub/shard.parquet#5", "sub/shard.parquet#6", "sub/shard.parquet#7"]


def test_atomic_writer_publishes_only_on_commit(tmp_path):
    target = tmp_path / "out" / "part.parquet"
    w = io.AtomicParquetWriter(str(target), pa.schema([("x", pa.int64())]))
    w.write(pa.table({"x": [1, 2]}))
    assert not target.exists()
    w.commit()
    assert pq.read_table(target)["x"].to_pylist() == [1, 2]
    w2 = io.AtomicParquetWriter(str(target), pa.schema([("x", pa.int64())]))
    w2.abort()
    assert [p.name for p in target.parent.iterdir()] == ["part.parquet"]


def test_a_small_file_whose_write_fails_leaves_no_temporary(tmp_path, monkeypatch):
    import errno

    import pyarrow.fs as pafs

    from curate import io

    class FullDisk:  # the local disk, whose rename fails as a full disk's can
        type_name = "local"

        def __init__(self) -> None:
            self.base = pafs.LocalFileSystem()

        def __getattr__(self, name):
            return getattr(self.base, name)

        def move(self, src: str, dst: str) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "filesystem", lambda uri: (FullDisk(), str(uri)))
    with pytest.raises(OSError, match="No space left"):
        io.write_json_atomic(str(tmp_path / "m.json"), {"unit": "part-00000"})
    assert list(tmp_path.iterdir()) == []
