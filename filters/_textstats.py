"""Batch text statistics for the heuristic filters: splits, per-document sums, duplicate counts."""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.io import ROW_ID
from curate_filters import _kernels

# The separators Python's str.splitlines() breaks on, so line rules match the reference filters.
SPLITLINES_REGEX = r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"
# What Python's str.strip() strips (RE2's \s is ASCII-only).
WHITESPACE = r"[\s\p{Z}\x0b\x1c-\x1f\x{85}]"


@functools.cache
def symbol_chars() -> str:
    """Every Unicode punctuation (P*) and symbol (S*) character, for `pc.utf8_trim`."""
    return "".join(
        ch for ch in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(ch)[0] in "PS"
    )


def as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous string array, nulls read as empty strings."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    return pc.fill_null(column, "")


def string_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a (large) string array and each string's offsets into them (n + 1
    int64, the first 0), zero-copy."""
    large = pa.types.is_large_string(strings.type)
    offsets = np.frombuffer(strings.buffers()[1], np.int64 if large else np.int32)
    offsets = offsets[strings.offset : strings.offset + len(strings) + 1].astype(np.int64)
    buffer = strings.buffers()[2]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    base = offsets[0] if len(offsets) else 0
    return data[base : offsets[-1] if len(offsets) else 0], offsets - base


def lengths(strings: pa.Array) -> np.ndarray:
    """Length in code points of each string, as int64.

    Bytes minus UTF-8 continuation bytes: per byte and vectorised, where `utf8_length` pays a
    per-string cost that dominates on arrays of words.
    """
    if strings.null_count or not len(strings):
        return pc.utf8_length(strings).to_numpy(zero_copy_only=False).astype(np.int64)
    data, offsets = string_buffers(strings)
    n_bytes = np.diff(offsets)
    continuation = np.flatnonzero((data & 0xC0) == 0x80)
    if len(continuation) == 0:
        return n_bytes
    owner = np.searchsorted(offsets, continuation, side="right") - 1
    return n_bytes - np.bincount(owner, minlength=len(strings))


def _owner(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The string each byte position lies in."""
    return np.searchsorted(offsets, positions, side="right") - 1


def count_byte(strings: pa.Array, byte: int) -> np.ndarray:
    """Occurrences of one ASCII byte in each string, like `pc.count_substring(s, chr(byte))`."""
    data, offsets = string_buffers(strings)
    found = np.flatnonzero(data == byte)
    return np.bincount(_owner(offsets, found), minlength=len(strings))


def last_byte_in(strings: pa.Array, chars: bytes) -> np.ndarray:
    """True where a string ends in one of the ASCII `chars`, like the regex `[chars]$`."""
    data, offsets = string_buffers(strings)
    out = np.zeros(len(strings), bool)
    nonempty = np.flatnonzero(offsets[1:] > offsets[:-1])
    out[nonempty] = np.isin(data[offsets[nonempty + 1] - 1], np.frombuffer(chars, np.uint8))
    return out


def count_char(strings: pa.Array, char: str) -> np.ndarray:
    """Occurrences of one character in each string, like `pc.count_substring(s, char)`.

    UTF-8 is self-synchronising: a character's byte sequence only matches at that character.
    """
    code = np.frombuffer(char.encode(), np.uint8)
    if len(code) == 1:
        return count_byte(strings, int(code[0]))
    data, offsets = string_buffers(strings)
    at = np.flatnonzero(data[: len(data) - len(code) + 1] == code[0])
    for k in range(1, len(code)):
        at = at[data[at + k] == code[k]]
    return np.bincount(_owner(offsets, at), minlength=len(strings))


def count_runs(strings: pa.Array, byte: int, length: int) -> np.ndarray:
    """Non-overlapping occurrences of `length` copies of one ASCII byte in each string, like
    `pc.count_substring(s, chr(byte) * length)`: each maximal run of k copies holds k // length."""
    data, offsets = string_buffers(strings)
    at = np.flatnonzero(data == byte)
    owner = _owner(offsets, at)
    starts = np.ones(len(at), bool)
    starts[1:] = (at[1:] != at[:-1] + 1) | (owner[1:] != owner[:-1])
    run_len = np.diff(np.append(np.flatnonzero(starts), len(at)))
    return np.bincount(owner[starts], weights=run_len // length, minlength=len(strings)).astype(
        np.int64
    )


