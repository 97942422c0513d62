"""Gopher, C4 and FineWeb heuristic quality filters, computed over whole Arrow batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from curate.filter import Filter, Params
from curate_filters import _textstats as ts
from curate_filters._alloc import keep_freed_memory

Rule = tuple[str, np.ndarray]

GOPHER_STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]


def _np(scores: dict[str, pa.Array], name: str) -> np.ndarray:
    return np.asarray(scores[name].to_numpy(zero_copy_only=False))


def _above(values: np.ndarray, limit: float | None) -> np.ndarray:
    return values > limit if limit is not None else np.zeros(len(values), dtype=bool)


def _below(values: np.ndarray, limit: float | None) -> np.ndarray:
    return values < limit if limit is not None else np.zeros(len(values), dtype=bool)


class _RuleFilter(Filter):
    """A filter whose `keep` re-applies its rules to the measured values.

    Subclasses measure in `_measure` and list `(rule, fails)` in `_rules`, in the order the
    reference filter checks them; `score` adds the `rule` column naming the first failure.
    """

    def setup(self) -> None:
        """Let the worker keep freed memory for the next batch's arrays (see `_alloc`)."""
        keep_freed_memory()

    def _measure(self, text: pa.Array, rows: np.ndarray | None) -> dict[str, pa.Array]:
        """Measured values per document; `rows` are the runner's row ids (see ts.shared_words)."""
        raise NotImplementedError

    def _rules(self, scores: dict[str, pa.Array]) -> list[Rule]:
        raise NotImplementedError

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        """Measured values of every rule, plus `rule`: the first rule that fails (null if none)."""
        scores = self._measure(ts.as_text(self.text(batch)), ts.row_ids(batch))
        scores["rule"] = ts.first_failing(self._rules(scores), batch.num_rows)
        return scores

    def threshold_lines(self) -> dict[str, list[tuple[str, float]]]:
        """Per measured column, the (min|max, value) limits its rule applies: the report draws
        them on the histograms."""
        lines: dict[str, list[tuple[str, float]]] = {}
        for metric, limits in self._limits().items():
            found = [(d, float(v)) for d, v in limits if v is not None]
            if found:
                lines[metric] = found
        return lines

    def _limits(self) -> dict[str, list[tuple[str, float | None]]]:
        return {}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        """True where no rule fails on the stored measurements (thresholds from params)."""
        n_rows = len(next(iter(scores.values()))) if scores else 0
        return pc.is_null(ts.first_failing(self._rules(scores), n_rows))


def _f64(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.float64), type=pa.float64())


def _i64(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), type=pa.int64())


