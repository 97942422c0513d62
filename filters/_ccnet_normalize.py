"""CCNet-style text normalisation for n-gram LMs, vectorised with pyarrow (training and scoring)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Unicode punctuation folded to ASCII, in the spirit of CCNet's text_normalizer: the n-gram model
# then sees one spelling of each quote, dash and full-width sign, whatever the page used.
PUNCT_TO_ASCII: dict[str, str] = {
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u201a": "'",  # ‚
    "\u00b4": "'",  # ´
    "\u02bc": "'",  # ʼ
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    "\u300c": '"',  # 「
    "\u300d": '"',  # 」
    "\u300a": '"',  # 《
    "\u300b": '"',  # 》
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # – en dash
    "\u2014": " - ",  # — em dash separates words
    "\u2015": " - ",  # horizontal bar
    "\u2501": "-",  # ━
    "\u25ba": "-",  # ►
    "\u2026": "...",  # …
    "\uff0c": ",",  # ，
    "\u3001": ",",  # 、
    "\u3002": ".",  # 。
    "\uff0e": ". ",  # ．
    "\uff1a": ":",  # ：
    "\u2236": ":",  # ∶
    "\uff1b": ";",  # ；
    "\uff1f": "?",  # ？
    "\uff01": "!",  # ！
    "\uff08": "(",  # （
    "\uff09": ")",  # ）
    "\u3008": "<",  # 〈
    "\u3009": ">",  # 〉
    "\u3010": "[",  # 【
    "\u3011": "]",  # 】
    "\uff05": "%",  # ％
    "\uff5e": "~",  # ～
}

_PUNCT_CLASS = "[" + "".join(PUNCT_TO_ASCII) + "]"
# RE2 (Arrow's regex engine): \s is ASCII-only, so Unicode separators (\p{Z}: no-break space,
# line separator ...) and C0/C1 control characters are named explicitly. CCNet deletes control
# characters; we turn them into spaces so that "a\tb" stays two words.
_SPACE_RUN = r"[\s\p{Z}\x{0}-\x{1f}\x{7f}-\x{9f}]+"
# Lines that need _SPACE_RUN: a double space, or any whitespace/control character but " ".
_NEEDS_SPACING = (
    r"  |[\x{0}-\x{1f}\x{7f}-\x{9f}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}]"
)


def _where(values: pa.Array, mask: pa.BooleanArray, fn) -> pa.Array:
    """Apply `fn` only to the rows where `mask` is true.

    Arrow's regex replacement costs per match, and most lines need no Unicode work, no digit
    rewrite and no whitespace repair: finding those rows first is several times faster.
    """
    if not pc.any(mask).as_py():
        return values
    changed = fn(values.filter(mask))
    return pc.replace_with_mask(values, mask, changed.cast(values.type))


def _fold_non_ascii(values: pa.Array, strip_accents: bool) -> pa.Array:
    """Case, accents, format characters, Unicode punctuation and digits of non-ASCII rows."""
    values = pc.utf8_lower(values)
    if strip_accents:
        # NFD splits "é" into "e" + a combining mark (category Mn), which is then deleted.
        values = pc.utf8_normalize(values, form="NFD")
        values = pc.replace_substring_regex(values, r"\p{Mn}+", "")
    # Zero-width spaces, soft hyphens, direction marks (category Cf) carry no word.
    values = pc.replace_substring_regex(values, r"\p{Cf}+", "")
    # \p{Nd}: every script's decimal digits, as Python's re \d (RE2's \d is ASCII only).
    values = pc.replace_substring_regex(values, r"\p{Nd}", "0")
    has_punct = pc.match_substring_regex(values, _PUNCT_CLASS)

    def fold(subset: pa.Array) -> pa.Array:
        for char, ascii_ in PUNCT_TO_ASCII.items():
            subset = pc.replace_substring(subset, char, ascii_)
        return subset

    return _where(values, has_punct, fold)


def normalize(texts: pa.Array | pa.ChunkedArray, strip_accents: bool = True) -> pa.Array:
    """Normalise each string: lowercase, digits -> 0, punctuation to ASCII, one space between words.

    With `strip_accents`, letters lose their diacritics ("é" -> "e") as CCNet does by default.
    Nulls become "". Newlines count as whitespace here: use `normalized_lines` to keep lines apart.
    """
    values = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    values = pc.fill_null(values.cast(pa.large_string()), "")
    values = pc.ascii_lower(values)
    values = _where(
        values, pc.invert(pc.string_is_ascii(values)), lambda v: _fold_non_ascii(v, strip_accents)
    )
    values = _where(
        values,
        pc.match_substring_regex(values, "[1-9]"),
        lambda v: pc.replace_substring_regex(v, "[1-9]", "0"),
    )
    values = _where(
        values,
        pc.match_substring_regex(values, _NEEDS_SPACING),
        lambda v: pc.replace_substring_regex(v, _SPACE_RUN, " "),
    )
    return pc.utf8_trim(values, " ")


def normalized_lines(
    texts: pa.Array | pa.ChunkedArray, strip_accents: bool = True
) -> tuple[pa.Array, np.ndarray]:
    """Split documents on newlines and normalise each line; lines left empty are dropped.

    Returns the normalised lines and, for each, the index of its document in `texts`. This is the
    one normalisation used both to write `curate train lm` corpora and to score documents.
    """
    values = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    values = pc.fill_null(values.cast(pa.large_string()), "")
    split = pc.split_pattern(values, "\n")
    doc_index = pc.list_parent_indices(split)
    lines = normalize(pc.list_flatten(split), strip_accents=strip_accents)
    nonempty = pc.greater(pc.binary_length(lines), 0)
    return lines.filter(nonempty), doc_index.filter(nonempty).to_numpy(zero_copy_only=False)


def normalize_text(text: str, strip_accents: bool = True) -> str:
    """Normalise one string (convenience for tests and interactive use; newlines become spaces)."""
    return normalize(pa.array([text], pa.large_string()), strip_accents)[0].as_py()
