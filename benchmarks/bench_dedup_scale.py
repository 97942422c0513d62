"""Dedup decide at scale: distributed components (this branch) vs today's hub (main, 0af3e83).

Synthetic sidecars are written directly (no text): N rows in shards of 250,000, 14 uint64 band
keys each; 70% of rows are originals with random keys, 30% copies of a random original sharing
2 of its 14 bands (so every copy is a known near-duplicate: clusters of 1 original + its copies,
possibly chained). Both decides run on the same files, through the same parallel_map: Ray tasks
on a local 2-CPU Ray (the runner's way: one task per item, at most 2 at once). Printed per size:
decide seconds, the driver's peak RSS above its level before the decide (psutil, sampled every
20 ms), the largest task's peak RSS above its level when it started (same sampling inside the
task), rows dropped, and whether both decisions are identical.

Run: python benchmarks/bench_dedup_scale.py [--sizes 1000000,2000000,4000000] [--hub-max 4000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _hub_dedup  # noqa: E402

from curate_filters.dedup.shuffle import bucket_dedup_sharded, read_decision  # noqa: E402

BANDS = 14
SHARD_ROWS = 250_000
GROUPS = [[f"band_{b:02d}"] for b in range(BANDS)]


def make_sidecars(n: int, folder: Path, seed: int = 0) -> tuple[list[str], int]:
    """Sidecar files of n rows; returns them and the number of copies (rows to drop at least)."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**63, size=(n, BANDS), dtype=np.uint64)
    copy = rng.random(n) < 0.3
    copy[0] = False
    originals = np.flatnonzero(~copy)
    copies = np.flatnonzero(copy)
    source = originals[rng.integers(0, len(originals), len(copies))]
    for _ in range(2):  # two shared bands per copy, chosen per copy
        band = rng.integers(0, BANDS, len(copies))
        keys[copies, band] = keys[source, band]
    paths = []
    for s, start in enumerate(range(0, n, SHARD_ROWS)):
        stop = min(n, start + SHARD_ROWS)
        rows = (np.int64(s) << 40) + np.arange(stop - start, dtype=np.int64)
        cols = {
            "row_id": rows,
            "id": pa.array([f"d{i}" for i in range(start, stop)]),
            **{f"band_{b:02d}": keys[start:stop, b] for b in range(BANDS)},
        }
        path = folder / f"part-{s:05d}.parquet"
        pq.write_table(pa.table(cols), path)
        paths.append(str(path))
    return paths, int(copy.sum())


class Peak:
    """Peak RSS of this process above its level at start, sampled in a thread."""

    def __init__(self, every: float = 0.02) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        return (self.peak - self.base) / 2**20


def measured(fn, item):
    peak = Peak()
    out = fn(item)
    return out, peak.stop()


class RayMap:
    """The runner's parallel_map (at most `workers` tasks at once), recording task peaks."""

    def __init__(self, ray, workers: int) -> None:
        self.ray = ray
        self.workers = workers
        self.remote = ray.remote(num_cpus=0, max_retries=3)(measured)
        self.task_peak = 0.0
        self.tasks = 0
        self.written: dict[str, int] = {}  # work-file bytes per phase (scatter, gather, ...)

    def __call__(self, fn, items):
        refs = []
        for item in items:
            if len(refs) >= self.workers:
                self.ray.wait(refs, num_returns=len(refs) - self.workers + 1)
            refs.append(self.remote.remote(fn, item))
        out = []
        for result, peak in self.ray.get(refs):
            out.append(result)
            for f in result if isinstance(result, list) else [result]:
                if isinstance(f, tuple):  # (PartFile, final) or (shard, uri, rows, dropped)
                    f = next((x for x in f if hasattr(x, "uri") or isinstance(x, str)), None)
                uri = getattr(f, "uri", f if isinstance(f, str) else None)
                if isinstance(uri, str) and os.path.exists(uri):
                    self.written[fn.__name__] = self.written.get(fn.__name__, 0) + (
                        os.path.getsize(uri)
                    )
            self.task_peak = max(self.task_peak, peak)
            self.tasks += 1
        return out


def run(kind: str, sidecars: list[str], work: Path, ray, workers: int) -> dict:
    pmap = RayMap(ray, workers)
    peak = Peak()
    t0 = time.perf_counter()
    if kind == "hub":
        table = _hub_dedup.bucket_dedup(sidecars, GROUPS, pmap, str(work / "w"))
    else:
        result = bucket_dedup_sharded(sidecars, GROUPS, pmap, str(work / "w"), str(work / "d"))
        seconds = time.perf_counter() - t0
        driver = peak.stop()
        table = read_decision(result)  # for the comparison only, after the measurement
        return _figures(seconds, driver, pmap, table)
    seconds = time.perf_counter() - t0
    return _figures(seconds, peak.stop(), pmap, table)