# A sentence end: terminal marks, closing quotes/brackets, then a space or the end of the line.
SENTENCE_END_REGEX = r"[.!?]+[\"'”’)\]]*(\s|$)"
_CLOSERS = np.array([ord('"'), ord("'"), ord(")"), ord("]")], np.uint8)


def count_sentence_ends(strings: pa.Array) -> np.ndarray:
    """Matches of `[.!?]+["'”’)\\]]*(\\s|$)` in each string, like `count_substring_regex`.

    The marks, the closers and RE2's `\\s` ([\\t\\n\\f\\r ]) are disjoint, so a match is a
    maximal run of marks whose closers (all of them) are followed by a space or the end of the
    string: found from the runs' ends, without the regex engine's per-match cost.
    """
    if strings.null_count or not len(strings):
        found = pc.count_substring_regex(strings, SENTENCE_END_REGEX)
        return np.asarray(pc.fill_null(found, 0).to_numpy(zero_copy_only=False), np.int64)
    data, offsets = string_buffers(strings)
    at = np.flatnonzero((data == 46) | (data == 33) | (data == 63))  # . ! ?
    owner = _owner(offsets, at)
    last = np.ones(len(at), bool)  # the last mark of its run
    last[:-1] = (at[1:] != at[:-1] + 1) | (owner[1:] != owner[:-1])
    pos, owner = at[last] + 1, owner[last]
    stop = offsets[owner + 1]
    # step over the closers: " ' ) ] (one byte) and ” ’ (E2 80 9D, E2 80 99)
    todo = np.arange(len(pos))
    while len(todo):
        todo = todo[pos[todo] < stop[todo]]
        p = pos[todo]
        step = np.isin(data[p], _CLOSERS).astype(np.int64)
        wide = np.flatnonzero((step == 0) & (data[p] == 0xE2) & (p + 3 <= stop[todo]))
        if len(wide):
            q = p[wide]
            quote = (data[q + 1] == 0x80) & ((data[q + 2] == 0x9D) | (data[q + 2] == 0x99))
            step[wide[quote]] = 3
        pos[todo] += step
        todo = todo[step > 0]
    ends = pos >= stop
    inside = np.flatnonzero(~ends)
    after = data[pos[inside]]
    ends[inside] = (after == 32) | (after == 9) | (after == 10) | (after == 12) | (after == 13)
    return np.bincount(owner[ends], minlength=len(strings)).astype(np.int64)


def has_letter(strings: pa.Array) -> np.ndarray:
    """True for each string holding a Unicode letter, like `match_substring_regex(s, "\\p{L}")`.

    ASCII letters are found per byte; only strings with a non-ASCII byte go to the regex.
    """
    n = len(strings)
    if strings.null_count or not n:
        return np.asarray(pc.fill_null(pc.match_substring_regex(strings, r"\p{L}"), False), bool)
    data, offsets = string_buffers(strings)
    lower = data | np.uint8(0x20)
    lower -= np.uint8(ord("a"))
    out = np.zeros(n, bool)
    nonempty = np.flatnonzero(offsets[1:] > offsets[:-1])
    if not len(nonempty):
        return out
    starts = offsets[nonempty]
    out[nonempty] = np.logical_or.reduceat(lower < 26, starts)
    wide = np.zeros(n, bool)
    wide[nonempty] = np.logical_or.reduceat(data >= 0x80, starts)
    wide &= ~out
    if wide.any():
        rows = np.flatnonzero(wide)
        found = pc.match_substring_regex(strings.take(pa.array(rows)), r"\p{L}")
        out[rows] = np.asarray(found, bool)
    return out


