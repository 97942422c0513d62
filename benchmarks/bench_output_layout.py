"""What an output folder holds (files, row groups, bytes per folder), and how fast a unit's
files are written one row group per batch (the old layout) vs in row groups of a target size.

    python benchmarks/bench_output_layout.py layout OUT [OUT ...]
    python benchmarks/bench_output_layout.py write [--rows 200000] [--batch 2048] [--repeats 3]

`write` builds its rows from the shipped sample (examples/quickstart/data), so it runs from a
clone; both layouts write the same tables with the same codec in the same process, alternating.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curate import io  # noqa: E402
from curate.unit_writer import ROW_GROUP_ROWS, RowGroupWriter  # noqa: E402

FOLDERS = ("data", "rejected", "_sidecar", "_segments")


def layout(root: Path) -> dict[str, dict[str, int]]:
    """Per folder: files, files with no row, row groups, rows and bytes."""
    found = {}
    for folder in FOLDERS:
        files = sorted((root / folder).rglob("*.parquet")) if (root / folder).exists() else []
        counts = {"files": 0, "empty_files": 0, "row_groups": 0, "rows": 0, "bytes": 0}
        for path in files:
            meta = pq.ParquetFile(path).metadata
            counts["files"] += 1
            counts["empty_files"] += meta.num_rows == 0
            counts["row_groups"] += meta.num_row_groups
            counts["rows"] += meta.num_rows
            counts["bytes"] += path.stat().st_size
        found[folder] = counts
    return found


def print_layout(roots: list[str]) -> None:
    for root in roots:
        print(f"{root}")
        for folder, c in layout(Path(root)).items():
            if c["files"]:
                print(
                    f"  {folder:10} {c['files']:5d} files ({c['empty_files']} empty), "
                    f"{c['row_groups']:6d} row groups, {c['rows']:9,d} rows, "
                    f"{c['bytes'] / 1e6:8.1f} MB"
                )


def sample_batches(rows: int, batch: int) -> list[pa.Table]:
    """The shipped sample repeated to `rows` rows, cut into batches as a unit streams them."""
    sample = pa.concat_tables(
        [pq.read_table(p) for p in sorted((REPO / "examples/quickstart/data").glob("*.parquet"))]
    )
    table = pa.concat_tables([sample] * (rows // sample.num_rows + 1)).slice(0, rows)
    return [table.slice(i, batch) for i in range(0, rows, batch)]


def ledger_pieces(batches: list[pa.Table], steps: int = 4, share: float = 0.03) -> list[pa.Table]:
    """What a ledger receives: per batch, each step's few dropped rows (`share` of the batch)."""
    pieces = []
    for b in batches:
        n = max(1, int(b.num_rows * share))
        pieces += [b.slice(i * n, n) for i in range(steps)]
    return pieces


def write_per_batch(path: Path, batches: list[pa.Table]) -> None:
    writer = io.AtomicParquetWriter(str(path), batches[0].schema)
    for b in batches:
        writer.write(b)
    writer.commit()


def write_row_groups(path: Path, batches: list[pa.Table]) -> None:
    writer = RowGroupWriter(lambda schema: io.AtomicParquetWriter(str(path), schema))
    for b in batches:
        writer.write(b)
    writer.commit()


def bench_write(rows: int, batch: int, repeats: int, ledger: bool) -> None:
    batches = sample_batches(rows, batch)
    if ledger:
        batches = ledger_pieces(batches)
        rows = sum(b.num_rows for b in batches)
    mb = sum(b.nbytes for b in batches) / 1e6
    times: dict[str, list[float]] = {"per batch": [], "row groups": []}
    reads: dict[str, list[float]] = {"per batch": [], "row groups": []}
    groups = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):  # alternate, so a busy machine slows both alike
            for name, fn in (("per batch", write_per_batch), ("row groups", write_row_groups)):
                path = Path(tmp) / f"{name.replace(' ', '_')}-{r}.parquet"
                t0 = time.perf_counter()
                fn(path, batches)
                times[name].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                pq.read_table(path)
                reads[name].append(time.perf_counter() - t0)
                meta = pq.ParquetFile(path).metadata
                groups[name] = (meta.num_row_groups, path.stat().st_size / 1e6)
    what = "ledger: 4 steps' drops (3% each) of" if ledger else "kept rows:"
    print(
        f"{what} {rows:,} rows ({mb:.0f} MB in Arrow) in {len(batches)} writes "
        f"(batches of {batch}); "
        f"target {ROW_GROUP_ROWS:,} rows a group; median of {repeats}, one process"
    )
    base = statistics.median(times["per batch"])
    base_read = statistics.median(reads["per batch"])
    for name in times:
        w, rd = statistics.median(times[name]), statistics.median(reads[name])
        n, size = groups[name]
        print(
            f"  {name:10}  {n:4d} row groups, {size:6.1f} MB on disk; write {w:.3f}s "
            f"({rows / w:,.0f} rows/s, x{base / w:.2f}), "
            f"read back {rd:.3f}s (x{base_read / rd:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("layout", help="files and row groups of output folders")
    p.add_argument("roots", nargs="+")
    p = sub.add_parser("write", help="write throughput: per batch vs row groups")
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ledger", action="store_true", help="the ledger's many small writes")
    args = parser.parse_args()
    if args.command == "layout":
        print_layout(args.roots)
    else:
        bench_write(args.rows, args.batch, args.repeats, args.ledger)


if __name__ == "__main__":
    main()
