"""The Mapper protocol (steps that rewrite text) and how a unit applies a rewrite to a batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.filter import Filter, GlobalStep

# Columns every rewrite adds, named `<step id>_<metric>` by the runner like a filter's scores.
CHANGES = "changes"  # edits in the row (lines removed, spans redacted); 0 = unchanged
CHARS_REMOVED = "chars_removed"  # original length - new length (negative if placeholders grow)
REMOVED = "removed"  # list of the removed/replaced spans, only with `output.record_changes`
REMOVED_TYPE = pa.list_(pa.string())


@dataclass
class MapResult:
    """What `Mapper.map` returns: the new text and, per row, how much it changed."""

    text: pa.Array
    changes: pa.Array
    scores: dict[str, pa.Array] = field(default_factory=dict)
    removed: pa.Array | None = None  # list<string> per row: what was taken out (or replaced)


class Mapper(Filter):
    """A pure function of a batch that rewrites its text: `map` returns a `MapResult`.

    The runner replaces the text column with `MapResult.text` so later steps see the new text,
    writes `<id>_changes`, `<id>_chars_removed` and the mapper's own scores, and rejects (reason:
    the step id, original text kept in the ledger) a document the rewrite leaves empty, or one
    `keep` refuses. `mode: annotate` writes the counts without rewriting anything.
    """

    # Set by the runner from `output.record_changes`: also return the removed spans.
    record_changes: bool = False

    def map(self, batch: pa.Table) -> MapResult:
        raise NotImplementedError

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        """The score columns of a rewrite (what the runner writes), without applying it."""
        return rewrite_scores(self.map(batch), self.text(batch), self.record_changes)

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        """Keep every row; a mapper that also has page rules overrides this."""
        n_rows = len(next(iter(scores.values()))) if scores else 0
        return pa.array(np.ones(n_rows, bool))


class RewritingGlobalStep(GlobalStep):
    """A global step whose decision rewrites rows (drops lines) rather than dropping them.

    `rewrite(batch, decision)` gets the rows of one batch and the whole decision table and
    returns a `MapResult`; the runner applies it as it applies a mapper's.
    """

    record_changes: bool = False

    def rewrite(self, batch: pa.Table, decision: pa.Table) -> MapResult:
        raise NotImplementedError

    def empty_decision(self) -> pa.Table:
        """A decision that changes nothing (what `decide` returns for a corpus without repeats)."""
        raise NotImplementedError


def configure(instances: dict[str, Any], record_changes: bool) -> None:
    """Tell every rewriting step whether to return its removed spans (`output.record_changes`)."""
    for instance in instances.values():
        if isinstance(instance, (Mapper, RewritingGlobalStep)):
            instance.record_changes = record_changes


def _array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    return values if isinstance(values, pa.Array) else pa.array(values)


def rewrite_scores(
    result: MapResult, old_text: pa.Array | pa.ChunkedArray, record_changes: bool
) -> dict[str, pa.Array]:
    """The columns a rewrite adds: changes, chars_removed, the mapper's scores (and spans)."""
    old_len = pc.utf8_length(pc.fill_null(_array(old_text), ""))
    new_len = pc.utf8_length(pc.fill_null(_array(result.text), ""))
    scores = {
        CHANGES: _array(result.changes).cast(pa.int64()),
        CHARS_REMOVED: pc.subtract(old_len, new_len).cast(pa.int64()),
        **{k: _array(v) for k, v in result.scores.items()},
    }
    if record_changes:
        removed = result.removed
        scores[REMOVED] = (
            _array(removed).cast(REMOVED_TYPE)
            if removed is not None
            else pa.nulls(len(old_len), REMOVED_TYPE)
        )
    return scores


def apply_rewrite(
    step: Mapper | RewritingGlobalStep,
    table: pa.Table,
    result: MapResult,
    scores: dict[str, pa.Array],
    keep: pa.Array,
    annotate: bool,
    stats: dict[str, Any],
) -> tuple[pa.Table, dict[str, pa.Array], pa.Array]:
    """Put a rewrite into a batch: the table with its new text, the score columns, the keep mask.

    A row the rewrite empties (only whitespace left) is not kept; rows not kept keep their
    original text, so the ledger holds what came in. Counts the kept rows changed and the
    characters removed from them into the step's `stats`.
    """
    column = step.text_column
    old = _array(table.column(column))
    new = _array(result.text).cast(old.type)
    if len(new) != len(old):
        raise ValueError(f"returned {len(new)} texts for {len(old)} rows")
    emptied = pc.and_(
        pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(pc.fill_null(new, ""))), 0),
        pc.greater(pc.utf8_length(pc.fill_null(old, "")), 0),
    )
    keep = pc.and_(pc.fill_null(_array(keep), False), pc.invert(emptied))
    if annotate:
        return table, scores, keep
    changed = pc.and_(keep, pc.greater(scores[CHANGES], 0))
    stats["changed"] = stats.get("changed", 0) + (pc.sum(changed).as_py() or 0)
    removed = pc.sum(pc.if_else(keep, scores[CHARS_REMOVED], 0)).as_py() or 0
    stats["chars_removed"] = stats.get("chars_removed", 0) + removed
    text = pc.if_else(keep, new, old)
    table = table.set_column(table.schema.get_field_index(column), column, text)
    return table, scores, keep


def apply_mapper(
    step: Mapper, table: pa.Table, stats: dict[str, Any], *, annotate: bool
) -> tuple[pa.Table, dict[str, pa.Array], pa.Array]:
    """Map one batch and apply the rewrite (see `apply_rewrite`)."""
    result = step.map(table)
    scores = rewrite_scores(result, step.text(table), step.record_changes)
    keep = step.keep(scores) if table.num_rows else pa.array([], pa.bool_())
    return apply_rewrite(step, table, result, scores, keep, annotate, stats)


def apply_decided(
    step: RewritingGlobalStep,
    table: pa.Table,
    decision: pa.Table,
    decided: dict[str, pa.Array],
    keep: pa.Array,
    stats: dict[str, Any],
    *,
    annotate: bool,
) -> tuple[pa.Table, dict[str, pa.Array], pa.Array]:
    """Apply a rewriting global step's decision to one batch (see `apply_rewrite`)."""
    result = step.rewrite(table, decision)
    scores = {**decided, **rewrite_scores(result, step.text(table), step.record_changes)}
    return apply_rewrite(step, table, result, scores, keep, annotate, stats)
