"""The step protocols: Filter (score a batch, then keep) and GlobalStep (needs the whole corpus)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base for step parameters: unknown keys are errors."""

    # strict: `min_doc_words: true` is a mistake, not 1 (a float param still takes an int).
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), strict=True)


class Resources(BaseModel):
    """What one worker needs to run a step: the runner sizes actors from these hints."""

    model_config = ConfigDict(extra="forbid")
    cpus: float = 1.0
    gpus: float = 0.0
    batch_size: int = 2048


class _ModelPathMarker:
    """Marks a params field as a model file: the runner hashes it and ships it to workers."""


ModelPath = Annotated[str, _ModelPathMarker()]


class Step:
    """What every step has: validated params, resource hints, a text column, a `setup` hook.

    `__init__` must stay cheap and picklable; load models in `setup`.
    """

    Params: ClassVar[type[BaseModel]] = Params
    resources: ClassVar[Resources] = Resources()
    # Params that only `keep` reads: a later run that changes only these re-thresholds the
    # stored scores without re-scoring. Any other param change means the scores are redone.
    threshold_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: BaseModel | None = None, text_column: str = "text") -> None:
        self.params = params if params is not None else self.Params()
        self.text_column = text_column

    def setup(self) -> None:
        """Load models; called once per worker before any batch."""

    def token_columns(self, sid: str) -> list[str]:
        """Columns holding per-row token counts (the funnel sums them per step); none by default."""
        return []

    def text(self, batch: pa.Table) -> pa.ChunkedArray:
        """The text column of a batch, as configured for the pipeline."""
        return batch.column(self.text_column)

    def references(self, owner: str) -> dict[str, str]:
        """Files besides the input and models that decide this step's output (an eval set, a
        dedup index), with their sha256: the plan records them, so a changed one makes a
        different run. `owner` is `<output folder>#<step id>` (what this run itself may have
        added is not a reference)."""
        return {}


class Filter(Step):
    """A pure function of a batch: `score` gives one value per row, `keep` thresholds the scores.

    The runner names score columns `<step id>_<metric>`, so a filter returns bare metric names.
    """

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        raise NotImplementedError

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        raise NotImplementedError


class RowFilter(Filter):
    """Convenience for plugins that score one text at a time (slow path: prefer `Filter`).

    Subclasses define `score_text(text) -> dict[str, value]` and `schema: dict[str, pa.DataType]`.
    """

    schema: ClassVar[dict[str, pa.DataType]] = {}

    def score_text(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        rows = [self.score_text(t) for t in self.text(batch).to_pylist()]
        return {
            name: pa.array([row[name] for row in rows], type=dtype)
            for name, dtype in self.schema.items()
        }


ParallelMap = Callable[[Callable[..., Any], Iterable[Any]], list[Any]]


class GlobalStep(Step):
    """A step that must see the whole corpus before it can decide (dedup).

    It splits the pipeline into segments. In the segment before it, `signature` runs on workers
    next to the filters and its rows are written as sidecar Parquet. Then `decide` runs on the
    driver over those sidecar files and returns a decision table. The next segment drops the rows
    the decision marks and annotates the others, without calling the step again.

    The decision table has a sorted, unique int64 `row_id` column (the dense row ids the runner
    handed to `signature`), a boolean `drop` column, and any annotation columns: they become
    the step's score columns `<step id>_<column>`. Rows absent from it are kept, annotations null,
    except columns listed in `defaults`, which take that value.
    """

    defaults: ClassVar[dict[str, Any]] = {}

    def signature(self, batch: pa.Table, row_ids: pa.Int64Array, ids: pa.Array) -> pa.Table:
        """Sidecar rows for this batch; `row_ids` are dense int64 ids, `ids` the user's ids."""
        raise NotImplementedError

    def decide(self, sidecars: list[str], parallel_map: ParallelMap, workdir: str) -> pa.Table:
        """Read the sidecar files, return the decision table (see the class docstring).

        `parallel_map(fn, items)` runs `fn` over items on the cluster (or in process); an
        item that meets a transient storage error is run again (up to `storage.retries` times),
        so `fn` must be safe to repeat: write its own files whole, tolerate a file it deletes
        being gone. `workdir` is a folder for intermediate files that a person can open.
        """
        raise NotImplementedError

    def decision_schema(self) -> dict[str, pa.DataType]:
        """Types of the annotation columns `decide` returns (besides row_id and drop)."""
        return {}

    def decide_sharded(
        self,
        sidecars: list[str],
        parallel_map: ParallelMap,
        workdir: str,
        outdir: str,
        compression: str = "zstd",
    ) -> dict[str, Any]:
        """Decide and write the decision per source shard under `outdir`; what the runner calls.

        Returns `{"shards": {"<shard index>": uri}, "decision_rows": n, "to_drop": k}`; a unit
        then reads only its shard's file. This default splits the table `decide` returns; a
        step whose decision is too big for the driver (dedup) writes the files from its tasks.
        """
        from curate.decisions import write_by_shard

        return write_by_shard(self.decide(sidecars, parallel_map, workdir), outdir, compression)
