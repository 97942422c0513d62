"""Partition-major work files: one Parquet file per task, its row groups grouped by partition."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.io import filesystem

# Rows in one row group at most: a large partition spans several consecutive row groups.
_ROW_GROUP_ROWS = 1 << 20


@dataclass(frozen=True)
class PartFile:
    """A written work file: which partitions it holds and their row groups (`starts[i]` to
    `starts[i + 1]` for `parts[i]`), so a reader opens only its own partition's row groups."""

    uri: str
    parts: np.ndarray  # int64, ascending, non-empty partitions only
    starts: np.ndarray  # int64, len(parts) + 1
    rows: np.ndarray  # int64 rows per partition


def write_partitioned(table: pa.Table, part: np.ndarray, uri: str) -> PartFile:
    """Write `table` to one file, rows of partition `part[i]` together, partitions ascending."""
    order = np.argsort(part, kind="stable")
    part = np.asarray(part, np.int64)[order]
    table = table.take(pa.array(order))
    fs, path = filesystem(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    cut = np.flatnonzero(np.diff(part)) + 1
    lo = np.concatenate([[0], cut]).astype(np.int64)
    hi = np.concatenate([cut, [len(part)]]).astype(np.int64)
    parts = part[lo] if len(part) else np.zeros(0, np.int64)
    starts = [0]
    with fs.open_output_stream(path) as sink:
        with pq.ParquetWriter(sink, table.schema, compression="lz4") as writer:
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
                groups = 0
                for s in range(a, b, _ROW_GROUP_ROWS):
                    e = min(b, s + _ROW_GROUP_ROWS)
                    writer.write_table(table.slice(s, e - s), row_group_size=e - s)
                    groups += 1
                starts.append(starts[-1] + groups)
            if not len(part):
                writer.write_table(table.slice(0, 0))
    return PartFile(uri, parts, np.array(starts, np.int64), (hi - lo) if len(part) else parts)


def pieces_by_partition(files: list[PartFile]) -> dict[int, list[tuple[str, list[int]]]]:
    """For every partition, the `(file, row groups)` that hold it, in file order."""
    out: dict[int, list[tuple[str, list[int]]]] = {}
    for f in files:
        for i, p in enumerate(f.parts.tolist()):
            out.setdefault(p, []).append((f.uri, list(range(f.starts[i], f.starts[i + 1]))))
    return out


def read_pieces(pieces: list[tuple[str, list[int]]], schema: pa.Schema) -> pa.Table:
    """The rows of one partition, from the row groups its pieces name."""
    tables = []
    for uri, groups in pieces:
        fs, path = filesystem(uri)
        with fs.open_input_file(path) as f:
            tables.append(pq.ParquetFile(f).read_row_groups(groups))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def spread(values: np.ndarray, n_parts: int) -> np.ndarray:
    """Partition of each int64 id: a multiplicative hash, so structured ids spread evenly."""
    mixed = (np.asarray(values).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return (mixed % np.uint64(n_parts)).astype(np.int64)