class GopherQuality(_RuleFilter):
    """Gopher's quality rules (Rae et al. 2021, table A1), as in datatrove's GopherQualityFilter.

    Words are whitespace tokens, not nltk/spaCy tokens: a word counts (for `word_count` and
    `mean_word_length`) when it has a character that is not Unicode punctuation or symbol, and
    its length excludes leading and trailing punctuation, which approximates a tokenizer that
    splits punctuation off. The symbol and alphabetic ratios divide by all whitespace tokens,
    and stop words are tokens stripped of edge punctuation, compared case-sensitively.
    Rules, in order: word_count (min, max), mean_word_length (min, max), hash_word_ratio,
    ellipsis_word_ratio, bullet_lines_frac, ellipsis_lines_frac, alpha_words_frac, stop_words.
    """

    class Params(Params):
        min_doc_words: int | None = Field(50, ge=0, description="Drop pages with fewer words.")
        max_doc_words: int | None = Field(100_000, ge=0, description="Drop pages with more words.")
        min_avg_word_length: float | None = Field(
            3, ge=0, description="Drop pages whose mean word length (characters) is below this."
        )
        max_avg_word_length: float | None = Field(
            10, ge=0, description="Drop pages whose mean word length (characters) is above this."
        )
        max_symbol_word_ratio: float | None = Field(
            0.1, ge=0, description="Drop pages with more '#' (or '...'/'…') per word than this."
        )
        max_bullet_lines_ratio: float | None = Field(
            0.9, ge=0, description="Drop pages where more lines than this start with '•' or '-'."
        )
        max_ellipsis_lines_ratio: float | None = Field(
            0.3, ge=0, description="Drop pages where more lines than this end with '...' or '…'."
        )
        max_non_alpha_words_ratio: float | None = Field(
            0.8,
            ge=0,
            description="Drop pages where fewer words than this contain an alphabetic character"
            " (datatrove's name: it is the minimum fraction of words with a letter).",
        )
        min_stop_words: int | None = Field(
            2, ge=0, description="Drop pages with fewer occurrences of the stop words."
        )
        stop_words: list[str] = Field(
            default_factory=lambda: list(GOPHER_STOP_WORDS),
            description="Stop words counted by min_stop_words (case-sensitive).",
        )

    def setup(self) -> None:
        """Build the Unicode punctuation/symbol table once per worker (about 0.2 s)."""
        super().setup()
        ts.symbol_chars()

    def _measure(self, text: pa.Array, rows: np.ndarray | None) -> dict[str, pa.Array]:
        vocab = ts.shared_vocabulary(text, rows)
        words, distinct = vocab.words, vocab.distinct
        n_tokens = words.counts
        # per distinct word, then gathered: the word's edge-stripped length, letters, stop-ness
        stripped = pc.utf8_trim(distinct, characters=ts.symbol_chars())
        stripped_len = ts.lengths(stripped)
        stop_words = pa.array(self.params.stop_words, type=pa.string())
        stop = _bool(pc.is_in(stripped, value_set=stop_words))
        word_count, has_alpha, n_stop, len_sum = vocab.doc_sums(
            stripped_len > 0, ts.has_letter(distinct), stop, stripped_len
        )

        lines, real = ts.shared_lines(text, rows)
        bullet = pc.match_substring_regex(lines.values, rf"^{ts.WHITESPACE}*[•-]")
        ellipsis_end = pc.match_substring_regex(lines.values, rf"(\.\.\.|…){ts.WHITESPACE}*$")
        n_lines = lines.sum(real)

        n_hash = ts.count_byte(text, ord("#"))
        n_ellipsis = ts.count_runs(text, ord("."), 3) + ts.count_char(text, "…")
        return {
            "word_count": _i64(word_count),
            "mean_word_length": _f64(ts.ratio(len_sum, word_count)),
            "hash_word_ratio": _f64(ts.ratio(n_hash, n_tokens)),
            "ellipsis_word_ratio": _f64(ts.ratio(n_ellipsis, n_tokens)),
            "bullet_lines_frac": _f64(ts.ratio(lines.sum(_bool(bullet) & real), n_lines)),
            "ellipsis_lines_frac": _f64(ts.ratio(lines.sum(_bool(ellipsis_end) & real), n_lines)),
            "alpha_words_frac": _f64(ts.ratio(has_alpha, n_tokens)),
            "stop_words": _i64(n_stop),
        }

    def _limits(self) -> dict[str, list[tuple[str, float | None]]]:
        p = self.params
        return {
            "word_count": [("min", p.min_doc_words), ("max", p.max_doc_words)],
            "mean_word_length": [("min", p.min_avg_word_length), ("max", p.max_avg_word_length)],
            "hash_word_ratio": [("max", p.max_symbol_word_ratio)],
            "ellipsis_word_ratio": [("max", p.max_symbol_word_ratio)],
            "bullet_lines_frac": [("max", p.max_bullet_lines_ratio)],
            "ellipsis_lines_frac": [("max", p.max_ellipsis_lines_ratio)],
            "alpha_words_frac": [("min", p.max_non_alpha_words_ratio)],
            "stop_words": [("min", p.min_stop_words)],
        }

    def _rules(self, scores: dict[str, pa.Array]) -> list[Rule]:
        p = self.params
        words = _np(scores, "word_count")
        mean_len = _np(scores, "mean_word_length")
        return [
            ("word_count", _below(words, p.min_doc_words) | _above(words, p.max_doc_words)),
            (
                "mean_word_length",
                _below(mean_len, p.min_avg_word_length) | _above(mean_len, p.max_avg_word_length),
            ),
            ("hash_word_ratio", _above(_np(scores, "hash_word_ratio"), p.max_symbol_word_ratio)),
            (
                "ellipsis_word_ratio",
                _above(_np(scores, "ellipsis_word_ratio"), p.max_symbol_word_ratio),
            ),
            (
                "bullet_lines_frac",
                _above(_np(scores, "bullet_lines_frac"), p.max_bullet_lines_ratio),
            ),
            (
                "ellipsis_lines_frac",
                _above(_np(scores, "ellipsis_lines_frac"), p.max_ellipsis_lines_ratio),
            ),
            (
                "alpha_words_frac",
                _below(_np(scores, "alpha_words_frac"), p.max_non_alpha_words_ratio),
            ),
            ("stop_words", _below(_np(scores, "stop_words"), p.min_stop_words)),
        ]


