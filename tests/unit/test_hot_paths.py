"""The vectorised hot paths of the heuristic and pii steps give what the Arrow/regex code they
replace gives, on random Unicode text (whitespace of every kind, digits of other scripts)."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from curate.io import ROW_ID
from curate_filters import _textstats as ts
from curate_filters.heuristics import FineWebQuality, GopherQuality, GopherRepetition
from curate_filters.pii import _CANDIDATE, PII

SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
# every kind of whitespace, letters of several widths, the counted marks, lookalikes of spaces
ALPHABET = (
    SPACES
    + list("ab#.…é日😀\u2019\u201c\u00c2\u2030\u205e\u3001\u1681\u200b\u0100")
    + ["\U00010000"]
)
texts = st.lists(st.text(alphabet=st.sampled_from(ALPHABET), max_size=14), min_size=1, max_size=6)


def _array(docs: list[str], cut: int) -> pa.StringArray:
    arr = pa.array(docs, pa.string())
    return arr.slice(min(cut, len(docs) - 1))  # sliced arrays have an offset into the buffers


@given(texts, st.integers(0, 3))
def test_word_counts_and_lengths_match_arrow_and_python(docs, cut):
    arr = _array(docs, cut)
    expected = [len(d.split()) for d in arr.to_pylist()]
    assert ts.count_words(arr).tolist() == expected
    assert ts.count_words_arrow(arr).tolist() == expected
    assert ts.lengths(arr).tolist() == pc.utf8_length(arr).to_pylist()
    words = ts.split_words(arr)
    assert ts.lengths(words.values).tolist() == [len(w) for w in words.values.to_pylist()]


@given(st.lists(st.text(alphabet=st.sampled_from(list("ab\n\r ")), max_size=10), min_size=1))
def test_newline_runs_match_the_regex_split(docs):
    arr = pa.array(docs, pa.string())
    runs, regex = ts.newline_runs(ts.split(arr, "\n")), ts.split(arr, r"\n+", regex=True)
    assert runs.values.to_pylist() == regex.values.to_pylist()
    assert runs.parent.tolist() == regex.parent.tolist()
    assert runs.counts.tolist() == regex.counts.tolist()


@given(texts, st.integers(0, 3))
def test_mark_counts_and_letters_match_the_arrow_kernels(docs, cut):
    arr = _array(docs, cut)
    assert ts.count_byte(arr, ord("#")).tolist() == pc.count_substring(arr, "#").to_pylist()
    assert ts.count_runs(arr, ord("."), 3).tolist() == pc.count_substring(arr, "...").to_pylist()
    assert ts.count_char(arr, "…").tolist() == pc.count_substring(arr, "…").to_pylist()
    expected = pc.match_substring_regex(arr, r"\p{L}").to_pylist()
    assert ts.has_letter(arr).tolist() == expected


ENDS = list("ab{.?!\"'") + ["\u017f", "\u0130"]


@given(st.lists(st.text(alphabet=st.sampled_from(ENDS), max_size=16), min_size=1))
def test_c4_line_checks_match_the_regexes(lines):
    arr = pa.array(lines, pa.string())
    expected = pc.match_substring_regex(arr, r"[.?!\"']$").to_pylist()
    assert ts.last_byte_in(arr, b".?!\"'").tolist() == expected
    assert (ts.count_byte(arr, ord("{")) > 0).tolist() == pc.match_substring(arr, "{").to_pylist()


@given(st.lists(st.integers(0, 50), max_size=300))
def test_stable_order_is_a_stable_argsort(keys):
    keys = np.array(keys, np.int64)
    order, sorted_keys = ts.stable_order(keys)
    assert order.tolist() == np.argsort(keys, kind="stable").tolist()
    assert sorted_keys.tolist() == np.sort(keys).tolist()


def _batch(docs: list[str], rows: list[int]) -> pa.Table:
    return pa.table({"text": pa.array(docs), ROW_ID: pa.array(rows, pa.int64())})


def _scores(step, batch: pa.Table) -> dict:
    return {k: v.to_pylist() for k, v in step.score(batch).items()}


def test_a_later_step_on_a_subset_of_the_rows_reuses_the_split_and_scores_the_same():
    docs = ["the cat sat . the cat sat", "a\u00a0b  c\n\nd e", "", "x y z\n• item\n...", "one"]
    rows = [10, 11, 12, 13, 14]
    GopherRepetition().score(_batch(docs, rows))  # splits, and remembers
    keep = [0, 1, 3]
    sub = _batch([docs[i] for i in keep], [rows[i] for i in keep])
    fresh = _batch([docs[i] for i in keep], [0, 1, 2])  # other row ids: no reuse possible
    for step in (GopherQuality(), FineWebQuality(), GopherRepetition()):
        assert _scores(step, sub) == _scores(step, fresh)
    # the reused pieces are exactly a fresh split's
    text = ts.as_text(sub.column("text"))
    words = ts.shared_words(text, ts.row_ids(sub))
    assert words.values.to_pylist() == ts.split_words(text).values.to_pylist()
    assert words.parent.tolist() == ts.split_words(text).parent.tolist()


def test_rewritten_text_on_the_same_rows_is_split_again():
    rows = [0, 1]
    GopherQuality().score(_batch(["a b c", "d e"], rows))
    changed = _batch(["a b c d e f", "d e"], rows)  # a mapper rewrote row 0
    assert _scores(GopherQuality(), changed) == _scores(
        GopherQuality(), _batch(["a b c d e f", "d e"], [5, 6])
    )


PII_TEXTS = [
    # candidates for one kind (email) holding another (a phone with no-break spaces)
    "mail me at bob@example.com or call 555\u00a0123\u00a04567 today",
    "call +1 (555) 123-4567, fax 001-555-123-4568",
    "IBAN DE89 3704 0044 0532 0130 00 and card 4111 1111 1111 1111",
    "server 8.8.8.8 and 2001:db8::1, version 4.8.3.1",
    "digits of other scripts: ٥٥٥١٢٣٤٥٦٧ and ５５５-１２３-４５６７ at a@b.co",
    "nothing here but words: a: b: c",
]


def _every_finder(step: PII, texts: list[str]) -> list[str]:
    """What the step redacted before the gates: every finder on every candidate row."""
    out = []
    for text in texts:
        row = pa.array([text])
        candidate = any(pc.match_substring_regex(row, p)[0].as_py() for p in _CANDIDATE.values())
        out.append(step.redact(text)[0] if candidate else text)
    return out


def test_pii_gates_redact_exactly_what_running_every_finder_redacts():
    step = PII(PII.Params())
    result = step.map(pa.table({"text": PII_TEXTS}))
    assert result.text.to_pylist() == _every_finder(step, PII_TEXTS)
    assert result.text.to_pylist() != PII_TEXTS  # the examples do hold PII


PII_CHARS = list("0123456789٥５ -.()+@a:xDE\u00a0\u2009")


@given(st.lists(st.text(alphabet=st.sampled_from(PII_CHARS), max_size=30), min_size=1))
def test_pii_gates_never_skip_a_finder_that_would_find_something(docs):
    step = PII(PII.Params())
    result = step.map(pa.table({"text": pa.array(docs, pa.string())}))
    assert result.text.to_pylist() == _every_finder(step, docs)
