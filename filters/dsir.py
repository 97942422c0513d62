"""The `dsir` step: log importance weight of each document toward a target (Xie et al., 2023)."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq
from pydantic import Field

from curate.filter import Filter, ModelPath, Params, Resources
from curate_filters._ngrams import feature_counts, ngram_features

_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")


class SampleError(ValueError):
    """A target or pool sample could not be read; the message names the file and column."""


def text_files(path: str) -> list[str]:
    """Parquet/JSONL files of a file, folder or glob, in sorted (deterministic) order."""
    if os.path.isdir(path):
        found = sorted(str(p) for p in Path(path).rglob("*") if p.name.endswith(_SUFFIXES))
    elif glob.has_magic(path):
        found = sorted(glob.glob(path, recursive=True))
    else:
        found = [path] if os.path.isfile(path) else []
    if not found:
        raise SampleError(f"no Parquet or JSONL files at {path}")
    return found


def _read_file(path: str, column: str) -> pa.Array:
    try:
        if path.endswith(".parquet"):
            table = pq.read_table(path, columns=[column])
        else:
            with pa.input_stream(path, compression="detect") as stream:
                table = pajson.read_json(stream)
    except (OSError, pa.ArrowException) as exc:
        raise SampleError(f"cannot read {path}: {exc}") from exc
    if column not in table.column_names:
        raise SampleError(f"{path} has no column '{column}' (columns: {table.column_names})")
    return table.column(column).combine_chunks().cast(pa.string())


def sample_text(path: str, column: str, size: int, seed: int) -> pa.Array:
    """Up to `size` texts drawn uniformly without replacement, the same on every worker.

    Rows are picked by a seeded generator over the row counts of the files (sorted by path);
    Parquet files are read only for the row groups that hold a picked row.
    """
    files = text_files(path)
    counts = []
    for f in files:
        counts.append(pq.ParquetFile(f).metadata.num_rows if f.endswith(".parquet") else None)
    parts = []
    if all(c is not None for c in counts) and sum(counts) > size:
        total = sum(counts)
        picked = np.sort(np.random.default_rng(seed).choice(total, size, replace=False))
        starts = np.cumsum([0, *counts])
        for i, f in enumerate(files):
            rows = picked[(picked >= starts[i]) & (picked < starts[i + 1])] - starts[i]
            if len(rows):
                parts.append(_take_rows(f, column, rows))
    else:
        texts = pa.concat_arrays([_read_file(f, column) for f in files])
        if len(texts) > size:
            picked = np.sort(np.random.default_rng(seed).choice(len(texts), size, replace=False))
            texts = texts.take(pa.array(picked))
        parts.append(texts)
    texts = pa.concat_arrays(parts) if parts else pa.array([], pa.string())
    return texts.filter(pc.is_valid(texts))


def _take_rows(path: str, column: str, rows: np.ndarray) -> pa.Array:
    """Rows of one Parquet column, reading only the row groups they fall in."""
    pf = pq.ParquetFile(path)
    if column not in pf.schema_arrow.names:
        raise SampleError(f"{path} has no column '{column}' (columns: {pf.schema_arrow.names})")
    sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    bounds = np.cumsum([0, *sizes])
    groups = np.unique(np.searchsorted(bounds, rows, side="right") - 1)
    table = pf.read_row_groups(groups.tolist(), columns=[column])
    local = np.concatenate([np.arange(bounds[g], bounds[g + 1]) for g in groups])
    where = np.searchsorted(local, rows)
    return table.column(column).combine_chunks().cast(pa.string()).take(pa.array(where))


def log_probabilities(counts: np.ndarray, alpha: float) -> np.ndarray:
    """log p of each hashed feature, add-alpha smoothed so unseen features stay finite."""
    return np.log(counts + alpha) - np.log(counts.sum() + alpha * len(counts))


class DSIR(Filter):
    """Scores each document with its DSIR log importance weight (annotate only).

    Two bag-of-hashed-n-gram models (word unigrams + bigrams into `num_buckets` buckets) are fit
    in `setup()`: one on a sample of `target`, one on a sample of `pool` (the raw corpus you
    select from; usually the pipeline's input). A document's score is
    sum over its features of log p_target(f) - log p_pool(f). The pool is a param, not read
    from the pipeline's input, so the step stays a pure function of its params: the samples are
    drawn with a fixed seed over files sorted by path, so every worker fits the same model. The
    target is a model file (hashed into run.yaml, shipped to cluster nodes); the pool is only
    sampled, so it must be readable where the workers run.
    """

    class Params(Params):
        target: ModelPath = Field(
            description="Target text: a Parquet/JSONL file or folder (e.g. Wikipedia, your "
            "in-domain sample)."
        )
        # A plain path, not a ModelPath: the pool is the corpus, too big to hash or ship.
        pool: str = Field(
            description="The raw pool: a Parquet/JSONL file, folder or glob that every worker "
            "can read, usually the pipeline's input (a deterministic sample of it is read)."
        )
        target_text_column: str = Field("text", description="Text column of the target files.")
        pool_text_column: str = Field("text", description="Text column of the pool files.")
        num_buckets: int = Field(10_000, gt=0, description="Hash buckets of the n-gram model.")
        target_sample: int = Field(100_000, gt=0, description="Target documents read at most.")
        pool_sample: int = Field(100_000, gt=0, description="Pool documents sampled at most.")
        smoothing: float = Field(1.0, gt=0, description="Add-alpha smoothing of the counts.")
        seed: int = Field(0, description="Seed of the target and pool samples.")

    resources: ClassVar[Resources] = Resources(cpus=1.0)

    def setup(self) -> None:
        p = self.params
        target = sample_text(p.target, p.target_text_column, p.target_sample, p.seed)
        pool = sample_text(p.pool, p.pool_text_column, p.pool_sample, p.seed)
        if len(target) == 0 or len(pool) == 0:
            empty = p.target if len(target) == 0 else p.pool
            raise SampleError(f"{empty} holds no text to fit the dsir model on")
        self.fit(target, pool)

    def fit(self, target: pa.Array, pool: pa.Array) -> None:
        """Fit both n-gram models; `log_ratio[f]` is each feature's log importance."""
        nb, alpha = self.params.num_buckets, self.params.smoothing
        self.target_counts = _batched_counts(target, nb)
        self.pool_counts = _batched_counts(pool, nb)
        self.log_ratio = log_probabilities(self.target_counts, alpha) - log_probabilities(
            self.pool_counts, alpha
        )

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        text = self.text(batch)
        n = batch.num_rows
        if n == 0:
            return {"log_weight": pa.array([], pa.float64())}
        rows, buckets = ngram_features(text, self.params.num_buckets)
        weights = np.bincount(rows, weights=self.log_ratio[buckets], minlength=n)
        return {"log_weight": pa.array(weights, pa.float64())}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pa.array(np.ones(len(scores["log_weight"]), bool))


def _batched_counts(texts: pa.Array, num_buckets: int, batch: int = 4096) -> np.ndarray:
    counts = np.zeros(num_buckets, np.float64)
    for lo in range(0, len(texts), batch):
        counts += feature_counts(texts.slice(lo, batch), num_buckets)
    return counts
