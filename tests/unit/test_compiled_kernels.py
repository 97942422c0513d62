"""The compiled kernels give exactly what the Arrow / numpy code they replace gives."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_kernels_refuse_arrays_that_do_not_fit_instead_of_reading_past_them():
    from curate_filters import _kernels

    data = np.frombuffer(b"a b c", np.uint8)
    table = np.zeros(0x110000, np.uint8)
    out, out_offsets = np.empty(5, np.uint8), np.empty(2, np.int32)
    with pytest.raises(ValueError, match="offsets"):
        _kernels.collapse_separators(data, np.array([0, 9]), table, out, out_offsets)
    with pytest.raises(ValueError, match="table"):
        _kernels.collapse_separators(data, np.array([0, 5]), table[:10], out, out_offsets)
    perms = permutations(4, 1)
    a, b = (np.ascontiguousarray(p, np.uint32) for p in perms)
    sig, counts = np.empty((1, 4), np.uint32), np.empty(1, np.int64)
    powers = np.ones(3, np.uint64)  # shorter than the 5-byte document
    with pytest.raises(ValueError, match="powers"):
        _kernels.word_minhash(data, np.array([0, 5]), 2, a, b, powers, powers, sig, counts)
    with pytest.raises(ValueError, match="documents or permutations"):
        _kernels.word_minhash(data, np.array([0, 5]), 2, a, b[:2], powers, powers, sig, counts)
