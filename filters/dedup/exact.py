"""The `exact_dedup` step: drop documents whose normalised text (or a column) was seen before."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field

from curate.filter import GlobalStep, ParallelMap, Resources
from curate_filters.dedup.indexed import IndexedDedup, IndexParams
from curate_filters.dedup.normalize import NormParams, normalize
from curate_filters.dedup.shuffle import DECISION_SCHEMA, bucket_dedup
from curate_filters.dedup.signatures import string_buffers


class ExactDedupParams(NormParams, IndexParams):
    """Parameters of the `exact_dedup` step."""

    strip_punctuation: bool = Field(
        False, description="Replace Unicode punctuation and symbols with a space before hashing."
    )
    column: str | None = Field(
        None, description="Hash this column (e.g. `url`) instead of the text column."
    )
    partitions: int | None = Field(
        None, ge=1, description="Shuffle partitions (default: one per ~4M hashes)."
    )


def content_hashes(text: pa.StringArray) -> np.ndarray:
    """xxh3-128 of each string's UTF-8 bytes as an `(n, 2)` uint64 array (high, low)."""
    data, offsets = string_buffers(text)
    mv = memoryview(data)
    bounds = offsets.tolist()
    digest = b"".join(
        xxhash.xxh3_128_digest(mv[s:e]) for s, e in zip(bounds[:-1], bounds[1:], strict=True)
    )
    return np.frombuffer(digest, dtype=">u8").astype(np.uint64).reshape(-1, 2)


class ExactDedup(IndexedDedup, GlobalStep):
    """Drop exact duplicates after normalisation: the first occurrence by row id survives.

    Sidecar rows: `row_id`, `id` (the user's id as a string), `hash_hi`, `hash_lo` (xxh3-128).
    """

    step_name = "exact_dedup"
    Params: ClassVar[type[ExactDedupParams]] = ExactDedupParams
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=8192)
    defaults: ClassVar[dict[str, Any]] = {"cluster_size": 1}

    def sidecar_schema(self) -> pa.Schema:
        """Schema of the sidecar tables `signature` returns."""
        return pa.schema(
            [
                ("row_id", pa.int64()),
                ("id", pa.string()),
                ("hash_hi", pa.uint64()),
                ("hash_lo", pa.uint64()),
            ]
        )

    def signature(self, batch: pa.Table, row_ids: pa.Int64Array, ids: pa.Array) -> pa.Table:
        column = self.params.column
        source = batch.column(column) if column else self.text(batch)
        if not pa.types.is_string(source.type) and not pa.types.is_large_string(source.type):
            source = pc.cast(source, pa.string())
        text = normalize(source, self.params)
        hashes = content_hashes(text)
        # A null or blank value (a missing url, say) is not a duplicate of another blank one.
        present = np.asarray(pc.greater(pc.binary_length(text), 0))
        if isinstance(source, pa.ChunkedArray):
            source = source.combine_chunks()
        present &= np.asarray(source.is_valid()) if len(source) else present
        mask = pa.array(present)
        id_col = pc.cast(ids if ids is not None else row_ids, pa.string())
        return pa.table(
            {
                "row_id": pc.filter(pa.array(row_ids, pa.int64()), mask),
                "id": pc.filter(id_col, mask),
                "hash_hi": pa.array(hashes[present, 0]),
                "hash_lo": pa.array(hashes[present, 1]),
            },
            schema=self.sidecar_schema(),
        )

    def decide(self, sidecars: list[str], parallel_map: ParallelMap, workdir: str) -> pa.Table:
        """Group equal hashes through the shuffle; every group keeps its smallest row id.

        The driver holds file names only; see `shuffle` for the phases.
        """
        groups = [["hash_hi", "hash_lo"]]
        return bucket_dedup(sidecars, groups, parallel_map, workdir, self.params.partitions)

    def key_groups(self) -> list[list[str]]:
        """The sidecar columns that form one bucket key, per bucket family."""
        return [["hash_hi", "hash_lo"]]

    def decision_schema(self) -> dict[str, pa.DataType]:
        return dict(DECISION_SCHEMA)
