"""Steps bound to a config, segments between global steps, and one work unit's life: its reader,
the batch chain (`curate.chain`) and its writer (`curate.unit_writer`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ValidationError

from curate import io, mapper, plugins, stages
from curate.chain import LEDGER_COLUMNS, SCORES_KEY, Chain, StepError, UnitCounts
from curate.config import ConfigError, PipelineConfig, StepConfig, format_validation_error
from curate.decisions import DecisionSlice
from curate.filter import Filter, GlobalStep
from curate.unit_writer import Layout, UnitWriter

__all__ = [
    "LEDGER_COLUMNS",
    "SCORES_KEY",
    "BoundStep",
    "Layout",
    "Segment",
    "StepError",
    "UnitProcessor",
    "bind_steps",
    "build_instances",
    "plan_segments",
]


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


def build_instances(steps: list[BoundStep], text_column: str) -> dict[str, Filter | GlobalStep]:
    """Every step's instance, by step id: the one place a worker builds them (no model loaded)."""
    return {s.sid: stages.build(s, text_column) for s in steps}


def setup_step(sid: str, instance: Any) -> None:
    """Load a step's models; a failure is a StepError naming the step."""
    try:
        instance.setup()
    except Exception as exc:
        raise StepError(f"step '{sid}' failed to set up: {type(exc).__name__}: {exc}") from exc


class UnitProcessor:
    """One unit through one segment: reader -> batch chain -> unit writer. Knows nothing of Ray."""

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
        self.segments = plan_segments(steps)
        self.layout = Layout(config.output.path)
        self.instances = build_instances(steps, config.input.text_column)
        mapper.configure(self.instances, config.output.record_changes)
        # Steps whose score columns the input already holds: thresholds only, no model loaded.
        self.reused = {
            sid: {f"{sid}_{m}": t for m, t in metrics.items()}
            for sid, metrics in (reused or {}).items()
        }
        self.chain = Chain(config, self.segments, self.instances, self.reused, stale_columns)

    def setup(self) -> None:
        for sid, instance in self.instances.items():
            if sid not in self.reused:
                setup_step(sid, instance)

    def _read(self, seg_index: int, unit: io.WorkUnit) -> tuple[Iterator, pa.Schema | None]:
        """The unit's batches for this segment, and its schema (None when it is not known)."""
        batch_size = self.config.input.batch_size
        if seg_index == 0 and unit.shard.format != "parquet":
            return io.read_unit(unit, batch_size), io.unit_schema(unit)
        if seg_index == 0:  # schema and batches from one open: one footer read
            schema, batches = io.open_unit(unit, batch_size)
            return batches, schema
        # The previous segment's file as its manifest names it (attempt-unique on stores); a
        # unit that kept no row there wrote none.
        previous = io.read_json(self.layout.manifest(seg_index - 1, unit.name))
        uri = previous.get("files", {}).get("data")
        if not uri:
            return iter(()), None
        src = io.WorkUnit(
            unit.index, io.Shard(unit.shard.index, uri, unit.name, "parquet", None), None, 0
        )
        schema, batches = io.open_unit(src, batch_size)
        return batches, schema

    def process(self, seg_index: int, unit: io.WorkUnit, decision: Any = None) -> dict[str, Any]:
        """Stream one unit through one segment; publish its files; return its summary."""
        seg = self.segments[seg_index]
        last = seg_index == len(self.segments) - 1
        started = time.perf_counter()
        batches, schema = self._read(seg_index, unit)
        if seg.apply is not None:  # this unit's slice of the decision, read once
            decision = (
                DecisionSlice.of(decision)
                if decision is None or isinstance(decision, pa.Table)
                else DecisionSlice.read(decision["shards"], unit)
            )
        signature = seg.signature.sid if seg.signature else None
        writer = UnitWriter(self.layout, self.config.output, seg_index, unit.name, last, signature)
        counts = UnitCounts.start(seg, self.reused)
        first_row = unit.first_row
        try:
            seen_any = False
            for batch in batches:
                seen_any = True
                result = self.chain.run(
                    seg_index, pa.Table.from_batches([batch]), unit, first_row, decision
                )
                first_row += batch.num_rows
                writer.write(result.kept, result.rejected, result.sidecar)
                counts.add(result)
            if not seen_any and schema is not None:
                # An empty unit still meets the input checks (its columns); it writes no file.
                empty = schema.empty_table()
                counts.add(self.chain.run(seg_index, empty, unit, first_row, decision))
            files = writer.commit()
        except BaseException:
            writer.abort()
            raise
        summary = {
            "unit": unit.name,
            "run": self.run_key,
            "shard": [unit.shard.uri, unit.shard.size, unit.shard.mtime_ns],
            "source": unit.describe(),
            "segment": seg_index,
            "input": counts.checks if seg_index == 0 else {"rows": counts.checks["rows"]},
            "steps": counts.steps,
            "kept": counts.kept,
            "rejected": counts.rejected,
            "seconds": round(time.perf_counter() - started, 4),
            "final": last,
            # What this unit published: readers trust these names, never a folder listing. A
            # file that would hold no row is not written (the counts above still say so).
            "files": files,
        }
        writer.publish(summary)
        return summary
