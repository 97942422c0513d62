"""The `line_dedup` global step: remove lines repeated across the corpus (cc_net style)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from curate.filter import ParallelMap, Params, Resources
from curate.io import ROW_ID, filesystem
from curate.mapper import (
    CHANGES,
    CHARS_REMOVED,
    REMOVED,
    REMOVED_TYPE,
    MapResult,
    RewritingGlobalStep,
)
from curate_filters.dedup import shuffle
from curate_filters.dedup.normalize import NormParams, normalize
from curate_filters.dedup.partfiles import PieceIndex, read_pieces
from curate_filters.dedup.signatures import string_hashes64

_LINES_PER_PARTITION = 8_000_000
_LINES_PER_SCATTER = 4_000_000


class LineDedupParams(Params):
    """Parameters of the `line_dedup` step."""

    max_count: int = Field(
        1,
        ge=1,
        description="A line found more than this many times in the corpus keeps only its first "
        "occurrence (in corpus order); 1 = every repeat is removed, as cc_net does.",
    )
    min_chars: int = Field(
        1, ge=1, description="Lines shorter than this after normalisation are never removed."
    )
    partitions: int | None = Field(
        None, ge=1, description="Shuffle partitions (default: one per ~8M lines)."
    )


def split_lines(text: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Every line of every text (split on '\\n'), its document and its index in the document."""
    lists = pc.split_pattern(pc.fill_null(text, ""), "\n")
    parent = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = lists.offsets.to_numpy() - lists.offsets[0].as_py()
    position = np.arange(len(parent), dtype=np.int64) - offsets[parent]
    return pc.list_flatten(lists), parent, position.astype(np.int32)


# cc_net's normalize_for_dedup: lower case, digits to 0, punctuation removed, spaces collapsed.
_NORM = NormParams(lowercase=True, strip_punctuation=True, nfkc=True, digits_to_zero=True)


