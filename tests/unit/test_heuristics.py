"""Specification of the heuristic filters: which text each rule drops, and what it measures."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from curate_filters import _textstats as ts
from curate_filters.heuristics import C4Quality, FineWebQuality, GopherQuality, GopherRepetition

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
ALL = [GopherQuality, GopherRepetition, C4Quality, FineWebQuality]

CLEAN = (
    "The river rises in the northern hills and flows south for about three hundred kilometres "
    "before it reaches the sea. Early settlers built mills along its banks, and several of "
    "those buildings still stand today.\n"
    "In the nineteenth century the valley became a centre of the wool trade. Canals linked the "
    "towns with the coast, which made it cheaper to move cloth and coal. The railway that "
    "followed in 1848 replaced most of that traffic within two decades.\n"
    "Today the river is known for its wildlife. Otters have returned to the upper reaches, and "
    "a long footpath follows the water from the source to the estuary."
)


def scores(step, *texts: str) -> dict[str, list]:
    out = step.score(pa.table({"text": pa.array(texts, type=pa.string())}))
    return {name: column.to_pylist() for name, column in out.items()}


def rule(step, text: str) -> str | None:
    return scores(step, text)["rule"][0]


def words(n: int, word: str = "lorem") -> str:
    return " ".join(f"{word}{i}" for i in range(n))


# --- every filter -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL)
def test_a_clean_encyclopedic_page_is_kept_by_every_filter(cls):
    step = cls()
    result = step.score(pa.table({"text": [CLEAN]}))
    assert result["rule"].to_pylist() == [None]
    assert step.keep(result).to_pylist() == [True]


@pytest.mark.parametrize("cls", ALL)
def test_an_empty_batch_gives_typed_empty_columns_like_a_full_one(cls):
    step = cls()
    empty = step.score(pa.table({"text": pa.array([], type=pa.string())}))
    full = step.score(pa.table({"text": [CLEAN]}))
    assert {k: v.type for k, v in empty.items()} == {k: v.type for k, v in full.items()}
    assert all(len(v) == 0 for v in empty.values())
    assert empty["rule"].type == pa.string()
    assert len(step.keep(empty)) == 0


ODD = [
    "",
    " ",
    "\n\n\n",
    "😀🎉 emoji only 👍🏽",
    "中文文本没有空格。这是第二句。",
    "مرحبا بالعالم. هذا نص من اليمين إلى اليسار.",
    "e\u0301 combining\u0301 marks\u0308\u20dd",
    "line\u2028separator\r\nand\rcarriage\x0bvertical tab\x85",
    "{" * 50,
    "x" * 5000,
]


@pytest.mark.parametrize("cls", ALL)
def test_odd_unicode_and_empty_strings_get_one_score_per_row(cls):
    step = cls()
    result = step.score(pa.table({"text": ODD}))
    assert all(len(column) == len(ODD) for column in result.values())
    assert len(step.keep(result)) == len(ODD)


@pytest.mark.parametrize("cls", ALL)
def test_chunked_text_with_a_null_scores_like_empty_text(cls):
    step = cls()
    chunked = pa.table({"text": pa.chunked_array([[CLEAN, None], ["", CLEAN]])})
    result = scores(step, CLEAN, "", "", CLEAN)
    assert {k: v.to_pylist() for k, v in step.score(chunked).items()} == result


@pytest.mark.parametrize("cls", ALL)
def test_keep_reapplies_thresholds_to_stored_scores(cls):
    step = cls()
    table = pa.table({"text": [CLEAN, "tiny page"]})
    result = step.score(table)
    assert step.keep(result).to_pylist() == [r is None for r in result["rule"].to_pylist()]


def test_keep_with_looser_params_keeps_what_the_default_dropped_without_rescoring():
    stored = GopherQuality().score(pa.table({"text": [words(20) + " the and"]}))
    assert stored["rule"].to_pylist() == ["word_count"]
    loose = GopherQuality(GopherQuality.Params(min_doc_words=10))
    assert loose.keep(stored).to_pylist() == [True]


def test_params_reject_unknown_keys_and_bad_ngram_orders():
    with pytest.raises(ValidationError):
        GopherQuality.Params(min_words=3)
    with pytest.raises(ValidationError):
        GopherRepetition.Params(top_n_grams={0: 0.2})


# --- Gopher quality ---------------------------------------------------------------------------


def test_a_20_word_page_is_dropped_by_gopher_quality_with_rule_word_count():
    text = "the cat and the dog sat with a friend of mine to have some tea that day in town ok"
    result = scores(GopherQuality(), text)
    assert result["word_count"] == [20]
    assert result["rule"] == ["word_count"]


def test_punctuation_only_tokens_are_not_words_and_edge_punctuation_is_not_length():
    result = scores(GopherQuality(), "Hello, world! -- ... (ok)")
    assert result["word_count"] == [3]
    assert result["mean_word_length"] == [pytest.approx((5 + 5 + 2) / 3)]


def test_short_words_drop_with_mean_word_length():
    text = "the and to of it is an " * 10
    assert rule(GopherQuality(), text) == "mean_word_length"


def test_hash_tags_drop_with_hash_word_ratio():
    text = CLEAN + " " + " ".join(f"#tag{i}" for i in range(15))  # 15 '#' in 116 words
    assert rule(GopherQuality(), text) == "hash_word_ratio"


def test_a_page_of_bullets_drops_with_bullet_lines_frac():
    text = "\n".join(f"• the item {i} with a longer description" for i in range(12))
    result = scores(GopherQuality(), text)
    assert result["bullet_lines_frac"] == [1.0]
    assert result["rule"] == ["bullet_lines_frac"]


def test_lines_trailing_off_drop_with_ellipsis_lines_frac():
    lines = [f"the story of the town number {i} continues with more words" for i in range(8)]
    text = "\n".join(line + (" …" if i % 2 else ".") for i, line in enumerate(lines))
    result = scores(GopherQuality(), text)
    assert result["ellipsis_lines_frac"] == [0.5]
    assert result["rule"] == ["ellipsis_lines_frac"]


def test_a_table_of_numbers_drops_with_alpha_words_frac():
    text = "the and " + " ".join(f"{i}.{i % 7}" for i in range(1000, 1080))
    assert rule(GopherQuality(), text) == "alpha_words_frac"


def test_a_page_without_stop_words_drops_with_stop_words():
    result = scores(GopherQuality(), words(60, "token"))
    assert result["stop_words"] == [0]
    assert result["rule"] == ["stop_words"]


# --- Gopher repetition ------------------------------------------------------------------------


def test_a_page_of_repeated_lines_is_dropped_with_rule_dup_line_frac():
    text = "\n".join(["Buy cheap watches online today."] * 8 + [CLEAN])
    result = scores(GopherRepetition(), text)
    assert result["dup_line_frac"] == [pytest.approx(7 / 11)]  # CLEAN has 3 lines
    assert result["rule"] == ["dup_line_frac"]


def test_repeated_paragraphs_are_checked_before_lines():
    text = "\n\n".join(["A paragraph that says the same thing."] * 4 + [CLEAN])
    result = scores(GopherRepetition(), text)
    assert result["dup_para_frac"] == [pytest.approx(3 / 5)]
    assert result["rule"] == ["dup_para_frac"]


def test_a_sentence_repeated_inside_one_line_is_caught_by_duplicated_ngrams():
    sentence = "alpha bravo charlie delta echo foxtrot golf hotel india juliet"
    text = f"{sentence} {sentence}"
    result = scores(GopherRepetition(), text)
    # every word of the second copy is covered by a repeated n-gram, for every n <= 10
    expected = sum(len(w) for w in sentence.split()) / len(text)
    for n in range(5, 11):
        assert result[f"dup_{n}_gram_frac"] == [pytest.approx(expected)]


def test_top_ngram_is_the_most_frequent_one_with_spaces_times_its_count():
    text = "aa bb aa bb aa bb cc"
    result = scores(GopherRepetition(), text)
    assert result["top_2_gram_frac"] == [pytest.approx(len("aa bb") * 3 / len(text))]


def test_ngrams_never_span_two_documents():
    result = scores(GopherRepetition(), "one two three four five", "one two three four five")
    assert result["dup_5_gram_frac"] == [0.0, 0.0]


def test_custom_ngram_orders_get_their_own_columns():
    step = GopherRepetition(GopherRepetition.Params(top_n_grams={3: 0.5}, dup_n_grams={12: 0.1}))
    assert {"top_3_gram_frac", "dup_12_gram_frac"} <= set(scores(step, CLEAN))
    assert "top_2_gram_frac" not in scores(step, CLEAN)


# --- C4 ---------------------------------------------------------------------------------------


def test_lorem_ipsum_drops_the_page_with_rule_lorem_ipsum():
    text = CLEAN + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit."
    result = scores(C4Quality(), text)
    assert result["lorem_ipsum"] == [True]
    assert result["rule"] == ["lorem_ipsum"]


def test_a_curly_bracket_in_a_kept_line_drops_the_page():
    text = CLEAN + "\nThe function returns {value} when it is called."
    assert rule(C4Quality(), text) == "curly_bracket"


def test_a_curly_bracket_in_a_line_c4_would_remove_does_not_drop_the_page():
    text = CLEAN + "\nvar x = {a: 1}\nEnable javascript {here} to see this page."
    result = scores(C4Quality(), text)
    assert result["curly_bracket"] == [False]
    assert result["rule"] == [None]


def test_menus_javascript_and_policy_lines_count_as_dropped_lines():
    text = "\n".join(
        [CLEAN, "Home | About | Contact", "Please enable JavaScript to view the comments.",
         "By using this site you agree to our Privacy Policy."]
    )  # fmt: skip
    result = scores(C4Quality(), text)
    assert result["lines"] == [6]
    assert result["kept_lines"] == [3]
    assert result["dropped_line_frac"] == [0.5]
    assert result["rule"] == [None]


def test_too_few_sentences_drops_with_rule_sentences():
    result = scores(C4Quality(), "One sentence here. Two sentences here.\nno terminal mark")
    assert result["sentences"] == [2]
    assert result["rule"] == ["sentences"]


def test_citation_marks_do_not_hide_terminal_punctuation():
    result = scores(C4Quality(), "The city was founded in 1200.[1]")
    assert result["kept_lines"] == [1]


def test_max_dropped_line_frac_is_an_opt_in_page_rule():
    text = CLEAN + "\n" + "\n".join(f"menu item {i}" for i in range(10))
    assert rule(C4Quality(), text) is None
    assert rule(C4Quality(C4Quality.Params(max_dropped_line_frac=0.5)), text) == (
        "dropped_line_frac"
    )


# --- FineWeb ----------------------------------------------------------------------------------


def test_a_navigation_page_drops_with_line_punct_ratio():
    text = "\n".join(["Home", "Products and services overview", "Contact the team", "About us"])
    assert rule(FineWebQuality(), text) == "line_punct_ratio"


def test_many_short_lines_drop_with_short_line_ratio():
    text = "\n".join(f"Short line {i}." for i in range(10)) + "\n" + CLEAN
    assert rule(FineWebQuality(), text) == "short_line_ratio"


def test_a_repeated_line_drops_with_char_dup_ratio():
    repeated = "Subscribe to our newsletter for the latest updates from the valley."
    text = CLEAN + "\n" + repeated + "\n" + repeated
    result = scores(FineWebQuality(), text)
    assert result["char_dup_ratio"] == [pytest.approx(len(repeated) / (len(text) - 4))]
    assert result["rule"] == ["char_dup_ratio"]


def test_a_list_with_one_word_per_line_drops_with_list_ratio():
    text = "Ingredients for the cake are listed below.\n" + "\n".join(
        f"Ingredient number {i} goes in the bowl." if i % 3 == 0 else f"item{i}." for i in range(30)
    )
    result = scores(FineWebQuality(FineWebQuality.Params(short_line_thr=1.1)), text)
    assert result["rule"] == ["list_ratio"]


# --- cross-check against a per-document reference on real pages --------------------------------

SYMBOLS = frozenset(ts.symbol_chars())


def _strip(word: str) -> str:
    i, j = 0, len(word)
    while i < j and word[i] in SYMBOLS:
        i += 1
    while j > i and word[j - 1] in SYMBOLS:
        j -= 1
    return word[i:j]


def _dups(pieces: list[str]) -> tuple[int, int]:
    seen: set[str] = set()
    count = chars = 0
    for piece in pieces:
        if piece in seen:
            count, chars = count + 1, chars + len(piece)
        seen.add(piece)
    return count, chars


def reference(text: str) -> dict[str, float]:
    """The measured values, computed one document at a time from the rule definitions."""
    tokens = text.split()
    stripped = [w for w in map(_strip, tokens) if w]
    lines = text.splitlines()
    grams2 = [" ".join(tokens[i : i + 2]) for i in range(len(tokens) - 1)]
    top2, count2 = Counter(grams2).most_common(1)[0] if grams2 else ("", 0)
    seen, covered = set(), [False] * len(tokens)
    for i in range(len(tokens) - 4):
        gram = tuple(tokens[i : i + 5])
        if gram in seen:
            covered[i : i + 5] = [True] * 5
        seen.add(gram)
    fw_lines = text.split("\n")
    return {
        "word_count": len(stripped),
        "mean_word_length": sum(map(len, stripped)) / max(len(stripped), 1),
        "bullet_lines_frac": sum(s.lstrip().startswith(("•", "-")) for s in lines)
        / max(len(lines), 1),
        "dup_line_frac": _dups(re.split(r"\n+", text))[0] / len(re.split(r"\n+", text)),
        "dup_para_char_frac": _dups(re.split(r"\n{2,}", text.strip()))[1] / len(text),
        "top_2_gram_frac": len(top2) * count2 / len(text),
        "dup_5_gram_frac": sum(len(w) for w, c in zip(tokens, covered, strict=True) if c)
        / len(text),
        "line_punct_ratio": sum(s.endswith((".", "'", '"', "!", "?")) for s in fw_lines)
        / len(fw_lines),
        "char_dup_ratio": _dups([s for s in fw_lines if s.strip()])[1]
        / len(text.replace("\n", "")),
        "list_ratio": text.count("\n") / max(len(tokens), 1),
    }


@pytest.fixture(scope="module")
def real_pages() -> list[str]:
    path = DATA / "web_crawl" / "web_pages_html_benchmarks.parquet"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    texts = pq.read_table(path, columns=["text"]).column("text").to_pylist()
    return [t for t in texts if t and t.strip()][:50]


def test_measured_values_match_a_per_document_reference_on_real_pages(real_pages):
    table = pa.table({"text": real_pages})
    measured = {}
    for cls in ALL:
        measured.update({k: v.to_pylist() for k, v in cls().score(table).items() if k != "rule"})
    for i, text in enumerate(real_pages):
        for name, expected in reference(text).items():
            assert measured[name][i] == pytest.approx(expected), (name, i)


@pytest.mark.parametrize("cls", ALL)
def test_a_megabyte_page_of_one_repeated_word_scores_without_blowing_up(cls):
    result = scores(cls(), "spam " * 200_000, CLEAN)
    assert result["rule"][1] is None
    assert result["rule"][0] is not None
