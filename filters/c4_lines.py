"""The `c4_lines` mapper: C4's line-level cleaning, which rewrites a page, plus its page rules."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.filter import Resources
from curate.mapper import Mapper, MapResult
from curate_filters import _textstats as ts
from curate_filters.heuristics import C4Quality, c4_lines

PAGE_RULES = ("lorem_ipsum", "curly_bracket", "too_few_sentences")


def _lists(values: pa.Array, parent: np.ndarray, n_docs: int) -> pa.ListArray:
    """Group per-line values (contiguous per document, in order) back into one list a doc."""
    counts = np.bincount(parent, minlength=n_docs)[:n_docs] if len(parent) else np.zeros(n_docs)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


class C4Lines(Mapper):
    """C4's cleaning (Raffel et al. 2020) as datatrove's C4QualityFilter applies it.

    Every line is stripped and loses its citation marks; a line is removed when it has a word
    over `max_word_length` characters, does not end in terminal punctuation (or ends in '...'),
    has fewer than `min_words_per_line` words, mentions javascript, or has a cookie/terms
    policy phrase. The kept lines, joined by newlines, are the new text. With `page_rules`,
    the page is then rejected (score `rule`) if a kept line has 'lorem ipsum' or '{', or if the
    kept lines hold fewer than `min_num_sentences` sentences (a punctuation regex, not punkt).
    `changes` counts the lines removed or edited.
    """

    class Params(C4Quality.Params):
        page_rules: bool = Field(
            True,
            description="Reject pages with lorem ipsum, a curly bracket or too few sentences "
            "(C4 does); false: only remove lines.",
        )

    resources = Resources(cpus=1.0, batch_size=2048)

    def map(self, batch: pa.Table) -> MapResult:
        text = ts.as_text(self.text(batch))
        n = len(text)
        c4 = c4_lines(text, self.params, ts.row_ids(batch))
        lines, keep = c4.lines, c4.keep
        kept_text = pc.binary_join(
            _lists(c4.cleaned.filter(pa.array(keep)), lines.parent[keep], n), "\n"
        )
        removed_lines = c4.real & ~keep
        edited = keep & ~np.asarray(
            pc.equal(c4.cleaned, lines.values).to_numpy(zero_copy_only=False), bool
        )
        changes = lines.sum(removed_lines) + lines.sum(edited)
        # A page whose text comes out identical (say, one clean line) reports no change.
        same = np.asarray(pc.equal(kept_text, text).to_numpy(zero_copy_only=False), bool)
        changes = np.where(same, 0, np.maximum(changes, 1))
        sentences = lines.sum(np.where(keep, c4.sentences, 0))
        p = self.params
        rules = [
            ("lorem_ipsum", lines.sum(c4.lorem) > 0),
            ("curly_bracket", lines.sum(c4.curly) > 0),
            ("too_few_sentences", sentences < p.min_num_sentences),
        ]
        removed = None
        if self.record_changes:
            removed = _lists(
                lines.values.filter(pa.array(removed_lines)), lines.parent[removed_lines], n
            )
        return MapResult(
            text=kept_text,
            changes=pa.array(changes.astype(np.int64)),
            scores={
                "lines_removed": pa.array(lines.sum(removed_lines).astype(np.int64)),
                "sentences": pa.array(sentences.astype(np.int64)),
                "rule": ts.first_failing(rules, n),
            },
            removed=removed,
        )

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        """Keep every page, or with `page_rules` the pages no page rule rejects."""
        if not self.params.page_rules:
            return super().keep(scores)
        return pc.is_null(scores["rule"])
