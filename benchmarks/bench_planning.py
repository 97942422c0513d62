"""What the driver asks of storage and how long it plans: footer reads, stats, listings and
manifest reads per run, counted through a counting filesystem, and the planning time.

    python benchmarks/bench_planning.py                       # 1,000 tiny shards (from the sample)
    python benchmarks/bench_planning.py --shards 200
    python benchmarks/bench_planning.py --corpus ../shared/data/bench_100k --glob 'shard_*.parquet'

Three runs of `gopher_quality -> minhash` (two segments), `--executor local` so every read is
seen: a fresh run, then the same command again (nothing left to do: pure driver work). Counts
are split into the driver's and the units' (what workers do). Planning time = from `run()` to
the first unit handed to the executor, measured in the fresh run, and the whole second run.
Local disk: on an object store each of these operations is a request (~10-50 ms), so the
saving is larger there; `--latency-ms` adds such a wait to every request the driver makes
(the units of the fresh run then go at disk speed: only planning is timed there).
"""

from __future__ import annotations

import argparse
import json
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
from tests.storage_doubles import Phases, recording  # noqa: E402

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


def one_run(corpus: str, out: Path, shards: int, latency_s: float) -> dict:
    config = PipelineConfig.model_validate(
        {
            "input": {"path": corpus, "text_column": "text"},
            "output": {"path": str(out)},
            "executor": "local",
            "steps": [{"use": "gopher_quality"}, {"use": "minhash"}],
        }
    )
    with recording(latency_s=latency_s) as recorder, Phases(recorder).installed() as phases:
        t0 = time.perf_counter()
        runner.run(config, progress="plain", console=_quiet())
        wall = time.perf_counter() - t0
    planning = (phases.first_unit or time.perf_counter()) - t0
    driver_counts, unit_counts = phases.split("counts")
    driver_footers, unit_footers = phases.split("footers")
    return {
        "wall_s": round(wall, 3),
        "planning_s": round(planning, 3),
        "driver": _summary(driver_counts, driver_footers, shards),
        "units": _summary(unit_counts, unit_footers, shards),
    }


def _quiet():
    from rich.console import Console

    return Console(file=open("/dev/null", "w"), stderr=False)


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
        fresh = one_run(corpus, out, shards, latency)
        again = one_run(corpus, out, shards, latency)
    figures = {
        "corpus": corpus,
        "shards": shards,
        "latency_ms": args.latency_ms,
        "fresh": fresh,
        "complete_rerun": again,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
