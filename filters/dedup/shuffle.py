"""The dedup shuffle: sidecar bucket keys -> partitions -> edges -> components -> decision files.

Shared by `minhash` (one key per LSH band) and `exact_dedup` (one 128-bit content hash). Every
phase is a top-level function over picklable tuples, run through the runner's `parallel_map`;
every work file is partition-major (one file a task, a run of row groups per partition, see
`partfiles`), so a phase writes as many files as it has tasks, not tasks x partitions:

1. `source_footer`: each source's row count and row-id range, read in parallel once.
2. `scatter`: a task reads some sources and writes their `(key..., row_id)` rows by `key % P`.
3. `gather`: a task reads one partition, finds the buckets holding two or more rows, joins each
   to its smallest row id, runs union-find on its own edges (scipy) and writes the local stars.
4. `stars.star_components`: large-star / small-star rounds until each component is one star
   centred on its smallest row id; `stars.clusters` gives every clustered row its root and
   cluster size, partitioned by the source file that holds the root.
5. `join_ids`: a task per source file looks up the user ids of the roots it holds (a
   partitioned join: no task receives all survivors) and writes the decision rows by shard.
6. `write_decision`: a task per source shard sorts its rows and writes its decision file.

An index of an earlier run (`index` param) enters as extra sources with negative row ids, so
its rows are always the roots of their clusters and are never in the decision.

No step holds O(duplicates) on the driver: it keeps the file names and per-file partition lists
(O(tasks x partitions)). A task holds one partition (about `total keys / P` rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import decisions
from curate.io import ROW_BITS, filesystem
from curate_filters.dedup.components import components
from curate_filters.dedup.partfiles import (
    PartFile,
    PieceIndex,
    read_pieces,
    spread,
    write_partitioned,
)
from curate_filters.dedup.stars import (
    CLUSTER_SCHEMA,
    both_ways,
    clusters,
    delete_files,
    star_components,
)

# Keys handled by one gather task (auto partitioning) and one scatter task.
_KEYS_PER_PARTITION = 4_000_000
_KEYS_PER_SCATTER = 2_000_000
_EDGES_PER_PARTITION = 4_000_000
_MAX_PARTITIONS = 1024
INDEX_BASE = -(1 << 62)  # row ids of indexed documents: below every corpus row, so they survive

DECISION_SCHEMA = {"duplicate_of": pa.string(), "cluster_size": pa.int64()}
DECISION_ROWS = pa.schema(
    [
        ("row_id", pa.int64()),
        ("drop", pa.bool_()),
        ("duplicate_of", pa.string()),
        ("cluster_size", pa.int64()),
    ]
)

# A source: (uri, first row id) -- None for a sidecar (its `row_id` column), an offset for an
# index file (row ids offset + row number).
Source = tuple[str, int | None]


def _read(uri: str, columns: list[str] | None = None) -> pa.Table:
    fs, path = filesystem(uri)
    with fs.open_input_file(path) as f:
        return pq.read_table(f, columns=columns)


def _source_table(source: Source, columns: list[str]) -> pa.Table:
    """A source's columns with its row ids as `row_id`."""
    uri, offset = source
    if offset is None:
        return _read(uri, ["row_id", *columns])
    table = _read(uri, columns)
    rows = pa.array(np.arange(table.num_rows) + offset, pa.int64())
    return table.add_column(0, "row_id", rows)


def source_footer(uri: str) -> tuple[int, int | None]:
    """Rows of a source file and its smallest `row_id` (statistics, else the column), if any."""
    fs, path = filesystem(uri)
    with fs.open_input_file(path) as f:
        meta = pq.read_metadata(f)
        if not meta.num_rows:
            return 0, None
        names = meta.schema.names
        if "row_id" not in names:
            return meta.num_rows, None
        col = names.index("row_id")
        stats = [meta.row_group(g).column(col).statistics for g in range(meta.num_row_groups)]
        if all(s is not None and s.has_min_max for s in stats):
            return meta.num_rows, int(min(s.min for s in stats))
        column = pq.read_table(f, columns=["row_id"]).column("row_id")
        return meta.num_rows, int(pc.min(column).as_py())


def _key_matrix(table: pa.Table, group: list[str]) -> np.ndarray:
    return np.column_stack([table.column(c).to_numpy() for c in group]).astype(np.uint64)


