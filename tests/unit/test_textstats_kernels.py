"""The byte-level kernels of the heuristic steps give exactly what the Arrow/regex code they
replace gives, on random Unicode text (whitespace of every kind, marks, letters of several
widths), so the steps' scores stay bit-identical."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from curate_filters import _textstats as ts

SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
ALPHABET = SPACES + list("ab#.…é日😀-•\u2019\u00c2\u2030\u1681\u200b") + ["\U00010000", "\x00"]
texts = st.lists(st.text(alphabet=st.sampled_from(ALPHABET), max_size=14), min_size=1, max_size=6)


def _same_pieces(a: ts.Pieces, b: ts.Pieces) -> None:
    assert a.values.type == b.values.type
    assert a.values.to_pylist() == b.values.to_pylist()
    assert a.parent.tolist() == b.parent.tolist()
    assert a.counts.tolist() == b.counts.tolist()


@given(st.lists(st.text(alphabet=st.sampled_from(list("ab\n \t\u00a0")), max_size=12), min_size=1))
def test_paragraphs_are_the_regex_split_on_two_or_more_newlines(docs):
    trimmed = pc.utf8_trim_whitespace(pa.array(docs, pa.string()))
    _same_pieces(ts.split_paragraphs(trimmed), ts.split(trimmed, r"\n{2,}", regex=True))


BREAKS = list("ab\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029\u2027\u00c2\u0085 ") + ["\u202a"]


@given(st.lists(st.text(alphabet=st.sampled_from(BREAKS), max_size=10), min_size=1))
def test_the_newline_only_check_and_the_shared_splitlines_match_str_splitlines(docs):
    arr = pa.array(docs, pa.string())
    assert ts.only_newline_breaks(arr) == all(
        not any(c in d for c in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029") for d in docs
    )
    lines, real = ts.shared_lines(arr, None)
    expected = [line for d in docs for line in d.splitlines()]
    assert [v for v, r in zip(lines.values.to_pylist(), real, strict=True) if r] == expected


@given(st.lists(st.integers(0, 50), max_size=300), st.lists(st.integers(0, 3), max_size=300))
def test_groups_within_documents_match_grouping_the_pair(keys, docs):
    n = min(len(keys), len(docs))
    keys, docs = np.array(keys[:n], np.int64), np.sort(np.array(docs[:n], np.int64))
    groups = ts.Groups.of(keys, within=docs)
    folded = ts.Groups.of(docs * 64 + keys)
    # the same partition, the same first members
    assert sorted(groups.first.tolist()) == sorted(folded.first.tolist())
    assert (groups.first[groups.ids] == folded.first[folded.ids]).all()
    assert sorted(groups.count.tolist()) == sorted(folded.count.tolist())


SENTENCE_CHARS = list(".!?\"')] a\t\n\x0b\x0c\r\u201d\u2019\u201c\u2018\u2029\u00e2\u20ac")


@given(
    st.lists(st.text(alphabet=st.sampled_from(SENTENCE_CHARS), max_size=12), min_size=1),
    st.integers(0, 3),
)
def test_sentence_ends_are_counted_as_the_regex_counts_them(lines, cut):
    arr = pa.array(lines, pa.string())
    arr = arr.slice(min(cut, len(lines) - 1))
    expected = pc.count_substring_regex(arr, ts.SENTENCE_END_REGEX).to_pylist()
    assert ts.count_sentence_ends(arr).tolist() == expected


@given(texts, st.integers(0, 3))
def test_words_split_as_python_whichever_splitter_the_text_allows(docs, cut):
    arr = pa.array(docs, pa.string()).slice(min(cut, len(docs) - 1))
    for case in (arr, pa.array([_ascii_spaced(d) for d in arr.to_pylist()], pa.string())):
        words = ts.split_words(case)
        assert words.values.to_pylist() == [w for d in case.to_pylist() for w in d.split()]
        assert words.counts.tolist() == [len(d.split()) for d in case.to_pylist()]
        expected = all(c in " \t\n\x0b\x0c\r" for d in case.to_pylist() for c in d if c.isspace())
        assert ts.only_ascii_spaces(case) == expected


def _ascii_spaced(doc: str) -> str:
    """The document with every non-ASCII (and \\x1c-\\x1f) whitespace made a plain space."""
    return "".join(" " if c.isspace() and c not in " \t\n\x0b\x0c\r" else c for c in doc)


def _ngram_reference(text: str, n: int) -> tuple[int, int]:
    """Characters of the top n-gram times its count, and of the words covered by repeats."""
    tokens = text.split()
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    counts: dict[tuple[str, ...], int] = {}
    for gram in grams:
        counts[gram] = counts.get(gram, 0) + 1
    top = max(counts.items(), key=lambda kv: kv[1]) if counts else ((), 0)  # first of the ties
    seen, covered = set(), [False] * len(tokens)
    for i, gram in enumerate(grams):
        if gram in seen:
            covered[i : i + n] = [True] * n
        seen.add(gram)
    top_chars = len(" ".join(top[0])) * top[1]
    return top_chars, sum(len(w) for w, c in zip(tokens, covered, strict=True) if c)


WORDS = st.lists(st.sampled_from(["a", "bb", "a", "é", " ", "\n", "\n\n"]), max_size=40)


@given(st.lists(WORDS.map("".join), min_size=1, max_size=5))
def test_repetition_ngram_scores_match_a_per_document_reference(docs):
    from curate_filters.heuristics import GopherRepetition

    orders = {n: 1.0 for n in range(1, 11)}
    step = GopherRepetition(GopherRepetition.Params(top_n_grams=orders, dup_n_grams=orders))
    scores = step.score(pa.table({"text": pa.array(docs, pa.string())}))
    for i, text in enumerate(docs):
        for n in range(1, 11):
            top, dup = _ngram_reference(text, n)
            length = len(text)
            assert scores[f"top_{n}_gram_frac"][i].as_py() == (top / length if length else 0.0)
            assert scores[f"dup_{n}_gram_frac"][i].as_py() == (dup / length if length else 0.0)


@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=60),
    st.lists(st.integers(0, 3), min_size=1, max_size=7),
)
def test_vocabulary_document_sums_match_bincount(words, per_distinct_scale):
    docs = [" ".join(f"w{c}" for c in words[i::3]) for i in range(3)]
    vocab = ts.vocabulary(ts.split_words(pa.array(docs, pa.string())))
    k = len(vocab.distinct)
    quantities = [np.arange(k) % (s + 2) for s in per_distinct_scale]
    quantities.append(np.full(k, 1 << 40))  # too wide to pack: summed on its own
    for got, q in zip(vocab.doc_sums(*quantities), quantities, strict=True):
        expected = np.bincount(vocab.words.parent, weights=q[vocab.codes], minlength=3)
        assert got.tolist() == expected.astype(np.int64).tolist()
