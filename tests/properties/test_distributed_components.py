"""Distributed connected components (large-star / small-star over edge partitions) and the
sharded dedup decision agree with scipy on one machine, whatever the partitioning."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from curate_filters.dedup.components import components
from curate_filters.dedup.partfiles import (
    pieces_by_partition,
    read_pieces,
    spread,
    write_partitioned,
)
from curate_filters.dedup.shuffle import bucket_dedup, bucket_dedup_sharded, read_decision
from curate_filters.dedup.stars import EDGE_SCHEMA, both_ways, star_components


def local_map(fn, items):
    return [fn(x) for x in items]


def shuffled_map(seed):
    """Runs tasks in a random order (as a cluster may), results in the order asked."""

    def run(fn, items):
        items = list(items)
        order = list(range(len(items)))
        random.Random(seed).shuffle(order)
        out = [None] * len(items)
        for i in order:
            out[i] = fn(items[i])
        return out

    return run


graphs = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n),
    )
)


@settings(deadline=None, max_examples=60)
@given(graphs, st.integers(1, 7), st.integers(1, 4), st.integers(0, 2**31))
def test_star_rounds_match_scipy(graph, n_parts, n_files, seed):
    n, pairs = graph
    pairs = [(a, b) for a, b in pairs if a != b]
    # Sparse, structured ids (shard << 40 | row) and some negative ones (indexed documents).
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(1 << 20, n, replace=False)).astype(np.int64)
    ids = np.where(ids % 3 == 0, ids << 40, ids - (1 << 30))
    src = np.array([ids[a] for a, _ in pairs], np.int64)
    dst = np.array([ids[b] for _, b in pairs], np.int64)
    nodes, root, _ = components(src, dst)
    expected = dict(zip(nodes.tolist(), root.tolist(), strict=True))

    import tempfile

    with tempfile.TemporaryDirectory() as work:
        files = []
        for f in range(n_files):
            edges = both_ways(src[f::n_files], dst[f::n_files])
            key = edges.column("key").to_numpy()
            files.append(write_partitioned(edges, spread(key, n_parts), f"{work}/in-{f}.parquet"))
        final = star_components(files, n_parts, shuffled_map(seed), f"{work}/cc")
        edges = pa.concat_tables(
            [
                EDGE_SCHEMA.empty_table(),
                *(read_pieces(p, EDGE_SCHEMA) for p in pieces_by_partition(final).values()),
            ]
        )
    k = edges.column("key").to_numpy()
    nb = edges.column("nbr").to_numpy()
    got = {int(a): int(b) for a, b in zip(k, nb, strict=True) if b < a}
    got.update({int(b): int(b) for a, b in zip(k, nb, strict=True) if b < a})
    assert got == expected


def _sidecars(tmp, shards):
    paths = []
    for s, keys in enumerate(shards):
        rows = (np.int64(s) << 40) + np.arange(len(keys), dtype=np.int64)
        table = pa.table(
            {
                "row_id": rows,
                "id": pa.array([f"d{s}-{i}" for i in range(len(keys))]),
                "band_00": pa.array(np.array([k[0] for k in keys], np.uint64)),
                "band_01": pa.array(np.array([k[1] for k in keys], np.uint64)),
            }
        )
        path = tmp / f"part-{s:05d}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths


def _reference(shards):
    """Today's algorithm on one machine: edges to bucket minima, scipy, survivor = min row."""
    rows, keys = [], []
    for s, ks in enumerate(shards):
        for i, k in enumerate(ks):
            rows.append((s << 40) + i)
            keys.append(k)
    src, dst = [], []
    first: dict[int, int] = {}  # keys of all bands share one space, as in the shuffle
    for band in (0, 1):
        for r, k in sorted(zip(rows, keys, strict=True)):
            if k[band] in first and first[k[band]] != r:  # a row with one key twice: no edge
                src.append(r)
                dst.append(first[k[band]])
            first[k[band]] = min(first.get(k[band], r), r)
    nodes, root, size = components(np.array(src, np.int64), np.array(dst, np.int64))
    name = {(s << 40) + i: f"d{s}-{i}" for s, ks in enumerate(shards) for i in range(len(ks))}
    return pa.table(
        {
            "row_id": nodes,
            "drop": nodes != root,
            "duplicate_of": [name[r] if r != n else None for n, r in zip(nodes, root, strict=True)],
            "cluster_size": size,
        }
    )


corpora = st.lists(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=25),
    min_size=1,
    max_size=4,
)


@settings(deadline=None, max_examples=40)
@given(corpora, st.integers(1, 6), st.integers(0, 2**31))
def test_sharded_decision_is_todays_for_any_partitioning(tmp_path_factory, shards, parts, seed):
    tmp = tmp_path_factory.mktemp("dedup")
    paths = _sidecars(tmp, shards)
    groups = [["band_00"], ["band_01"]]
    result = bucket_dedup_sharded(
        paths, groups, shuffled_map(seed), str(tmp / "work"), str(tmp / "decision"), parts
    )
    got = read_decision(result)
    want = _reference(shards)
    assert got.to_pylist() == want.to_pylist()
    # Each shard's file holds only that shard's rows.
    for shard, uri in result["shards"].items():
        rows = pq.read_table(uri).column("row_id").to_numpy()
        assert np.all(rows >> 40 == int(shard))
    # And the table form agrees with one partition, in order.
    one = bucket_dedup(paths, groups, local_map, str(tmp / "work1"), 1)
    assert one.equals(got)


def test_one_work_file_per_task_and_none_left_by_the_phases(tmp_path):
    shards = [[(i % 7, i % 5) for i in range(40)] for _ in range(3)]
    paths = _sidecars(tmp_path, shards)
    seen = {}

    def watching(fn, items):
        items = list(items)
        out = [fn(x) for x in items]
        if fn.__name__ == "gather":  # the scatter files are still there, one per scatter task
            seen["buckets"] = sorted(p.name for p in (tmp_path / "work" / "buckets").iterdir())
            seen["gathers"] = len(items)
        return out

    result = bucket_dedup_sharded(
        paths, [["band_00"], ["band_01"]], watching, str(tmp_path / "work"), str(tmp_path / "d"), 5
    )
    assert seen["buckets"] == ["scatter-00000.parquet"]  # 120 rows: one scatter task
    assert seen["gathers"] == 5  # ... read by every partition's task, row groups apart
    assert not list((tmp_path / "work" / "buckets").iterdir())  # gone after the gather
    assert result["partitions"] == 5
