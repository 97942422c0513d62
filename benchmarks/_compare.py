"""What every like-for-like benchmark shares: the corpus, whole-process timing with peak RSS,
alternating runs, medians, and the docs/s, per-core and ratio lines they print."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_NOTE = "2-core machine shared with other users at the time: compare the ratio, not seconds"


def corpus_arguments(parser) -> None:
    """`--corpus PATH` (a folder of shard_*.parquet + ground_truth.parquet) or a corpus made."""
    parser.add_argument(
        "--corpus",
        type=Path,
        help="a corpus folder (shard_*.parquet, ground_truth.parquet), e.g. ../shared/data/"
        "bench_100k; default: one built by make_corpus.py into a temporary folder",
    )
    parser.add_argument("--docs", type=int, default=100_000, help="size of the corpus built")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpus built")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")


def resolve_corpus(args, tmp: Path) -> Path:
    """The corpus folder to use: `--corpus`, or make_corpus's `--docs` documents under `tmp`."""
    if args.corpus is not None:
        return _given_corpus(args.corpus)
    return _made_corpus(tmp, args.docs, args.seed)


SHARED_DATA = REPO.parent / "shared" / "data"


def text_corpus(corpus: Path | None, docs: int, tmp: Path) -> Path:
    """A folder of shard_*.parquet (`id`, `text`) and ground_truth.parquet: `corpus` when given,
    else ../shared/data/bench_100k when present, else make_corpus.py's `docs` documents built
    under `tmp` from the shipped sample, so a script that needs only text runs from a clone."""
    if corpus is not None:
        return _given_corpus(corpus)
    shared = SHARED_DATA / "bench_100k"
    if sorted(shared.glob("shard_*.parquet")):
        return shared
    print(f"corpus: {shared} is not here")
    return _made_corpus(tmp, docs, seed=0)


def _given_corpus(corpus: Path) -> Path:
    if not sorted(Path(corpus).glob("shard_*.parquet")):
        sys.exit(f"--corpus {corpus}: no shard_*.parquet files there")
    return Path(corpus)


def _made_corpus(tmp: Path, docs: int, seed: int) -> Path:
    sys.path.insert(0, str(HERE))
    import make_corpus

    out = tmp / f"corpus_{docs}_{seed}"
    start = time.perf_counter()
    make_corpus.make(out, docs=docs, shards=10, seed=seed)
    print(
        f"corpus: make_corpus.py --docs {docs} --seed {seed} -> {out} "
        f"({time.perf_counter() - start:.0f} s, not timed below)"
    )
    return out


def needs_shared(*paths: Path, why: str) -> None:
    """Exit 2 with one sentence when a script's real data is absent (a clone alone): which
    file, what it is for, and where it lives."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        print(
            f"{Path(sys.argv[0]).name}: needs {Path(missing[0]).resolve()} ({why}); it is in "
            "../shared/data beside a checkout of the project, not in the repository",
            file=sys.stderr,
        )
        sys.exit(2)


def slice_corpus(corpus: Path, limit: int, out: Path, shards: int = 10) -> Path:
    """The first `limit` documents of `corpus` in `shards` shards, with the ground truth rows of
    those documents (sources outside the slice are left to `truth_clusters` to ignore)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(sorted(corpus.glob("shard_*.parquet")), columns=["id", "text"])
    table = table.slice(0, limit)
    out.mkdir(parents=True)
    size = -(-table.num_rows // shards)
    for k, lo in enumerate(range(0, table.num_rows, size)):
        pq.write_table(table.slice(lo, size), out / f"shard_{k:02d}.parquet")
    truth = corpus / "ground_truth.parquet"
    if truth.exists():
        gt = pq.read_table(truth)
        pq.write_table(gt.filter(pc.is_in(gt["id"], table["id"])), out / "ground_truth.parquet")
    return out


def count_docs(corpus: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(corpus.glob("shard_*.parquet")))


@dataclass
class Measured:
    """One whole-process run: wall seconds, peak RSS (whole process tree and largest process)."""

    seconds: float
    tree_rss: int
    largest_rss: int
    stdout: str
    extra: dict = field(default_factory=dict)


def run_measured(cmd: Sequence[str], cwd: Path = REPO, env: dict | None = None) -> Measured:
    """Run `cmd`, sampling every 0.2 s the summed RSS of it and all its descendants (a Ray run's
    raylet, GCS and workers included); fails with its stderr tail if it exits non-zero."""
    import psutil

    env = dict(os.environ if env is None else env)
    env.pop("RAY_ADDRESS", None)  # embedded local Ray, never someone's cluster
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = {"tree": 0, "largest": 0}
    stop = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            sizes = []
            for p in procs:
                try:
                    sizes.append(p.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    pass
            if sizes:
                peak["tree"] = max(peak["tree"], sum(sizes))
                peak["largest"] = max(peak["largest"], max(sizes))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{err[-3000:]}")
    return Measured(seconds, peak["tree"], peak["largest"], out)


def alternate(sides: dict[str, Callable[[int], Measured]], runs: int) -> dict[str, list[Measured]]:
    """Run each side `runs` times, alternating which goes first, so drift in the machine's load
    falls on both; `sides[name](run_index)` does one run."""
    names = list(sides)
    results: dict[str, list[Measured]] = {name: [] for name in names}
    for run in range(runs):
        for name in names if run % 2 == 0 else names[::-1]:
            m = sides[name](run)
            results[name].append(m)
            print(f"  run {run + 1}/{runs} {name}: {m.seconds:.1f} s", flush=True)
    return results


def median_run(measured: list[Measured]) -> Measured:
    """The run of median wall time (its RSS and counts go with it)."""
    ordered = sorted(measured, key=lambda m: m.seconds)
    return ordered[(len(ordered) - 1) // 2]


def print_side(name: str, docs: int, procs: int, measured: list[Measured]) -> float:
    """One line: median seconds, docs/s, docs/s per core, peak RSS; returns the median seconds."""
    seconds = statistics.median(m.seconds for m in measured)
    rss = max(m.tree_rss for m in measured) / 2**20
    largest = max(m.largest_rss for m in measured) / 2**20
    all_runs = ", ".join(f"{m.seconds:.1f}" for m in measured)
    print(
        f"{name:<34} {seconds:7.1f} s {docs / seconds:>9,.0f} docs/s "
        f"{docs / seconds / procs:>8,.0f} docs/s/core ({procs} processes)  "
        f"peak RSS {rss:,.0f} MB all processes, {largest:,.0f} MB largest  [runs: {all_runs}]"
    )
    return seconds


def print_ratio(fast: str, slow: str, a: list[Measured], b: list[Measured], what: str) -> None:
    """`fast` vs `slow` three ways on a noisy machine: ratio of the medians, median of each run's
    ratio (the two sides of run i ran back to back), and best time against best time."""
    medians = statistics.median(m.seconds for m in b) / statistics.median(m.seconds for m in a)
    paired = [y.seconds / x.seconds for x, y in zip(a, b, strict=True)]
    best = min(m.seconds for m in b) / min(m.seconds for m in a)
    print(
        f"ratio: {fast} is {medians:.2f}x {slow}'s docs/s ({what}); per run "
        f"{', '.join(f'{r:.2f}x' for r in paired)} (median {statistics.median(paired):.2f}x); "
        f"best vs best {best:.2f}x"
    )
