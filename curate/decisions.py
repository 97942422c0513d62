"""A global step's decision stored per source shard, and the slice of it one work unit reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import io

SLICE_ROWS = 65_536  # rows a decision row group holds: a unit reads only the groups it overlaps


def shard_file(outdir: str, shard: int) -> str:
    """Where the decision rows of one source shard go (an owned name, see curate.ownership)."""
    return io.join(outdir, f"shard-{shard:06d}.parquet")


def write_shard(table: pa.Table, uri: str, compression: str = "zstd") -> str:
    """Write one shard's decision rows (sorted by row_id) atomically; returns the final URI."""
    writer = io.AtomicParquetWriter(uri, table.schema, compression)
    try:
        for start in range(0, table.num_rows, SLICE_ROWS):
            writer.write(table.slice(start, SLICE_ROWS))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return writer.uri


def write_by_shard(table: pa.Table, outdir: str, compression: str = "zstd") -> dict[str, Any]:
    """Split a whole decision table by source shard (`row_id >> io.ROW_BITS`) and write it."""
    table = table.sort_by("row_id")
    shard = table.column("row_id").to_numpy() >> io.ROW_BITS
    cut = np.flatnonzero(np.diff(shard)) + 1
    bounds = np.concatenate([[0], cut, [len(shard)]]).astype(int) if len(shard) else [0]
    files = {}
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        s = int(shard[lo])
        files[str(s)] = write_shard(table.slice(lo, hi - lo), shard_file(outdir, s), compression)
    drop = table.column("drop").to_numpy(zero_copy_only=False)
    return {"shards": files, "decision_rows": table.num_rows, "to_drop": int(drop.sum())}


def unit_row_range(unit: io.WorkUnit) -> tuple[int, int]:
    """The dense row ids a work unit can hold: `[lo, hi)`."""
    base = unit.shard.index << io.ROW_BITS
    if unit.row_groups is None or not unit.shard.row_group_rows:
        return base, base + (1 << io.ROW_BITS)
    rows = sum(unit.shard.row_group_rows[g] for g in unit.row_groups)
    return base + unit.first_row, base + unit.first_row + rows


@dataclass
class DecisionSlice:
    """The decision rows of one unit, as numpy once: each batch then costs O(batch log slice)."""

    row_ids: np.ndarray
    drop: np.ndarray
    table: pa.Table

    @classmethod
    def read(cls, shards: dict[str, str], unit: io.WorkUnit) -> DecisionSlice:
        """Read the unit's rows from its shard's decision file (only the row groups it spans)."""
        uri = shards.get(str(unit.shard.index))
        if uri is None:
            table = None
        else:
            lo, hi = unit_row_range(unit)
            fs, path = io.filesystem(uri)
            with fs.open_input_file(path) as f:
                table = pq.read_table(
                    f, filters=[("row_id", ">=", lo), ("row_id", "<", hi)], pre_buffer=True
                )
        return cls.of(table)

    @classmethod
    def of(cls, table: pa.Table | None) -> DecisionSlice:
        if table is None:
            table = pa.table({"row_id": pa.array([], pa.int64()), "drop": pa.array([], pa.bool_())})
        table = table.combine_chunks()
        return cls(
            table.column("row_id").to_numpy(),
            table.column("drop").to_numpy(zero_copy_only=False),
            table,
        )

    def lookup(self, row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row id: whether the decision holds it, and its position there."""
        if not len(self.row_ids):
            return np.zeros(len(row_ids), bool), np.zeros(len(row_ids), np.int64)
        pos = np.minimum(np.searchsorted(self.row_ids, row_ids), len(self.row_ids) - 1)
        return self.row_ids[pos] == row_ids, pos

    def column(self, name: str, take: pa.Array, dtype: pa.DataType) -> pa.Array:
        if not len(self.row_ids) or name not in self.table.column_names:
            return pa.nulls(len(take), dtype)
        return pc.take(self.table.column(name), take)
