"""Drive a GlobalStep without the runner: signatures over batches, then `decide` in process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_sidecars(step, shard_index: int, table: pa.Table, out_dir: str, batch_size: int) -> str:
    """Run `step.signature` over one shard's batches, as the runner does; returns the file."""
    step.setup()
    parts = []
    for start in range(0, table.num_rows, batch_size):
        batch = table.slice(start, batch_size)
        rows = pa.array((shard_index << 40) + np.arange(start, start + batch.num_rows), pa.int64())
        parts.append(step.signature(batch, rows, batch.column("id")))
    path = Path(out_dir) / f"part-{shard_index:05d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(parts), path)
    return str(path)


def in_process_map(fn: Callable, items) -> list:
    """The local executor's `parallel_map`."""
    return [fn(item) for item in items]
