"""What the driver asks of storage and how long it plans: footer reads, stats, listings and
manifest reads per run, counted through a counting filesystem, and the planning time.

    python benchmarks/bench_planning.py                       # 1,000 tiny shards (from the sample)
    python benchmarks/bench_planning.py --shards 200
    python benchmarks/bench_planning.py --corpus ../shared/data/bench_100k --glob 'shard_*.parquet'

`gopher_quality -> minhash` (two segments), `--executor local` so every read is seen. Counts:
a fresh run, then the same command again (nothing left to do: pure driver work), through a
counting filesystem; split into the driver's and the units' (what workers do). Times, median
of 3, on the plain local filesystem: planning (from `run()` to the first unit handed out, in a
fresh folder) and the complete rerun. On an object store each operation is a request (~10-50
ms), so the saving is larger there: `--latency-ms` times both through a filesystem that waits
that long per request (overlapping requests overlap their waits, as on a store).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curate import runner  # noqa: E402
from curate.config import PipelineConfig  # noqa: E402
from tests.storage_doubles import Phases, executor_class, recording  # noqa: E402

SAMPLE = REPO / "examples" / "quickstart" / "data"


def tiny_corpus(folder: Path, shards: int, rows: int = 4) -> Path:
    """`shards` Parquet files of `rows` documents each, cut from the shipped sample."""
    table = pa.concat_tables(
        pq.read_table(p, columns=["id", "text"]) for p in sorted(SAMPLE.glob("*.parquet"))
    )
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        start = (s * rows) % (table.num_rows - rows)
        pq.write_table(table.slice(start, rows), folder / f"part-{s:05d}.parquet")
    return folder


def _summary(counts: dict, footers: dict, shards: int) -> dict:
    def total(op, part=""):
        return sum(n for (o, p), n in counts.items() if o == op and part in p)

    return {
        "footer_reads": sum(footers.values()),
        "footer_reads_per_shard_max": max(footers.values(), default=0),
        "file_info_calls": total("info"),
        "listings": total("list"),
        "manifest_reads": total("read", "/_manifest/s"),
        "other_reads": total("read") - total("read", "/_manifest/s"),
        "per_shard": round(sum(footers.values()) / shards, 2),
    }


def _config(corpus: str, out: Path) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "input": {"path": corpus, "text_column": "text"},
            "output": {"path": str(out)},
            "executor": "local",
            "steps": [{"use": "gopher_quality"}, {"use": "minhash"}],
        }
    )


def counted_run(corpus: str, out: Path, shards: int, latency_s: float) -> dict:
    """One run through the counting filesystem: what the driver and the units asked for."""
    with recording(latency_s=latency_s) as recorder, Phases(recorder).installed() as phases:
        t0 = time.perf_counter()
        runner.run(_config(corpus, out), progress="quiet")
        wall = time.perf_counter() - t0
    driver_counts, unit_counts = phases.split("counts")
    driver_footers, unit_footers = phases.split("footers")
    return {
        "wall_s": round(wall, 3),
        "driver": _summary(driver_counts, driver_footers, shards),
        "units": _summary(unit_counts, unit_footers, shards),
    }


class _FirstUnit(Exception):
    """Raised when the first unit is handed out: planning is over."""


def planning_seconds(corpus: str, out: Path, latency_s: float) -> float:
    """From `run()` to the first unit handed to the executor, in a fresh output folder. Plain
    local disk when latency_s is 0 (no counting layer, whose Python calls would hold the GIL)."""
    cls = executor_class()
    real = cls.run_units

    def first(self, seg, units, decision):
        raise _FirstUnit
        yield  # a generator, like the real one

    cls.run_units = first
    ctx = recording(latency_s=latency_s) if latency_s else contextlib.nullcontext()
    try:
        with ctx:
            t0 = time.perf_counter()
            try:
                runner.run(_config(corpus, out), progress="quiet")
            except _FirstUnit:
                pass
            return time.perf_counter() - t0
    finally:
        cls.run_units = real


def rerun_seconds(corpus: str, out: Path, latency_s: float) -> float:
    """The same command over a complete output: nothing to do, every read is the driver's."""
    ctx = recording(latency_s=latency_s) if latency_s else contextlib.nullcontext()
    with ctx:
        t0 = time.perf_counter()
        result = runner.run(_config(corpus, out), progress="quiet")
        assert result.already_complete
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="a folder of Parquet shards (default: a tiny one)")
    parser.add_argument("--glob", default="*.parquet", help="which files of --corpus to read")
    parser.add_argument("--shards", type=int, default=1000, help="tiny corpus size")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="wait this long per storage request (an object store answers in ~10-50 ms)",
    )
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--repeat", type=int, default=3, help="timings: median of this many")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-planning-") as tmp:
        if args.corpus:
            folder = Path(args.corpus).resolve()
        else:
            folder = tiny_corpus(Path(tmp) / "corpus", args.shards)
        corpus = str(folder / args.glob)
        shards = len(list(folder.glob(args.glob)))
        out = Path(tmp) / "out"
        latency = args.latency_ms / 1000
        fresh = counted_run(corpus, out, shards, 0.0)
        again = counted_run(corpus, out, shards, 0.0)
        times = args.repeat
        plans = [planning_seconds(corpus, Path(tmp) / f"p{i}", latency) for i in range(times)]
        reruns = [rerun_seconds(corpus, out, latency) for _ in range(times)]
    figures = {
        "corpus": corpus,
        "shards": shards,
        "latency_ms": args.latency_ms,
        "repeat": args.repeat,
        "planning_s_median": round(statistics.median(plans), 3) if plans else None,
        "complete_rerun_s_median": round(statistics.median(reruns), 3) if reruns else None,
        "fresh_run_counts": fresh,
        "complete_rerun_counts": again,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
