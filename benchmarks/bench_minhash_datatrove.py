"""MinHash alone, curate vs datatrove 0.10.1's 4-stage MinHash: the same reading, dedup and writing.

Both sides read the corpus's shards, find near-duplicates (14 bands x 8 rows, word 5-grams) and
write the kept documents and the removed ones, on 2 processes each, in the same run, alternating,
median of `--runs`: this is `bench_vs_datatrove.py --pipeline minhash` (see its docstring; make
datatrove's venv with `bash benchmarks/setup_datatrove.sh`). Other flags pass through.

Run: python benchmarks/bench_minhash_datatrove.py [--corpus ../shared/data/bench_100k] [--runs 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vs_datatrove  # noqa: E402

if __name__ == "__main__":
    sys.argv[1:1] = ["--pipeline", "minhash"]
    bench_vs_datatrove.main()
