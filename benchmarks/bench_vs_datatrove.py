"""Headline comparison: curate vs datatrove 0.10.1, heuristics + MinHash, same work, same run.

The pipeline, on both sides: gopher_repetition -> gopher_quality -> C4 -> fineweb_quality ->
MinHash (14 bands x 8 rows, word 5-grams), over the corpus's shard_*.parquet, writing the kept
documents and every removed one (curate: its rejected ledger; datatrove: an exclusion writer
per filter and for MinHash, all Parquet) on 2 processes each:
- curate: `curate run CONFIG --executor ray --workers 2` as a subprocess (Python start, embedded
  Ray start, model-free setup, every phase and the output writing included);
- datatrove: benchmarks/_datatrove_side.py as a subprocess of benchmarks/.venv-datatrove's
  Python (make it with `bash benchmarks/setup_datatrove.sh`): its four filters and its 4-stage
  MinHash, LocalPipelineExecutor with 2 tasks on 2 workers (see that file's docstring).
Both sides use their own defaults for every filter threshold. The C4 step is curate's `c4_lines`
by default: like datatrove's C4QualityFilter it removes the lines C4 removes and then applies
the page rules (`--c4-step c4_quality` applies the page rules without rewriting, less work than
datatrove does). Word tokenizer on datatrove's side: `str.split` (`--tokenizer split`, default)
or its default English spaCy tokenizer (`--tokenizer spacy`, with `--limit` to keep it short).
`--pipeline minhash`: MinHash alone on both sides (the same reading and writing).

Runs alternate (curate first, then datatrove first, ...); the median of `--runs` per side is
printed as docs/s and docs/s per core, with the ratio of median times, then the counts of each
side (kept, removed per step) and MinHash precision / recall against the corpus's ground truth
(among the documents that reached MinHash on that side) to show both did the same job.

Run: bash benchmarks/setup_datatrove.sh
     python benchmarks/bench_vs_datatrove.py [--corpus ../shared/data/bench_100k] [--runs 3]
       [--docs 100000] [--tokenizer split|spacy] [--limit N] [--c4-step c4_lines|c4_quality]
       [--pipeline heuristics|minhash]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import (  # noqa: E402
    HERE,
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
from _scoring import accuracy, truth_clusters  # noqa: E402

DATATROVE_PYTHON = HERE / ".venv-datatrove" / "bin" / "python"
FILTER_STEPS = ["gopher_repetition", "gopher_quality", "C4", "fineweb_quality"]


def curate_steps(pipeline: str, c4_step: str) -> list[dict]:
    minhash = {"use": "minhash", "params": {"num_perm": 112, "bands": 14, "rows": 8, "ngram": 5}}
    if pipeline == "minhash":
        return [minhash]
    filters = ("gopher_repetition", "gopher_quality", c4_step, "fineweb_quality")
    return [{"use": s} for s in filters] + [minhash]


def curate_side(corpus: Path, work: Path, workers: int, steps: list[dict], run: int) -> Measured:
    out = work / f"curate_{run}"
    conf = work / "curate.yaml"
    config = {
        "input": {"path": str(corpus / "shard_*.parquet"), "id_column": "id"},
        "output": {"path": str(out)},
        "steps": steps,
    }
    conf.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "curate.cli", "run", str(conf), "--quiet", "--overwrite"]
    m = run_measured(cmd + ["--executor", "ray", "--workers", str(workers)])
    stats = json.loads((out / "stats.json").read_text())
    dropped = [stats["steps"][s["use"]]["dropped"] for s in steps]
    parts = [
        pq.read_table(p, columns=["id", "reason"])
        for p in sorted((out / "rejected").rglob("*.parquet"))
    ]
    ledger = pa.concat_tables(parts) if parts else pa.table({"id": [], "reason": []})
    kept_ids = pq.read_table(sorted((out / "data").rglob("*.parquet")), columns=["id"])["id"]
    minhash = ledger.filter(pc.equal(ledger["reason"], "minhash"))["id"]
    m.extra = {
        "kept": stats["total"]["kept"],
        "phases": stats["total"].get("phases", {}),
        "dropped": dropped,
        "removed": set(minhash.to_pylist()),
        "reached": set(minhash.to_pylist()) | set(kept_ids.to_pylist()),
    }
    return m


def datatrove_side(
    corpus: Path, work: Path, workers: int, tokenizer: str, filters: bool, run: int
) -> Measured:
    out = work / f"datatrove_{run}"
    cmd = [str(DATATROVE_PYTHON), str(HERE / "_datatrove_side.py"), "--corpus", str(corpus)]
    cmd += ["--work", str(out), "--tasks", str(workers), "--workers", str(workers)]
    m = run_measured(cmd + ["--tokenizer", tokenizer] + ([] if filters else ["--no-filters"]))
    summary = json.loads(m.stdout.strip().splitlines()[-1])
    rejected = summary["rejected"]

    def ids(folder: Path) -> set[str]:
        files = sorted(folder.rglob("*.parquet"))
        return set(pq.read_table(files, columns=["id"])["id"].to_pylist()) if files else set()

    filter_names = ("gopher_rep", "gopher_qual", "c4", "fineweb") if filters else ()
    m.extra = {
        "kept": summary["kept"],
        "dropped": [rejected.get(k, 0) for k in filter_names] + [rejected.get("minhash", 0)],
        "removed": ids(out / "rejected" / "minhash"),
        "reached": ids(out / "filtered" if filters else corpus),
        "stages": summary["seconds"],
    }
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus_arguments(ap)
    ap.add_argument("--workers", type=int, default=2, help="processes on each side")
    ap.add_argument("--tokenizer", choices=["split", "spacy"], default="split")
    ap.add_argument("--limit", type=int, help="only the first N documents of the corpus")
    ap.add_argument("--c4-step", choices=["c4_lines", "c4_quality"], default="c4_lines")
    ap.add_argument(
        "--pipeline",
        choices=["heuristics", "minhash"],
        default="heuristics",
        help="the four filters + MinHash (default), or MinHash alone",
    )
    args = ap.parse_args()
    steps = curate_steps(args.pipeline, args.c4_step)
    filters = args.pipeline == "heuristics"
    if not DATATROVE_PYTHON.exists():
        sys.exit(f"{DATATROVE_PYTHON} is missing: run `bash benchmarks/setup_datatrove.sh` first")
    with tempfile.TemporaryDirectory(prefix="bench_vs_datatrove_") as tmp:
        work = Path(tmp)
        corpus = resolve_corpus(args, work)
        if args.limit:
            corpus = slice_corpus(corpus, args.limit, work / "slice")
        docs = count_docs(corpus)
        chain = " -> ".join(s["use"] for s in steps).replace("c4_", "C4QualityFilter / c4_")
        print(
            f"{docs:,} documents from {corpus}; {chain} (14x8, 5-grams); kept and removed "
            f"written; {args.workers} processes a side; datatrove tokenizer: {args.tokenizer}; "
            f"{args.runs} runs a side, alternating"
        )
        results = alternate(
            {
                "curate": lambda run: curate_side(corpus, work, args.workers, steps, run),
                "datatrove": lambda run: datatrove_side(
                    corpus, work, args.workers, args.tokenizer, filters, run
                ),
            },
            args.runs,
        )
        print(f"medians of {args.runs} runs ({SHARED_NOTE}):")
        print_side("curate (CLI, embedded Ray)", docs, args.workers, results["curate"])
        print_side(
            f"datatrove 0.10.1 ({args.tokenizer} tokenizer)",
            docs,
            args.workers,
            results["datatrove"],
        )
        same = "same processes, same run"
        print_ratio("curate", "datatrove", results["curate"], results["datatrove"], same)
        truth_path = corpus / "ground_truth.parquet"
        gt = pq.read_table(truth_path).to_pydict() if truth_path.exists() else None
        for name in ("curate", "datatrove"):
            m = median_run(results[name])
            steps = ", ".join(
                f"{s} {n:,}"
                for s, n in zip(
                    (FILTER_STEPS if filters else []) + ["minhash"], m.extra["dropped"], strict=True
                )
            )
            line = f"  {name}: kept {m.extra['kept']:,}; removed by {steps}"
            if gt is not None:
                p, r, _ = accuracy(m.extra["removed"], truth_clusters(gt, m.extra["reached"]))
                line += f"; minhash precision {p:.4f} recall {r:.4f}"
            print(line)
        stages = median_run(results["datatrove"]).extra["stages"]
        print("  datatrove stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
        middle = median_run(results["curate"])
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in middle.extra["phases"].items())
        inside = sum(middle.extra["phases"].values())
        print(
            f"  curate phases (stats.json total.phases, the median run): {phases}; Python start, "
            f"imports and exit {middle.seconds - inside:.1f} s"
        )


if __name__ == "__main__":
    main()