def line_hashes(lines: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hash of each line after cc_net-style normalisation, and its normalised bytes."""
    norm = normalize(lines, _NORM)
    return string_hashes64(norm), np.asarray(pc.binary_length(norm), np.int64)


_SCATTERED = pa.schema([("key_0", pa.uint64()), ("key_1", pa.uint64()), ("row_id", pa.int64())])


def gather_repeats(task: tuple[list, str, int]) -> str:
    """For one partition: the `(row_id, line)` of every occurrence to remove; returns the file."""
    pieces, out_path, max_count = task
    table = read_pieces(pieces, _SCATTERED)
    line = table.column("key_0").to_numpy().astype(np.int32)
    key = table.column("key_1").to_numpy()
    rows = table.column("row_id").to_numpy()
    order = np.lexsort([line, rows, key])  # by hash, then corpus order: the first survives
    key, rows, line = key[order], rows[order], line[order]
    start = np.ones(len(key), bool)
    start[1:] = key[1:] != key[:-1]
    group = np.cumsum(start) - 1
    sizes = np.bincount(group) if len(group) else np.zeros(0, np.int64)
    remove = ~start & (sizes[group] > max_count)
    fs, path = filesystem(out_path)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(pa.table({"row_id": rows[remove], "line": line[remove]}), path, filesystem=fs)
    return out_path


class LineDedup(RewritingGlobalStep):
    """Remove lines that occur more than `max_count` times across the corpus (cc_net's line
    dedup), keeping the first occurrence in corpus order (shard, row, line).

    Lines are split on '\\n' and hashed after cc_net's dedup normalisation (NFKC, lower case,
    digits to 0, punctuation and symbols removed, spaces collapsed). The hashes go through the
    same distributed shuffle as `exact_dedup`; the decision lists, per document, the lines to
    remove, and the next segment rewrites the text. A document left empty is rejected with
    reason `line_dedup`.
    Scores: `changes` (lines removed), `chars_removed`.
    """

    Params: ClassVar[type[LineDedupParams]] = LineDedupParams
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=4096)
    defaults: ClassVar[dict[str, Any]] = {CHANGES: 0, CHARS_REMOVED: 0}

    def sidecar_schema(self) -> pa.Schema:
        return pa.schema([("row_id", pa.int64()), ("line", pa.int32()), ("hash", pa.uint64())])

    def signature(self, batch: pa.Table, row_ids: pa.Int64Array, ids: pa.Array) -> pa.Table:
        text = self.text(batch)
        text = text.combine_chunks() if text.num_chunks else pa.array([], pa.string())
        lines, parent, position = split_lines(text)
        hashes, length = line_hashes(lines)
        counted = length >= self.params.min_chars
        row_ids = np.asarray(row_ids.to_numpy(zero_copy_only=False), np.int64)
        return pa.table(
            {
                "row_id": row_ids[parent[counted]],
                "line": position[counted],
                "hash": hashes[counted],
            },
            schema=self.sidecar_schema(),
        )

    def decide(self, sidecars: list[str], parallel_map: ParallelMap, workdir: str) -> pa.Table:
        """Shuffle line hashes by hash; every partition lists the repeats to remove."""
        work = workdir.rstrip("/")
        sources, rows, _ = shuffle.plan_sources(sorted(sidecars), [], parallel_map)
        total = sum(rows)
        n_parts = self.params.partitions or min(
            1024, max(1, math.ceil(total / _LINES_PER_PARTITION))
        )
        groups = [["line", "hash"]]  # the hash last: scatter partitions on the last key
        tasks = [
            (group, groups, n_parts, f"{work}/buckets/scatter-{i:05d}.parquet")
            for i, group in enumerate(shuffle._batches(sources, rows, _LINES_PER_SCATTER))
        ]
        by = PieceIndex(parallel_map(shuffle.scatter, tasks))
        gather_tasks = [
            (by.pieces(p), f"{work}/repeats/part-{p:05d}.parquet", self.params.max_count)
            for p in by.partitions()
        ]
        files = parallel_map(gather_repeats, gather_tasks)
        if not files:
            return self.empty_decision()
        repeats = pa.concat_tables([shuffle._read(p) for p in files])
        rows = repeats.column("row_id").to_numpy()
        line = repeats.column("line").to_numpy()
        order = np.lexsort([line, rows])
        rows, line = rows[order], line[order]
        start = np.ones(len(rows), bool)
        start[1:] = rows[1:] != rows[:-1]
        offsets = np.append(np.flatnonzero(start), len(rows)).astype(np.int32)
        return pa.table(
            {
                "row_id": pa.array(rows[start], pa.int64()),
                "drop": pa.array(np.zeros(int(start.sum()), bool)),
                "removed_lines": pa.ListArray.from_arrays(
                    pa.array(offsets), pa.array(line, pa.int32())
                ),
            }
        )

    def empty_decision(self) -> pa.Table:
        return pa.table(
            {
                "row_id": pa.array([], pa.int64()),
                "drop": pa.array([], pa.bool_()),
                "removed_lines": pa.array([], pa.list_(pa.int32())),
            }
        )

    def decision_schema(self) -> dict[str, pa.DataType]:
        schema = {CHANGES: pa.int64(), CHARS_REMOVED: pa.int64()}
        return {**schema, REMOVED: REMOVED_TYPE} if self.record_changes else schema

    def rewrite(self, batch: pa.Table, decision: pa.Table) -> MapResult:
        """The batch's text without the lines the decision removes."""
        text = self.text(batch)
        text = text.combine_chunks() if text.num_chunks else pa.array([], pa.string())
        n = len(text)
        dec_ids = decision.column("row_id").to_numpy()
        found = np.zeros(n, bool)
        if n and len(dec_ids):
            row_ids = batch.column(ROW_ID).to_numpy()
            pos = np.searchsorted(dec_ids, row_ids)
            clip = np.minimum(pos, len(dec_ids) - 1)
            found = (pos < len(dec_ids)) & (dec_ids[clip] == row_ids)
        if not found.any():
            empty = pa.array([[] for _ in range(n)], REMOVED_TYPE) if self.record_changes else None
            return MapResult(text, pa.array(np.zeros(n, np.int64)), removed=empty)
        lines, parent, position = split_lines(text)
        removed_lists = decision.column("removed_lines").take(pa.array(clip[found]))
        # A global key per line: (row in batch, line index), to test membership with isin.
        rows_in_batch = np.flatnonzero(found)
        flat = pc.list_flatten(removed_lists).to_numpy().astype(np.int64)
        flat_parent = rows_in_batch[pc.list_parent_indices(removed_lists).to_numpy()]
        width = np.int64(1) << 32
        drop = np.isin(parent * width + position, flat_parent * width + flat)
        keep = ~drop
        counts = np.bincount(parent[keep], minlength=n)[:n]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        kept = pa.ListArray.from_arrays(pa.array(offsets), lines.filter(pa.array(keep)))
        new_text = pc.binary_join(kept, "\n")
        changes = np.bincount(parent[drop], minlength=n)[:n].astype(np.int64)
        removed = None
        if self.record_changes:
            dcounts = np.bincount(parent[drop], minlength=n)[:n]
            doffsets = np.concatenate([[0], np.cumsum(dcounts)]).astype(np.int32)
            removed = pa.ListArray.from_arrays(pa.array(doffsets), lines.filter(pa.array(drop)))
        return MapResult(new_text, pa.array(changes), removed=removed)
