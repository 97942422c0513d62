"""The compiled kernels give exactly what the Arrow / numpy code they replace gives."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate_filters import _textstats as ts
from curate_filters.dedup import normalize as norm
from curate_filters.dedup.signatures import (
    chunked_signatures,
    compiled_signatures,
    permutations,
    string_buffers,
)

# Letters, spaces, the separators the two regex classes disagree on (\v and U+0085 are replaced
# alone but break runs), punctuation and symbols of all three byte widths, and characters of
# planes 1 and 2 (an emoji, a CJK extension ideograph, a tag).
ALPHABET = list("ab Z9 .,!-\t\n\r") + [
    "\v",
    "\x85",
    "\xa0",
    "é",
    "—",
    "«",
    "€",
    "\u2028",
    "\u3000",
    "中",
    "😀",
    "\U00020000",
    "\U000e0041",
    "𝐀",
]
texts = st.lists(st.text(alphabet=ALPHABET, max_size=40), max_size=12)


def regex_collapse(values: pa.Array, classes: tuple[str, str]) -> pa.Array:
    replaced = pc.replace_substring_regex(values, norm.separator_pattern(classes), " ")
    return pc.utf8_trim(replaced, " ")


@pytest.mark.parametrize("classes", [norm._SPACE_PUNCT_CLASSES, norm._SPACE_CLASSES])
@settings(max_examples=300, deadline=None)
@given(values=texts)
def test_collapse_separators_equals_the_regex_it_replaces(classes, values):
    arr = pa.array(values, pa.string())
    assert (
        norm.collapse_separators(arr, classes).to_pylist()
        == regex_collapse(arr, classes).to_pylist()
    )


def test_collapse_separators_on_slices_and_edges():
    arr = pa.array(["  x", "a .. b", "", "!!!", "a\v\vb", "q \x85 r", "end  "])
    classes = norm._SPACE_PUNCT_CLASSES
    for piece in (arr, arr.slice(1), arr.slice(2, 3), arr.slice(7)):
        assert norm.collapse_separators(piece, classes).equals(regex_collapse(piece, classes))
    got = norm.collapse_separators(arr, classes).to_pylist()
    # \v and U+0085 become a space each, next to the spaces around them: as RE2 does
    assert got == ["x", "a b", "", "", "a  b", "q   r", "end"]


def test_separator_table_is_filled_per_plane_on_demand():
    classes = ("[\\s]", "[\\p{So}]")  # a class pair no other test uses: a fresh table
    norm.collapse_separators(pa.array(["plain text"]), classes)
    _, filled = norm._tables[classes]
    assert filled.tolist() == [True] + [False] * 16
    assert norm.collapse_separators(pa.array(["a😀b"]), classes).to_pylist() == ["a b"]
    assert filled[1] and not filled[2:].any()


def both_signatures(values: list[str], ngram: int, num_perm: int = 16):
    text = norm.normalize(pa.array(values, pa.string()), norm.NormParams())
    data, offsets = string_buffers(text)
    perms = permutations(num_perm, 7)
    fast = compiled_signatures(data, offsets, ngram, perms)
    slow = chunked_signatures(data, offsets, ngram, "word", "poly64", "affine32", perms)
    return fast, slow


@settings(max_examples=300, deadline=None)
@given(values=texts, ngram=st.integers(1, 7))
def test_compiled_signatures_equal_the_numpy_path(values, ngram):
    # Normalised, as the step gives it: \v and U+0085 can still leave two spaces (an empty word).
    (sig, counts), (ref_sig, ref_counts) = both_signatures(values, ngram)
    assert np.array_equal(counts, ref_counts)
    assert np.array_equal(sig, ref_sig)


def test_compiled_signatures_counts_short_and_empty_documents():
    values = ["a b c d", "a b", "", "one", "x y z w v u"]
    (sig, counts), (ref_sig, _) = both_signatures(values, 3)
    assert counts.tolist() == [2, 1, 0, 1, 4]
    assert np.array_equal(sig, ref_sig)
    assert (sig[2] == np.iinfo(np.uint32).max).all()  # no shingles: an empty MinHash


def test_compiled_signatures_match_on_real_text_in_one_long_document():
    words = [f"w{i % 97}" for i in range(30_000)]  # longer than one numpy slice (256 KB)
    values = [" ".join(words), "tail text here"]
    (sig, counts), (ref_sig, ref_counts) = both_signatures(values, 5, num_perm=112)
    assert counts[0] == 30_000 - 4 and np.array_equal(counts, ref_counts)
    assert np.array_equal(sig, ref_sig)


def test_ngram_out_of_the_compiled_range_is_refused():
    data, offsets = string_buffers(pa.array(["a b"]))
    with pytest.raises(ValueError, match="ngram"):
        compiled_signatures(data, offsets, 65, permutations(4, 1))


# Every whitespace of str.isspace() (ASCII, \x1c-\x1f, no-break and wide spaces), next to
# letters of every UTF-8 width.
SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
WORDY = st.lists(
    st.text(alphabet=st.sampled_from(SPACES + list("aab.é日😀") + ["\x00"]), max_size=16),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(docs=WORDY)
def test_text_vocabulary_codes_words_as_arrow_codes_the_split(docs):
    text = pa.array(docs, pa.string())
    got = ts.text_vocabulary(text)
    want = ts.vocabulary(ts.split_words(text))
    assert got.codes.tolist() == want.codes.tolist()
    assert got.distinct.to_pylist() == want.distinct.to_pylist()
    assert got.words.counts.tolist() == [len(d.split()) for d in docs]
    assert got.words.parent.tolist() == want.words.parent.tolist()
    assert got.words.values.to_pylist() == [w for d in docs for w in d.split()]


def test_text_vocabulary_of_a_slice_and_of_blank_documents():
    text = pa.array(["x", "  ", "", "b a b", " a\u3000a "]).slice(1)
    vocab = ts.text_vocabulary(text)
    assert vocab.words.counts.tolist() == [0, 0, 3, 2]
    assert vocab.distinct.to_pylist() == ["b", "a"]  # in order of first occurrence
    assert vocab.codes.tolist() == [0, 1, 0, 1, 1]
