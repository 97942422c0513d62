"""The steps of one segment applied to one batch: a table in, kept rows, ledger rows, sidecar and
counts out. No files, no writers, no Ray: a pure function of the batch and the step instances."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import io, mapper
from curate.config import PipelineConfig
from curate.decisions import DecisionSlice
from curate.filter import Filter, GlobalStep
from curate.stats import add_tokens

if TYPE_CHECKING:  # process.py builds the chain; importing it here would be a cycle
    from curate.process import BoundStep, Segment

LEDGER_COLUMNS = ("id", "text", "reason")
SCORES_KEY = b"curate.scores"
INPUT_CHECKS = ("null_text", "empty_text", "invalid_utf8")
CHECK_KEYS = ("rows", *INPUT_CHECKS)


class StepError(RuntimeError):
    """A step failed on some input; the message names the step and the unit."""


def new_step_stats() -> dict[str, Any]:
    return {"in": 0, "kept": 0, "dropped": 0, "seconds": 0.0}


@dataclass
class BatchResult:
    """What one batch left after a segment: rows to write and the counts to add."""

    kept: pa.Table  # ready to write: scores metadata set, the dense row id gone after the last step
    rejected: pa.Table  # ledger rows (id, text, reason, ...), every step's drops of this batch
    sidecar: pa.Table | None  # the global step's signature rows, when the segment ends in one
    steps: dict[str, dict[str, Any]]  # per step: in, kept, dropped, seconds (and rules, tokens...)
    checks: dict[str, int]  # rows read and, in segment 0, the input checks' counts


@dataclass
class UnitCounts:
    """A unit's counts so far in one segment: what its manifest reports."""

    steps: dict[str, dict[str, Any]]
    checks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHECK_KEYS, 0))
    kept: int = 0
    rejected: int = 0

    @classmethod
    def start(cls, seg: Segment, reused: set[str] | dict) -> UnitCounts:
        steps = {s.sid: new_step_stats() for s in seg.steps}
        for sid in steps.keys() & set(reused):
            steps[sid]["reused_scores"] = True
        if seg.signature is not None:
            steps[seg.signature.sid] = {"signature_rows": 0, "signature_seconds": 0.0}
        return cls(steps)

    def add(self, result: BatchResult) -> None:
        self.kept += result.kept.num_rows
        self.rejected += result.rejected.num_rows
        for key, n in result.checks.items():
            self.checks[key] = self.checks.get(key, 0) + n
        for sid, delta in result.steps.items():
            into = self.steps.setdefault(sid, {})
            for key, value in delta.items():
                if key == "rules":
                    rules = into.setdefault("rules", {})
                    for rule, n in value.items():
                        rules[rule] = rules.get(rule, 0) + n
                else:
                    into[key] = into.get(key, 0) + value


@dataclass(frozen=True)
class _LedgerShape:
    """The ledger's schema for a segment, and which input column fills each extra column."""

    schema: pa.Schema
    sources: dict[str, str]


def as_array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(values)