def _bool(mask: pa.Array) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


class GopherRepetition(_RuleFilter):
    """Gopher's repetition rules (Rae et al. 2021, table A1), as in datatrove.

    Paragraphs split the stripped page on two or more newlines, lines split on runs of
    newlines; a piece is a duplicate when an equal piece came before it in the page, and the
    char fractions divide the duplicates' characters by the page length. Words are whitespace
    tokens (datatrove uses a language tokenizer). `top_<n>_gram_frac` is the most frequent
    n-gram's characters (words joined by spaces) times its count, ties going to the n-gram
    seen first. `dup_<n>_gram_frac` counts the characters of every word covered by a repeated
    occurrence of an n-gram, each word once; datatrove instead scans greedily and skips n words
    after each repeat, which can count slightly fewer words in overlapping repeats.
    Rules, in order: dup_para_frac, dup_para_char_frac, dup_line_frac, dup_line_char_frac,
    top_<n>_gram_frac for each n ascending, dup_<n>_gram_frac for each n ascending.
    """

    class Params(Params):
        dup_line_frac: float | None = Field(
            0.3, ge=0, description="Drop pages where more lines than this repeat an earlier line."
        )
        dup_para_frac: float | None = Field(
            0.3,
            ge=0,
            description="Drop pages where more paragraphs than this repeat an earlier one.",
        )
        dup_line_char_frac: float | None = Field(
            0.2, ge=0, description="Drop pages where repeated lines hold more of the characters."
        )
        dup_para_char_frac: float | None = Field(
            0.2,
            ge=0,
            description="Drop pages where repeated paragraphs hold more of the characters.",
        )
        top_n_grams: dict[int, float] = Field(
            default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16},
            description="n -> max fraction of characters in the most frequent word n-gram.",
        )
        dup_n_grams: dict[int, float] = Field(
            default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
            description="n -> max fraction of characters in repeated word n-grams.",
        )

        @field_validator("top_n_grams", "dup_n_grams")
        @classmethod
        def _orders_at_least_one(cls, value: dict[int, float]) -> dict[int, float]:
            bad = [n for n in value if n < 1]
            if bad:
                raise ValueError(f"n-gram orders must be >= 1, got {bad}")
            return dict(sorted(value.items()))

    def _measure(self, text: pa.Array, rows: np.ndarray | None) -> dict[str, pa.Array]:
        p = self.params
        text_len = ts.shared_text_lengths(text, rows)
        paras = ts.split_paragraphs(pc.utf8_trim_whitespace(text))  # split on r"\n{2,}"
        para_dups, para_dup_chars = ts.duplicates(paras)
        newline_split = ts.shared_newline_split(text, rows)
        newline_split.codes()  # on the shared pieces: the runs below and FineWeb's lines reuse them
        lines = ts.newline_runs(newline_split)  # split on r"\n+"
        line_dups, line_dup_chars = ts.duplicates(lines)
        scores = {
            "dup_para_frac": _f64(ts.ratio(para_dups, paras.counts)),
            "dup_para_char_frac": _f64(ts.ratio(para_dup_chars, text_len)),
            "dup_line_frac": _f64(ts.ratio(line_dups, lines.counts)),
            "dup_line_char_frac": _f64(ts.ratio(line_dup_chars, text_len)),
        }
        vocab = ts.shared_vocabulary(text, rows)
        word_len = vocab.per_word(ts.lengths(vocab.distinct))
        top, dup = ts.ngram_repetition(vocab, word_len, list(p.top_n_grams), list(p.dup_n_grams))
        for n in p.top_n_grams:
            scores[f"top_{n}_gram_frac"] = _f64(ts.ratio(top[n], text_len))
        for n in p.dup_n_grams:
            scores[f"dup_{n}_gram_frac"] = _f64(ts.ratio(dup[n], text_len))
        return scores

    def _limits(self) -> dict[str, list[tuple[str, float | None]]]:
        p = self.params
        names = ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac")
        limits = {name: [("max", getattr(p, name))] for name in names}
        limits |= {f"top_{n}_gram_frac": [("max", v)] for n, v in p.top_n_grams.items()}
        return limits | {f"dup_{n}_gram_frac": [("max", v)] for n, v in p.dup_n_grams.items()}

    def _rules(self, scores: dict[str, pa.Array]) -> list[Rule]:
        p = self.params
        rules = [
            (name, _above(_np(scores, name), getattr(p, name)))
            for name in (
                "dup_para_frac",
                "dup_para_char_frac",
                "dup_line_frac",
                "dup_line_char_frac",
            )
        ]
        rules += [
            (f"top_{n}_gram_frac", _above(_np(scores, f"top_{n}_gram_frac"), limit))
            for n, limit in p.top_n_grams.items()
        ]
        rules += [
            (f"dup_{n}_gram_frac", _above(_np(scores, f"dup_{n}_gram_frac"), limit))
            for n, limit in p.dup_n_grams.items()
        ]
        return rules


