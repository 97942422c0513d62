"""Precision, recall, F1 of curate `minhash` and datasketch MinHashLSH vs exact 5-gram Jaccard.

Data: shared/data/near_dup (2,027 web articles with edited variants, every pair with exact
word-5-gram Jaccard >= 0.2 in pairs_jaccard.parquet, computed on lowercased text with punctuation
removed, the normalisation both tools get here). Truth at threshold t: cluster the pairs with
Jaccard >= t, keep the first document of each cluster in file order, remove the rest.
"precision" = removed and in the truth set / removed; "lenient precision" = removed documents
with Jaccard >= t to some document the tool kept.

Run: python benchmarks/minhash_quality.py [--bands 14 --rows 8 --num-perm 112]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from datasketch import MinHash, MinHashLSH

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import needs_shared  # noqa: E402
from _drive import in_process_map, write_sidecars  # noqa: E402

from curate_filters.dedup.components import components  # noqa: E402
from curate_filters.dedup.normalize import NormParams, normalize  # noqa: E402
from curate_filters.dedup.step import MinHashDedup, MinHashParams  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "near_dup"


def truth_removed(pairs, index: dict[str, int], t: float) -> set[int]:
    a = np.array(
        [index[x] for x, j in zip(pairs["id_a"], pairs["j"], strict=True) if j >= t], np.int64
    )
    b = np.array(
        [index[x] for x, j in zip(pairs["id_b"], pairs["j"], strict=True) if j >= t], np.int64
    )
    nodes, root, _ = components(a, b)
    return set(nodes[nodes != root].tolist())


def curate_removed(table, params: MinHashParams) -> tuple[set[int], float]:
    step = MinHashDedup(params)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        side = write_sidecars(step, 0, table, f"{tmp}/sidecar", 1024)
        decision = step.decide([side], in_process_map, f"{tmp}/work")
        elapsed = time.perf_counter() - start
    rows = decision.filter(decision.column("drop")).column("row_id").to_numpy()
    return set(rows.tolist()), elapsed


def datasketch_removed(table, num_perm: int, bands: int, rows: int) -> tuple[set[int], float]:
    start = time.perf_counter()
    texts = normalize(table.column("text"), NormParams()).to_pylist()
    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    removed = set()
    for i, text in enumerate(texts):
        words = text.split(" ")
        shingles = {" ".join(words[k : k + 5]) for k in range(max(len(words) - 4, 1))}
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingles])
        if lsh.query(m):
            removed.add(i)
        else:
            lsh.insert(i, m)
    return removed, time.perf_counter() - start


def score(removed: set[int], truth: set[int], pairs, index, t: float) -> dict[str, float]:
    kept_ok = set()
    for x, y, j in zip(pairs["id_a"], pairs["id_b"], pairs["j"], strict=True):
        if j >= t:
            a, b = index[x], index[y]
            if a in removed and b not in removed:
                kept_ok.add(a)
            if b in removed and a not in removed:
                kept_ok.add(b)
    tp = len(removed & truth)
    p = tp / len(removed) if removed else 1.0
    r = tp / len(truth) if truth else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    lenient = len(kept_ok) / len(removed) if removed else 1.0
    return {"removed": len(removed), "precision": p, "lenient_p": lenient, "recall": r, "f1": f1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-perm", type=int, default=112)
    ap.add_argument("--bands", type=int, default=14)
    ap.add_argument("--rows", type=int, default=8)
    args = ap.parse_args()
    needs_shared(DATA / "pairs_jaccard.parquet", why="near-duplicate pairs with their Jaccard")
    table = pq.read_table(DATA / "synthetic_web_neardups.parquet", columns=["id", "text"])
    raw = pq.read_table(DATA / "pairs_jaccard.parquet").to_pydict()
    pairs = {"id_a": raw["id_a"], "id_b": raw["id_b"], "j": raw["jaccard_5gram"]}
    index = {x: i for i, x in enumerate(table.column("id").to_pylist())}
    params = MinHashParams(num_perm=args.num_perm, bands=args.bands, rows=args.rows)
    ours, t_ours = curate_removed(table, params)
    theirs, t_theirs = datasketch_removed(table, args.num_perm, args.bands, args.rows)
    print(f"{table.num_rows} docs, {args.num_perm} perm, {args.bands} bands x {args.rows} rows")
    print(f"time: curate {t_ours:.2f}s, datasketch {t_theirs:.2f}s")
    header = "t    tool        removed  precision  lenient_p  recall   F1"
    print(header)
    for t in (0.7, 0.8, 0.9):
        truth = truth_removed(pairs, index, t)
        for name, removed in (("curate", ours), ("datasketch", theirs)):
            s = score(removed, truth, pairs, index, t)
            print(
                f"{t:.1f}  {name:<10} {s['removed']:>8} {s['precision']:>10.4f} "
                f"{s['lenient_p']:>10.4f} {s['recall']:>7.4f} {s['f1']:>6.4f}"
            )


if __name__ == "__main__":
    main()
