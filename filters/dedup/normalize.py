"""Text normalisation before dedup hashing, as Arrow compute kernels over a whole batch."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.filter import Params
from curate_filters import _kernels
from curate_filters.dedup.signatures import string_buffers

# RE2's \s is ASCII-only, so the Unicode separators are listed. Matching only runs and non-space
# separators (not every single space) makes the pass about 3x faster on prose.
_SEPARATORS = (
    r"\t\n\v\f\r\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
# Replaced by one space: a run of two or more of the first class, or one of the second.
_SPACE_CLASSES = (r"[\s\p{Z}]", rf"[{_SEPARATORS}]")
_SPACE_PUNCT_CLASSES = (r"[\s\p{Z}\p{P}\p{S}]", rf"[{_SEPARATORS}\p{{P}}\p{{S}}]")
_DIGIT = r"\p{Nd}"


class NormParams(Params):
    """Normalisation options shared by the dedup steps; whitespace is always collapsed."""

    lowercase: bool = Field(True, description="Lowercase the text before hashing.")
    strip_punctuation: bool = Field(
        True, description="Replace Unicode punctuation and symbols with a space before hashing."
    )
    nfkc: bool = Field(True, description="Apply Unicode NFKC normalisation before hashing.")
    digits_to_zero: bool = Field(
        False, description="Replace every decimal digit with 0, so changed numbers still match."
    )


def normalize(text: pa.Array | pa.ChunkedArray, params: NormParams) -> pa.StringArray:
    """Normalise a string column: one contiguous array, words separated by exactly one space.

    Nulls become "". The result has no leading or trailing space, so a word n-gram is a
    contiguous byte range of the output, equal to `" ".join(words[i:i + n])`.
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks() if text.num_chunks else pa.array([], pa.string())
    if pa.types.is_large_string(text.type):
        text = text.cast(pa.string())
    text = pc.fill_null(text, "")
    if params.nfkc:
        text = pc.utf8_normalize(text, form="NFKC")
    if params.lowercase:
        text = pc.utf8_lower(text)
    if params.digits_to_zero:
        text = pc.replace_substring_regex(text, _DIGIT, "0")
    return collapse_separators(
        text, _SPACE_PUNCT_CLASSES if params.strip_punctuation else _SPACE_CLASSES
    )


def separator_pattern(classes: tuple[str, str]) -> str:
    """The RE2 pattern `collapse_separators` applies: `[run]{2,}|[alone]`."""
    run, alone = classes
    return f"{run}{{2,}}|{alone}"


def collapse_separators(text: pa.StringArray, classes: tuple[str, str]) -> pa.StringArray:
    """`utf8_trim(replace_substring_regex(text, separator_pattern(classes), " "), " ")`, in one
    compiled pass over the bytes with RE2's own classification of each code point: the regex
    pass was a third of MinHash's time."""
    if len(text) == 0:
        return text
    data, offsets = string_buffers(text)
    out = np.empty(max(len(data), 1), np.uint8)
    out_offsets = np.empty(len(offsets), np.int32)
    table = _separator_table(classes, data)
    _kernels.collapse_separators(data, offsets, table, out, out_offsets)
    return pa.StringArray.from_buffers(
        len(text), pa.py_buffer(out_offsets), pa.py_buffer(out[: out_offsets[-1]])
    )


_PLANE = 0x10000
_tables: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def _separator_table(classes: tuple[str, str], data: np.ndarray) -> np.ndarray:
    """Per code point: bit 1 if RE2 puts it in the run class, bit 2 if in the alone class.

    Filled one Unicode plane (65,536 code points, ~10 ms) at a time, when text first holds a
    character of that plane: classifying all 17 at once took 0.2 s of each worker's start.
    """
    table, filled = _tables.setdefault(
        classes, (np.zeros(17 * _PLANE, np.uint8), np.zeros(17, bool))
    )
    wanted = [0]
    lead = np.flatnonzero(data >= 0xF0)  # a 4-byte character: planes 1 to 16
    if len(lead):
        lead = lead[lead + 1 < len(data)]
        planes = ((data[lead] & 0x07).astype(np.int64) << 2) | (data[lead + 1] >> 4 & 0x03)
        wanted += np.unique(planes).tolist()
    for plane in wanted:
        if not filled[plane]:
            chars = _plane_characters(plane)
            for bit, cls in zip((1, 2), classes, strict=True):
                hits = pc.match_substring_regex(chars, f"^{cls}$")
                table[plane * _PLANE : (plane + 1) * _PLANE] |= np.where(
                    hits.to_numpy(zero_copy_only=False), bit, 0
                ).astype(np.uint8)
            filled[plane] = True
    return table


def _plane_characters(plane: int) -> pa.StringArray:
    """Every code point of one plane as a one-character string; surrogates (never in UTF-8
    text) as U+FFFD, so the array stays valid."""
    cp = np.arange(plane * _PLANE, (plane + 1) * _PLANE, dtype=np.uint32)
    cp[(cp >= 0xD800) & (cp <= 0xDFFF)] = 0xFFFD
    width = 1 + (cp >= 0x80) + (cp >= 0x800) + (cp >= 0x10000)
    offsets = np.zeros(len(cp) + 1, np.int32)
    np.cumsum(width, out=offsets[1:])
    data = np.zeros(int(offsets[-1]), np.uint8)
    at = offsets[:-1]
    lead_bits = np.array([0, 0, 0xC0, 0xE0, 0xF0], np.uint32)[width]
    data[at] = (lead_bits | (cp >> (6 * (width - 1)))).astype(np.uint8)
    for k in (1, 2, 3):  # continuation bytes, most significant first
        has = width > k
        shift = 6 * (width[has] - 1 - k)
        data[at[has] + k] = (0x80 | ((cp[has] >> shift) & 0x3F)).astype(np.uint8)
    return pa.StringArray.from_buffers(len(cp), pa.py_buffer(offsets), pa.py_buffer(data))
