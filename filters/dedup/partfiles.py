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
    order = np.argsort(part)  # any order within a partition: readers group or sort again
    part = np.asarray(part, np.int64)[order]
    table = table.take(pa.array(order))
    fs, path = filesystem(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    cut = np.flatnonzero(np.diff(part)) + 1
    lo = np.concatenate([[0], cut]).astype(np.int64) if len(part) else np.zeros(0, np.int64)
    hi = np.concatenate([cut, [len(part)]]).astype(np.int64) if len(part) else lo
    parts = part[lo]
    starts = [0]
    with fs.open_output_stream(path) as sink:
        # Work files live for one phase and their keys are random: compressing costs, saves nothing.
        with pq.ParquetWriter(sink, table.schema, compression="none") as writer:
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
                groups = 0
                for s in range(a, b, _ROW_GROUP_ROWS):
                    e = min(b, s + _ROW_GROUP_ROWS)
                    writer.write_table(table.slice(s, e - s), row_group_size=e - s)
                    groups += 1
                starts.append(starts[-1] + groups)
            if not len(part):
                writer.write_table(table.slice(0, 0))
    return PartFile(uri, parts, np.array(starts, np.int64), hi - lo)


class PieceIndex:
    """Which row groups of which files hold each partition, as flat int arrays (about 32 bytes
    per file and partition on the driver, never per row); `pieces(p)` builds one task's list."""

    def __init__(self, files: list[PartFile]) -> None:
        self.uris = [f.uri for f in files]
        counts = [len(f.parts) for f in files]
        part = np.concatenate([f.parts for f in files]) if files else np.zeros(0, np.int64)
        file = np.repeat(np.arange(len(files)), counts)
        first = np.concatenate([f.starts[:-1] for f in files]) if files else part
        last = np.concatenate([f.starts[1:] for f in files]) if files else part
        order = np.lexsort([file, part])
        self.part, self.file = part[order], file[order]
        self.first, self.last = first[order], last[order]

    def partitions(self) -> list[int]:
        return np.unique(self.part).tolist()

    def pieces(self, p: int) -> list[tuple[str, list[int]]]:
        lo, hi = np.searchsorted(self.part, [p, p + 1])
        return [
            (self.uris[f], list(range(a, b)))
            for f, a, b in zip(
                self.file[lo:hi].tolist(),
                self.first[lo:hi].tolist(),
                self.last[lo:hi].tolist(),
                strict=True,
            )
        ]


def pieces_by_partition(files: list[PartFile]) -> dict[int, list[tuple[str, list[int]]]]:
    """Every partition's pieces at once (small inputs and tests; tasks use `PieceIndex`)."""
    index = PieceIndex(files)
    return {p: index.pieces(p) for p in index.partitions()}


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