def scatter(task: tuple[list[Source], list[list[str]], int, str]) -> PartFile:
    """Partition the bucket keys of some sources into one partition-major file."""
    sources, key_groups, n_parts, out_uri = task
    columns = list(dict.fromkeys(c for g in key_groups for c in g))
    table = pa.concat_tables([_source_table(s, columns) for s in sources])
    row_id = table.column("row_id").to_numpy()
    keys = np.concatenate([_key_matrix(table, g) for g in key_groups])
    rows = np.tile(row_id, len(key_groups))
    part = (keys[:, -1] % np.uint64(n_parts)).astype(np.int64)
    cols = {f"key_{k}": keys[:, k] for k in range(keys.shape[1])}
    return write_partitioned(pa.table({**cols, "row_id": rows}), part, out_uri)


def gather(task: tuple[list, int, int, str]) -> PartFile:
    """One partition's buckets -> edges to each bucket's smallest row id -> local union-find ->
    undirected star edges keyed both ways, partitioned by node for the star rounds."""
    pieces, key_width, cc_parts, out_uri = task
    schema = pa.schema(
        [*((f"key_{k}", pa.uint64()) for k in range(key_width)), ("row_id", pa.int64())]
    )
    table = read_pieces(pieces, schema)
    keys = [table.column(f"key_{k}").to_numpy() for k in range(key_width)]
    rows = table.column("row_id").to_numpy()
    # Grouped by key only: which member of a bucket the edges point to does not change the
    # components, and one argsort is several times cheaper than a lexsort with the row ids.
    order = np.argsort(keys[0]) if key_width == 1 else np.lexsort(keys[::-1])
    keys = [k[order] for k in keys]
    rows = rows[order]
    new = np.ones(len(rows), bool)
    if len(rows):
        new[1:] = np.any([k[1:] != k[:-1] for k in keys], axis=0)
    start = np.flatnonzero(new)
    bucket = np.cumsum(new) - 1
    root = np.minimum.reduceat(rows, start)[bucket] if len(rows) else rows
    shared = root != rows  # every row but its bucket's smallest: an edge to it
    nodes, label, _ = components(rows[shared], root[shared])
    leaf = nodes != label
    edges = both_ways(nodes[leaf], label[leaf])
    return write_partitioned(edges, spread(edges.column("key").to_numpy(), cc_parts), out_uri)


def join_ids(task: tuple[list, Source, str]) -> PartFile:
    """Decision rows of the clusters rooted in one source: the root's user id looked up there.
    Indexed documents (negative row ids) are roots only, never decision rows."""
    pieces, source, out_uri = task
    found = read_pieces(pieces, CLUSTER_SCHEMA)
    table = _source_table(source, ["id"]) if found.num_rows else None
    row_id = found.column("row_id").to_numpy()
    root = found.column("root").to_numpy()
    if table is not None:
        have = table.column("row_id").to_numpy()
        order = np.argsort(have, kind="stable")
        pos = order[np.searchsorted(have[order], root)]
        root_id = table.column("id").take(pa.array(pos))
    else:
        root_id = pa.array([], pa.string())
    drop = row_id != root
    out = pa.table(
        {
            "row_id": row_id,
            "drop": drop,
            "duplicate_of": pc.if_else(pa.array(drop), root_id, pa.scalar(None, pa.string())),
            "cluster_size": found.column("cluster_size"),
        },
        schema=DECISION_ROWS,
    )
    corpus = row_id >= 0
    out = out.filter(pa.array(corpus))
    return write_partitioned(out, row_id[corpus] >> ROW_BITS, out_uri)


def write_decision(task: tuple[list, int, str, str]) -> tuple[int, str, int, int]:
    """One shard's decision file, sorted by row id: `(shard, uri, rows, dropped)`."""
    pieces, shard, outdir, compression = task
    table = read_pieces(pieces, DECISION_ROWS).sort_by("row_id")
    uri = decisions.write_shard(table, decisions.shard_file(outdir, shard), compression)
    dropped = int(pc.sum(table.column("drop")).as_py() or 0)
    return shard, uri, table.num_rows, dropped


def _batches(sources: list[Source], sizes: list[int], per_task: int) -> list[list[Source]]:
    groups: list[list[Source]] = [[]]
    total = 0
    for source, size in zip(sources, sizes, strict=True):
        if groups[-1] and total + size > per_task:
            groups.append([])
            total = 0
        groups[-1].append(source)
        total += size
    return [g for g in groups if g]


