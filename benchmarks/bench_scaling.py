"""Scaling: 2 Ray workers vs 1, end to end, on >= 200,000 documents; peak RSS from 100k to 400k.

Speed-up: the full quickstart pipeline (langid, heuristics, C4 line cleaning, PII, fastText
quality, KenLM perplexity, MinHash; `--pipeline heuristics` for the four filters + MinHash of
bench_vs_datatrove.py) through `curate run --executor ray --workers N` as a subprocess (Python and
Ray start included), 1 and 2 workers alternating, median of `--runs`, on `--copies` copies of the
corpus (default 2: 200,000 documents from a 100k one). Prints docs/s, docs/s per worker and the
ratio (target >= 1.85x).

Peak RSS (`--rss 1,2,4`): the same pipeline on 2 workers over 1, 2, 4 copies (100k, 200k, 400k
documents from a 100k corpus), one run each, printing the peak of the summed RSS of the whole
process tree (driver, raylet, GCS, workers) and of the largest single process, sampled every
0.2 s (psutil); flat means the 4-copy peaks stay near the 1-copy ones.

The machine's own ceiling (`--ceiling`): the same pipeline in process (`--executor local`, no
Ray), on each half of the corpus's shards; both halves one after the other, then both at once as
two processes. The ratio (sequential time / concurrent time) is what two processes of this work
gain on this machine at best (2.0 on two independent cores; less where the cores share a
physical core, caches or memory bandwidth), the bound the 2-worker speed-up is measured against.

Copy k > 0 of the corpus gets a light edit so it is not an exact copy: every (17 + k)-th word is
dropped and ids get the suffix `-r<k>` (a near-duplicate of its source, as web crawls hold;
MinHash removes part of them). The corpus is `--corpus PATH` (shard_*.parquet) or, by default,
make_corpus.py's `--docs` documents.

Run: python benchmarks/bench_scaling.py [--corpus ../shared/data/bench_100k] [--copies 2]
       [--runs 3] [--pipeline quickstart|heuristics] [--rss 1,2,4] [--skip-speedup] [--ceiling]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import (  # noqa: E402
    REPO,
    SHARED_NOTE,
    Measured,
    alternate,
    corpus_arguments,
    print_ratio,
    print_side,
    resolve_corpus,
    run_measured,
)

QUICKSTART = REPO / "examples" / "quickstart" / "pipeline.yaml"
HEURISTICS = ["gopher_repetition", "gopher_quality", "c4_lines", "fineweb_quality"]


def build_corpus(base: Path, out: Path, copies: int) -> int:
    """`copies` copies of `base`'s shards, copy k > 0 lightly edited (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    for k in range(copies):
        for shard in sorted(base.glob("shard_*.parquet")):
            table = pq.read_table(shard, columns=["id", "text"])
            if k:
                words = pc.utf8_split_whitespace(table["text"].combine_chunks())
                flat = pc.list_flatten(words)
                lengths = pc.list_value_length(words).to_numpy()
                pos = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
                keep = (pos % (17 + k)) != (16 + k)
                parents = pc.list_parent_indices(words).to_numpy()[keep]
                joined = pa.ListArray.from_arrays(
                    np.concatenate([[0], np.cumsum(np.bincount(parents, minlength=len(table)))]),
                    flat.filter(pa.array(keep)),
                )
                table = pa.table(
                    {
                        "id": pc.binary_join_element_wise(table["id"], f"-r{k}", ""),
                        "text": pc.binary_join(joined, " "),
                    }
                )
            pq.write_table(table, out / f"c{k}-{shard.name}", row_group_size=10_000)
            rows += table.num_rows
    return rows


