"""Steps bound to a config, segments between global steps, and the processing of one work unit."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ValidationError

from curate import io, mapper, plugins, stages
from curate.config import ConfigError, PipelineConfig, StepConfig, format_validation_error
from curate.decisions import DecisionSlice
from curate.filter import Filter, GlobalStep
from curate.stats import add_tokens

LEDGER_COLUMNS = ("id", "text", "reason")
SCORES_KEY = b"curate.scores"


class StepError(RuntimeError):
    """A step failed on some input; the message names the step and the unit."""


@dataclass
class BoundStep:
    """A config step with its plugin class and validated params (picklable; no model loaded)."""

    index: int
    sid: str
    config: StepConfig
    cls: type
    params: BaseModel
    score_key: str = ""  # what its scores depend on (curate.identity.score_key)

    @property
    def is_global(self) -> bool:
        return issubclass(self.cls, GlobalStep)

    @property
    def annotate(self) -> bool:
        return self.config.mode == "annotate"

    def build(self, text_column: str) -> Filter | GlobalStep:
        return self.cls(self.params, text_column=text_column)


def bind_steps(config: PipelineConfig) -> list[BoundStep]:
    """Load each step's plugin and validate its params; errors name `steps.N.params.field`."""
    bound = []
    for i, step in enumerate(config.steps):
        try:
            cls = plugins.load(step.use)
        except plugins.PluginError as exc:
            raise ConfigError(f"steps.{i}.use: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, (Filter, GlobalStep))):
            raise ConfigError(f"steps.{i}.use: '{step.use}' is not a curate Filter or GlobalStep")
        try:
            params = cls.Params.model_validate(step.params)
        except ValidationError as exc:
            raise ConfigError(
                "invalid step params:\n" + format_validation_error(exc, prefix=f"steps.{i}.params")
            ) from exc
        bound.append(BoundStep(i, step.step_id, step, cls, params))
    return bound


@dataclass
class Segment:
    """Filters between two global steps: applies one decision first, computes one signature last."""

    index: int
    apply: BoundStep | None = None
    filters: list[BoundStep] = field(default_factory=list)
    signature: BoundStep | None = None

    @property
    def steps(self) -> list[BoundStep]:
        return ([self.apply] if self.apply else []) + self.filters


def plan_segments(steps: list[BoundStep]) -> list[Segment]:
    segments = [Segment(0)]
    for step in steps:
        if step.is_global:
            segments[-1].signature = step
            segments.append(Segment(len(segments), apply=step))
        else:
            segments[-1].filters.append(step)
    return segments


@dataclass(frozen=True)
class Layout:
    """Where a run's files live inside the output folder."""

    root: str

    def data(self, unit: str, fmt: str = "parquet") -> str:
        return io.join(self.root, "data", f"{unit}.{fmt}")

    def segment(self, seg: int, unit: str) -> str:
        return io.join(self.root, "_segments", f"s{seg}", f"{unit}.parquet")

    def rejected(self, seg: int, unit: str) -> str:
        suffix = "" if seg == 0 else f"-s{seg}"
        return io.join(self.root, "rejected", f"{unit}{suffix}.parquet")

    def sidecar(self, sid: str, unit: str) -> str:
        return io.join(self.root, "_sidecar", sid, f"{unit}.parquet")

    def manifest(self, seg: int, unit: str) -> str:
        return io.join(self.root, "_manifest", f"s{seg}-{unit}.json")

    def decision(self, sid: str) -> str:
        return io.join(self.root, "_global", sid, "decision.parquet")

    def decision_stats(self, sid: str) -> str:
        return io.join(self.root, "_global", sid, "decide.json")

    def workdir(self, sid: str) -> str:
        return io.join(self.root, "_global", sid, "work")


def _as_array(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(values)


def _utf8_text(column: pa.ChunkedArray) -> tuple[pa.Array, pa.Array | None]:
    """The text as a string array, and a mask of rows whose bytes were not valid UTF-8."""
    column = _as_array(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.cast(pa.string()), None
    if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        raise TypeError(f"has type {column.type}; expected a string column")
    try:
        return column.cast(pa.string()), None
    except pa.ArrowInvalid:
        pass
    # Rare slow path: only batches that hold invalid UTF-8 get here.
    raw = column.to_pylist()
    bad = []
    texts = []
    for value in raw:
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


class UnitProcessor:
    """Runs the steps of one segment over one unit and writes its files. Knows nothing of Ray."""

    def __init__(
        self,
        config: PipelineConfig,
        steps: list[BoundStep],
        reused: dict[str, dict[str, pa.DataType]] | None = None,
        run_key: str = "",
        stale_columns: list[str] | None = None,
    ) -> None:
        self.config = config
        self.run_key = run_key
        # Score columns the input holds from a step whose params, model or code changed since:
        # dropped on read and scored afresh, never reused.
        self.stale_columns = list(stale_columns or [])
        # Steps whose score columns the input already holds: thresholds only, no model loaded.
        self.reused = {
            sid: {f"{sid}_{m}": t for m, t in metrics.items()}
            for sid, metrics in (reused or {}).items()
        }
        self.text_column = config.input.text_column
        self.id_column = config.input.id_column or io.DERIVED_ID
        self.segments = plan_segments(steps)
        self.layout = Layout(config.output.path)
        self.instances = {s.sid: stages.build(s, self.text_column) for s in steps}
        mapper.configure(self.instances, config.output.record_changes)
        self.token_columns = [c for s in steps for c in self.instances[s.sid].token_columns(s.sid)]
        self._types: dict[str, dict[str, pa.DataType]] = {}
        self._ledger_sources: dict[str, str] = {}  # ledger column -> input column

    def setup(self) -> None:
        for sid, instance in self.instances.items():
            if sid in self.reused:
                continue
            try:
                instance.setup()
            except Exception as exc:
                raise StepError(
                    f"step '{sid}' failed to set up: {type(exc).__name__}: {exc}"
                ) from exc

    # -- score types: probed once with an empty batch, so every unit writes the same schema
    def _score_types(self, step: BoundStep, empty: pa.Table) -> dict[str, pa.DataType]:
        if step.sid in self.reused:
            return self.reused[step.sid]
        if step.sid not in self._types:
            instance = self.instances[step.sid]
            if isinstance(instance, GlobalStep):
                types = dict(instance.decision_schema())
            else:
                types = {k: _as_array(v).type for k, v in instance.score(empty).items()}
            self._types[step.sid] = {f"{step.sid}_{k}": v for k, v in types.items()}
        return self._types[step.sid]

    def _scores_metadata(self, schema: pa.Schema) -> bytes:
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

    def _ledger_schema(self, seg: Segment, batch: pa.Schema, empty: pa.Table) -> pa.Schema:
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
        self._ledger_sources = {
            (f"input_{f.name}" if f.name in LEDGER_COLUMNS else f.name): f.name for f in extra
        }
        extra = [f.with_name(f"input_{f.name}") if f.name in LEDGER_COLUMNS else f for f in extra]
        return pa.schema(fields + extra + scores)

    def _prepare_input(
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
            text, bad_utf8 = _utf8_text(batch.column(self.text_column))
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

    def _ledger_rows(self, rows: pa.Table, reason: str | pa.Array, schema: pa.Schema) -> pa.Table:
        n = rows.num_rows
        cols = {
            "id": rows.column(self.id_column),
            "text": rows.column(self.text_column),
            "reason": reason
            if isinstance(reason, pa.Array)
            else pa.array([reason] * n, pa.string()),
        }
        for f in schema:
            if f.name in cols:
                continue
            source = self._ledger_sources.get(f.name, f.name)
            cols[f.name] = (
                rows.column(source) if source in rows.schema.names else pa.nulls(n, f.type)
            )
        return pa.table(cols, schema=schema)

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
                scores = {k: _as_array(v) for k, v in raw.items()}
            keep = _as_array(instance.keep(scores)) if table.num_rows else pa.array([], pa.bool_())
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
            scores[name] = _as_array(values).cast(dtype)
        return scores, drop

    def process(self, seg_index: int, unit: io.WorkUnit, decision: Any = None) -> dict[str, Any]:
        """Stream one unit through one segment; publish its files; return its summary."""
        seg = self.segments[seg_index]
        last = seg_index == len(self.segments) - 1
        layout = self.layout
        started = time.perf_counter()
        steps = seg.steps
        stats = {s.sid: {"in": 0, "kept": 0, "dropped": 0, "seconds": 0.0} for s in steps}
        for sid in stats.keys() & self.reused.keys():
            stats[sid]["reused_scores"] = True
        checks = {"rows": 0, "null_text": 0, "empty_text": 0, "invalid_utf8": 0}
        if seg.signature:
            stats[seg.signature.sid] = {"signature_rows": 0, "signature_seconds": 0.0}
        writers: dict[str, io.AtomicParquetWriter] = {}
        kept_total = rejected_total = 0
        if seg_index == 0:
            batches = io.read_unit(unit, self.config.input.batch_size)
            empty_schema = io.unit_schema(unit)
        else:
            # The previous segment's file as its manifest names it (attempt-unique on stores).
            previous = io.read_json(layout.manifest(seg_index - 1, unit.name))
            uri = previous.get("files", {}).get("data")
            src = io.WorkUnit(
                unit.index,
                io.Shard(unit.shard.index, uri or "", unit.name, "parquet", None),
                None,
                0,
            )
            if uri:
                batches = io.read_unit(src, self.config.input.batch_size)
                empty_schema = io.unit_schema(src)
            else:  # an input with no rows and no schema (an empty JSONL file) left no file
                batches, empty_schema = iter(()), None
        first_row = unit.first_row
        if seg.apply is not None:  # this unit's slice of the decision, read once
            decision = (
                DecisionSlice.of(decision)
                if decision is None or isinstance(decision, pa.Table)
                else DecisionSlice.read(decision["shards"], unit)
            )
        try:
            seen_any = False
            for batch in batches:
                seen_any = True
                kept, rejected = self._process_batch(
                    seg,
                    unit,
                    pa.Table.from_batches([batch]),
                    first_row,
                    decision,
                    stats,
                    checks,
                    writers,
                )
                first_row += batch.num_rows
                kept_total += kept
                rejected_total += rejected
            if not seen_any and empty_schema is not None:
                self._process_batch(
                    seg,
                    unit,
                    empty_schema.empty_table(),
                    first_row,
                    decision,
                    stats,
                    checks,
                    writers,
                )
            # Open writers even for empty units so every unit publishes the same set of files.
            for w in writers.values():
                w.commit()
        except BaseException:
            for w in writers.values():
                try:
                    w.abort()
                except Exception:  # the temp file may already be gone
                    pass
            raise
        summary = {
            "unit": unit.name,
            "run": self.run_key,
            "shard": [unit.shard.uri, unit.shard.size, unit.shard.mtime_ns],
            "source": unit.describe(),
            "segment": seg_index,
            "input": checks if seg_index == 0 else {"rows": checks["rows"]},
            "steps": stats,
            "kept": kept_total,
            "rejected": rejected_total,
            "seconds": round(time.perf_counter() - started, 4),
            "final": last,
            # What this unit published: readers trust these names, not a folder listing.
            "files": {kind: w.uri for kind, w in sorted(writers.items())},
        }
        io.write_json_atomic(layout.manifest(seg_index, unit.name), summary)
        return summary

    def _process_batch(
        self,
        seg: Segment,
        unit: io.WorkUnit,
        table: pa.Table,
        first_row: int,
        decision: DecisionSlice | None,
        stats: dict,
        checks: dict,
        writers: dict[str, io.AtomicParquetWriter],
    ) -> tuple[int, int]:
        layout = self.layout
        compression = self.config.output.compression
        ledger_parts: list[pa.Table] = []
        checks["rows"] += table.num_rows
        if seg.index == 0:
            table, reasons = self._prepare_input(table, unit, first_row)
            bad = pc.is_valid(reasons)
            if pc.any(bad).as_py():
                for reason in ("null_text", "empty_text", "invalid_utf8"):
                    checks[reason] += pc.sum(pc.equal(reasons, reason)).as_py() or 0
                ledger_parts.append(("__input__", table.filter(bad), reasons.filter(bad)))
                table = table.filter(pc.invert(bad))
        empty = table.slice(0, 0)
        ledger_schema = self._ledger_schema(seg, table.schema, empty)
        for step in seg.steps:
            t0 = time.perf_counter()
            st = stats[step.sid]
            st["in"] += table.num_rows
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
                st["would_drop"] = st.get("would_drop", 0) + table.num_rows - _true(keep)
                keep = pa.array(np.ones(table.num_rows, bool))
            dropped_rows = table.filter(pc.invert(keep))
            if dropped_rows.num_rows:
                ledger_parts.append((step.sid, dropped_rows, None))
            table = table.filter(keep)
            add_tokens(st, table, dropped_rows, self.token_columns)
            st["kept"] += table.num_rows
            st["dropped"] += dropped_rows.num_rows
            st["seconds"] += time.perf_counter() - t0
        if seg.signature is not None:
            t0 = time.perf_counter()
            sig_step = seg.signature
            instance = self.instances[sig_step.sid]
            sidecar = instance.signature(
                table,
                table.column(io.ROW_ID).combine_chunks(),
                table.column(self.id_column).combine_chunks(),
            )
            if "sidecar" not in writers:
                writers["sidecar"] = io.AtomicParquetWriter(
                    layout.sidecar(sig_step.sid, unit.name), sidecar.schema, compression
                )
            writers["sidecar"].write(sidecar)
            stats[sig_step.sid]["signature_rows"] += table.num_rows
            stats[sig_step.sid]["signature_seconds"] += time.perf_counter() - t0
        last = seg.index == len(self.segments) - 1
        out = table.drop_columns([io.ROW_ID]) if last else table
        out = out.replace_schema_metadata(
            {**(out.schema.metadata or {}), SCORES_KEY: self._scores_metadata(out.schema)}
        )
        if "data" not in writers:
            fmt = self.config.output.format if last else "parquet"
            path = layout.data(unit.name, fmt) if last else layout.segment(seg.index, unit.name)
            writers["data"] = (
                io.AtomicParquetWriter(path, out.schema, compression)
                if fmt == "parquet"
                else io.AtomicJsonlWriter(path, out.schema)
            )
        writers["data"].write(out)
        if "rejected" not in writers:
            writers["rejected"] = io.AtomicParquetWriter(
                layout.rejected(seg.index, unit.name), ledger_schema, compression
            )
        rejected = 0
        for reason, rows, reason_arr in ledger_parts:
            writers["rejected"].write(
                self._ledger_rows(
                    rows, reason_arr if reason_arr is not None else reason, ledger_schema
                )
            )
            rejected += rows.num_rows
        return out.num_rows, rejected
