"""Wall time of `curate check` on a 1,000-document sample with the heuristic filters.

Prints the seconds of a whole `curate check` process (start, sample, in-process run, checks)
next to `curate --help` (the process start alone), measured in the same run. Run from the
repository root: python benchmarks/bench_check.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
CURATE = [sys.executable, "-m", "curate.cli"]


def timed(args: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    rc = subprocess.run(args, capture_output=True, cwd=REPO).returncode
    return time.perf_counter() - t0, rc


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="curate-check-bench-"))
    try:
        # 2,712 documents: the quickstart sample three times, ids made unique.
        base = pa.concat_tables(
            pq.read_table(p) for p in sorted((REPO / "examples/quickstart/data").glob("*.parquet"))
        )
        for k in range(3):
            copy = base.set_column(0, "id", pc.binary_join_element_wise(base["id"], f"-{k}", ""))
            pq.write_table(copy, tmp / f"part-{k}.parquet")
        config = {
            "input": {"path": str(tmp), "id_column": "id"},
            "output": {"path": str(tmp / "unused")},
            "steps": [
                {"use": "gopher_quality"},
                {"use": "gopher_repetition"},
                {"use": "fineweb_quality"},
                {"use": "c4_quality"},
                {"use": "exact_dedup"},
            ],
        }
        (tmp / "p.yaml").write_text(yaml.safe_dump(config))
        (tmp / "e.yaml").write_text(
            yaml.safe_dump({"sample": 1000, "min_documents": 100, "keep_rate": {"total": [0, 1]}})
        )
        startup = min(timed([*CURATE, "--help"])[0] for _ in range(3))
        runs = [
            timed([*CURATE, "check", str(tmp / "p.yaml"), "--expect", str(tmp / "e.yaml")])
            for _ in range(3)
        ]
        assert all(rc == 0 for _, rc in runs), runs
        best = min(t for t, _ in runs)
        print(f"curate --help (process start):          {startup:.2f} s")
        print(
            f"curate check, 1,000 docs, 4 heuristics + exact dedup: best {best:.2f} s "
            f"(runs: {', '.join(f'{t:.2f}' for t, _ in runs)})"
        )
        print(f"check work beyond start-up:              {best - startup:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
