"""Steps by declared resources: what runs on CPU actors, what gets its own GPU pool, batch sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from curate.filter import Filter, Resources
from curate.mapper import Mapper

if TYPE_CHECKING:  # process builds its instances here
    from curate.process import BoundStep


def resources(step: BoundStep) -> Resources:
    """The step's declared resources, with the config's `resources:` overrides applied."""
    declared = step.cls.resources
    override = step.config.resources or {}
    return Resources(
        cpus=float(override.get("cpus", declared.cpus)),
        gpus=float(override.get("gpus", declared.gpus)),
        batch_size=int(override.get("batch_size", declared.batch_size)),
    )


def offloaded(steps: list[BoundStep], reused: dict[str, Any] | None = None) -> list[BoundStep]:
    """GPU filters that run on a pool of their own; their scores travel back to the CPU actors.

    Only a plain filter qualifies (a pure batch -> scores function, `keep` applied where the
    batch is); a GPU mapper or global step stays in the chain, its GPU reserved by every actor.
    A step whose stored scores are reused loads no model, so it needs no GPU at all."""
    return [
        s
        for s in steps
        if resources(s).gpus > 0
        and issubclass(s.cls, Filter)
        and not issubclass(s.cls, Mapper)
        and s.sid not in (reused or {})
    ]


def chain_reservation(steps: list[BoundStep], away: list[BoundStep]) -> Resources:
    """What one CPU actor reserves: the most any step it runs itself needs."""
    here = [s for s in steps if s.sid not in {a.sid for a in away}]
    return Resources(
        cpus=max((resources(s).cpus for s in here), default=1.0),
        gpus=max((resources(s).gpus for s in here), default=0.0),
    )


def build(step: BoundStep, text_column: str) -> Any:
    """The step's instance for a worker; a filter's `score` sees at most its batch size."""
    instance = step.build(text_column)
    if isinstance(instance, Filter) and not isinstance(instance, Mapper):
        return BatchLimited(instance, resources(step).batch_size)
    return instance


class BatchLimited:
    """A filter whose `score` is called on slices of at most `batch_size` rows, the scores
    concatenated in order: a step declares the batch its model fits (GPU memory, a forward
    pass) whatever batch size the input streams. Everything else is the filter's own."""

    def __init__(self, step: Filter, batch_size: int) -> None:
        self.step = step
        self.batch_size = batch_size

    def score(self, batch: pa.Table) -> dict[str, Any]:
        if batch.num_rows <= self.batch_size:
            return self.step.score(batch)
        parts = [
            self.step.score(batch.slice(start, self.batch_size))
            for start in range(0, batch.num_rows, self.batch_size)
        ]
        return {name: pa.concat_arrays([as_array(p[name]) for p in parts]) for name in parts[0]}

    def __getattr__(self, name: str) -> Any:
        # keep, setup, token_columns, params ...: the filter's own (only score is sliced).
        if name == "step":  # not set yet (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.step, name)


def as_array(values: Any) -> pa.Array:
    """Scores as one Arrow array, whatever a step returned (chunked, numpy, a list)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values if isinstance(values, pa.Array) else pa.array(values)
