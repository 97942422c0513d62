"""Baseline for the benchmarks: the dedup decide of main before issue 11 (commit 0af3e83), verbatim.

Shared by `minhash` (one key per LSH band) and `exact_dedup` (one 128-bit content hash). Each
phase is a top-level function over picklable tuples, run through the runner's `parallel_map`:

1. `scatter`: a task reads some sidecar files and writes, per partition `key % P`, the rows
   `(key..., row_id)` to `workdir/buckets/part-PPPPP/src-TTTTT.parquet`.
2. `gather`: a task reads one partition's files, sorts by key, and for every bucket holding two
   or more rows writes the edges `row_id -> root` (root = the bucket's smallest row id) to
   `workdir/edges/part-PPPPP.parquet`.
3. The driver reads the edges only, runs connected components, then `lookup_ids` tasks fetch
   the user ids of the survivors from the sidecars.

Driver peak memory grows with the number of duplicate edges and of rows that have one
(O(duplicates)), not with the corpus: signatures and keys never leave the tasks. A task holds
one partition, about `total keys / P` rows of 16-24 bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.io import filesystem
from curate_filters.dedup.components import components

# Keys handled by one gather task (auto partitioning) and one scatter task.
_KEYS_PER_PARTITION = 4_000_000
_KEYS_PER_SCATTER = 2_000_000
_MAX_PARTITIONS = 1024

DECISION_SCHEMA = {"duplicate_of": pa.string(), "cluster_size": pa.int64()}


def _write(table: pa.Table, uri: str) -> None:
    """Write a work file to a local path or an object-store URI (no folders to make there)."""
    fs, path = filesystem(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(table, path, filesystem=fs)


def _read(uri: str, columns: list[str] | None = None) -> pa.Table:
    fs, path = filesystem(uri)
    return pq.read_table(path, columns=columns, filesystem=fs)


def _key_matrix(table: pa.Table, group: list[str]) -> np.ndarray:
    return np.column_stack([table.column(c).to_numpy() for c in group]).astype(np.uint64)


def scatter(task: tuple[list[str], list[list[str]], int, str, int]) -> list[str]:
    """Partition the bucket keys of some sidecar files; returns the files written."""
    paths, key_groups, n_parts, out_dir, index = task
    columns = ["row_id", *dict.fromkeys(c for g in key_groups for c in g)]
    table = pa.concat_tables([_read(p, columns) for p in paths])
    row_id = table.column("row_id").to_numpy()
    keys = np.concatenate([_key_matrix(table, g) for g in key_groups])
    rows = np.tile(row_id, len(key_groups))
    part = keys[:, -1] % np.uint64(n_parts)
    order = np.argsort(part, kind="stable")
    part, keys, rows = part[order], keys[order], rows[order]
    bounds = np.searchsorted(part, np.arange(n_parts + 1, dtype=np.uint64))
    written = []
    for p in range(n_parts):
        lo, hi = bounds[p], bounds[p + 1]
        if lo == hi:
            continue
        out = f"{out_dir}/part-{p:05d}/src-{index:05d}.parquet"
        cols = {f"key_{k}": keys[lo:hi, k] for k in range(keys.shape[1])}
        _write(pa.table({**cols, "row_id": rows[lo:hi]}), out)
        written.append(out)
    return written


def gather(task: tuple[list[str], str]) -> str:
    """Edges `row_id -> root` of one partition's buckets; returns the edge file written."""
    paths, out_path = task
    table = pa.concat_tables([_read(p) for p in paths])
    key_cols = [c for c in table.column_names if c.startswith("key_")]
    keys = [table.column(c).to_numpy() for c in key_cols]
    rows = table.column("row_id").to_numpy()
    order = np.lexsort([rows, *reversed(keys)])
    keys = [k[order] for k in keys]
    rows = rows[order]
    new = np.ones(len(rows), bool)
    if len(rows):
        new[1:] = np.any([k[1:] != k[:-1] for k in keys], axis=0)
    start = np.flatnonzero(new)
    root = rows[start][np.cumsum(new) - 1]
    member = ~new
    src, dst = rows[member], root[member]
    # One pair may share several bands: keep each edge once.
    order = np.lexsort([src, dst])
    src, dst = src[order], dst[order]
    keep = np.ones(len(src), bool)
    keep[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    _write(pa.table({"row_id": src[keep], "root": dst[keep]}), out_path)
    return out_path


def lookup_ids(task: tuple[str, np.ndarray]) -> pa.Table:
    """The `(row_id, id)` rows of one sidecar file whose row id is in the sorted `wanted`."""
    path, wanted = task
    table = _read(path, ["row_id", "id"])
    rows = table.column("row_id").to_numpy()
    pos = np.clip(np.searchsorted(wanted, rows), 0, max(len(wanted) - 1, 0))
    hit = (wanted[pos] == rows) if len(wanted) else np.zeros(len(rows), bool)
    return table.filter(pa.array(hit))


def _batches(paths: list[str], sizes: list[int], per_task: int) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    total = 0
    for path, size in zip(paths, sizes, strict=True):
        if groups[-1] and total + size > per_task:
            groups.append([])
            total = 0
        groups[-1].append(path)
        total += size
    return [g for g in groups if g]


def bucket_dedup(
    sidecars: list[str],
    key_groups: list[list[str]],
    parallel_map: Callable,
    workdir: str,
    partitions: int | None = None,
) -> pa.Table:
    """Run the shuffle over sidecar files and return the decision table.

    `key_groups` lists, per bucket family, the sidecar columns that form one key (one column per
    LSH band; the two halves of a 128-bit hash). Rows sharing a key are duplicates. The table
    holds every row in a cluster, sorted by `row_id`: `drop` (all but the smallest row id),
    `duplicate_of` (the survivor's user id, null for survivors) and `cluster_size`.
    """
    work = workdir.rstrip("/")
    sidecars = sorted(sidecars)
    sizes = []
    for uri in sidecars:
        fs, path = filesystem(uri)
        with fs.open_input_file(path) as f:
            sizes.append(pq.read_metadata(f).num_rows * len(key_groups))
    total = sum(sizes)
    n_parts = partitions or min(_MAX_PARTITIONS, max(1, math.ceil(total / _KEYS_PER_PARTITION)))
    scatter_tasks = [
        (group, key_groups, n_parts, f"{work}/buckets", i)
        for i, group in enumerate(_batches(sidecars, sizes, _KEYS_PER_SCATTER))
    ]
    by_part: dict[str, list[str]] = {}
    for written in parallel_map(scatter, scatter_tasks):
        for path in written:
            by_part.setdefault(path.rsplit("/", 2)[-2], []).append(path)
    gather_tasks = [
        (sorted(files), f"{work}/edges/{part}.parquet") for part, files in sorted(by_part.items())
    ]
    edge_files = parallel_map(gather, gather_tasks)
    edges = (
        pa.concat_tables([_read(p) for p in edge_files])
        if edge_files
        else pa.table({"row_id": pa.array([], pa.int64()), "root": pa.array([], pa.int64())})
    )
    nodes, root, size = components(
        edges.column("row_id").to_numpy(), edges.column("root").to_numpy()
    )
    del edges
    if len(nodes) == 0:
        decision = empty_decision()
        _write(decision, f"{work}/clusters.parquet")
        return decision
    survivors = np.unique(root)
    ids = pa.concat_tables(parallel_map(lookup_ids, [(p, survivors) for p in sidecars]))
    order = np.argsort(ids.column("row_id").to_numpy(), kind="stable")
    ids = ids.take(pa.array(order))
    pos = np.searchsorted(ids.column("row_id").to_numpy(), root)
    drop = nodes != root
    duplicate_of = pc.if_else(
        pa.array(drop), ids.column("id").take(pa.array(pos)), pa.nulls(len(nodes), pa.string())
    )
    decision = pa.table(
        {
            "row_id": pa.array(nodes, pa.int64()),
            "drop": pa.array(drop),
            "duplicate_of": duplicate_of,
            "cluster_size": pa.array(size, pa.int64()),
        }
    )
    _write(decision, f"{work}/clusters.parquet")
    return decision


def empty_decision() -> pa.Table:
    """A decision table with no rows: nothing dropped."""
    return pa.table(
        {
            "row_id": pa.array([], pa.int64()),
            "drop": pa.array([], pa.bool_()),
            **{name: pa.array([], dtype) for name, dtype in DECISION_SCHEMA.items()},
        }
    )
