"""Per-step docs/s of the hot-path filters, one process, this checkout against a reference one.

Usage:
    python benchmarks/bench_step_kernels.py [--corpus DIR] [--docs N] [--pipeline quickstart|
        heuristics] [--ref CHECKOUT] [--rounds R]

Runs a pipeline's steps in process like the local runner does with one worker (each step sees
the survivors of the steps before it, a mapper's rewrite replaces the text, batches of 4,096,
no output written) and times each step's score + keep (map for mappers, the signature for
minhash) in CPU seconds of this process, which a shared machine's load disturbs much less than
wall time. With `--ref CHECKOUT` (a git worktree of the baseline commit with its own `.venv`)
the same script runs under that checkout's interpreter, alternating with this one `--rounds`
times, and prints the median per-step docs/s of both sides and their ratio. Defaults: the
shipped sample repeated to `--docs`, or ../shared/data/bench_100k when it is present.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPUS = REPO.parent / "shared" / "data" / "bench_100k"
SAMPLE = REPO / "examples" / "quickstart" / "data"
BATCH_ROWS = 4096
# The runner's row-id column (curate.io.ROW_ID): steps may use it to share work between them.
ROW_ID = "__curate_row_id"


def read_corpus(corpus: Path, docs: int) -> pa.Table:
    """`id`, `text` of the corpus's shards in name order, repeated or cut to `docs` rows."""
    shards = [p for p in sorted(corpus.glob("*.parquet")) if p.name != "ground_truth.parquet"]
    table = pa.concat_tables(pq.read_table(p, columns=["id", "text"]) for p in shards)
    if docs > table.num_rows:
        table = pa.concat_tables([table] * -(-docs // table.num_rows))
    return table.slice(0, docs).combine_chunks()


def steps_of(pipeline: str) -> list[dict]:
    """The pipeline's step configs (the parent computes them: a worker of the reference
    checkout must not import anything from this one)."""
    sys.path.insert(0, str(REPO))
    from tests.filter_golden import HEURISTICS_PIPELINE, quickstart_steps

    return quickstart_steps() if pipeline == "quickstart" else HEURISTICS_PIPELINE


def measure(corpus: Path, docs: int, specs: list[dict]) -> dict:
    """CPU seconds and documents in, per step, for one pass of the pipeline over the corpus."""
    from curate import plugins
    from curate.mapper import Mapper

    table = read_corpus(corpus, docs)
    steps = []
    for spec in specs:
        cls = plugins.load(spec["use"])
        instance = cls(cls.Params(**spec.get("params", {})))
        instance.setup()
        steps.append((spec.get("id") or spec["use"], instance))
    seconds = {sid: 0.0 for sid, _ in steps}
    docs_in = {sid: 0 for sid, _ in steps}
    for start in range(0, table.num_rows, BATCH_ROWS):
        batch = table.slice(start, BATCH_ROWS)
        rows = np.arange(start, start + batch.num_rows, dtype=np.int64)
        batch = batch.append_column(ROW_ID, pa.array(rows))
        for sid, instance in steps:
            docs_in[sid] += batch.num_rows
            t0 = time.process_time()
            if hasattr(instance, "signature"):
                instance.signature(batch, batch.column(ROW_ID), batch.column("id"))
                seconds[sid] += time.process_time() - t0
                continue
            if isinstance(instance, Mapper):
                result = instance.map(batch)
                keep = instance.keep(dict(result.scores))
                batch = batch.set_column(1, "text", result.text.cast(pa.string()))
            else:
                keep = instance.keep(instance.score(batch))
            batch = batch.filter(pc.fill_null(keep, False))
            seconds[sid] += time.process_time() - t0
    return {"seconds": seconds, "docs": docs_in}


def run_side(python: str, root: Path, args: argparse.Namespace) -> dict:
    """One measurement in a fresh process of `python` with `root` first on the path."""
    cmd = [python, str(Path(__file__).resolve()), "--worker", "--corpus", str(args.corpus)]
    cmd += ["--docs", str(args.docs), "--steps-json", json.dumps(steps_of(args.pipeline))]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = SHARED_CORPUS if SHARED_CORPUS.exists() else SAMPLE
    parser.add_argument("--corpus", type=Path, default=default)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--pipeline", choices=["quickstart", "heuristics"], default="quickstart")
    parser.add_argument("--ref", type=Path, help="baseline checkout with its own .venv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps-json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.corpus, args.docs, json.loads(args.steps_json))))
        return
    sides = {"this": (sys.executable, REPO)}
    if args.ref:
        sides["ref"] = (str(args.ref / ".venv" / "bin" / "python"), args.ref.resolve())
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, (python, root) in sides.items():  # alternating: load hits both sides alike
            runs[name].append(run_side(python, root, args))
    print(
        f"{args.pipeline} steps, {args.docs:,} docs of {args.corpus}, 1 process, CPU seconds,"
        f" median of {args.rounds} alternating rounds (machine shared: ratios are the figure)"
    )
    sids = list(runs["this"][0]["seconds"])
    median = {
        name: {s: statistics.median(r["seconds"][s] for r in rs) for s in sids}
        for name, rs in runs.items()
    }
    docs_in = runs["this"][0]["docs"]
    header = f"{'step':<20}{'docs in':>9}"
    for name in sides:
        header += f"{name + ' docs/s':>14}{name + ' share':>12}"
    print(header + ("   speed-up" if "ref" in sides else ""))
    totals = {name: sum(median[name].values()) for name in sides}
    for s in sids + ["total"]:
        line = f"{s:<20}{docs_in.get(s, args.docs):>9,}"
        for name in sides:
            sec = totals[name] if s == "total" else median[name][s]
            n = args.docs if s == "total" else docs_in[s]
            line += f"{n / sec:>14,.0f}{100 * sec / totals[name]:>11.1f}%"
        if "ref" in sides:
            ref = totals["ref"] if s == "total" else median["ref"][s]
            mine = totals["this"] if s == "total" else median["this"][s]
            line += f"{ref / mine:>10.2f}x"
        print(line)


if __name__ == "__main__":
    main()
