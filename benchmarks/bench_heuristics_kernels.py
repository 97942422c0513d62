"""Docs/s of the heuristic filters' vectorised score() against a per-document Python reference.

Usage: python benchmarks/bench_heuristics_kernels.py [shard.parquet] [--docs N] [--batch B]

Both sides measure the same rules on the same documents in the same run (the reference is a
plain loop over `str` methods written from the rule definitions, as datatrove writes them), so
the ratio is meaningful on a noisy machine. Defaults: ../shared/data/bench_100k/shard_00.parquet
(from a clone alone: the first shard of a make_corpus.py corpus built from the shipped sample),
10,000 docs, batches of 2,048. The script also checks that both sides name the same first
failing rule.
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate_filters import _textstats as ts
from curate_filters.heuristics import C4Quality, FineWebQuality, GopherQuality, GopherRepetition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import text_corpus  # noqa: E402

SYMBOLS = frozenset(ts.symbol_chars())


def _strip_symbols(word: str) -> str:
    i, j = 0, len(word)
    while i < j and word[i] in SYMBOLS:
        i += 1
    while j > i and word[j - 1] in SYMBOLS:
        j -= 1
    return word[i:j]


def ref_gopher_quality(text: str, p: GopherQuality.Params) -> str | None:
    tokens = text.split()
    stripped = [_strip_symbols(w) for w in tokens]
    words = [w for w in stripped if w]
    n_tokens = len(tokens) or 1
    if len(words) < p.min_doc_words or len(words) > p.max_doc_words:
        return "word_count"
    mean = sum(map(len, words)) / len(words)
    if mean < p.min_avg_word_length or mean > p.max_avg_word_length:
        return "mean_word_length"
    if text.count("#") / n_tokens > p.max_symbol_word_ratio:
        return "hash_word_ratio"
    if (text.count("...") + text.count("…")) / n_tokens > p.max_symbol_word_ratio:
        return "ellipsis_word_ratio"
    lines = text.splitlines() or [""]
    if sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines) > (
        p.max_bullet_lines_ratio
    ):
        return "bullet_lines_frac"
    if sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines) > (
        p.max_ellipsis_lines_ratio
    ):
        return "ellipsis_lines_frac"
    if sum(any(c.isalpha() for c in w) for w in tokens) / n_tokens < p.max_non_alpha_words_ratio:
        return "alpha_words_frac"
    stop = set(p.stop_words)
    if sum(w in stop for w in stripped) < p.min_stop_words:
        return "stop_words"
    return None


def _dups(pieces: list[str]) -> tuple[int, int]:
    seen: set[str] = set()
    count = chars = 0
    for piece in pieces:
        if piece in seen:
            count += 1
            chars += len(piece)
        else:
            seen.add(piece)
    return count, chars


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def ref_top_ngram_chars(words: list[str], n: int) -> int:
    grams = _ngrams(words, n)
    if not grams:
        return 0
    gram, count = Counter(grams).most_common(1)[0]
    return len(" ".join(gram)) * count


def ref_dup_ngram_chars(words: list[str], n: int) -> int:
    seen: set[tuple[str, ...]] = set()
    covered = [False] * len(words)
    for i, gram in enumerate(_ngrams(words, n)):
        if gram in seen:
            covered[i : i + n] = [True] * n
        else:
            seen.add(gram)
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c)


def ref_gopher_repetition(text: str, p: GopherRepetition.Params) -> str | None:
    size = len(text) or 1
    paras = re.split(r"\n{2,}", text.strip())
    dup, chars = _dups(paras)
    if dup / len(paras) > p.dup_para_frac:
        return "dup_para_frac"
    if chars / size > p.dup_para_char_frac:
        return "dup_para_char_frac"
    lines = re.split(r"\n+", text)
    dup, chars = _dups(lines)
    if dup / len(lines) > p.dup_line_frac:
        return "dup_line_frac"
    if chars / size > p.dup_line_char_frac:
        return "dup_line_char_frac"
    words = text.split()
    for n, limit in p.top_n_grams.items():
        if ref_top_ngram_chars(words, n) / size > limit:
            return f"top_{n}_gram_frac"
    for n, limit in p.dup_n_grams.items():
        if ref_dup_ngram_chars(words, n) / size > limit:
            return f"dup_{n}_gram_frac"
    return None


CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")
SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(\s|$)")
POLICY = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


def ref_c4(text: str, p: C4Quality.Params) -> str | None:
    sentences = 0
    lorem = curly = False
    for raw in text.splitlines():
        line = raw.strip()
        words = line.split()
        if any(len(w) > p.max_word_length for w in words):
            continue
        line = CITATION.sub("", line)
        if not line.endswith((".", "?", "!", '"', "'")) or line.endswith("..."):
            continue
        if len(words) < p.min_words_per_line:
            continue
        low = line.lower()
        lorem |= "lorem ipsum" in low
        if "javascript" in low:
            continue
        curly |= "{" in line
        if any(s in low for s in POLICY):
            continue
        sentences += max(1, len(SENTENCE_END.findall(line)))
    if lorem:
        return "lorem_ipsum"
    if curly:
        return "curly_bracket"
    if sentences < p.min_num_sentences:
        return "sentences"
    return None


def ref_fineweb(text: str, p: FineWebQuality.Params) -> str | None:
    lines = text.split("\n")
    ratio = sum(line.endswith((".", "'", '"', "!", "?")) for line in lines) / len(lines)
    if ratio <= p.line_punct_thr and not (ratio == 0 and p.line_punct_exclude_zero):
        return "line_punct_ratio"
    if sum(len(line) <= p.short_line_length for line in lines) / len(lines) >= p.short_line_thr:
        return "short_line_ratio"
    chars = _dups([line for line in lines if line.strip()])[1]
    if chars / (len(text.replace("\n", "")) or 1) >= p.char_duplicates_ratio:
        return "char_dup_ratio"
    if text.count("\n") / (len(text.split()) or 1) > p.new_line_ratio:
        return "list_ratio"
    return None


REFERENCES: dict[type, Callable[[str, object], str | None]] = {
    GopherQuality: ref_gopher_quality,
    GopherRepetition: ref_gopher_repetition,
    C4Quality: ref_c4,
    FineWebQuality: ref_fineweb,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shard", nargs="?", help="a Parquet file with a text column")
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=2048)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.shard is None:
            args.shard = str(min(text_corpus(None, args.docs, Path(tmp)).glob("shard_*.parquet")))
        table = pq.read_table(args.shard, columns=["text"]).slice(0, args.docs)
    texts = table.column("text").to_pylist()
    batches = [table.slice(i, args.batch) for i in range(0, table.num_rows, args.batch)]
    n_docs, n_chars = table.num_rows, sum(map(len, texts))
    print(f"{n_docs} docs, {n_chars / 1e6:.1f} M chars, batches of {args.batch}: {args.shard}")
    print(
        f"{'filter':<18} {'vectorised d/s':>15} {'reference d/s':>14} {'speed-up':>9} "
        f"{'dropped':>8} {'rule agree':>11}"
    )
    for cls, reference in REFERENCES.items():
        step = cls()
        step.setup()
        step.score(batches[0])  # warm caches (the symbol table) outside the timing
        start = time.perf_counter()
        rules = pa.concat_arrays([step.score(b)["rule"] for b in batches]).to_pylist()
        fast = time.perf_counter() - start
        start = time.perf_counter()
        ref_rules = [reference(text, step.params) for text in texts]
        slow = time.perf_counter() - start
        agree = sum(a == b for a, b in zip(rules, ref_rules, strict=True)) / n_docs
        dropped = sum(r is not None for r in rules)
        print(
            f"{cls.__name__:<18} {n_docs / fast:>15,.0f} {n_docs / slow:>14,.0f} "
            f"{slow / fast:>8.1f}x {dropped:>8} {agree:>10.2%}"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