class Pieces:
    """The pieces (lines, words, ...) of a batch of documents, flattened.

    `parent[i]` is the document of piece `i`; pieces of a document are contiguous and in order.
    """

    def __init__(self, values: pa.Array | None, parent: np.ndarray, counts: np.ndarray) -> None:
        self._values = values
        self.parent = parent
        self.counts = counts
        # pieces filtered from others keep (source, mask) and filter their values when asked:
        # a step that reads only codes or lengths never copies the strings
        self._pending: tuple[Pieces, np.ndarray] | None = None
        # `lengths(values)` and `value_codes(values)`, kept once computed: steps sharing these
        # pieces (and pieces filtered from them) reuse them
        self._lengths: np.ndarray | None = None
        self._codes: tuple[np.ndarray, int] | None = None

    @property
    def values(self) -> pa.Array:
        if self._values is None and self._pending is not None:
            source, mask = self._pending
            self._values = source.values.filter(pa.array(mask))
            self._pending = None
        return self._values

    def lengths(self) -> np.ndarray:
        """`lengths(self.values)`, computed once (read-only)."""
        if self._lengths is None:
            self._lengths = lengths(self.values)
            self._lengths.setflags(write=False)
        return self._lengths

    def codes(self) -> tuple[np.ndarray, int]:
        """`value_codes(self.values)`, computed once (read-only codes)."""
        if self._codes is None:
            codes, n_codes = value_codes(self.values)
            codes.setflags(write=False)
            self._codes = codes, n_codes
        return self._codes

    def filter(
        self, mask: np.ndarray, counts: np.ndarray | None = None, parent: np.ndarray | None = None
    ) -> Pieces:
        """The pieces where `mask` is True (their documents' `counts` and `parent` when known),
        with what was computed of these ones; the values are filtered when first read."""
        if parent is None:
            parent = self.parent[mask]
        if counts is None:
            counts = np.bincount(parent, minlength=self.n_docs).astype(np.int64)
        out = Pieces(None, parent, counts)
        out._pending = self, mask
        if self._lengths is not None:
            out._lengths = self._lengths[mask]
        if self._codes is not None:
            out._codes = self._codes[0][mask], self._codes[1]
        return out

    @classmethod
    def from_lists(cls, lists: pa.Array) -> Pieces:
        counts = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
        return cls(
            values=pc.list_flatten(lists),
            parent=pc.list_parent_indices(lists).to_numpy(zero_copy_only=False),
            counts=counts,
        )

    @property
    def n_docs(self) -> int:
        return len(self.counts)

    def last_index(self) -> np.ndarray:
        """Index of each document's last piece (-1 for a document with none)."""
        return np.cumsum(self.counts) - 1

    def sum(self, weights: np.ndarray) -> np.ndarray:
        """Per-document sum of a per-piece quantity."""
        return per_doc_sum(self.parent, weights, self.n_docs)

    def take_docs(self, pos: np.ndarray) -> tuple[Pieces, np.ndarray]:
        """The pieces of documents `pos` (increasing), and which of this one's pieces they are."""
        index = np.full(self.n_docs, -1, np.int64)
        index[pos] = np.arange(len(pos))
        parent = index[self.parent]
        selected = parent >= 0
        return self.filter(selected, self.counts[pos], parent[selected]), selected


def split(text: pa.Array, pattern: str, regex: bool = False) -> Pieces:
    """Split every document on a literal (or RE2) pattern, like `str.split` / `re.split`."""
    fn = pc.split_pattern_regex if regex else pc.split_pattern
    return Pieces.from_lists(fn(text, pattern))


def split_paragraphs(trimmed: pa.Array) -> Pieces:
    """`split(trimmed, r"\\n{2,}", regex=True)` for text without edge newlines (stripped).

    A literal split on "\\n\\n" takes a run of k newlines as k // 2 separators with k // 2 - 1
    empty pieces between them, and an odd run leaves one "\\n" at the start of the next piece:
    dropping those empty pieces (a document's only piece stays) and that "\\n" gives the regex
    split, about three times faster than RE2.
    """
    pieces = split(trimmed, "\n\n")
    data, offsets = string_buffers(pieces.values)
    starts, ends = offsets[:-1], offsets[1:]
    empty = starts == ends
    lone = pieces.counts[pieces.parent] == 1
    drop = empty & ~lone
    leading = np.zeros(len(starts), bool)
    nonempty = np.flatnonzero(~empty)
    leading[nonempty] = data[starts[nonempty]] == 0x0A
    if not drop.any() and not leading.any():
        return pieces
    if drop.any():
        pieces = pieces.filter(~drop)
        leading = leading[~drop]
    if leading.any():
        trimmed_values = pc.if_else(
            pa.array(leading), pc.utf8_ltrim(pieces.values, "\n"), pieces.values
        )
        pieces = Pieces(trimmed_values, pieces.parent, pieces.counts)
    return pieces


