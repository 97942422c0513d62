"""User ids that repeat anywhere in the input, counted by a hash-range shuffle, not on the driver.

1. `scatter_ids` (one task a shard) reads only the id column, hashes every id (xxh3-64) and
   writes `(hash, id)` sorted by hash, in row groups of `ROW_GROUP` rows.
2. `count_range` (one task a slice of the 64-bit hash space) reads, from every file, only the
   row groups whose hash statistics overlap its slice, and counts repeated ids there.
The driver holds one small summary per task: its memory does not grow with the corpus. Equal
hashes of different ids (about n^2 / 2^65 pairs: 0.03 at 1e9 ids) would count as repeats.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from curate import io, retry

ROW_GROUP = 65_536
IDS_PER_RANGE = 8_000_000
EXAMPLES = 3


def hash_ids(ids: pa.Array) -> np.ndarray:
    """xxh3-64 of each id's text (ids of any type are compared as their string form)."""
    text = pc.cast(ids, pa.string()) if not pa.types.is_string(ids.type) else ids
    return np.fromiter(
        (xxhash.xxh3_64_intdigest(s.encode()) for s in text.to_pylist()),
        dtype=np.uint64,
        count=len(text),
    )


def scatter_ids(task: tuple[io.Shard, str, str]) -> dict[str, Any]:
    """Hash one shard's ids into a sorted work file; returns its path and counts."""
    shard, id_column, out_uri = task
    unit = io.WorkUnit(shard.index, shard, None, 0)
    chunks = []
    for batch in io.read_unit(unit, ROW_GROUP, columns=[id_column]):
        if id_column not in batch.schema.names:
            raise io.InputError(f"{shard.uri}: no id column '{id_column}'; fix input.id_column")
        chunks.append(batch.column(id_column))
    ids = pa.chunked_array(chunks).combine_chunks() if chunks else pa.array([], pa.string())
    nulls = ids.null_count
    ids = pc.cast(ids.drop_null(), pa.string())
    hashes = hash_ids(ids)
    order = np.argsort(hashes, kind="stable")
    table = pa.table({"hash": pa.array(hashes[order]), "id": ids.take(pa.array(order))})
    fs, path = io.filesystem(out_uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(table, path, filesystem=fs, row_group_size=ROW_GROUP)
    return {"file": out_uri, "rows": len(ids), "nulls": nulls}


def count_range(task: tuple[list[str], int, int]) -> dict[str, Any]:
    """Repeated ids whose hash lies in [lo, hi): count and a few examples."""
    files, lo, hi = task
    parts = []
    for uri in files:
        fs, path = io.filesystem(uri)
        with fs.open_input_file(path) as f:
            pf = pq.ParquetFile(f)
            for g in range(pf.num_row_groups):
                st = pf.metadata.row_group(g).column(0).statistics
                if st is not None and st.has_min_max and (st.max < lo or st.min >= hi):
                    continue
                part = pf.read_row_group(g)
                h = part.column("hash")
                mask = pc.greater_equal(h, pa.scalar(lo, pa.uint64()))
                if hi < 2**64:
                    mask = pc.and_(mask, pc.less(h, pa.scalar(hi, pa.uint64())))
                parts.append(part.filter(mask))
    if not parts:
        return {"repeated": 0, "examples": []}
    table = pa.concat_tables(parts)
    hashes = table.column("hash").to_numpy()
    unique, counts = np.unique(hashes, return_counts=True)
    repeated = int(len(hashes) - len(unique))
    examples: list[str] = []
    if repeated:
        first = unique[counts > 1][:EXAMPLES]
        ids = table.column("id").to_numpy(zero_copy_only=False)
        examples = [str(ids[np.flatnonzero(hashes == h)[0]]) for h in first]
    return {"repeated": repeated, "examples": examples}


def _retried(task_fn: Callable, attempts: int, task: tuple) -> dict[str, Any]:
    """A task again on a store's hiccup: each rewrites its own work file whole, so a retry
    is harmless."""
    what = f"id check of {task[0].uri}" if isinstance(task[0], io.Shard) else "id check"
    return retry.call(lambda: task_fn(task), what, retry.Policy(attempts=attempts))


def check_ids(
    shards: list[io.Shard],
    id_column: str,
    workdir: str,
    parallel_map: Callable,
    attempts: int = retry.Policy().attempts,
) -> dict[str, Any]:
    """Null and repeated ids over the whole input (repeats counted beyond each first one)."""
    tasks = [(s, id_column, io.join(workdir, f"ids-{s.index:06d}.parquet")) for s in shards]
    written = parallel_map(functools.partial(_retried, scatter_ids, attempts), tasks)
    total = sum(w["rows"] for w in written)
    ranges = max(1, math.ceil(total / IDS_PER_RANGE))
    bounds = [i * 2**64 // ranges for i in range(ranges + 1)]
    files = [w["file"] for w in written if w["rows"]]
    counted = parallel_map(
        functools.partial(_retried, count_range, attempts),
        [(files, bounds[i], bounds[i + 1]) for i in range(ranges)],
    )
    examples = [e for c in counted for e in c["examples"]][:EXAMPLES]
    return {
        "null_id": sum(w["nulls"] for w in written),
        "duplicate_id": sum(c["repeated"] for c in counted),
        "examples": examples,
    }
