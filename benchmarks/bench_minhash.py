"""Throughput, peak memory and accuracy of curate `minhash` vs naive datasketch on bench_100k.

curate: 112 perm, 14 bands x 8 rows, word 5-grams, default normalisation, run as the runner
would (signatures per shard on a 2-process pool, then `decide` with the pool as parallel_map).
datasketch 2.0, measured in the same run on the first `--limit` documents: one MinHash per
document (update_batch over the same shingles, sha1), MinHashLSH(params=(14, 8)), query then
insert in corpus order (first occurrence kept). Accuracy: removed documents vs the injected
near_dup / exact_dup copies of ground_truth.parquet, order-free (see `accuracy`): half the copies
precede their source, and either tool keeps whichever comes first.

Run: python benchmarks/bench_minhash.py [--limit 20000] [--procs 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _drive import write_sidecars  # noqa: E402

from curate_filters.minhash.normalize import NormParams, normalize  # noqa: E402
from curate_filters.minhash.step import MinHashDedup, MinHashParams  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bench_100k"
PARAMS = MinHashParams(num_perm=112, bands=14, rows=8, ngram=5)


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _signature_task(task: tuple[int, str, str]) -> str:
    index, shard, out_dir = task
    table = pq.read_table(shard, columns=["id", "text"])
    return write_sidecars(MinHashDedup(PARAMS), index, table, out_dir, 4096)


class TimedMap:
    """A parallel_map over a process pool that records the wall time of each call."""

    def __init__(self, pool) -> None:
        self.pool, self.times = pool, []

    def __call__(self, fn, items):
        start = time.perf_counter()
        out = self.pool.map(fn, list(items), chunksize=1)
        self.times.append((fn.__name__, time.perf_counter() - start))
        return out


def accuracy(removed: set[str], cluster_of: dict[str, str]) -> tuple[float, float, float]:
    """Order-free scores: a truth cluster (a source and its copies) of size k should lose k - 1
    documents, whichever they are; a removal outside any cluster or beyond k - 1 is wrong."""
    sizes: dict[str, int] = {}
    for c in cluster_of.values():
        sizes[c] = sizes.get(c, 0) + 1
    hits: dict[str, int] = {}
    for doc in removed:
        if doc in cluster_of:
            hits[cluster_of[doc]] = hits.get(cluster_of[doc], 0) + 1
    tp = sum(min(h, sizes[c] - 1) for c, h in hits.items())
    expected = sum(k - 1 for k in sizes.values())
    p = tp / len(removed) if removed else 1.0
    r = tp / expected if expected else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def truth_clusters(gt: dict, subset: set[str] | None = None) -> dict[str, str]:
    """Document id -> its source id, for sources with copies (within `subset` if given)."""
    out = {}
    for doc, kind, source in zip(gt["id"], gt["kind"], gt["source_id"], strict=True):
        if kind != "original" and (subset is None or (doc in subset and source in subset)):
            out[doc] = out[source] = source
    return out


def run_curate(shards: list[Path], procs: int) -> tuple[dict[str, float], set[str]]:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp, mp.get_context("spawn").Pool(procs) as pool:
        start = time.perf_counter()
        sidecars = pool.map(
            _signature_task, [(i, str(s), f"{tmp}/sidecar") for i, s in enumerate(shards)], 1
        )
        figures["signatures"] = time.perf_counter() - start
        timed = TimedMap(pool)
        start = time.perf_counter()
        decision = MinHashDedup(PARAMS).decide(sidecars, timed, f"{tmp}/work")
        figures["decide"] = time.perf_counter() - start
        for name, seconds in timed.times:
            figures[name] = seconds
        figures["components"] = figures["decide"] - sum(s for _, s in timed.times)
        dropped = decision.filter(decision.column("drop")).column("row_id").to_numpy()
        ids = {}
        for i, s in enumerate(shards):
            mine = dropped[(dropped >> 40) == i] & ((1 << 40) - 1)
            ids[i] = pq.read_table(s, columns=["id"]).column("id").take(mine).to_pylist()
    # Reaped workers only count once the pool has exited.
    figures["children_rss_mb"] = _rss_mb(resource.RUSAGE_CHILDREN)
    return figures, {x for v in ids.values() for x in v}


def run_datasketch(shards: list[Path], limit: int, queue) -> None:
    from datasketch import MinHash, MinHashLSH

    table = pq.read_table(shards[0], columns=["id", "text"])
    for s in shards[1:]:
        if table.num_rows >= limit:
            break
        table = pa.concat_tables([table, pq.read_table(s, columns=["id", "text"])])
    table = table.slice(0, limit)
    ids = table.column("id").to_pylist()
    start = time.perf_counter()
    texts = normalize(table.column("text"), NormParams()).to_pylist()
    lsh = MinHashLSH(num_perm=112, params=(14, 8))
    removed = set()
    for key, text in zip(ids, texts, strict=True):
        words = text.split(" ")
        shingles = {" ".join(words[k : k + 5]) for k in range(max(len(words) - 4, 1))}
        m = MinHash(num_perm=112, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingles])
        if lsh.query(m):
            removed.add(key)
        else:
            lsh.insert(key, m)
    queue.put((time.perf_counter() - start, removed, set(ids), _rss_mb(resource.RUSAGE_SELF)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=20_000, help="documents given to datasketch")
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    shards = sorted(DATA.glob("shard_*.parquet"))
    truth = pq.read_table(DATA / "ground_truth.parquet", columns=["id", "kind", "source_id"])
    gt = truth.to_pydict()
    n_docs = truth.num_rows

    start = time.perf_counter()
    figures, removed = run_curate(shards, args.procs)
    total = time.perf_counter() - start
    p, r, f1 = accuracy(removed, truth_clusters(gt))
    print(f"curate minhash 14x8, word 5-grams, {n_docs} docs, {args.procs} processes")
    for stage in ("signatures", "scatter", "gather", "components", "lookup_ids", "decide"):
        seconds = figures.get(stage, 0.0)
        print(f"  {stage:<11} {seconds:7.2f} s  {n_docs / max(seconds, 1e-9):>10,.0f} docs/s")
    print(f"  overall     {total:7.2f} s  {n_docs / total:>10,.0f} docs/s (incl. pool start)")
    print(
        f"  peak RSS: driver {_rss_mb(resource.RUSAGE_SELF):.0f} MB, "
        f"largest worker {figures['children_rss_mb']:.0f} MB"
    )
    print(f"  removed {len(removed)}  precision {p:.4f}  recall {r:.4f}  F1 {f1:.4f}")

    queue = mp.get_context("spawn").Queue()
    child = mp.get_context("spawn").Process(target=run_datasketch, args=(shards, args.limit, queue))
    child.start()
    seconds, ds_removed, subset, rss = queue.get()
    child.join()
    sub_truth = truth_clusters(gt, subset)
    dp, dr, df1 = accuracy(ds_removed, sub_truth)
    cp, cr, cf1 = accuracy(removed & subset, sub_truth)
    print(f"datasketch 2.0 naive, first {len(subset)} docs, 1 process")
    print(
        f"  overall     {seconds:7.2f} s  {len(subset) / seconds:>10,.0f} docs/s, "
        f"peak RSS {rss:.0f} MB"
    )
    print(f"  removed {len(ds_removed)}  precision {dp:.4f}  recall {dr:.4f}  F1 {df1:.4f}")
    print(f"  curate on the same subset: precision {cp:.4f}  recall {cr:.4f}  F1 {cf1:.4f}")
    ratio = (n_docs / total) / (len(subset) / seconds)
    print(f"speed-up (curate overall docs/s / datasketch docs/s): {ratio:.1f}x")


if __name__ == "__main__":
    main()
