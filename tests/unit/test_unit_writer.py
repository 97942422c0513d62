"""The unit writer: row groups of a target size, no empty files, all-or-nothing commit."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import io
from curate.config import OutputConfig
from curate.unit_writer import Layout, RowGroupWriter, UnitWriter


def rows(start: int, n: int) -> pa.Table:
    return pa.table(
        {"id": [f"r{i}" for i in range(start, start + n)], "n": range(start, start + n)}
    )


def every_file(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def parquet_writer(path):
    return RowGroupWriter(lambda schema: io.AtomicParquetWriter(str(path), schema), rows=5)


def test_row_groups_hold_the_target_rows_whatever_the_batches(tmp_path):
    path = tmp_path / "f.parquet"
    writer = parquet_writer(path)
    for start in range(0, 12, 3):  # batches of 3 rows
        writer.write(rows(start, 3))
    writer.commit()
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [5, 5, 2]
    assert pq.read_table(path).equals(pa.concat_tables([rows(0, 12)]))


def test_a_batch_larger_than_a_row_group_is_split(tmp_path):
    path = tmp_path / "f.parquet"
    writer = parquet_writer(path)
    writer.write(rows(0, 11))
    writer.commit()
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [5, 5, 1]


def test_a_row_group_also_closes_at_the_byte_target(tmp_path):
    path = tmp_path / "f.parquet"
    one_batch = rows(0, 3).nbytes
    writer = RowGroupWriter(
        lambda schema: io.AtomicParquetWriter(str(path), schema), rows=1000, nbytes=2 * one_batch
    )
    for start in range(0, 15, 3):
        writer.write(rows(start, 3))
    writer.commit()
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [6, 6, 3]


def test_memory_holds_at_most_one_row_group(tmp_path):
    writer = parquet_writer(tmp_path / "f.parquet")
    for start in range(0, 40, 4):
        writer.write(rows(start, 4))
        assert writer._buffered_rows < writer.rows
    writer.commit()


def test_a_file_with_no_row_is_never_created(tmp_path):
    writer = parquet_writer(tmp_path / "f.parquet")
    writer.write(rows(0, 0))
    writer.commit()
    assert writer.uri is None and every_file(tmp_path) == []


def unit_writer(tmp_path, last=True, sidecar=None, **output):
    config = OutputConfig(path=str(tmp_path / "out"), row_group_rows=4, **output)
    return UnitWriter(Layout(config.path), config, 0, "part-00000", last, sidecar)


def test_an_empty_unit_writes_its_manifest_and_no_file(tmp_path):
    writer = unit_writer(tmp_path, sidecar="dedup")
    writer.write(rows(0, 0), rows(0, 0), rows(0, 0))
    files = writer.commit()
    writer.publish({"unit": "part-00000", "kept": 0, "rejected": 0, "files": files})
    assert files == {}
    assert every_file(tmp_path / "out") == ["_manifest/s0-part-00000.json"]
    manifest = json.loads((tmp_path / "out/_manifest/s0-part-00000.json").read_text())
    assert manifest["files"] == {} and manifest["kept"] == 0


def test_only_the_files_that_hold_rows_are_written_and_named(tmp_path):
    writer = unit_writer(tmp_path, sidecar="dedup", last=False)
    writer.write(rows(0, 3), rows(0, 0), rows(0, 0))
    writer.write(rows(3, 2), rows(0, 0), rows(0, 0))
    files = writer.commit()
    assert set(files) == {"data"}
    assert files["data"].endswith("_segments/s0/part-00000.parquet")
    assert pq.read_table(files["data"]).num_rows == 5


def test_kept_rows_as_jsonl(tmp_path):
    writer = unit_writer(tmp_path, format="jsonl")
    writer.write(rows(0, 6), rows(6, 1))
    files = writer.commit()
    lines = open(files["data"], encoding="utf-8").read().splitlines()
    assert [json.loads(line)["n"] for line in lines] == list(range(6))
    assert pq.read_table(files["rejected"])["n"].to_pylist() == [6]


def test_abort_leaves_nothing_behind(tmp_path):
    writer = unit_writer(tmp_path, sidecar="dedup")
    writer.write(rows(0, 9), rows(9, 2), rows(0, 3))  # some row groups already on disk
    writer.abort()
    assert every_file(tmp_path / "out") == []


def test_a_failed_commit_publishes_nothing(tmp_path, monkeypatch):
    writer = unit_writer(tmp_path)
    writer.write(rows(0, 3), rows(3, 3))

    def broken_commit():
        raise OSError("disk full")

    monkeypatch.setattr(writer.files["rejected"].file, "commit", broken_commit)
    with pytest.raises(OSError, match="disk full"):
        writer.commit()
    assert not (tmp_path / "out" / "_manifest").exists()
    # data was committed before rejected failed: it stays unnamed (resume removes it).
    leftovers = every_file(tmp_path / "out")
    assert all(not name.startswith(("_manifest", "rejected/part")) for name in leftovers)


def test_the_same_rows_give_the_same_bytes(tmp_path):
    outputs = []
    for attempt in ("a", "b"):
        writer = unit_writer(tmp_path / attempt)
        for start in range(0, 10, 3):
            writer.write(rows(start, 3), rows(100 + start, 1))
        files = writer.commit()
        outputs.append({k: open(v, "rb").read() for k, v in files.items()})
    assert outputs[0] == outputs[1]


def test_a_writer_that_cannot_start_leaves_no_temporary(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(io.pq, "ParquetWriter", full_disk)
    writer = parquet_writer(tmp_path / "f.parquet")
    with pytest.raises(OSError, match="No space left"):
        writer.write(rows(0, 3))
    writer.abort()
    assert every_file(tmp_path) == []
