"""CCNet-style normalisation: what each rule does to text, and that it is one stable function."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from curate_filters._ccnet_normalize import normalize, normalize_text, normalized_lines


def test_lowercases_and_maps_every_digit_to_zero():
    assert normalize_text("In 1984 The PARTY had ٣ ministries") == (
        "in 0000 the party had 0 ministries"
    )


def test_folds_unicode_punctuation_to_ascii():
    text = (
        "\u201cQuoted\u201d \u2014 it\u2019s \u00abfine\u00bb\u2026 1\u20132 \uff08ok\uff09\uff01"
    )
    assert normalize_text(text) == '"quoted" - it\'s "fine"... 0-0 (ok)!'


def test_strips_accents_unless_asked_to_keep_them():
    assert normalize_text("Café Müller, Ærø, naïve") == "cafe muller, ærø, naive"
    assert normalize_text("Café Müller", strip_accents=False) == "café müller"


def test_collapses_all_whitespace_and_control_characters_to_one_space():
    text = "  a\tb\u00a0\u00a0c\x01d\u2028e \u200bf\u00adg  "
    assert normalize_text(text) == "a b c d e fg"


def test_null_and_empty_become_empty_strings():
    assert normalize(pa.array([None, "", "   "], pa.string())).to_pylist() == ["", "", ""]


def test_ascii_and_non_ascii_rows_are_normalised_in_place():
    # The costly Unicode steps run on a subset of rows; results must land back in order.
    out = normalize(pa.chunked_array([["A1", "É2"], ["plain", "“q”", "B"]])).to_pylist()
    assert out == ["a0", "e0", "plain", '"q"', "b"]


def test_lines_are_split_normalised_and_empty_ones_dropped():
    lines, doc = normalized_lines(pa.array(["One\n\n  Two 2\r\n", None, "", "x\u2028y\nZ"]))
    assert lines.to_pylist() == ["one", "two 0", "x y", "z"]
    assert doc.tolist() == [0, 0, 3, 3]


def test_empty_batch():
    lines, doc = normalized_lines(pa.array([], pa.string()))
    assert len(lines) == 0 and len(doc) == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=8), st.booleans())
def test_normalisation_is_idempotent(texts, strip_accents):
    once = normalize(pa.array(texts, pa.string()), strip_accents)
    assert normalize(once, strip_accents).to_pylist() == once.to_pylist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=8))
def test_output_is_single_spaced_and_its_only_digit_is_zero(texts):
    for line in normalize(pa.array(texts, pa.string())).to_pylist():
        assert line == " ".join(line.split())
        assert all(c == "0" for c in line if c.isdecimal())
