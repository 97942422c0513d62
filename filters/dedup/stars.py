"""Connected components as Ray tasks over edge partitions: alternating large-star / small-star.

Kiveris et al., "Connected Components in Map Reduce and Beyond" (SoCC 2014). Every round reads
the edges partitioned by node, one task a partition, and writes new edges partitioned again; the
graph keeps its components and converges to one star per component whose centre is the
component's smallest node id, whatever the partitioning or the order of the edges. So the
survivor is always the smallest dense row id, as with scipy on one machine, but no process ever
holds more than one partition of edges: the driver holds file names only.

Edge files have two int64 columns `key` (the node a task groups on) and `nbr` (a neighbour).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from curate.io import filesystem
from curate_filters.dedup.partfiles import (
    PartFile,
    PieceIndex,
    read_pieces,
    spread,
    write_partitioned,
)

EDGE_SCHEMA = pa.schema([("key", pa.int64()), ("nbr", pa.int64())])
CLUSTER_SCHEMA = pa.schema(
    [("row_id", pa.int64()), ("root", pa.int64()), ("cluster_size", pa.int64())]
)
MAX_ROUNDS = 64  # the algorithm needs O(log^2 n) rounds; a handful in practice


def _pairs(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Unique `(key, nbr)` pairs sorted by key, then neighbour."""
    k = table.column("key").to_numpy()
    n = table.column("nbr").to_numpy()
    order = np.lexsort([n, k])
    k, n = k[order], n[order]
    keep = np.ones(len(k), bool)
    keep[1:] = (k[1:] != k[:-1]) | (n[1:] != n[:-1])
    return k[keep], n[keep]


def _groups(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start of each key's run, each row's group number, and each group's size."""
    new = np.ones(len(k), bool)
    new[1:] = k[1:] != k[:-1]
    start = np.flatnonzero(new)
    return start, np.cumsum(new) - 1, np.diff(np.append(start, len(k)))


def both_ways(a: np.ndarray, b: np.ndarray) -> pa.Table:
    """Undirected edges `a - b` as rows keyed by each end (what large-star reads)."""
    return pa.table(
        {"key": np.concatenate([a, b]), "nbr": np.concatenate([b, a])}, schema=EDGE_SCHEMA
    )


def large_star(task: tuple[list, int, str]) -> tuple[PartFile, bool]:
    """Link every larger neighbour of a node to the smallest of the node's neighbourhood.

    Also says whether this partition is already final: every node a centre (all neighbours
    larger) or a leaf (one neighbour, smaller). Output: edges keyed by their larger end.
    """
    pieces, n_parts, out_uri = task
    k, n = _pairs(read_pieces(pieces, EDGE_SCHEMA))
    start, gid, size = _groups(k)
    first = n[start]
    head = k[start]
    final = bool(np.all((first > head) | ((size == 1) & (first < head))))
    m = np.minimum(head, first)[gid]
    emit = n > k
    src, dst = n[emit], m[emit]
    table = pa.table({"key": src, "nbr": dst}, schema=EDGE_SCHEMA)
    return write_partitioned(table, spread(src, n_parts), out_uri), final


def small_star(task: tuple[list, int, str]) -> PartFile:
    """Link a node and its smaller neighbours to the smallest of them (edges keyed by the larger
    end come in); output undirected edges keyed by both ends."""
    pieces, n_parts, out_uri = task
    k, n = _pairs(read_pieces(pieces, EDGE_SCHEMA))
    start, gid, _ = _groups(k)
    m = n[start]
    v = np.concatenate([n, k[start]])
    to = np.concatenate([m[gid], m])
    keep = v != to
    table = both_ways(v[keep], to[keep])
    return write_partitioned(table, spread(table.column("key").to_numpy(), n_parts), out_uri)


def clusters(task: tuple[list, np.ndarray, str]) -> PartFile:
    """From the final stars: every clustered row, its root (the centre) and its cluster size,
    partitioned by the source file that holds the root (`starts`: each source's first row id)."""
    pieces, starts, out_uri = task
    k, n = _pairs(read_pieces(pieces, EDGE_SCHEMA))
    start, gid, size = _groups(k)
    centre = n[start] > k[start]
    rows = centre[gid]
    node = np.concatenate([k[start][centre], n[rows]])
    root = np.concatenate([k[start][centre], k[rows]])
    count = np.concatenate([size[centre] + 1, (size + 1)[gid][rows]])
    table = pa.table({"row_id": node, "root": root, "cluster_size": count}, schema=CLUSTER_SCHEMA)
    part = np.searchsorted(starts, root, side="right") - 1
    return write_partitioned(table, part, out_uri)


def delete_files(uris: list[str]) -> int:
    """Remove work files a later round no longer needs."""
    for uri in uris:
        fs, path = filesystem(uri)
        try:
            fs.delete_file(path)
        except FileNotFoundError:
            pass
    return len(uris)


def _chunks(items: list[str], size: int = 256) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def star_components(
    edges: list[PartFile], n_parts: int, parallel_map: Callable, work: str
) -> list[PartFile]:
    """Run large-star / small-star rounds from undirected edges keyed both ways until every
    component is one star; returns those final edge files (centre = smallest node)."""
    files = edges
    for r in range(MAX_ROUNDS):
        by = PieceIndex(files)
        tasks = (
            (by.pieces(p), n_parts, f"{work}/r{r:03d}-large-{p:05d}.parquet")
            for p in by.partitions()
        )
        results = parallel_map(large_star, tasks)
        mid = [f for f, _ in results]
        if all(final for _, final in results):
            parallel_map(delete_files, _chunks([f.uri for f in mid]))
            return files
        by = PieceIndex(mid)
        tasks = (
            (by.pieces(p), n_parts, f"{work}/r{r:03d}-small-{p:05d}.parquet")
            for p in by.partitions()
        )
        previous = files
        files = parallel_map(small_star, tasks)
        parallel_map(delete_files, _chunks([f.uri for f in previous + mid]))
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
