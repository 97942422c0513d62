"""curate `minhash` vs naive datasketch, one process each, same run: docs/s, peak RSS, accuracy.

Comparison (like for like): both sides get the first `--limit` documents of the corpus (written
once as 10 shards) and return the ids they would remove; each is a whole process (Python start,
reading the shards, normalising and hashing, finding duplicates), run alternately `--runs` times,
median reported. datasketch is one process, so curate gets one too: `--procs 1` (the runner's
per-shard signatures, then `decide` with a 1-process pool as parallel_map). curate: 112 perm,
14 bands x 8 rows, word 5-grams, default normalisation. datasketch 2.0: one MinHash per document
(update_batch over the same shingles of curate's normalised text, sha1), MinHashLSH(params=(14,
8)), query then insert in corpus order (first occurrence kept). Accuracy: removed documents vs the
injected near_dup / exact_dup copies of ground_truth.parquet, order-free (see `_scoring.accuracy`).

End to end (not a comparison): the same step alone through `curate run` (embedded local Ray,
`--workers`, default 2) over the whole corpus in a subprocess; docs/s over the wall time of the
command, Python and Ray start included; peak RSS sampled every 0.2 s (psutil) of the driver, of
the largest `_UnitActor` worker and of the largest other Ray worker (the shuffle tasks).
`bench_minhash_datatrove.py` compares MinHash alone with datatrove's, reading and writing included.

Run: python benchmarks/bench_minhash.py [--corpus ../shared/data/bench_100k] [--limit 20000]
       [--runs 3] [--workers 2] [--skip-e2e]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import (  # noqa: E402
    SHARED_NOTE,
    Measured,
    alternate,
    corpus_arguments,
    count_docs,
    median_run,
    print_ratio,
    print_side,
    resolve_corpus,
    run_measured,
    slice_corpus,
)
from _drive import write_sidecars  # noqa: E402
from _scoring import accuracy, truth_clusters  # noqa: E402

from curate_filters.dedup.normalize import NormParams, normalize  # noqa: E402
from curate_filters.dedup.step import MinHashDedup, MinHashParams  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
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


def run_e2e(shards: list[Path], workers: int) -> dict:
    """`curate run` of a minhash-only config in a subprocess; wall time and sampled peak RSS."""
    import psutil
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "minhash.yaml"
        step = {"use": "minhash", "params": {"num_perm": 112, "bands": 14, "rows": 8, "ngram": 5}}
        conf.write_text(
            yaml.safe_dump(
                {
                    "input": {"path": [str(s) for s in shards], "id_column": "id"},
                    "output": {"path": f"{tmp}/out"},
                    "ray": {"workers": workers},
                    "steps": [step],
                }
            )
        )
        peak = {"driver": 0, "actor": 0, "task": 0}
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        cmd = [sys.executable, "-m", "curate.cli", "run", str(conf), "--quiet", "--overwrite"]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
        stop = threading.Event()

        def sample() -> None:
            root = psutil.Process(proc.pid)
            while not stop.is_set():
                try:
                    peak["driver"] = max(peak["driver"], root.memory_info().rss)
                    children = root.children(recursive=True)
                except psutil.NoSuchProcess:
                    return
                for child in children:
                    try:
                        cmdline = " ".join(child.cmdline())
                        rss = child.memory_info().rss
                    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                        continue
                    if "_UnitActor" in cmdline:
                        peak["actor"] = max(peak["actor"], rss)
                    elif cmdline.startswith("ray::"):
                        peak["task"] = max(peak["task"], rss)
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, err = proc.communicate()
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        if proc.returncode:
            raise RuntimeError(f"curate run failed ({proc.returncode}):\n{err[-3000:]}")
        stats = json.loads((Path(tmp) / "out" / "stats.json").read_text())
        rejected = sorted((Path(tmp) / "out" / "rejected").glob("*.parquet"))
        removed = set()
        for f in rejected:
            t = pq.read_table(f, columns=["id", "reason"])
            removed |= set(t.filter(pc.equal(t["reason"], "minhash"))["id"].to_pylist())
    return {
        "seconds": seconds,
        "docs": stats["total"]["documents"],
        "removed": removed,
        "decide_s": stats["steps"]["minhash"].get("decide_seconds"),
        **{f"{k}_mb": v / 2**20 for k, v in peak.items()},
    }


def run_datasketch(shards: list[Path]) -> set[str]:
    from datasketch import MinHash, MinHashLSH

    table = pq.read_table(shards, columns=["id", "text"])
    ids = table.column("id").to_pylist()
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
    return removed


def side(name: str, folder: Path, procs: int, result: Path) -> None:
    """In a subprocess: one side of the comparison over `folder`'s shards; ids to `result`."""
    shards = sorted(folder.glob("shard_*.parquet"))
    removed = run_curate(shards, procs)[1] if name == "curate" else run_datasketch(shards)
    result.write_text(json.dumps(sorted(removed)))


