"""Build a benchmark corpus of any size from the shipped sample, with known duplicates injected.

What it is: `--docs` documents in `--shards` Parquet shards (`shard_NN.parquet`: `id`, `text`) and
`ground_truth.parquet` (the columns of ../shared/data/bench_100k's: `id`, `kind` original /
near_dup / exact_dup, `source_id`, `edit_rate`, `n_edits`, `header`, `footer`, `jaccard`,
`origin`, `length`), deterministic from `--seed` (same arguments -> byte-identical files).

How: the 904 documents of examples/quickstart/data (Wikipedia en/fr/es leads, public-domain books,
Python docs, PEPs, Apache-2.0 web-page fixtures; the sample's own `-neardup`/`-copy` rows are left
out; attribution in the README's "The sample corpus") are cut into units: sentences for prose
(Wikipedia, books), lines for line-structured text (docs, PEPs, web pages), each distinct unit
once, none over 400 characters (longer sentences are cut at words): ~27,000 units. Each original
document takes units of ONE source family (families are drawn in proportion to their volume of
text, so no language or genre is repeated out of its share), in random order without repetition,
grouped into paragraphs of 1-6 units, until a length drawn uniformly from
`--min-chars`..`--max-chars` (at most a tenth of the family's text: the French and Spanish leads,
~100 sentences each, make shorter documents). Two originals share a unit now and then but are not
near-duplicates of each other: on 20,000 docs (seed 1), the largest exact word-5-gram Jaccard
between two originals is 0.29 in each big family (50,000 random pairs each) and 0.44 among the
French leads (all pairs); the benchmark's precision shows what that costs a dedup on a given
corpus. Then `--near-frac` of the documents are near-duplicates of distinct originals: a header
line added (15%) or the first line removed (10%, if short), a footer line added (10%), then
word-level edits (a word substituted by one of the same family, deleted, or a word inserted) until
the exact word-5-gram Jaccard to the source (lowercased `str.split` words) falls to a target drawn
uniformly from `--jaccard MIN MAX`; `jaccard` records the value reached. `--exact-frac` are exact
copies of other distinct originals. The rows are shuffled (a copy precedes its source half the
time) and ids are `doc0000000`.. in corpus order.

What it is not: a web crawl. Documents are sentence/line mixes of one family, not coherent
texts, so scores of a quality classifier or an LM mean little on them; heuristic filters see
real sentences and real web lines (menus, short lines) in realistic proportions, not a
measurement of a crawl's drop rates. Sentences recur across documents (each unit is reused
about docs x 24 / 27,000 times), which a real crawl does less, and can make an exact-substring
dedup look more useful than it is. For throughput of read / filter / dedup / write it is fair:
real text, real lengths, real duplicates at known Jaccard.

Run: python benchmarks/make_corpus.py --docs 100000 --shards 10 --out DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "quickstart" / "data"
PROSE = {"wikipedia_en", "wikipedia_fr", "wikipedia_es", "gutenberg"}
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=\S)")
GT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("source_id", pa.string()),
        ("edit_rate", pa.float64()),
        ("n_edits", pa.int64()),
        ("header", pa.string()),
        ("footer", pa.string()),
        ("jaccard", pa.float64()),
        ("origin", pa.string()),
        ("length", pa.int64()),
    ]
)


@dataclass
class Family:
    """The units of one source family and how documents made of them are laid out."""

    name: str
    units: list[str]
    words: list[str]
    unit_sep: str
    para_sep: str
    volume: int


def _cut(piece: str, limit: int = 400) -> list[str]:
    """Sentences of `piece`; a sentence over `limit` chars is cut at word boundaries, so no unit
    (an unpunctuated run of a web page) dominates the shingles of every document it lands in."""
    out = []
    for sentence in SENTENCE_END.split(piece):
        words, current = sentence.split(), []
        for word in words:
            if current and sum(map(len, current)) + len(current) + len(word) > limit:
                out.append(" ".join(current))
                current = []
            current.append(word)
        if current:
            out.append(" ".join(current))
    return out


def _units(text: str, prose: bool) -> list[str]:
    if prose:
        return [u for p in re.split(r"\n\s*\n", text) for u in _cut(" ".join(p.split()))]
    lines = [line.strip() for line in text.splitlines()]
    return [u for line in lines if line for u in ([line] if len(line) <= 400 else _cut(line))]


def load_families(sample: Path = SAMPLE) -> list[Family]:
    """The sample's documents cut into units, grouped by `source` (sorted, so runs agree)."""
    table = pq.read_table(sample, columns=["id", "text", "source"]).to_pydict()
    grouped: dict[str, list[str]] = {}
    for doc_id, text, source in zip(table["id"], table["text"], table["source"], strict=True):
        if doc_id.endswith(("-neardup", "-copy")):
            continue  # the sample's own injected copies: not fresh text
        grouped.setdefault(source, []).append(text)
    families = []
    for name in sorted(grouped):
        prose = name in PROSE
        # Each distinct unit once (web pages repeat their menus), in first-seen order.
        units = list(dict.fromkeys(u for text in grouped[name] for u in _units(text, prose)))
        words = sorted({w for u in units for w in u.split() if w.isalpha()})
        families.append(
            Family(
                name=name,
                units=units,
                words=words,
                unit_sep=" " if prose else "\n",
                para_sep="\n" if name == "cc_web" else "\n\n",
                volume=sum(len(u) for u in units),
            )
        )
    return families


