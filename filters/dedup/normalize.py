"""Text normalisation before dedup hashing, as Arrow compute kernels over a whole batch."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.filter import Params

# RE2's \s is ASCII-only, so the Unicode separators are listed. Matching only runs and non-space
# separators (not every single space) makes the pass about 3x faster on prose.
_SEPARATORS = (
    r"\t\n\v\f\r\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_WHITESPACE = rf"[\s\p{{Z}}]{{2,}}|[{_SEPARATORS}]"
_WHITESPACE_PUNCT = rf"[\s\p{{Z}}\p{{P}}\p{{S}}]{{2,}}|[{_SEPARATORS}\p{{P}}\p{{S}}]"
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
    pattern = _WHITESPACE_PUNCT if params.strip_punctuation else _WHITESPACE
    text = pc.replace_substring_regex(text, pattern, " ")
    return pc.utf8_trim(text, " ")
