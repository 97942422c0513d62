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


OVERSAMPLE = 4  # row groups read: enough for this many times the sample, then rows drawn


def sample_text(path: str, column: str, size: int, seed: int) -> pa.Array:
    """Up to `size` texts, the same on every worker, reading about OVERSAMPLE x size rows.

    Parquet row groups (over files sorted by path) are taken in a seeded random order until
    they hold OVERSAMPLE x `size` rows; `size` rows are then drawn uniformly from those. So
    a worker reads a bounded slice of a pool of any size, spread over the whole pool, rather
    than every row group that one uniformly drawn row happens to fall in. JSONL files are read
    whole.
    """
    files = text_files(path)
    rng = np.random.default_rng(seed)
    if all(f.endswith(".parquet") for f in files):
        groups = [
            (f, g, pf.metadata.row_group(g).num_rows)
            for f in files
            for pf in [pq.ParquetFile(f)]
            for g in range(pf.num_row_groups)
        ]
        order = rng.permutation(len(groups))
        rows = np.cumsum([groups[i][2] for i in order])
        enough = int(np.searchsorted(rows, OVERSAMPLE * size)) + 1
        chosen = sorted(order[:enough].tolist())
        texts = _read_groups(column, [groups[i] for i in chosen])
    else:
        texts = pa.concat_arrays([_read_file(f, column) for f in files])
    texts = texts.filter(pc.is_valid(texts))
    if len(texts) > size:
        texts = texts.take(pa.array(np.sort(rng.choice(len(texts), size, replace=False))))
    return texts


def _read_groups(column: str, groups: list[tuple[str, int, int]]) -> pa.Array:
    """One column of the given (file, row group) pairs, in that order."""
    parts = []
    for path in dict.fromkeys(f for f, _, _ in groups):
        pf = pq.ParquetFile(path)
        if column not in pf.schema_arrow.names:
            raise SampleError(f"{path} has no column '{column}' (columns: {pf.schema_arrow.names})")
        wanted = [g for f, g, _ in groups if f == path]
        table = pf.read_row_groups(wanted, columns=[column])
        parts.append(table.column(column).combine_chunks().cast(pa.string()))
    return pa.concat_arrays(parts) if parts else pa.array([], pa.string())


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
