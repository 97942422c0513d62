"""Exact dedup of bench_100k: docs/s of the `exact_dedup` step vs a plain Python set of hashes.

Run: python benchmarks/bench_exact_dedup.py [--corpus ../shared/data/bench_100k]
(default: that folder when present, else a make_corpus.py corpus of 100k built from the sample)
The step runs as the runner would (signatures over 4,096-row batches per shard, then `decide`
in process); the baseline is the obvious loop: xxh3-128 of each raw text into a Python set.
The step hashes the normalised text (case, whitespace, punctuation and unicode folded), the loop
the raw text, so the step may remove a few more (texts equal after normalisation).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._compare import text_corpus  # noqa: E402
from benchmarks._drive import in_process_map, write_sidecars  # noqa: E402
from curate_filters.dedup.exact import ExactDedup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="shard_*.parquet + ground_truth.parquet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = text_corpus(args.corpus, 100_000, Path(tmp))
        shards = sorted(corpus.glob("shard_*.parquet"))
        tables = [pq.read_table(s, columns=["id", "text"]) for s in shards]
        truth = pq.read_table(corpus / "ground_truth.parquet", columns=["id", "kind"])
    docs = sum(t.num_rows for t in tables)
    exact_ids = set(np.asarray(truth["id"])[np.asarray(truth["kind"]) == "exact_dup"])

    step = ExactDedup(ExactDedup.Params())
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sidecars = [
            write_sidecars(step, i, t, f"{tmp}/sidecar", 4096) for i, t in enumerate(tables)
        ]
        sign_s = time.perf_counter() - start
        decision = step.decide(sidecars, in_process_map, f"{tmp}/work")
        curate_s = time.perf_counter() - start
    dropped_rows = decision.filter(decision["drop"])["row_id"].to_numpy()
    all_ids = pa.concat_arrays([t["id"].combine_chunks() for t in tables]).to_numpy(
        zero_copy_only=False
    )
    offsets = np.cumsum([0] + [t.num_rows for t in tables])
    shard_of = dropped_rows >> 40
    removed = set(all_ids[offsets[shard_of] + (dropped_rows & ((1 << 40) - 1))])

    start = time.perf_counter()
    seen: set[bytes] = set()
    loop_removed = set()
    for t in tables:
        for doc_id, text in zip(t["id"].to_pylist(), t["text"].to_pylist(), strict=True):
            digest = xxhash.xxh3_128_digest(text.encode())
            if digest in seen:
                loop_removed.add(doc_id)
            seen.add(digest)
    loop_s = time.perf_counter() - start

    def score(found: set) -> str:
        # Both keep the first copy in corpus order: where a copy precedes its source, the source
        # is removed instead, so compare counts and agreement rather than the ids themselves.
        return f"removed {len(found):,} (the corpus has {len(exact_ids):,} injected exact copies)"

    print(f"{corpus.name}: {docs:,} documents in {len(tables)} shards")
    print(
        f"exact_dedup step: {docs / curate_s:>9,.0f} docs/s ({sign_s:.1f} s signatures, "
        f"{curate_s - sign_s:.1f} s decide), {score(removed)}"
    )
    print(f"plain Python set of xxh3-128: {docs / loop_s:>9,.0f} docs/s, {score(loop_removed)}")
    print(f"same removals: {removed == loop_removed}; ratio step / loop: {loop_s / curate_s:.2f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