def plan_sources(
    sidecars: list[str], index_files: list[str], parallel_map: Callable
) -> tuple[list[Source], list[int], np.ndarray]:
    """Sources in row-id order (index files first), their rows, and each one's first row id."""
    footers = parallel_map(source_footer, [*index_files, *sidecars])
    sources: list[Source] = []
    rows: list[int] = []
    starts: list[int] = []
    offset = INDEX_BASE
    for uri, (n, _) in zip(index_files, footers[: len(index_files)], strict=True):
        if n:
            sources.append((uri, offset))
            rows.append(n)
            starts.append(offset)
            offset += n
    sidecar_info = sorted(
        (first, uri, n)
        for uri, (n, first) in zip(sidecars, footers[len(index_files) :], strict=True)
        if n
    )
    for first, uri, n in sidecar_info:
        sources.append((uri, None))
        rows.append(n)
        starts.append(first)
    return sources, rows, np.array(starts, np.int64)


def bucket_dedup_sharded(
    sidecars: list[str],
    key_groups: list[list[str]],
    parallel_map: Callable,
    workdir: str,
    outdir: str,
    partitions: int | None = None,
    compression: str = "zstd",
    index_files: list[str] | None = None,
) -> dict[str, Any]:
    """Run the shuffle and write the decision per source shard under `outdir`.

    `key_groups` lists, per bucket family, the sidecar columns that form one key (one column per
    LSH band; the two halves of a 128-bit hash). Rows sharing a key are duplicates. A shard's
    file holds every row of it in a cluster, sorted by `row_id`: `drop` (all but the smallest
    row id of the cluster), `duplicate_of` (the survivor's user id, null for survivors) and
    `cluster_size`. Returns `{"shards": {shard: uri}, "decision_rows", "to_drop", ...}`.
    """
    work = workdir.rstrip("/")
    sources, rows, starts = plan_sources(sorted(sidecars), sorted(index_files or []), parallel_map)
    sizes = [n * len(key_groups) for n in rows]
    total = sum(sizes)
    n_parts = partitions or min(_MAX_PARTITIONS, max(1, math.ceil(total / _KEYS_PER_PARTITION)))
    # Edges after union-find are about one per clustered row; as many tasks as the gather.
    cc_parts = min(_MAX_PARTITIONS, max(n_parts, math.ceil(sum(rows) / _EDGES_PER_PARTITION)))
    scatter_tasks = [
        (group, key_groups, n_parts, f"{work}/buckets/scatter-{i:05d}.parquet")
        for i, group in enumerate(_batches(sources, sizes, _KEYS_PER_SCATTER))
    ]
    scattered = parallel_map(scatter, scatter_tasks)
    # Each phase's tasks are made as they are submitted: the driver holds the flat piece index
    # of the files just written, never a list per partition of them all.
    by = PieceIndex(scattered)
    width = len(key_groups[0])
    edges = parallel_map(
        gather,
        (
            (by.pieces(p), width, cc_parts, f"{work}/edges/gather-{p:05d}.parquet")
            for p in by.partitions()
        ),
    )
    parallel_map(delete_files, [[f.uri for f in scattered]])
    stars = star_components(edges, cc_parts, parallel_map, f"{work}/cc")
    by = PieceIndex(stars)
    cluster_files = parallel_map(
        clusters,
        ((by.pieces(p), starts, f"{work}/clusters/c-{p:05d}.parquet") for p in by.partitions()),
    )
    by = PieceIndex(cluster_files)
    joined = parallel_map(
        join_ids,
        ((by.pieces(i), sources[i], f"{work}/joined/j-{i:05d}.parquet") for i in by.partitions()),
    )
    by = PieceIndex(joined)
    written = parallel_map(
        write_decision, ((by.pieces(s), s, outdir, compression) for s in by.partitions())
    )
    return {
        "shards": {str(s): uri for s, uri, _, _ in written},
        "decision_rows": sum(n for _, _, n, _ in written),
        "to_drop": sum(d for _, _, _, d in written),
        "partitions": n_parts,
        "component_partitions": cc_parts,
    }


def read_decision(result: dict[str, Any]) -> pa.Table:
    """The whole decision as one table, sorted by row id (tests and small corpora)."""
    tables = [_read(uri) for _, uri in sorted(result["shards"].items(), key=lambda i: int(i[0]))]
    return pa.concat_tables(tables) if tables else empty_decision()


def bucket_dedup(
    sidecars: list[str],
    key_groups: list[list[str]],
    parallel_map: Callable,
    workdir: str,
    partitions: int | None = None,
) -> pa.Table:
    """`bucket_dedup_sharded`, returned as one table (its files under `workdir/decision`)."""
    result = bucket_dedup_sharded(
        sidecars, key_groups, parallel_map, workdir, f"{workdir.rstrip('/')}/decision", partitions
    )
    return read_decision(result)


def empty_decision() -> pa.Table:
    """A decision table with no rows: nothing dropped."""
    return DECISION_ROWS.empty_table()
