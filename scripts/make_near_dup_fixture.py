"""Build the near-duplicate test fixture from the shipped sample (examples/quickstart/data).

Writes tests/fixtures/near_dup/near_dup.parquet: `id`, `text`, `cluster_id` (the ground truth:
a base document and its edited copies share one) and `is_base`. Copies get a few words
replaced, a run of words deleted, a boilerplate line added: Jaccard of 5-gram shingles stays
well above the 14 x 8 LSH threshold (about 0.72), so `minhash` should find every cluster. The
unrelated documents are sample documents that nothing copies. Deterministic: run it again and
the file is byte-identical.

    python scripts/make_near_dup_fixture.py [--bases 30] [--singles 40]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "quickstart" / "data"
OUT = REPO / "tests" / "fixtures" / "near_dup" / "near_dup.parquet"
FOOTERS = ["Share this page.", "All rights reserved.", "Read more on our site.", "Subscribe now."]


def edited(text: str, rng: random.Random) -> str:
    """A near-duplicate: ~1% of words replaced, a short run deleted, a footer appended."""
    words = text.split()
    for _ in range(max(1, len(words) // 100)):
        words[rng.randrange(len(words))] = rng.choice(["the", "a", "new", "also", "very"])
    start = rng.randrange(len(words))
    del words[start : start + rng.randint(1, 3)]
    return " ".join(words) + " " + rng.choice(FOOTERS)


def shingles(text: str, n: int = 5) -> set[str]:
    words = text.lower().split()
    return {" ".join(words[k : k + n]) for k in range(max(1, len(words) - n + 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def build(bases: int, singles: int, seed: int = 11) -> pa.Table:
    sample = pa.concat_tables(pq.read_table(p) for p in sorted(SAMPLE.glob("*.parquet")))
    texts = sample.column("text").to_pylist()
    ids = sample.column("id").to_pylist()
    # Long enough for many shingles (cut to 250 words: a small file), and unrelated to every
    # other sample document (5-gram Jaccard under 0.3), so the truth holds only our copies.
    cut = {i: " ".join(t.split()[:250]) for i, t in enumerate(texts) if t and len(t.split()) >= 150}
    grams = {i: shingles(t) for i, t in cut.items()}
    usable = [
        i for i in sorted(cut) if all(j == i or jaccard(grams[i], grams[j]) < 0.3 for j in grams)
    ]
    texts = [cut.get(i, t) for i, t in enumerate(texts)]
    rng = random.Random(seed)
    rng.shuffle(usable)
    rows = []
    for c, i in enumerate(usable[:bases]):
        rows.append({"id": f"{ids[i]}", "text": texts[i], "cluster_id": f"c{c:03d}", "is_base": 1})
        for k in range(1 + c % 4):
            rows.append(
                {
                    "id": f"{ids[i]}-copy{k}",
                    "text": edited(texts[i], rng),
                    "cluster_id": f"c{c:03d}",
                    "is_base": 0,
                }
            )
    for c, i in enumerate(usable[bases : bases + singles]):
        rows.append({"id": ids[i], "text": texts[i], "cluster_id": f"s{c:03d}", "is_base": 1})
    rng.shuffle(rows)  # copies may precede their base
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("id", pa.string()),
                ("text", pa.string()),
                ("cluster_id", pa.string()),
                ("is_base", pa.int8()),
            ]
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=30)
    parser.add_argument("--singles", type=int, default=40)
    args = parser.parse_args()
    table = build(args.bases, args.singles)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, OUT, compression="zstd", row_group_size=64)
    clusters = len(set(table.column("cluster_id").to_pylist()))
    print(f"{OUT.relative_to(REPO)}: {table.num_rows} documents, {clusters} true clusters")


if __name__ == "__main__":
    main()
