"""Build the quickstart sample corpus from ../shared/data (shippable, attributed sources only)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SHARDS = 4


def _take(path: Path, n: int, rng: np.random.Generator, source: str, max_chars: int = 30_000):
    table = pq.read_table(
        path,
        columns=["id", "text", "license"]
        if "license" in pq.read_schema(path).names
        else ["id", "text"],
    )
    table = table.filter(pc.less_equal(pc.utf8_length(table["text"]), max_chars))
    idx = np.sort(rng.choice(table.num_rows, size=min(n, table.num_rows), replace=False))
    table = table.take(idx)
    if "license" not in table.schema.names:
        table = table.append_column("license", pa.array(["Apache-2.0"] * table.num_rows))
    return table.select(["id", "text", "license"]).append_column(
        "source", pa.array([source] * table.num_rows)
    )


def _edit_words(text: str, rate: float, rng: np.random.Generator) -> str:
    words = text.split(" ")
    n = max(1, int(len(words) * rate))
    for pos in rng.choice(len(words), size=n, replace=False):
        words[pos] = words[pos][::-1]
    return " ".join(words)


def build(shared: Path, out: Path, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    hq, web, ml = shared / "high_quality", shared / "web_crawl", shared / "multilingual"
    parts = [
        _take(hq / "wikipedia_vital_summaries_en.parquet", 500, rng, "wikipedia_en"),
        _take(hq / "public_domain_books_chunks.parquet", 80, rng, "gutenberg"),
        _take(hq / "python311_docs.parquet", 60, rng, "python_docs"),
        _take(hq / "python_peps.parquet", 40, rng, "peps"),
        _take(web / "cc_fixture_samples.parquet", 86, rng, "cc_web"),
    ]
    fr_es = pq.read_table(ml / "wikipedia_vital_summaries_fr_es.parquet")
    for lang in ("fr", "es"):
        sub = fr_es.filter(pc.equal(fr_es["lang"], lang))
        idx = np.sort(rng.choice(sub.num_rows, size=40, replace=False))
        sub = sub.take(idx).select(["id", "text", "license"])
        parts.append(sub.append_column("source", pa.array([f"wikipedia_{lang}"] * 40)))
    base = pa.concat_tables(parts)
    # Near-duplicates of long documents (1-3% of words edited) and exact copies of short ones,
    # so the dedup step has real work; their ids say what they are.
    long_docs = base.filter(pc.is_in(base["source"], pa.array(["gutenberg", "python_docs"])))
    picks = rng.choice(long_docs.num_rows, size=40, replace=False)
    near = long_docs.take(picks).to_pylist()
    for row in near:
        row["text"] = _edit_words(row["text"], float(rng.uniform(0.01, 0.03)), rng)
        row["id"] = row["id"] + "-neardup"
    wiki = base.filter(pc.equal(base["source"], "wikipedia_en"))
    exact = wiki.take(rng.choice(wiki.num_rows, size=20, replace=False)).to_pylist()
    for row in exact:
        row["id"] = row["id"] + "-copy"
    corpus = pa.concat_tables([base, pa.Table.from_pylist(near + exact, schema=base.schema)])
    corpus = corpus.take(rng.permutation(corpus.num_rows))
    out.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, corpus.num_rows, SHARDS + 1).astype(int)
    for shard, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=False)):
        pq.write_table(
            corpus.slice(lo, hi - lo),
            out / f"part-{shard}.parquet",
            row_group_size=100,
            compression="zstd",
        )
    return corpus


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=here.parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=here / "data")
    args = parser.parse_args()
    table = build(args.shared, args.out)
    print(f"{table.num_rows} documents in {SHARDS} shards under {args.out}")
    print(pc.value_counts(table["source"]).to_pylist())