_CITATION_REGEX = r"\[\d*\]|\[edit\]|\[citation needed\]"
_POLICY_SUBSTRINGS = [
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
]
_SENTENCE_END_REGEX = ts.SENTENCE_END_REGEX


class C4Quality(_RuleFilter):
    """C4's page rules (Raffel et al. 2020), as in datatrove's C4QualityFilter, page-level only.

    C4 rewrites a page: it removes lines with a word over `max_word_length` characters, lines
    not ending in terminal punctuation (. ? ! " ', not '...', after removing Wikipedia
    citation marks), lines of fewer than `min_words_per_line` words, lines mentioning
    javascript and lines with a cookie/terms policy phrase; it drops the page if a surviving
    line contains "lorem ipsum" or "{", or if fewer than `min_num_sentences` sentences remain.

    A filter here cannot rewrite text, so this step keeps every page unchanged: it measures
    the lines C4 would remove (`dropped_line_frac`, `kept_lines`) and applies only the page
    rules, in this order: lorem_ipsum, curly_bracket, sentences (counted in the lines C4
    would keep), then optionally dropped_line_frac (`max_dropped_line_frac`, off by default,
    as C4 drops no page for it). Kept pages still contain the lines C4 would have removed.
    Other departures: lines are always split on line breaks (no sentence mode); sentences
    are counted with a punctuation regex, not nltk's punkt (each kept line counts at least
    one); when a page has both lorem ipsum and a curly bracket the rule is lorem_ipsum,
    whichever comes first. The bad-words rule is not part of this step.
    """

    class Params(Params):
        remove_citations: bool = Field(
            True, description="Remove Wikipedia citation marks ([1], [edit]) before the checks."
        )
        filter_no_terminal_punct: bool = Field(
            True, description="Count lines not ending in terminal punctuation as dropped."
        )
        min_num_sentences: int = Field(
            5, ge=0, description="Drop pages with fewer sentences in the kept lines (-1: off)."
        )
        min_words_per_line: int = Field(
            3, ge=0, description="Count lines with fewer words as dropped (-1: off)."
        )
        max_word_length: int = Field(
            1000, ge=0, description="Count lines with a longer word as dropped (-1: off)."
        )
        filter_lorem_ipsum: bool = Field(
            True, description="Drop pages where a kept line contains 'lorem ipsum'."
        )
        filter_javascript: bool = Field(
            True, description="Count lines mentioning 'javascript' as dropped."
        )
        filter_curly_bracket: bool = Field(
            True, description="Drop pages where a kept line contains '{'."
        )
        filter_policy: bool = Field(
            True, description="Count lines with cookie/terms-of-use phrases as dropped."
        )
        max_dropped_line_frac: float | None = Field(
            None,
            ge=0,
            description="Drop pages where C4 would remove more of the lines than this"
            " (not a C4 rule; null: off).",
        )

    def _measure(self, text: pa.Array, rows: np.ndarray | None) -> dict[str, pa.Array]:
        c4 = c4_lines(text, self.params, rows)
        lines, real, keep = c4.lines, c4.real, c4.keep
        n_lines = lines.sum(real)
        kept_lines = lines.sum(keep)
        return {
            "lines": _i64(n_lines),
            "kept_lines": _i64(kept_lines),
            "dropped_line_frac": _f64(ts.ratio(n_lines - kept_lines, n_lines)),
            "sentences": _i64(lines.sum(np.where(keep, c4.sentences, 0))),
            "lorem_ipsum": pa.array(lines.sum(c4.lorem) > 0, type=pa.bool_()),
            "curly_bracket": pa.array(lines.sum(c4.curly) > 0, type=pa.bool_()),
        }

    def _limits(self) -> dict[str, list[tuple[str, float | None]]]:
        p = self.params
        return {
            "sentences": [("min", p.min_num_sentences)],
            "dropped_line_frac": [("max", p.max_dropped_line_frac)],
        }

    def _rules(self, scores: dict[str, pa.Array]) -> list[Rule]:
        p = self.params
        return [
            ("lorem_ipsum", _np(scores, "lorem_ipsum").astype(bool)),
            ("curly_bracket", _np(scores, "curly_bracket").astype(bool)),
            ("sentences", _below(_np(scores, "sentences"), p.min_num_sentences)),
            (
                "dropped_line_frac",
                _above(_np(scores, "dropped_line_frac"), p.max_dropped_line_frac),
            ),
        ]