def write_config(
    corpus: Path, out: Path, pipeline: str, path: Path, files: list[Path] | None = None
) -> Path:
    if pipeline == "quickstart":
        steps = yaml.safe_load(QUICKSTART.read_text())["steps"]
        for step in steps:
            if "model" in step.get("params", {}):
                step["params"]["model"] = str(REPO / step["params"]["model"])
    else:
        minhash = {"num_perm": 112, "bands": 14, "rows": 8, "ngram": 5}
        steps = [{"use": s} for s in HEURISTICS] + [{"use": "minhash", "params": minhash}]
    config = {
        "input": {
            "path": [str(f) for f in files] if files else str(corpus / "*.parquet"),
            "id_column": "id",
        },
        "output": {"path": str(out)},
        "steps": steps,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def curate_run(config: Path, workers: int) -> Measured:
    cmd = [sys.executable, "-m", "curate.cli", "run", str(config), "--quiet", "--overwrite"]
    m = run_measured(cmd + ["--executor", "ray", "--workers", str(workers)])
    out = yaml.safe_load(config.read_text())["output"]["path"]
    stats = json.loads((Path(out) / "stats.json").read_text())
    m.extra = {"kept": stats["total"]["kept"], "startup": stats["total"].get("startup_seconds")}
    return m


def speedup(base: Path, tmp: Path, copies: int, runs: int, pipeline: str) -> None:
    corpus = tmp / f"x{copies}"
    docs = build_corpus(base, corpus, copies)
    print(f"{pipeline} pipeline, {docs:,} documents ({copies} copies of {base}), {runs} runs")
    sides = {
        f"{w} worker{'s' * (w > 1)}": (
            lambda run, w=w: curate_run(
                write_config(corpus, tmp / f"out{w}", pipeline, tmp / f"w{w}.yaml"), w
            )
        )
        for w in (1, 2)
    }
    results = alternate(sides, runs)
    print(f"medians ({SHARED_NOTE}):")
    print_side("curate, 1 worker", docs, 1, results["1 worker"])
    print_side("curate, 2 workers", docs, 2, results["2 workers"])
    print_ratio(
        "2 workers", "1 worker", results["2 workers"], results["1 worker"], "target >= 1.85x"
    )
    startup = {k: statistics.median(m.extra["startup"] or 0 for m in v) for k, v in results.items()}
    kept = {k: v[0].extra["kept"] for k, v in results.items()}
    print(f"  start-up (Ray, step setup; median): {startup}; kept: {kept}")


def ceiling(base: Path, tmp: Path, copies: int, runs: int, pipeline: str) -> None:
    corpus = tmp / f"x{copies}"
    if not corpus.exists():
        build_corpus(base, corpus, copies)
    shards = sorted(corpus.glob("*.parquet"))
    halves = [shards[0::2], shards[1::2]]
    commands = [
        [sys.executable, "-m", "curate.cli", "run", "--quiet", "--overwrite"]
        + ["--executor", "local"]
        + [str(write_config(corpus, tmp / f"half{i}", pipeline, tmp / f"h{i}.yaml", half))]
        for i, half in enumerate(halves)
    ]

    def timed(procs: list[list[str]]) -> float:
        t0 = time.perf_counter()
        running = [subprocess.Popen(c, cwd=REPO) for c in procs]
        if any(p.wait() for p in running):
            raise SystemExit(f"a run failed: {procs}")
        return time.perf_counter() - t0

    sequential, concurrent = [], []
    for run in range(runs):  # alternating, like every comparison here
        order = [False, True] if run % 2 == 0 else [True, False]
        for together in order:
            if together:
                concurrent.append(timed(commands))
            else:
                sequential.append(sum(timed([c]) for c in commands))
    seq, con = statistics.median(sequential), statistics.median(concurrent)
    print(
        f"machine ceiling ({pipeline}, in process, no Ray; {SHARED_NOTE}): the two halves "
        f"one after the other {seq:.1f} s, at once as two processes {con:.1f} s: "
        f"{seq / con:.2f}x is the most two processes of this work gain here"
    )


def peak_rss(base: Path, tmp: Path, copies: list[int], pipeline: str) -> None:
    print(f"peak RSS, {pipeline} pipeline, 2 workers, one run per size ({SHARED_NOTE}):")
    first = None
    for n in copies:
        corpus = tmp / f"x{n}"
        if not corpus.exists():
            build_corpus(base, corpus, n)
        docs = sum(pq.ParquetFile(p).metadata.num_rows for p in corpus.glob("*.parquet"))
        m = curate_run(write_config(corpus, tmp / "rss", pipeline, tmp / "rss.yaml"), 2)
        first = first or m
        print(
            f"  {docs:>9,} docs: {m.seconds:6.1f} s, peak RSS {m.tree_rss / 2**20:7,.0f} MB all "
            f"processes ({m.tree_rss / first.tree_rss:.2f}x the first), largest process "
            f"{m.largest_rss / 2**20:6,.0f} MB ({m.largest_rss / first.largest_rss:.2f}x)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus_arguments(ap)
    ap.add_argument("--copies", type=int, default=2, help="copies of the corpus for the speed-up")
    ap.add_argument("--pipeline", choices=["quickstart", "heuristics"], default="quickstart")
    ap.add_argument("--rss", help="copies for the peak-RSS check, e.g. 1,2,4 (default: skip)")
    ap.add_argument("--skip-speedup", action="store_true")
    ap.add_argument(
        "--ceiling", action="store_true", help="also measure two in-process runs at once"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        base = resolve_corpus(args, Path(tmp))
        if not args.skip_speedup:
            speedup(base, Path(tmp), args.copies, args.runs, args.pipeline)
        if args.ceiling:
            ceiling(base, Path(tmp), args.copies, args.runs, args.pipeline)
        if args.rss:
            peak_rss(base, Path(tmp), [int(n) for n in args.rss.split(",")], args.pipeline)


if __name__ == "__main__":
    main()