def compose(family: Family, target_chars: int, rng: np.random.Generator) -> str:
    """One original: units of `family` without repetition until `target_chars`."""
    order = rng.permutation(len(family.units))
    paragraphs, current, size = [], [], 0
    para_len = int(rng.integers(1, 7))
    for index in order:
        unit = family.units[index]
        current.append(unit)
        size += len(unit) + 1
        if len(current) >= para_len:
            paragraphs.append(family.unit_sep.join(current))
            current, para_len = [], int(rng.integers(1, 7))
        if size >= target_chars:
            break
    if current:
        paragraphs.append(family.unit_sep.join(current))
    return family.para_sep.join(paragraphs)


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams of the lowercased `str.split` words (the whole text if shorter than n)."""
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(max(len(words) - n + 1, 1))}


def jaccard(a: str, b: str) -> float:
    """Exact word-5-gram Jaccard similarity of two texts."""
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y) if x | y else 1.0


def near_duplicate(
    source: str, family: Family, boilerplate: list[str], target: float, rng: np.random.Generator
) -> tuple[str, dict]:
    """A copy of `source` edited until its Jaccard to it is at most `target`."""
    lines = source.split("\n")
    header = footer = "none"
    draw = rng.random()
    if draw < 0.15:
        lines.insert(0, boilerplate[int(rng.integers(len(boilerplate)))])
        header = "added"
    elif draw < 0.25 and len(lines) > 2 and len(lines[0]) < 0.15 * len(source):
        lines = lines[2:] if not lines[1] else lines[1:]
        header = "first_line_removed"
    if rng.random() < 0.10:
        lines.append(boilerplate[int(rng.integers(len(boilerplate)))])
        footer = "added"
    # Words and the whitespace between them alternate, so edits keep the layout of the text.
    tokens = re.split(r"(\s+)", "\n".join(lines))
    source_shingles = shingles(source)
    n_words = max(1, len(source.split()))
    # Each substitution changes up to 5 shingles: J ~ (S - 5e) / (S + 5e), solved for e.
    step = max(1, int(len(source_shingles) * (1 - target) / (5 * (1 + target)) / 2))
    edits = 0
    while True:
        text = "".join(tokens)
        current = shingles(text)
        similarity = len(current & source_shingles) / len(current | source_shingles)
        if similarity <= target or edits > 3 * n_words:
            break
        for _ in range(step):
            word_slots = range(0, len(tokens), 2)
            slot = word_slots[int(rng.integers(len(word_slots)))]
            op = int(rng.integers(3))
            word = family.words[int(rng.integers(len(family.words)))]
            if op == 0 or not tokens[slot]:
                tokens[slot] = word
            elif op == 1 and len(tokens) > 3:
                del tokens[slot : slot + 2]
            else:
                tokens[slot : slot + 1] = [word, " ", tokens[slot]]
            edits += 1
        step = max(1, step // 2)
    meta = {
        "edit_rate": round(edits / n_words, 4),
        "n_edits": edits,
        "header": header,
        "footer": footer,
        "jaccard": round(similarity, 4),
    }
    return text, meta


def build(
    docs: int,
    seed: int = 0,
    near_frac: float = 0.10,
    exact_frac: float = 0.02,
    min_chars: int = 500,
    max_chars: int = 3000,
    jaccard_range: tuple[float, float] = (0.6, 0.95),
    sample: Path = SAMPLE,
) -> tuple[list[str], pa.Table]:
    """The texts in corpus order and their ground truth (ids `doc0000000`.. in that order)."""
    rng = np.random.default_rng(seed)
    families = load_families(sample)
    weights = np.array([f.volume for f in families], dtype=float)
    n_near, n_exact = int(round(docs * near_frac)), int(round(docs * exact_frac))
    n_orig = docs - n_near - n_exact
    if n_orig < n_near + n_exact:
        raise SystemExit("--near-frac + --exact-frac must leave at least half the corpus original")
    picks = rng.choice(len(families), size=n_orig, p=weights / weights.sum())
    lengths = rng.integers(min_chars, max_chars + 1, size=n_orig)
    # A small family (the French leads: ~90 sentences) makes shorter documents, so that two of
    # them rarely share most of their sentences.
    caps = np.array([f.volume // 10 for f in families])
    lengths = np.minimum(lengths, caps[picks])
    texts = [compose(families[f], int(n), rng) for f, n in zip(picks, lengths, strict=True)]
    rows = [
        {"kind": "original", "source": None, "family": int(f), "meta": {}, "text": t}
        for f, t in zip(picks, texts, strict=True)
    ]
    # Short web lines (menus, "Join/Support Us") are the headers and footers near-duplicates gain.
    boilerplate = [u for f in families if f.name == "cc_web" for u in f.units if len(u) < 60]
    sources = rng.choice(n_orig, size=n_near + n_exact, replace=False)
    targets = rng.uniform(*jaccard_range, size=n_near)
    for k, src in enumerate(sources):
        family = families[picks[src]]
        if k < n_near:
            text, meta = near_duplicate(texts[src], family, boilerplate, targets[k], rng)
            rows.append(
                {"kind": "near_dup", "source": int(src), "family": picks[src], "meta": meta}
                | {"text": text}
            )
        else:
            rows.append(
                {"kind": "exact_dup", "source": int(src), "family": picks[src], "text": texts[src]}
                | {"meta": {"jaccard": 1.0}}
            )
    order = rng.permutation(len(rows))
    width = max(7, len(str(docs - 1)))
    position = np.empty(len(rows), dtype=np.int64)
    position[order] = np.arange(len(rows))
    ids = [f"doc{p:0{width}d}" for p in position]
    truth = {name: [] for name in GT_SCHEMA.names}
    out_texts = []
    for index in order:
        row = rows[index]
        meta = row["meta"]
        truth["id"].append(ids[index])
        truth["kind"].append(row["kind"])
        truth["source_id"].append(None if row["source"] is None else ids[row["source"]])
        truth["edit_rate"].append(meta.get("edit_rate", 0.0))
        truth["n_edits"].append(meta.get("n_edits", 0))
        truth["header"].append(meta.get("header", "none"))
        truth["footer"].append(meta.get("footer", "none"))
        truth["jaccard"].append(meta.get("jaccard"))
        truth["origin"].append(families[row["family"]].name)
        truth["length"].append(len(row["text"]))
        out_texts.append(row["text"])
    return out_texts, pa.table(truth, schema=GT_SCHEMA)


def write(texts: list[str], truth: pa.Table, out: Path, shards: int) -> list[Path]:
    """`shard_NN.parquet` (contiguous slices, zstd, 2,000-row groups) and ground_truth.parquet."""
    out.mkdir(parents=True, exist_ok=True)
    table = pa.table({"id": truth["id"], "text": pa.array(texts, pa.string())})
    bounds = np.linspace(0, table.num_rows, shards + 1).astype(int)
    width = max(2, len(str(shards - 1)))
    paths = []
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        path = out / f"shard_{k:0{width}d}.parquet"
        pq.write_table(table.slice(lo, hi - lo), path, row_group_size=2000, compression="zstd")
        paths.append(path)
    pq.write_table(truth, out / "ground_truth.parquet", compression="zstd")
    return paths


def make(out: Path, docs: int, shards: int = 10, seed: int = 0, **kwargs) -> list[Path]:
    """Build and write a corpus; returns its shard paths (the benchmarks' entry point)."""
    texts, truth = build(docs, seed=seed, **kwargs)
    return write(texts, truth, Path(out), shards)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--shards", type=int, default=10)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--near-frac", type=float, default=0.10)
    ap.add_argument("--exact-frac", type=float, default=0.02)
    ap.add_argument("--min-chars", type=int, default=500)
    ap.add_argument("--max-chars", type=int, default=3000)
    ap.add_argument("--jaccard", type=float, nargs=2, default=(0.6, 0.95), metavar=("MIN", "MAX"))
    args = ap.parse_args()
    texts, truth = build(
        args.docs,
        seed=args.seed,
        near_frac=args.near_frac,
        exact_frac=args.exact_frac,
        min_chars=args.min_chars,
        max_chars=args.max_chars,
        jaccard_range=tuple(args.jaccard),
    )
    paths = write(texts, truth, args.out, args.shards)
    kinds = truth.group_by("kind").aggregate([("id", "count")]).to_pydict()
    counts = ", ".join(f"{k} {n:,}" for k, n in zip(kinds["kind"], kinds["id_count"], strict=True))
    chars = sum(len(t) for t in texts)
    print(
        f"{args.out}: {len(texts):,} documents in {len(paths)} shards ({counts}), {chars:,} chars"
    )


if __name__ == "__main__":
    main()