@dataclass
class C4Lines:
    """C4's verdict on every line of a batch: `keep` the lines C4 keeps, `cleaned` their text
    (stripped, citation marks removed), `lorem`/`curly` the kept lines that fail the page."""

    lines: ts.Pieces
    real: np.ndarray
    keep: np.ndarray
    cleaned: pa.Array
    lorem: np.ndarray
    curly: np.ndarray
    sentences: np.ndarray


def c4_lines(text: pa.Array, p: C4Quality.Params, rows: np.ndarray | None = None) -> C4Lines:
    """Walk every line through C4's rules in datatrove's order (see `C4Quality`); `rows` as in
    `_RuleFilter._measure`."""
    lines, real = ts.shared_lines(text, rows)
    line = pc.utf8_trim_whitespace(lines.values)
    n_words = ts.count_words(line)
    keep = real.copy()
    if p.max_word_length != -1:
        keep &= ~_has_long_word(line, p.max_word_length)
    if p.remove_citations:
        line = pc.replace_substring_regex(line, _CITATION_REGEX, "")
    if p.filter_no_terminal_punct:
        terminal = ts.last_byte_in(line, b".?!\"'")  # the regex [.?!"']$
        keep &= terminal & ~_bool(pc.ends_with(line, "..."))
    keep &= n_words >= p.min_words_per_line
    off = np.zeros(len(real), dtype=bool)
    lorem = keep & _contains(line, "lorem ipsum") if p.filter_lorem_ipsum else off
    if p.filter_javascript:
        keep &= ~_contains(line, "javascript")
    curly = keep & (ts.count_byte(line, ord("{")) > 0) if p.filter_curly_bracket else off
    if p.filter_policy:
        policy = pc.match_substring_regex(line, "|".join(_POLICY_SUBSTRINGS), ignore_case=True)
        keep &= ~_bool(policy)
    sentences = np.maximum(ts.count_sentence_ends(line), 1)  # the regex _SENTENCE_END_REGEX
    return C4Lines(lines, real, keep, line, lorem, curly, sentences)


def _contains(lines: pa.Array, phrase: str) -> np.ndarray:
    return _bool(pc.match_substring(lines, phrase, ignore_case=True))


