"""Docs/s of FastTextQuality.score against a plain loop of fastText predict calls, same run.

Usage: python benchmarks/bench_fasttext.py [--docs 20000] [--model M] [--batch 4096] [--corpus DIR]
Scores ~20k documents (of --corpus, else ../shared/data/bench_100k, else a make_corpus.py corpus
built from the shipped sample) with the quickstart quality model (or --model).
The baseline feeds the library the same normalised lines, one `predict` call per document, so
the ratio measures curate's batching and Arrow overhead alone. Goal: ratio >= 0.9.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate_filters import _fasttext as ft
from curate_filters.quality import FastTextQuality

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import text_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pipeline", action="store_true", help="skip the curate run part")
    parser.add_argument("--model", default=str(ROOT / "examples/quickstart/models/quality.ftz"))
    parser.add_argument("--corpus", type=Path, help="shard_*.parquet folder (default: see above)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = text_corpus(args.corpus, args.docs, Path(tmp))
        shards = sorted(corpus.glob("shard_*.parquet"))
        table = pa.concat_tables(pq.read_table(s, columns=["text"]) for s in shards)
    table = table.slice(0, args.docs)
    batches = [table.slice(i, args.batch) for i in range(0, table.num_rows, args.batch)]
    chars = sum(len(t) for t in table.column("text").to_pylist())

    step = FastTextQuality(FastTextQuality.Params(model=args.model))
    step.setup()
    # The baseline gets the same normalised text, minus the newline the batch path appends
    # (the one-line API rejects it).
    lines = [line[:-1] for line in step._norm.lines(table.column("text"))]
    model = ft.load_model(args.model).model

    def curate_score() -> None:
        for batch in batches:
            step.score(batch)

    def plain_loop() -> None:
        for line in lines:
            model.predict(line, k=-1)

    curate_s = best_of(curate_score, args.repeats)
    loop_s = best_of(plain_loop, args.repeats)
    n = table.num_rows
    print(f"model {args.model} | {n:,} docs, {chars / n:,.0f} chars/doc, batch {args.batch}")
    print(f"FastTextQuality.score (normalise + predict(list) + prob): {n / curate_s:,.0f} docs/s")
    print(f"plain loop of model.predict(line), pre-normalised:        {n / loop_s:,.0f} docs/s")
    print(f"ratio curate / loop: {loop_s / curate_s:.2f}  (goal >= 0.9)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    if not args.no_pipeline:
        in_pipeline(table, args.model, n / loop_s)


def in_pipeline(table: pa.Table, model: str, loop_rate: float) -> None:
    """The step inside `curate run`: in process and on Ray (2 workers), same documents."""
    from curate import config as cfg
    from curate import runner

    with tempfile.TemporaryDirectory() as tmp:
        ids = pa.array([f"d{i}" for i in range(table.num_rows)])
        full = table.append_column("id", ids)
        quarter = -(-full.num_rows // 4)
        Path(tmp, "in").mkdir()
        for i in range(4):
            pq.write_table(full.slice(i * quarter, quarter), Path(tmp, "in", f"s{i}.parquet"))
        for executor, workers in (("local", 1), ("ray", 2)):
            config = cfg.load(
                base={
                    "input": {"path": str(Path(tmp, "in")), "id_column": "id"},
                    "output": {"path": str(Path(tmp, f"out-{executor}"))},
                    "executor": executor,
                    "ray": {"workers": workers},
                    "steps": [
                        {
                            "use": "fasttext_quality",
                            "id": "quality",
                            "params": {"model": model, "label": "hq", "min_prob": 0.5},
                        }
                    ],
                }
            )
            start = time.perf_counter()
            result = runner.run(config, overwrite=True, progress="quiet")
            wall = time.perf_counter() - start
            step_s = result.stats["steps"]["quality"]["seconds"]
            n = result.stats["total"]["documents"]
            print(
                f"curate run, {executor} executor, {workers} worker(s): {n / wall:,.0f} docs/s "
                f"end to end (I/O, Ray start included); the step itself {n / step_s:,.0f} "
                f"docs/s per worker = {n / step_s / loop_rate:.2f} of the plain loop"
            )


if __name__ == "__main__":
    main()
