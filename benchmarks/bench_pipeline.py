"""Heuristics-only pipeline over bench_100k (and 4x repeated): docs/s on 1 and 2 Ray workers,
the ratio to a plain in-process loop over the same filters, and peak RSS of driver and workers.

Run: python benchmarks/bench_pipeline.py [--corpus ../shared/data/bench_100k] [--skip-400k]
Each measurement runs in a fresh subprocess, so peak RSS figures are per run. The 400k corpus is
the 10 shards of the 100k one linked 4 times under new names (the same text, 40 shards). From a
clone alone the 100k corpus is built by make_corpus.py from the shipped sample.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import REPO, text_corpus  # noqa: E402

HEURISTICS = ["gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality"]


def _child_run(corpus: str, out: str, workers: int, executor: str) -> dict:
    """In a subprocess: one `curate` run; returns docs/s and peak RSS of driver and workers."""
    import psutil

    from curate import config as cfg
    from curate import runner

    config = cfg.load(
        base={
            "input": {"path": corpus, "id_column": "id"},
            "output": {"path": out},
            "executor": executor,
            "ray": {"workers": workers},
            "steps": [{"use": name} for name in HEURISTICS],
        }
    )
    peak = {"workers": 0}
    stop = threading.Event()

    def sample() -> None:
        me = psutil.Process()
        while not stop.is_set():
            for proc in psutil.process_iter(["name", "cmdline"]):
                try:
                    cmd = " ".join(proc.info["cmdline"] or [])
                    if "_UnitActor" in cmd or "_UnitActor" in (proc.info["name"] or ""):
                        peak["workers"] = max(peak["workers"], proc.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            peak["driver"] = max(peak.get("driver", 0), me.memory_info().rss)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    result = runner.run(config, overwrite=True, progress="quiet")
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    import resource

    docs = result.stats["total"]["documents"]
    return {
        "docs": docs,
        "seconds": wall,
        "docs_per_s": docs / wall,
        "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_mb": peak["workers"] / 2**20,
        "kept": result.stats["total"]["kept"],
        "startup_s": result.stats["total"].get("startup_seconds", 0.0),
    }


def _child_loop(corpus: str) -> dict:
    """In a subprocess: the same filters called on the same batches in a plain loop, no Ray."""
    import resource

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from curate import plugins

    filters = []
    for name in HEURISTICS:
        cls = plugins.load(name)
        f = cls(cls.Params())
        f.setup()
        filters.append(f)
    docs = 0
    t0 = time.perf_counter()
    for path in sorted(Path(corpus).glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=2048):
            import pyarrow as pa

            table = pa.Table.from_batches([batch])
            docs += table.num_rows
            for f in filters:
                keep = f.keep(f.score(table))
                table = table.filter(pc.fill_null(keep, False))
    wall = time.perf_counter() - t0
    return {
        "docs": docs,
        "seconds": wall,
        "docs_per_s": docs / wall,
        "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _in_subprocess(fn: str, *args) -> dict:
    code = (
        f"import json, sys; sys.path.insert(0, {str(REPO)!r}); "
        f"from benchmarks.bench_pipeline import {fn}; "
        f"print('RESULT' + json.dumps({fn}(*{list(args)!r})))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    raise RuntimeError(f"{fn} failed:\n{out.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--corpus",
        type=Path,
        help="a 100k shard_*.parquet folder (default: ../shared/data/bench_100k, else one built "
        "by make_corpus.py from the shipped sample)",
    )
    parser.add_argument("--skip-400k", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = text_corpus(args.corpus, 100_000, Path(tmp))
        shards = sorted(src.glob("shard_*.parquet"))
        c100, c400 = Path(tmp) / "c100k", Path(tmp) / "c400k"
        c100.mkdir()
        c400.mkdir()
        for s in shards:
            os.symlink(s, c100 / s.name)
            for r in range(4):
                os.symlink(s, c400 / f"r{r}_{s.name}")
        rows = {}
        rows["plain loop, 100k"] = _in_subprocess("_child_loop", str(c100))
        rows["local executor, 100k"] = _in_subprocess(
            "_child_run", str(c100), str(Path(tmp) / "o0"), 1, "local"
        )
        rows["ray 1 worker, 100k"] = _in_subprocess(
            "_child_run", str(c100), str(Path(tmp) / "o1"), 1, "ray"
        )
        rows["ray 2 workers, 100k"] = _in_subprocess(
            "_child_run", str(c100), str(Path(tmp) / "o2"), 2, "ray"
        )
        if not args.skip_400k:
            rows["ray 2 workers, 400k"] = _in_subprocess(
                "_child_run", str(c400), str(Path(tmp) / "o3"), 2, "ray"
            )
    base = rows["plain loop, 100k"]["docs_per_s"]
    print(f"heuristics pipeline ({', '.join(HEURISTICS)}) on {os.cpu_count()} cores")
    print(
        f"{'run':<24}{'docs':>9}{'s':>8}{'docs/s':>10}{'vs loop':>9}{'start s':>9}"
        f"{'after start':>12}{'driver MB':>11}{'worker MB':>11}"
    )
    for name, r in rows.items():
        start = r.get("startup_s", 0.0)
        after = r["docs"] / (r["seconds"] - start) / base  # the ratio once Ray is up
        print(
            f"{name:<24}{r['docs']:>9,}{r['seconds']:>8.1f}{r['docs_per_s']:>10,.0f}"
            f"{r['docs_per_s'] / base:>9.2f}{start:>9.1f}{after:>12.2f}"
            f"{r['driver_peak_mb']:>11.0f}{r.get('worker_peak_mb', 0):>11.0f}"
        )
    one, two = rows["ray 1 worker, 100k"], rows["ray 2 workers, 100k"]
    print(f"speed-up 2 vs 1 worker: {two['docs_per_s'] / one['docs_per_s']:.2f}x")
    if "ray 2 workers, 400k" in rows:
        big = rows["ray 2 workers, 400k"]
        print(
            f"peak RSS 400k / 100k: driver {big['driver_peak_mb'] / two['driver_peak_mb']:.2f}, "
            f"worker {big['worker_peak_mb'] / max(two['worker_peak_mb'], 1):.2f}"
        )


if __name__ == "__main__":
    main()