def _has_long_word(lines: pa.Array, max_len: int) -> np.ndarray:
    """Lines holding a whitespace token longer than max_len characters."""
    long_line = _bool(pc.greater(pc.utf8_length(lines), max_len))
    if not long_line.any():
        return long_line
    words = ts.split_words(lines.filter(pa.array(long_line)))
    has_long = words.sum(ts.lengths(words.values) > max_len) > 0
    long_line[np.flatnonzero(long_line)] = has_long
    return long_line


class FineWebQuality(_RuleFilter):
    """FineWeb's extra quality rules (Penedo et al. 2024), as in datatrove's FineWebQualityFilter.

    Lines are split on '\\n' only (as datatrove). `line_punct_ratio`: lines ending in . ' " ! ?;
    `short_line_ratio`: lines of at most `short_line_length` characters; `char_dup_ratio`:
    characters of non-blank lines repeating an earlier line, over the characters that are not
    '\\n'; `list_ratio`: '\\n' count per word. Words are whitespace tokens (datatrove uses a
    language tokenizer, which counts punctuation as words, so this ratio runs a little higher
    here). Rules, in order: line_punct_ratio, short_line_ratio, char_dup_ratio, list_ratio.
    """

    class Params(Params):
        line_punct_thr: float = Field(
            0.12,
            ge=0,
            description="Drop pages where at most this fraction of lines end in punctuation.",
        )
        line_punct_exclude_zero: bool = Field(
            False, description="Keep pages with no line ending in punctuation (skip the rule)."
        )
        short_line_thr: float = Field(
            0.67, ge=0, description="Drop pages where at least this fraction of lines are short."
        )
        short_line_length: int = Field(
            30, ge=0, description="A line this long or shorter is short."
        )
        char_duplicates_ratio: float = Field(
            0.01,
            ge=0,
            description="Drop pages where repeated lines hold at least this character share.",
        )
        new_line_ratio: float = Field(
            0.3, ge=0, description="Drop pages with more newlines per word than this."
        )

    def _measure(self, text: pa.Array, rows: np.ndarray | None) -> dict[str, pa.Array]:
        p = self.params
        lines = ts.shared_newline_split(text, rows)
        punct = ts.last_byte_in(lines.values, b".'\"!?")  # the regex [.'"!?]$
        line_len = lines.lengths()
        trimmed_bytes = pc.binary_length(pc.utf8_trim_whitespace(lines.values))
        non_blank = trimmed_bytes.to_numpy(zero_copy_only=False) > 0
        _, dup_chars = ts.duplicates(lines, non_blank)
        newlines = lines.counts - 1
        n_words = ts.shared_word_counts(text, rows)
        return {
            "line_punct_ratio": _f64(ts.ratio(lines.sum(punct), lines.counts)),
            "short_line_ratio": _f64(
                ts.ratio(lines.sum(line_len <= p.short_line_length), lines.counts)
            ),
            "char_dup_ratio": _f64(
                ts.ratio(dup_chars, ts.shared_text_lengths(text, rows) - newlines)
            ),
            "list_ratio": _f64(ts.ratio(newlines, n_words)),
        }

    def _limits(self) -> dict[str, list[tuple[str, float | None]]]:
        p = self.params
        return {
            "line_punct_ratio": [("min", p.line_punct_thr)],
            "short_line_ratio": [("max", p.short_line_thr)],
            "char_dup_ratio": [("max", p.char_duplicates_ratio)],
            "list_ratio": [("max", p.new_line_ratio)],
        }

    def _rules(self, scores: dict[str, pa.Array]) -> list[Rule]:
        p = self.params
        punct = _np(scores, "line_punct_ratio")
        return [
            (
                "line_punct_ratio",
                (punct <= p.line_punct_thr) & ~((punct == 0) & p.line_punct_exclude_zero),
            ),
            ("short_line_ratio", _np(scores, "short_line_ratio") >= p.short_line_thr),
            ("char_dup_ratio", _np(scores, "char_dup_ratio") >= p.char_duplicates_ratio),
            ("list_ratio", _np(scores, "list_ratio") > p.new_line_ratio),
        ]
