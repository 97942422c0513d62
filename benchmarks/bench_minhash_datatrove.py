"""datatrove's 4-stage MinHash dedup on bench_100k: docs/s, peak RSS, precision/recall.

Needs a virtual environment with datatrove (NOT curate's: its pins differ), for example:
    python3 -m venv /tmp/dtvenv
    /tmp/dtvenv/bin/pip install datatrove spacy regex 'xxhash<4' tokenizers orjson psutil pyarrow
    /tmp/dtvenv/bin/python benchmarks/bench_minhash_datatrove.py [--tasks 2] [--workers 2]

The pipeline follows datatrove's own minhash example: MinhashDedupSignature (ParquetReader of the
10 shards, `--tasks` tasks), MinhashDedupBuckets (one task per bucket), MinhashDedupCluster (one
task), MinhashDedupFilter (the same reader and tasks, kept rows to Parquet, removed rows to JSONL
through the exclusion writer), each a LocalPipelineExecutor with `--workers` processes. Config:
14 buckets x 8 hashes, word 5-grams, datatrove's default normalisation and English (spaCy) word
tokenizer, 64-bit hashes. Scores: the removed ids against ground_truth.parquet with the same
order-free scoring as bench_minhash.py (benchmarks/_scoring.py). Peak RSS: the driver and the
largest pool worker, sampled every 0.2 s with psutil. Run it in the same session as
bench_minhash.py to compare docs/s on the same machine state.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / ".." / "shared" / "data" / "bench_100k"

try:
    import psutil
    import pyarrow.parquet as pq
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
    from datatrove.utils.hashing import HashConfig
except ImportError as exc:
    sys.exit(
        "bench_minhash_datatrove.py needs a virtual environment with datatrove, spacy, regex, "
        f"tokenizers, orjson, xxhash<4, psutil and pyarrow ({exc}); see this script's docstring "
        "for the commands."
    )

sys.path.insert(0, str(HERE))
from _scoring import accuracy, truth_clusters  # noqa: E402


class PeakRss:
    """Samples the RSS of this process and of its descendants until stopped."""

    def __init__(self) -> None:
        self.driver = self.worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.driver = max(self.driver, me.memory_info().rss)
            for child in me.children(recursive=True):
                try:
                    self.worker = max(self.worker, child.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    pass
            self._stop.wait(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run(work: Path, tasks: int, workers: int) -> dict[str, float]:
    """The four stages one after the other; returns the seconds of each."""
    config = MinhashConfig(
        n_grams=5, num_buckets=14, hashes_per_bucket=8, hash_config=HashConfig(precision=64)
    )

    def reader() -> ParquetReader:
        return ParquetReader(
            str(DATA), glob_pattern="shard_*.parquet", text_key="text", id_key="id"
        )

    stages = {
        "signatures": LocalPipelineExecutor(
            [reader(), MinhashDedupSignature(output_folder=str(work / "sigs"), config=config)],
            tasks=tasks,
            workers=workers,
            logging_dir=str(work / "logs" / "sigs"),
        ),
        "buckets": LocalPipelineExecutor(
            [
                MinhashDedupBuckets(
                    input_folder=str(work / "sigs"),
                    output_folder=str(work / "buckets"),
                    config=config,
                )
            ],
            tasks=config.num_buckets,
            workers=workers,
            logging_dir=str(work / "logs" / "buckets"),
        ),
        "cluster": LocalPipelineExecutor(
            [
                MinhashDedupCluster(
                    input_folder=str(work / "buckets"),
                    output_folder=str(work / "remove_ids"),
                    config=config,
                )
            ],
            tasks=1,
            workers=1,
            logging_dir=str(work / "logs" / "cluster"),
        ),
        "filter": LocalPipelineExecutor(
            [
                reader(),
                MinhashDedupFilter(
                    input_folder=str(work / "remove_ids"),
                    exclusion_writer=JsonlWriter(str(work / "removed")),
                ),
                ParquetWriter(str(work / "kept")),
            ],
            tasks=tasks,
            workers=workers,
            logging_dir=str(work / "logs" / "filter"),
        ),
    }
    seconds = {}
    for name, executor in stages.items():
        start = time.perf_counter()
        executor.run()
        seconds[name] = time.perf_counter() - start
    return seconds


def removed_ids(folder: Path) -> set[str]:
    import gzip

    out = set()
    for path in sorted(folder.glob("*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            out |= {json.loads(line)["id"] for line in f}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2, help="tasks of the signature/filter stages")
    ap.add_argument("--workers", type=int, default=2, help="processes per stage")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is not present")
    from importlib.metadata import version

    truth = pq.read_table(DATA / "ground_truth.parquet", columns=["id", "kind", "source_id"])
    n_docs = truth.num_rows
    with tempfile.TemporaryDirectory() as tmp:
        with PeakRss() as rss:
            start = time.perf_counter()
            seconds = run(Path(tmp), args.tasks, args.workers)
            total = time.perf_counter() - start
        removed = removed_ids(Path(tmp) / "removed")
    p, r, f1 = accuracy(removed, truth_clusters(truth.to_pydict()))
    print(
        f"datatrove {version('datatrove')} 4-stage MinHash 14x8, word 5-grams (spaCy en), "
        f"{n_docs} docs, {args.tasks} tasks / {args.workers} workers"
    )
    for stage, s in seconds.items():
        print(f"  {stage:<11} {s:7.2f} s  {n_docs / max(s, 1e-9):>10,.0f} docs/s")
    print(f"  overall     {total:7.2f} s  {n_docs / total:>10,.0f} docs/s")
    mb = 2**20
    print(f"  peak RSS: driver {rss.driver / mb:.0f} MB, largest worker {rss.worker / mb:.0f} MB")
    print(f"  removed {len(removed)}  precision {p:.4f}  recall {r:.4f}  F1 {f1:.4f}")


if __name__ == "__main__":
    main()
