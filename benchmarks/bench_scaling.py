"""Scaling of the full quickstart pipeline (langid, heuristics, fastText quality, KenLM perplexity,
MinHash) over >= 200,000 documents on 1 and 2 Ray workers: docs/s, speed-up, per-step share.

Run: python benchmarks/bench_scaling.py [--copies 2] [--shared ../shared/data]
The corpus is bench_100k repeated `--copies` times; copy k > 0 gets a light edit so it is not an
exact copy: every (17 + k)-th word is dropped and ids get the suffix `-r<k>` (a near-duplicate of
its source, as web crawls hold; MinHash removes part of them). Each run is a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIPELINE = REPO / "examples" / "quickstart" / "pipeline.yaml"


def build_corpus(shared: Path, out: Path, copies: int) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows = 0
    for k in range(copies):
        for shard in sorted((shared / "bench_100k").glob("shard_*.parquet")):
            table = pq.read_table(shard, columns=["id", "text"])
            if k:
                words = pc.utf8_split_whitespace(table["text"].combine_chunks())
                flat = pc.list_flatten(words)
                pos = np.concatenate([np.arange(n) for n in pc.list_value_length(words).to_numpy()])
                keep = (pos % (17 + k)) != (16 + k)
                parents = pc.list_parent_indices(words).to_numpy()[keep]
                kept = flat.filter(pa.array(keep))
                joined = pa.ListArray.from_arrays(
                    np.concatenate([[0], np.cumsum(np.bincount(parents, minlength=len(table)))]),
                    kept,
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


def child(corpus: str, out: str, workers: int) -> None:
    """In a subprocess: one run of the quickstart pipeline; prints its stats as JSON."""
    import yaml

    from curate import config as cfg
    from curate import runner

    data = yaml.safe_load(PIPELINE.read_text())
    data["input"]["path"] = corpus
    data["output"]["path"] = out
    data["ray"] = {"workers": workers}
    for step in data["steps"]:
        if "model" in step.get("params", {}):
            step["params"]["model"] = str(REPO / step["params"]["model"])
    t0 = time.perf_counter()
    result = runner.run(cfg.load(base=data), overwrite=True, progress="quiet")
    print(json.dumps({"wall": time.perf_counter() - t0, "stats": result.stats}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        docs = build_corpus(Path(args.shared), corpus, args.copies)
        print(f"corpus: {docs:,} documents ({args.copies} copies of bench_100k)")
        results = {}
        for workers in (1, 2):
            out = (
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        str(corpus),
                        f"{tmp}/out{workers}",
                        str(workers),
                    ],
                    capture_output=True,
                    text=True,
                    cwd=REPO,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            results[workers] = json.loads(out)
            r = results[workers]
            print(
                f"{workers} worker(s): {r['wall']:.0f} s, {docs / r['wall']:,.0f} docs/s, "
                f"kept {r['stats']['total']['kept']:,}"
            )
        print(f"speed-up 2 vs 1 workers: {results[1]['wall'] / results[2]['wall']:.2f}x")
        # Without the fixed start-up (Ray start, each step's setup), which does not parallelise.
        work = {
            w: r["wall"] - r["stats"]["total"].get("startup_seconds", 0) for w, r in results.items()
        }
        print(
            f"start-up {results[1]['stats']['total'].get('startup_seconds', 0):.1f} s / "
            f"{results[2]['stats']['total'].get('startup_seconds', 0):.1f} s; speed-up after "
            f"start-up: {work[1] / work[2]:.2f}x"
        )
        steps = results[1]["stats"]["steps"]
        # A step's seconds already include signature and decide time (stats.merge).
        secs = {k: v.get("seconds", 0) for k, v in steps.items()}
        total = sum(secs.values()) or 1
        for sid, s in secs.items():
            print(f"  {sid:20s} {s:8.1f} s  {100 * s / total:5.1f}% of step time (1 worker)")
        print(
            json.dumps(
                {w: {"wall": r["wall"], "docs_per_s": docs / r["wall"]} for w, r in results.items()}
            )
        )


if __name__ == "__main__":
    main()