# Python's str.isspace() characters (Arrow's utf8 whitespace) beyond ASCII, by UTF-8 lead byte.
_WIDE_SPACES = np.array(
    [0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
)


def space_mask(data: np.ndarray) -> np.ndarray:
    """True on every byte of a whitespace character (Python's `str.isspace()`) in UTF-8 bytes."""
    # whole-array compares: a flatnonzero of the ~1 in 6 bytes that are ASCII spaces costs more
    space = data == 32
    space |= (data - np.uint8(9)) < 5  # \t \n \v \f \r
    space |= (data - np.uint8(28)) < 4  # \x1c-\x1f
    at = _wide_space_at(data)
    if len(at):
        space[at] = True
        space[at + 1] = True
        three = at[data[at] != 0xC2]
        space[three + 2] = True
    return space


def _word_bounds(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bytes of the text, its whitespace mask, where words start (mask) and each document's
    offsets: a word is a maximal run of non-whitespace bytes inside one document."""
    data, offsets = string_buffers(text)
    space = space_mask(data)
    start = ~space
    start[1:] &= space[:-1]
    doc_start = offsets[:-1][offsets[:-1] < len(data)]
    start[doc_start] = ~space[doc_start]
    return data, space, start, offsets


def _per_doc_count(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per document, the True bytes of `mask` in its byte range."""
    return np.diff(np.searchsorted(np.flatnonzero(mask), offsets)).astype(np.int64)


def only_ascii_spaces(text: pa.Array) -> bool:
    """True when every whitespace character (`str.isspace()`) of the text is one of ASCII's
    " \\t\\n\\v\\f\\r" (no \\x1c-\\x1f, no-break or other Unicode spaces)."""
    data, _ = string_buffers(text)
    control = data[np.flatnonzero(data < 32)]  # rare: the newlines, tabs
    if bool(((control - np.uint8(28)) < 4).any()):
        return False
    return len(_wide_space_at(data)) == 0


def _wide_space_at(data: np.ndarray) -> np.ndarray:
    """Positions of the first byte of every non-ASCII whitespace character in UTF-8 bytes."""
    # the wide spaces start with 0xC2 or 0xE1-0xE3
    lead = np.flatnonzero((data - np.uint8(0xC2)) <= 0xE3 - 0xC2)
    lead = lead[(data[lead] == 0xC2) | (data[lead] >= 0xE1)]
    if not len(lead):
        return lead
    b0 = data[lead].astype(np.int64)
    b1 = data[np.minimum(lead + 1, len(data) - 1)].astype(np.int64)
    b2 = data[np.minimum(lead + 2, len(data) - 1)].astype(np.int64)
    two = b0 == 0xC2
    code = np.where(
        two, (b0 & 0x1F) << 6 | (b1 & 0x3F), (b0 & 0xF) << 12 | (b1 & 0x3F) << 6 | (b2 & 0x3F)
    )
    return lead[np.isin(code, _WIDE_SPACES)]


def split_words(text: pa.Array) -> Pieces:
    """Whitespace tokens of every document, like `str.split()`.

    Arrow's ASCII splitter (a third faster) where the only whitespace in the text is ASCII's
    " \\t\\n\\v\\f\\r": it splits there exactly as the Unicode one does.
    """
    ascii_only = not text.null_count and only_ascii_spaces(text)
    trim = pc.ascii_trim_whitespace if ascii_only else pc.utf8_trim_whitespace
    splitter = pc.ascii_split_whitespace if ascii_only else pc.utf8_split_whitespace
    # Arrow yields empty tokens at the edges of a string ("", "  " or " a "): trim first.
    trimmed = trim(text)
    pieces = Pieces.from_lists(splitter(trimmed))
    blank = lengths(trimmed) == 0
    if blank.any():
        real = ~blank[pieces.parent]
        pieces = Pieces(pieces.values.filter(pa.array(real)), pieces.parent[real], pieces.counts)
        pieces.counts[blank] = 0
    return pieces


def count_words(text: pa.Array) -> np.ndarray:
    """Number of whitespace tokens in each string, like `len(s.split())`."""
    if text.null_count or len(text) == 0:
        return count_words_arrow(text)
    _, _, start, offsets = _word_bounds(text)
    return _per_doc_count(start, offsets)


def count_words_arrow(text: pa.Array) -> np.ndarray:
    """`count_words` with Arrow's splitter."""
    trimmed = pc.utf8_trim_whitespace(text)
    counts = pc.list_value_length(pc.utf8_split_whitespace(trimmed))
    return np.where(lengths(trimmed) == 0, 0, counts.to_numpy(zero_copy_only=False))


# ------------------------------------------------------------------ splits shared by the steps
#
# Consecutive steps of a pipeline see the same documents, less the rows the steps between them
# dropped: the runner filters the batch after each step. One split per batch is remembered per
# kind (words, lines) with the batch's row ids; a later call whose rows are a subset of those rows
# with the same text (checked: a mapper in between may have rewritten it) takes the documents'
# pieces from it instead of splitting again. The check is a take and a compare of the text,
# about a twentieth of a split.

_shared: dict[str, tuple[np.ndarray | None, pa.Array, Any]] = {}


def row_ids(batch: pa.Table) -> np.ndarray | None:
    """The runner's row ids of a batch (increasing), or None outside the runner."""
    if ROW_ID not in batch.column_names:
        return None
    rows = batch.column(ROW_ID).to_numpy()
    return rows if len(rows) < 2 or bool((rows[1:] > rows[:-1]).all()) else None


def _reuse(kind: str, text: pa.Array, rows: np.ndarray | None) -> tuple[Any, Any] | None:
    """The remembered split of `kind` and the positions of this batch's rows in it (None for
    the same rows), when the text is the same; else None."""
    entry = _shared.get(kind)
    if entry is None:
        return None
    old_rows, old_text, value = entry
    if old_text is text:
        return value, None
    if rows is None or old_rows is None or len(rows) > len(old_rows):
        return None
    same, pos = _same_documents(old_rows, old_text, rows, text)
    return (value, pos) if same else None


# The last few answers of `_same_documents`: a step asks for several kinds (words, lines, ...)
# remembered from the same earlier text, and the check need not take and compare it each time.
_checked: list[tuple[pa.Array, pa.Array, np.ndarray, tuple[bool, np.ndarray | None]]] = []


def _same_documents(
    old_rows: np.ndarray, old_text: pa.Array, rows: np.ndarray, text: pa.Array
) -> tuple[bool, np.ndarray | None]:
    """Whether `rows` are among `old_rows` with the same text, and their positions there
    (None for all of them)."""
    for seen_old, seen_text, seen_rows, answer in _checked:
        if seen_old is old_text and seen_text is text and np.array_equal(seen_rows, rows):
            return answer
    answer = _compare_documents(old_rows, old_text, rows, text)
    _checked.insert(0, (old_text, text, rows, answer))
    del _checked[4:]
    return answer


def _compare_documents(
    old_rows: np.ndarray, old_text: pa.Array, rows: np.ndarray, text: pa.Array
) -> tuple[bool, np.ndarray | None]:
    pos = np.searchsorted(old_rows, rows)
    if len(pos) and pos[-1] >= len(old_rows):
        return False, None
    if not np.array_equal(old_rows[pos], rows):
        return False, None
    if len(pos) == len(old_rows):
        return text.equals(old_text), None
    return text.equals(old_text.take(pa.array(pos))), pos


def _remember(kind: str, text: pa.Array, rows: np.ndarray | None, value: Any) -> None:
    _shared[kind] = (rows, text, value)


def _frozen(pieces: Pieces) -> Pieces:
    """Shared pieces are read-only: a step writing into them would corrupt the next step's."""
    pieces.parent.setflags(write=False)
    pieces.counts.setflags(write=False)
    return pieces


def _shared_pieces(kind: str, text: pa.Array, rows: np.ndarray | None, split) -> Pieces:
    hit = _reuse(kind, text, rows)
    if hit is not None:
        pieces, pos = hit
        return pieces if pos is None else _frozen(pieces.take_docs(pos)[0])
    pieces = _frozen(split(text))
    _remember(kind, text, rows, pieces)
    return pieces


def shared_words(text: pa.Array, rows: np.ndarray | None) -> Pieces:
    """`split_words(text)`, reusing a previous step's split of these documents (see above)."""
    return _shared_pieces("words", text, rows, split_words)


@dataclass
class Vocabulary:
    """The words of a batch as codes into their distinct values (equal words, equal codes).

    A quantity that depends on the word alone (its length, its letters, whether it is a stop
    word) is computed once per distinct word and gathered by code: a batch of a million words
    holds under a tenth as many distinct ones.
    """

    words: Pieces
    codes: np.ndarray
    distinct: pa.Array

    def per_word(self, per_distinct: np.ndarray) -> np.ndarray:
        """A per-distinct-word quantity, for every word."""
        return per_distinct[self.codes]

    def doc_sums(self, *per_distinct: np.ndarray) -> list[np.ndarray]:
        """Per document, the sum over its words of each per-distinct-word integer quantity.

        Sums of non-negative quantities whose per-document totals fit in 21 bits are packed
        three to an int64, so one gather and one running sum serve three of them; the
        running sum may wrap, its differences at the document bounds are exact.
        """
        words = self.words
        bounds = np.zeros(words.n_docs + 1, np.int64)
        np.cumsum(words.counts, out=bounds[1:])
        todo = [np.asarray(q, np.int64) for q in per_distinct]
        fits = [
            len(q) == 0 or (int(q.min()) >= 0 and _doc_total_bound(q, words) < 1 << 21)
            for q in todo
        ]
        packable = [i for i, ok in enumerate(fits) if ok]
        results: dict[int, np.ndarray] = {}
        for group in (packable[k : k + 3] for k in range(0, len(packable), 3)):
            packed = np.zeros(len(self.distinct), np.int64)
            for slot, i in enumerate(group):
                packed |= todo[i] << (21 * slot)
            sums = _doc_sums(packed[self.codes], bounds)
            for slot, i in enumerate(group):
                results[i] = (sums >> (21 * slot)) & ((1 << 21) - 1)
        for i, ok in enumerate(fits):
            if not ok:
                results[i] = _doc_sums(todo[i][self.codes], bounds)
        return [results[i] for i in range(len(todo))]


def _doc_total_bound(per_distinct: np.ndarray, words: Pieces) -> int:
    """An upper bound of a per-document sum: the largest value times the most words."""
    most = int(words.counts.max()) if len(words.counts) else 0
    return int(per_distinct.max()) * most if len(per_distinct) else 0


def _doc_sums(per_word: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sum of a per-word int64 quantity per document, from its running sum at `bounds`."""
    running = np.zeros(len(per_word) + 1, np.int64)
    np.cumsum(per_word, out=running[1:])
    return running[bounds[1:]] - running[bounds[:-1]]


def vocabulary(words: Pieces) -> Vocabulary:
    """The words' codes and distinct values (Arrow's hash dictionary: exact, no collisions)."""
    return Vocabulary(words, *dictionary_codes(words.values))


def shared_vocabulary(text: pa.Array, rows: np.ndarray | None) -> Vocabulary:
    """`vocabulary(split_words(text))`, reusing a previous step's (see above)."""
    hit = _reuse("vocabulary", text, rows)
    if hit is not None:
        vocab, pos = hit
        if pos is None:
            return vocab
        words, selected = vocab.words.take_docs(pos)
        codes = vocab.codes[selected]
        codes.setflags(write=False)
        return Vocabulary(_frozen(words), codes, vocab.distinct)
    vocab = vocabulary(shared_words(text, rows))
    vocab.codes.setflags(write=False)
    _remember("vocabulary", text, rows, vocab)
    return vocab


def shared_text_lengths(text: pa.Array, rows: np.ndarray | None) -> np.ndarray:
    """`lengths(text)`, reusing a previous step's (see above)."""
    hit = _reuse("text_lengths", text, rows)
    if hit is not None:
        found, pos = hit
        return found if pos is None else found[pos]
    found = lengths(text)
    found.setflags(write=False)
    _remember("text_lengths", text, rows, found)
    return found


def shared_newline_split(text: pa.Array, rows: np.ndarray | None) -> Pieces:
    """`split(text, "\\n")`, reusing a previous step's split of these documents (see above)."""
    return _shared_pieces("newline", text, rows, lambda t: split(t, "\n"))


def newline_runs(lines: Pieces) -> Pieces:
    """From the pieces between single newlines, those between runs of newlines, as
    `split(text, r"\\n+", regex=True)` gives them: the empty pieces are dropped but a
    document's first and last (where the text starts or ends with a newline)."""
    n = len(lines.parent)
    last = np.cumsum(lines.counts) - 1
    edge = np.zeros(n, bool)
    has = lines.counts > 0
    edge[last[has]] = True
    edge[(last - lines.counts + 1)[has]] = True
    keep = edge | (lines.lengths() > 0) if n else edge
    if keep.all():
        return lines
    return lines.filter(keep)


def shared_word_counts(text: pa.Array, rows: np.ndarray | None) -> np.ndarray:
    """`count_words(text)`, from a previous step's split of these documents when there is one."""
    hit = _reuse("words", text, rows)
    if hit is None:
        return count_words(text)
    words, pos = hit
    return np.array(words.counts if pos is None else words.counts[pos])


def shared_lines(text: pa.Array, rows: np.ndarray | None) -> tuple[Pieces, np.ndarray]:
    """`splitlines(text)`, reusing a previous step's split of these documents (see above)."""
    hit = _reuse("lines", text, rows)
    if hit is not None:
        (lines, real), pos = hit
        if pos is None:
            return lines, real
        lines, selected = lines.take_docs(pos)
        real = real[selected]
        real.setflags(write=False)
        return _frozen(lines), real
    if only_newline_breaks(text):
        # the regex split is the split on "\n": take it from a previous step when there is one
        lines, real = splitlines(text, shared_newline_split(text, rows))
    else:
        lines, real = splitlines(text)
    real.setflags(write=False)
    _remember("lines", text, rows, (_frozen(lines), real))
    return lines, real


def only_newline_breaks(text: pa.Array) -> bool:
    """True when "\n" is the only line break of `str.splitlines()` in the text."""
    if text.null_count:
        return False
    data, _ = string_buffers(text)
    # control bytes are rare (the newlines): look at them only
    control = data[np.flatnonzero(data < 32)]
    if bool((((control - np.uint8(11)) < 3) | ((control - np.uint8(28)) < 3)).any()):
        return False  # \v \f \r, \x1c-\x1e
    # U+0085 is C2 85, U+2028/U+2029 are E2 80 A8/A9
    at = np.flatnonzero(data >= 0x80)
    wide = data[at]
    after = at[(wide == 0x85) & (at >= 1)]
    if bool((data[after - 1] == 0xC2).any()):
        return False
    after = at[((wide - np.uint8(0xA8)) < 2) & (at >= 2)]
    return not bool(((data[after - 2] == 0xE2) & (data[after - 1] == 0x80)).any())


def splitlines(text: pa.Array, pieces: Pieces | None = None) -> tuple[Pieces, np.ndarray]:
    """Lines as `str.splitlines()` gives them, and a mask of the real ones; `pieces` is the
    text's regex split when the caller has it.

    A regex split leaves one empty piece after a final line break (and one for an empty
    document) that `splitlines()` does not produce; the mask is False on that piece.
    """
    if pieces is None:
        pieces = split(text, SPLITLINES_REGEX, regex=True)
    real = np.ones(len(pieces.values), dtype=bool)
    last = pieces.last_index()[pieces.counts > 0]
    real[last] = lengths(pieces.values.take(pa.array(last))) != 0
    return pieces, real


def per_doc_sum(parent: np.ndarray, weights: np.ndarray, n_docs: int) -> np.ndarray:
    """Sum `weights` per document (bincount over the piece->document index)."""
    if weights.dtype == bool:
        return np.bincount(parent[weights], minlength=n_docs)[:n_docs]
    return np.bincount(parent, weights=weights, minlength=n_docs)[:n_docs]


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float64, 0.0 where den is 0 (reference filters divide by zero there)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def stable_order(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.argsort(keys, kind="stable")` and the sorted keys, for non-negative int64 keys.

    When key and position fit in 63 bits together, one value sort of `key << bits | position`
    gives the same order (the position breaks ties, so it is stable) several times faster than
    a stable argsort, as numpy's value sort is vectorised and its stable argsort is not.
    """
    n = len(keys)
    if n == 0:
        return np.zeros(0, np.int64), keys
    bits = max(int(n - 1).bit_length(), 1)
    top = int(keys.max())
    if int(keys.min()) < 0 or top.bit_length() + bits > 63:
        order = np.argsort(keys, kind="stable")
        return order, keys[order]
    packed = keys.astype(np.int64) << bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    order = packed & ((1 << bits) - 1)
    packed >>= bits
    return order, packed


@dataclass
class Groups:
    """Equal keys grouped: `ids[i]` is the group of key i; per group `count` and `first` (the
    index of its first key). Groups are numbered in key order."""

    ids: np.ndarray
    count: np.ndarray
    first: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray, within: np.ndarray | None = None) -> Groups:
        """Group equal keys; with `within` (a non-decreasing int array, one per key: the
        document), only equal keys with equal `within` share a group, numbered in (key, within)
        order. That saves folding the document into the key where the key is already wide."""
        # A stable sort puts each group's first key first; with `within` non-decreasing along
        # the keys, it also orders each key's documents.
        order, sorted_keys = stable_order(keys)
        n = len(keys)
        head = np.empty(n, dtype=bool)
        head[:1] = True
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=head[1:])
        if within is not None and n:
            sorted_within = within[order]
            head[1:] |= sorted_within[1:] != sorted_within[:-1]
        heads = np.flatnonzero(head)
        count = np.diff(np.append(heads, n))
        ids = np.empty(n, dtype=np.int64)
        ids[order] = np.repeat(np.arange(len(heads), dtype=np.int64), count)
        return cls(ids=ids, count=count, first=order[heads])

    def repeats(self) -> np.ndarray:
        """True for every key equal to an earlier key (all but the first of each group)."""
        out = np.ones(len(self.ids), dtype=bool)
        out[self.first] = False
        return out


def dictionary_codes(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer code of each string (equal strings, equal codes) and the distinct strings."""
    encoded = pc.dictionary_encode(values)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return codes, encoded.dictionary


def value_codes(values: pa.Array) -> tuple[np.ndarray, int]:
    """Integer code of each string (equal strings, equal codes) and the number of codes."""
    codes, distinct = dictionary_codes(values)
    return codes, len(distinct)


def duplicates(pieces: Pieces, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per document: how many pieces repeat an earlier piece, and their total length.

    This is datatrove's `find_duplicates`: the first occurrence is not a duplicate, every later
    one is. Pieces outside `mask` are ignored.
    """
    if mask is not None and not mask.all():
        pieces = pieces.filter(mask, pieces.counts)
    codes, n_codes = pieces.codes()
    repeat = Groups.of(pieces.parent * max(n_codes, 1) + codes).repeats()
    return (
        pieces.sum(repeat.astype(np.float64)).astype(np.int64),
        pieces.sum(np.where(repeat, pieces.lengths(), 0)).astype(np.int64),
    )


def ngram_repetition(
    vocab: Vocabulary, word_len: np.ndarray, top_orders: Sequence[int], dup_orders: Sequence[int]
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per document and word n-gram order: Gopher's top n-gram and duplicate n-gram characters.

    `top[n]`: characters of the most frequent n-gram (its words joined by single spaces) times
    its count, as datatrove's `find_top_duplicate`: ties go to the n-gram seen first, the
    page's first n-gram when none repeats; 0 for documents of fewer than n words.
    `dup[n]`: characters of the words covered by an occurrence of an n-gram after its first;
    a word covered several times counts once, and characters are word lengths (no spaces).

    N-grams are grouped exactly (by the group of their (n-1)-gram and the next word's code,
    only where that (n-1)-gram repeats: the work shrinks fast with n), in one compiled pass
    per document (`_kernels.ngram_repetition`): the numpy grouping it replaces sorted every
    order of the batch and was half of the step's time.
    """
    top_orders, dup_orders = sorted(set(top_orders)), sorted(set(dup_orders))
    if not top_orders and not dup_orders:
        return {}, {}
    words = vocab.words
    highest = max(top_orders + dup_orders)
    top_wanted = np.zeros(highest + 1, np.uint8)
    top_wanted[top_orders] = 1
    dup_wanted = np.zeros(highest + 1, np.uint8)
    dup_wanted[dup_orders] = 1
    doc_offsets = np.zeros(words.n_docs + 1, np.int64)
    np.cumsum(words.counts, out=doc_offsets[1:])
    top = np.empty((highest + 1, words.n_docs), np.int64)
    dup = np.empty((highest + 1, words.n_docs), np.int64)
    _kernels.ngram_repetition(
        np.ascontiguousarray(vocab.codes, np.int64),
        doc_offsets,
        np.ascontiguousarray(word_len, np.int64),
        top_wanted,
        dup_wanted,
        top,
        dup,
    )
    return {n: top[n] for n in top_orders}, {n: dup[n] for n in dup_orders}


def first_failing(rules: Sequence[tuple[str, np.ndarray]], n_rows: int) -> pa.StringArray:
    """Name of the first rule whose fail mask is True in each row, null where none fails."""
    if not rules:
        return pa.nulls(n_rows, type=pa.string())
    fails = np.vstack([np.asarray(mask, dtype=bool) for _, mask in rules]).reshape(
        len(rules), n_rows
    )
    failed = fails.any(axis=0)
    index = pa.array(fails.argmax(axis=0).astype(np.int32), mask=~failed)
    names = pa.array([name for name, _ in rules], type=pa.string())
    return names.take(index)