def compare(corpus: Path, limit: int, runs: int, tmp: Path) -> None:
    subset = slice_corpus(corpus, limit, tmp / "subset")
    docs = count_docs(subset)
    print(f"curate vs datasketch 2.0 on the first {docs:,} documents, 1 process each:")

    def one(name: str) -> Callable[[int], Measured]:
        def run(index: int) -> Measured:
            result = tmp / f"{name}_{index}.json"
            cmd = [sys.executable, __file__, "--side", name, str(subset), str(result)]
            m = run_measured(cmd)
            m.extra["removed"] = set(json.loads(result.read_text()))
            return m

        return run

    results = alternate({"curate": one("curate"), "datasketch": one("datasketch")}, runs)
    print(f"medians of {runs} runs ({SHARED_NOTE}):")
    print_side("curate minhash (per-stage)", docs, 1, results["curate"])
    print_side("datasketch 2.0 naive", docs, 1, results["datasketch"])
    same = "1 process each, same run"
    print_ratio("curate", "datasketch", results["curate"], results["datasketch"], same)
    truth_path = subset / "ground_truth.parquet"
    if truth_path.exists():
        gt = pq.read_table(truth_path, columns=["id", "kind", "source_id"]).to_pydict()
        clusters = truth_clusters(gt, set(gt["id"]))
        for name in ("curate", "datasketch"):
            removed = median_run(results[name]).extra["removed"]
            p, r, f1 = accuracy(removed, clusters)
            scores = f"precision {p:.4f}  recall {r:.4f}  F1 {f1:.4f}"
            print(f"  {name}: removed {len(removed):,}  {scores}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus_arguments(ap)
    ap.add_argument("--limit", type=int, default=20_000, help="documents of the comparison")
    ap.add_argument("--workers", type=int, default=2, help="Ray workers of the end-to-end run")
    ap.add_argument("--skip-e2e", action="store_true", help="only the comparison")
    ap.add_argument("--side", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        side(args.side[0], Path(args.side[1]), 1, Path(args.side[2]))
        return
    with tempfile.TemporaryDirectory(prefix="bench_minhash_") as tmp:
        corpus = resolve_corpus(args, Path(tmp))
        compare(corpus, args.limit, args.runs, Path(tmp))
        if args.skip_e2e:
            return
        shards = sorted(corpus.glob("shard_*.parquet"))
        truth = pq.read_table(corpus / "ground_truth.parquet", columns=["id", "kind", "source_id"])
        e2e = run_e2e(shards, args.workers)
        ep, er, ef1 = accuracy(e2e["removed"], truth_clusters(truth.to_pydict()))
        print(f"curate run, minhash only, embedded Ray, {args.workers} workers (end to end)")
        print(
            f"  overall     {e2e['seconds']:7.2f} s  {e2e['docs'] / e2e['seconds']:>10,.0f} docs/s "
            f"(incl. Python and Ray start; decide {e2e['decide_s']:.1f} s; {SHARED_NOTE})"
        )
        print(
            f"  peak RSS: driver {e2e['driver_mb']:.0f} MB, largest _UnitActor "
            f"{e2e['actor_mb']:.0f} MB, largest shuffle task worker {e2e['task_mb']:.0f} MB"
        )
        print(f"  removed {len(e2e['removed'])}  precision {ep:.4f}  recall {er:.4f}  F1 {ef1:.4f}")


if __name__ == "__main__":
    main()