def _figures(seconds: float, driver: float, pmap: RayMap, table: pa.Table) -> dict:
    drop = table.column("drop").to_numpy(zero_copy_only=False)
    return {
        "seconds": seconds,
        "driver_mb": driver,
        "task_mb": pmap.task_peak,
        "tasks": pmap.tasks,
        "dropped": int(drop.sum()),
        "written": pmap.written,
        "table": table.select(["row_id", "drop", "duplicate_of", "cluster_size"]),
    }


def child(kind: str, folder: str, address: str, workers: int) -> None:
    """One decide in a fresh driver process (so its peak RSS is its own), joined to the
    parent's Ray; writes its figures and its decision next to the sidecars."""
    import json

    import ray

    ray.init(address=address, log_to_driver=False)
    sidecars = sorted(str(p) for p in Path(folder, "sidecars").glob("*.parquet"))
    work = Path(folder, kind)
    r = run(kind, sidecars, work, ray, workers)
    pq.write_table(r.pop("table"), work / "decision-all.parquet")
    print(json.dumps(r))


def spawn(kind: str, folder: Path, address: str, workers: int) -> dict:
    import json
    import subprocess

    cmd = [sys.executable, __file__, "--child", kind, str(folder), address, str(workers)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    r = json.loads(done.stdout.strip().splitlines()[-1])
    r["table"] = pq.read_table(folder / kind / "decision-all.parquet")
    return r


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,2000000,4000000")
    parser.add_argument("--hub-max", type=int, default=4_000_000, help="largest size for main")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import ray

    context = ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    address = context.address_info["address"]
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {os.cpu_count()} CPUs (shared with other engineers), Ray {args.workers} CPUs")
    header = (
        f"{'rows':>10} {'impl':>5} {'decide s':>9} {'s/M rows':>9} {'driver MB':>10} "
        f"{'task MB':>8} {'tasks':>6} {'dropped':>9} {'B/dup drv':>10} same"
    )
    print(header)
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            tmp = Path(tmp)
            (tmp / "sidecars").mkdir()
            sidecars, copies = make_sidecars(n, tmp / "sidecars")
            sidecar_bytes = sum(os.path.getsize(p) for p in sidecars)
            results = {"dist": spawn("dist", tmp, address, args.workers)}
            if n <= args.hub_max:
                results["hub"] = spawn("hub", tmp, address, args.workers)
            same = (
                results["hub"]["table"].equals(results["dist"]["table"])
                if "hub" in results
                else None
            )
            for kind, r in results.items():
                per_dup = r["driver_mb"] * 2**20 / max(r["dropped"], 1)
                print(
                    f"{n:>10,} {kind:>5} {r['seconds']:>9.1f} {r['seconds'] / n * 1e6:>9.1f} "
                    f"{r['driver_mb']:>10.0f} {r['task_mb']:>8.0f} {r['tasks']:>6} "
                    f"{r['dropped']:>9,} {per_dup:>10.0f} {same}",
                    flush=True,
                )
            rows.append((n, results, sidecar_bytes / n, copies))
    dist = [(n, r["dist"]) for n, r, _, _ in rows]
    (n0, a), (n1, b) = dist[0], dist[-1]
    print(
        f"\ndistributed, {n1:,} vs {n0:,} rows ({n1 / n0:.0f}x rows, "
        f"{b['dropped'] / a['dropped']:.1f}x duplicates): driver peak "
        f"{b['driver_mb']:.0f} / {a['driver_mb']:.0f} MB = "
        f"{b['driver_mb'] / max(a['driver_mb'], 1):.2f}x; time {b['seconds'] / a['seconds']:.2f}x"
    )
    hub = [(n, r["hub"]) for n, r, _, _ in rows if "hub" in r]
    if len(hub) > 1:
        (h0, x), (h1, y) = hub[0], hub[-1]
        print(
            f"hub (main), {h1:,} vs {h0:,} rows: driver peak {y['driver_mb']:.0f} / "
            f"{x['driver_mb']:.0f} MB = {y['driver_mb'] / max(x['driver_mb'], 1):.2f}x; "
            f"time {y['seconds'] / x['seconds']:.2f}x"
        )
    print(f"sidecar bytes per row (14 bands, zstd Parquet): {rows[-1][2]:.0f}")
    n, results, _, _ = rows[-1]
    for kind, r in results.items():
        per = ", ".join(f"{k} {v / n:.0f}" for k, v in sorted(r["written"].items()))
        print(f"{kind}: work-file bytes per row at {n:,} rows: {per}")
    ray.shutdown()


if __name__ == "__main__":
    main()