def utf8_text(column: pa.ChunkedArray) -> tuple[pa.Array, pa.Array | None]:
    """The text as a string array, and a mask of rows whose bytes were not valid UTF-8."""
    column = as_array(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.cast(pa.string()), None
    if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        raise TypeError(f"has type {column.type}; expected a string column")
    try:
        return column.cast(pa.string()), None
    except pa.ArrowInvalid:
        pass
    # Rare slow path: only batches that hold invalid UTF-8 get here.
    bad = []
    texts = []
    for value in column.to_pylist():
        if value is None:
            bad.append(False)
            texts.append(None)
            continue
        try:
            texts.append(value.decode("utf-8"))
            bad.append(False)
        except UnicodeDecodeError:
            texts.append(value.decode("utf-8", errors="replace"))
            bad.append(True)
    return pa.array(texts, pa.string()), pa.array(bad, pa.bool_())


def _true(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _count_rules(stats: dict, table: pa.Table, column: str, keep: pa.Array) -> None:
    """Per failing rule (a step's `rule` score), how many rows it drops or would drop."""
    if column not in table.schema.names or not table.num_rows:
        return
    failing = table.column(column).filter(pc.invert(keep))
    if not len(failing):
        return
    rules = stats.setdefault("rules", {})
    for row in pc.value_counts(failing.drop_null()).to_pylist():
        rules[row["values"]] = rules.get(row["values"], 0) + row["counts"]


class Chain:
    """Applies a segment's steps to one batch; holds the step instances and the score types."""

    def __init__(
        self,
        config: PipelineConfig,
        segments: list[Segment],
        instances: dict[str, Filter | GlobalStep],
        reused: dict[str, dict[str, pa.DataType]] | None = None,
        stale_columns: list[str] | None = None,
    ) -> None:
        self.config = config
        self.segments = segments
        self.instances = instances
        # Steps whose score columns (`<sid>_<metric>` -> type) the input already holds:
        # thresholds only, no model loaded.
        self.reused = dict(reused or {})
        # Score columns the input holds from a step whose params, model or code changed since:
        # dropped on read and scored afresh, never reused.
        self.stale_columns = list(stale_columns or [])
        self.text_column = config.input.text_column
        self.id_column = config.input.id_column or io.DERIVED_ID
        steps = [s for seg in segments for s in seg.steps]
        self.token_columns = [c for s in steps for c in instances[s.sid].token_columns(s.sid)]
        self._types: dict[str, dict[str, pa.DataType]] = {}

    # -- what a segment writes
    def run(
        self,
        seg_index: int,
        table: pa.Table,
        unit: io.WorkUnit,
        first_row: int,
        decision: DecisionSlice | None = None,
    ) -> BatchResult:
        """Run segment `seg_index` over one batch of `unit` that starts at row `first_row`."""
        seg = self.segments[seg_index]
        checks = {"rows": table.num_rows}
        rejected: list[pa.Table] = []
        if seg.index == 0:
            table, reasons = self.prepare_input(table, unit, first_row)
            checks.update(dict.fromkeys(INPUT_CHECKS, 0))
            bad = pc.is_valid(reasons)
            if pc.any(bad).as_py():
                for reason in INPUT_CHECKS:
                    checks[reason] = _true(pc.equal(reasons, reason))
                rejected.append((table.filter(bad), reasons.filter(bad)))
                table = table.filter(pc.invert(bad))
        empty = table.slice(0, 0)
        ledger = self._ledger_shape(seg, table.schema, empty)
        steps: dict[str, dict[str, Any]] = {}
        for step in seg.steps:
            t0 = time.perf_counter()
            st = steps[step.sid] = new_step_stats()
            st["in"] = table.num_rows
            table, dropped = self._run_step(seg, step, table, empty, unit, decision, st)
            if dropped.num_rows:
                rejected.append((dropped, step.sid))
            add_tokens(st, table, dropped, self.token_columns)
            st["kept"] = table.num_rows
            st["dropped"] = dropped.num_rows
            st["seconds"] = time.perf_counter() - t0
        sidecar = None
        if seg.signature is not None:
            t0 = time.perf_counter()
            sidecar = self.instances[seg.signature.sid].signature(
                table,
                table.column(io.ROW_ID).combine_chunks(),
                table.column(self.id_column).combine_chunks(),
            )
            steps[seg.signature.sid] = {
                "signature_rows": table.num_rows,
                "signature_seconds": time.perf_counter() - t0,
            }
        last = seg.index == len(self.segments) - 1
        kept = table.drop_columns([io.ROW_ID]) if last else table
        kept = kept.replace_schema_metadata(
            {**(kept.schema.metadata or {}), SCORES_KEY: self.scores_metadata(kept.schema)}
        )
        rows = [self._ledger_rows(t, reason, ledger) for t, reason in rejected]
        return BatchResult(
            kept,
            pa.concat_tables(rows) if rows else ledger.schema.empty_table(),
            sidecar,
            steps,
            checks,
        )

    def _run_step(
        self,
        seg: Segment,
        step: BoundStep,
        table: pa.Table,
        empty: pa.Table,
        unit: io.WorkUnit,
        decision: DecisionSlice | None,
        st: dict[str, Any],
    ) -> tuple[pa.Table, pa.Table]:
        """One step over a batch: the rows it keeps (with its score columns), the rows it drops."""
        types = self._score_types(step, empty)
        instance = self.instances[step.sid]
        if step is seg.apply:
            raw, drop_np = self._apply_decision(step, table, decision)
            keep = pa.array(~drop_np)
            if isinstance(instance, mapper.RewritingGlobalStep):
                args = (table, decision.table, raw, keep, st)
                table, raw, keep = self._rewrite(step, unit, mapper.apply_decided, *args)
        elif isinstance(instance, mapper.Mapper) and step.sid not in self.reused:
            table, raw, keep = self._rewrite(step, unit, mapper.apply_mapper, table, st)
        else:
            raw, keep = self._score_and_keep(step, table, empty, types, unit)
        for name, arr in raw.items():
            col = f"{step.sid}_{name}"
            if col not in types:
                raise StepError(
                    f"step '{step.sid}' returned '{name}', which it did not "
                    "return for an empty batch; score() must return the same "
                    "columns for every batch"
                )
            if len(arr) != table.num_rows:
                raise StepError(
                    f"step '{step.sid}' returned {len(arr)} values for "
                    f"'{name}' on a batch of {table.num_rows} rows"
                )
            if col in table.schema.names:
                raise StepError(
                    f"score column '{col}' clashes with an input column; "
                    f"give step '{step.sid}' another id"
                )
            table = table.append_column(col, arr.cast(types[col]))
        keep = pc.fill_null(keep, False)
        _count_rules(st, table, f"{step.sid}_rule", keep)
        if step.annotate:  # drops nothing, but says what it would have dropped
            st["would_drop"] = table.num_rows - _true(keep)
            keep = pa.array(np.ones(table.num_rows, bool))
        return table.filter(keep), table.filter(pc.invert(keep))

    # -- score types: probed once with an empty batch, so every unit writes the same schema
    def _score_types(self, step: BoundStep, empty: pa.Table) -> dict[str, pa.DataType]:
        if step.sid in self.reused:
            return self.reused[step.sid]
        if step.sid not in self._types:
            instance = self.instances[step.sid]
            if isinstance(instance, GlobalStep):
                types = dict(instance.decision_schema())
            else:
                types = {k: as_array(v).type for k, v in instance.score(empty).items()}
            self._types[step.sid] = {f"{step.sid}_{k}": v for k, v in types.items()}
        return self._types[step.sid]

    def scores_metadata(self, schema: pa.Schema) -> bytes:
        """Which columns are which step's scores: lets a later run reuse them (score once)."""
        names = set(schema.names)
        found: dict[str, dict[str, Any]] = {}
        for seg in self.segments:
            for step in seg.steps:
                cols = self._types.get(step.sid) or self.reused.get(step.sid) or {}
                metrics = [c[len(step.sid) + 1 :] for c in cols if c in names]
                if metrics and len(metrics) == len(cols):
                    found[step.sid] = {"metrics": metrics, "key": step.score_key}
        previous = json.loads((schema.metadata or {}).get(SCORES_KEY, b"{}"))
        return json.dumps({**previous, **found}, sort_keys=True).encode()

    # -- the ledger
    def _ledger_shape(self, seg: Segment, batch: pa.Schema, empty: pa.Table) -> _LedgerShape:
        """id, text, reason, the input's other columns (output.ledger_columns), the scores."""
        fields = [
            pa.field("id", batch.field(self.id_column).type),
            pa.field("text", pa.string()),
            pa.field("reason", pa.string()),
        ]
        scores = []
        for s in self.segments[: seg.index + 1]:
            for step in s.steps:
                scores += [pa.field(k, v) for k, v in self._score_types(step, empty).items()]
        skip = {self.id_column, self.text_column, io.ROW_ID, *(f.name for f in scores)}
        wanted = self.config.output.ledger_columns
        if wanted == "minimal":
            extra = []
        elif wanted == "all":
            extra = [f for f in batch if f.name not in skip]
        else:
            missing = [c for c in wanted if c not in batch.names]
            if missing:
                raise io.InputError(
                    f"output.ledger_columns: the input has no column {', '.join(missing)} "
                    f"(columns: {', '.join(n for n in batch.names if n != io.ROW_ID)})"
                )
            extra = [batch.field(c) for c in wanted if c not in skip]
        # An input column called id, text or reason keeps its values under input_<name>.
        sources = {
            (f"input_{f.name}" if f.name in LEDGER_COLUMNS else f.name): f.name for f in extra
        }
        extra = [f.with_name(f"input_{f.name}") if f.name in LEDGER_COLUMNS else f for f in extra]
        return _LedgerShape(pa.schema(fields + extra + scores), sources)

    def _ledger_rows(self, rows: pa.Table, reason: str | pa.Array, shape: _LedgerShape) -> pa.Table:
        n = rows.num_rows
        cols = {
            "id": rows.column(self.id_column),
            "text": rows.column(self.text_column),
            "reason": reason
            if isinstance(reason, pa.Array)
            else pa.array([reason] * n, pa.string()),
        }
        for f in shape.schema:
            if f.name in cols:
                continue
            source = shape.sources.get(f.name, f.name)
            cols[f.name] = (
                rows.column(source) if source in rows.schema.names else pa.nulls(n, f.type)
            )
        return pa.table(cols, schema=shape.schema)

    # -- segment 0's input checks
    def prepare_input(
        self, batch: pa.Table, unit: io.WorkUnit, first_row: int
    ) -> tuple[pa.Table, pa.Array]:
        """Segment 0: check columns, add the id and the dense row id; find null/empty text."""
        where = unit.describe()
        if self.text_column not in batch.schema.names:
            raise io.InputError(
                f"{where}: no text column '{self.text_column}' (columns: "
                f"{', '.join(batch.schema.names)}); set input.text_column"
            )
        try:
            text, bad_utf8 = utf8_text(batch.column(self.text_column))
        except TypeError as exc:
            raise io.InputError(f"{where}: column '{self.text_column}' {exc}") from exc
        batch = batch.set_column(
            batch.schema.get_field_index(self.text_column), self.text_column, text
        )
        stale = [c for c in self.stale_columns if c in batch.schema.names]
        if stale:
            batch = batch.drop_columns(stale)
        n = batch.num_rows
        if self.config.input.id_column is None:
            if io.DERIVED_ID in batch.schema.names:
                raise io.InputError(
                    f"{where}: has a column '{io.DERIVED_ID}'; set "
                    f"input.id_column: {io.DERIVED_ID} to use it as the id"
                )
            batch = batch.append_column(
                io.DERIVED_ID, io.derive_ids(unit.shard.relpath, first_row, n)
            )
        elif self.id_column not in batch.schema.names:
            raise io.InputError(
                f"{where}: no id column '{self.id_column}' (columns: "
                f"{', '.join(batch.schema.names)}); fix input.id_column"
            )
        batch = batch.append_column(io.ROW_ID, io.dense_row_ids(unit.shard.index, first_row, n))
        reasons = pc.if_else(pc.is_null(text), "null_text", pa.scalar(None, pa.string()))
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0)
        reasons = pc.if_else(
            pc.and_kleene(pc.is_null(reasons), pc.fill_null(empty, False)), "empty_text", reasons
        )
        if bad_utf8 is not None:
            reasons = pc.if_else(bad_utf8, "invalid_utf8", reasons)
        return batch, reasons

    # -- the three kinds of step
    def _score_and_keep(
        self,
        step: BoundStep,
        table: pa.Table,
        empty: pa.Table,
        types: dict[str, pa.DataType],
        unit: io.WorkUnit,
    ) -> tuple[dict[str, pa.Array], pa.Array]:
        """A filter's new score columns and keep mask for one batch (stored scores are reused)."""
        instance = self.instances[step.sid]
        reused = step.sid in self.reused
        try:
            if reused:
                prefix = len(step.sid) + 1
                scores = {c[prefix:]: table.column(c).combine_chunks() for c in types}
            else:
                raw = instance.score(table if table.num_rows else empty)
                scores = {k: as_array(v) for k, v in raw.items()}
            keep = as_array(instance.keep(scores)) if table.num_rows else pa.array([], pa.bool_())
        except Exception as exc:
            what = "could not re-apply its thresholds to the stored scores" if reused else "failed"
            raise StepError(
                f"step '{step.sid}' {what} on {unit.describe()}: {type(exc).__name__}: {exc}"
            ) from exc
        return ({} if reused else scores), keep

    def _rewrite(self, step: BoundStep, unit: io.WorkUnit, apply: Any, *args: Any) -> Any:
        """Run a mapper (or a rewriting global step) on a batch; see `curate.mapper`."""
        try:
            return apply(self.instances[step.sid], *args, annotate=step.annotate)
        except Exception as exc:
            raise StepError(
                f"step '{step.sid}' failed on {unit.describe()}: {type(exc).__name__}: {exc}"
            ) from exc

    def _apply_decision(
        self, step: BoundStep, table: pa.Table, decision: DecisionSlice
    ) -> tuple[dict[str, pa.Array], np.ndarray]:
        row_ids = table.column(io.ROW_ID).to_numpy()
        found, pos = decision.lookup(row_ids)
        drop = found & decision.drop[pos] if len(decision.row_ids) else found
        instance = self.instances[step.sid]
        scores = {}
        take = pa.array(np.where(found, pos, 0), mask=~found)
        for name, dtype in instance.decision_schema().items():
            # (a rewriting step may declare columns its rewrite fills in: nulls here)
            values = decision.column(name, take, dtype)
            default = instance.defaults.get(name)
            if default is not None:
                values = pc.fill_null(values, pa.scalar(default, dtype))
            scores[name] = as_array(values).cast(dtype)
        return scores, drop
