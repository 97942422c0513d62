"""Audit a finished dedup run: exact Jaccard of sampled removed documents vs their survivors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import yaml

from curate_filters.dedup.lsh import effective_threshold
from curate_filters.dedup.normalize import normalize
from curate_filters.dedup.step import MinHashParams


class AuditError(ValueError):
    """The output folder cannot be audited; the message says what is missing and where."""


@dataclass
class AuditReport:
    """What `audit` found: per sampled removed document, its exact Jaccard to its survivor."""

    step: str
    removed: int
    sampled: int
    missing_survivor: int
    threshold: float
    effective_threshold: float
    jaccard: np.ndarray = field(repr=False)
    cluster_sizes: np.ndarray = field(repr=False)

    @property
    def precision(self) -> float:
        """Share of sampled pairs whose exact Jaccard reaches the threshold."""
        return float(np.mean(self.jaccard >= self.threshold)) if len(self.jaccard) else float("nan")

    def histogram(self) -> list[tuple[float, float, int]]:
        """Counts of sampled pairs per 0.1-wide Jaccard bin."""
        counts, edges = np.histogram(self.jaccard, bins=np.linspace(0, 1, 11))
        return [
            (float(lo), float(hi), int(c))
            for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
        ]


def _step_params(config: dict, step: str, where: Path) -> MinHashParams:
    for entry in config.get("steps") or []:
        if entry.get("id", entry.get("use")) == step:
            params = dict(entry.get("params") or {})
            known = set(MinHashParams.model_fields)
            return MinHashParams(**{k: v for k, v in params.items() if k in known})
    raise AuditError(f"{where} has no step with id {step!r}; pass --step with one of its step ids")


def _shingles(texts: list[str], params: MinHashParams) -> list[set[str]]:
    out = []
    n = params.ngram
    for t in texts:
        units = (t.split(" ") if t else []) if params.shingle == "word" else list(t)
        sep = " " if params.shingle == "word" else ""
        out.append(
            {sep.join(units[i : i + n]) for i in range(max(len(units) - n + 1, min(1, len(units))))}
        )
    return out


def audit(out: str | Path, step: str = "minhash", sample: int = 200, seed: int = 0) -> AuditReport:
    """Sample documents the step removed, fetch their survivors, and measure true similarity."""
    out = Path(out)
    run_yaml = out / "run.yaml"
    if not run_yaml.exists():
        raise AuditError(f"{run_yaml} does not exist: is {out} the output folder of a curate run?")
    config = yaml.safe_load(run_yaml.read_text()) or {}
    params = _step_params(config, step, run_yaml)
    text_col = (config.get("input") or {}).get("text_column") or "text"
    id_col = (config.get("input") or {}).get("id_column") or "id"
    dup_col, size_col = f"{step}_duplicate_of", f"{step}_cluster_size"
    rejected_files = sorted((out / "rejected").glob("*.parquet"))
    if not rejected_files:
        raise AuditError(f"{out / 'rejected'} holds no Parquet files: nothing was removed")
    rejected = ds.dataset(rejected_files)
    for column in ("id", "text", "reason", dup_col):
        if column not in rejected.schema.names:
            raise AuditError(f"{out / 'rejected'} has no column {column!r}")
    from curate_tools.report import sample_files

    # Only the sampled rows' text is read (the reason column is scanned to find them).
    columns = ["id", "text", dup_col] + ([size_col] if size_col in rejected.schema.names else [])
    picked, removed = sample_files([str(p) for p in rejected_files], columns, sample, seed, step)
    wanted = pc.unique(picked.column(dup_col).combine_chunks().drop_null())
    texts: dict[str, str] = {}
    data_files = sorted((out / "data").glob("*.parquet"))
    json_files = sorted((out / "data").glob("*.jsonl*"))  # output.format: jsonl
    if data_files or json_files:
        kept = ds.dataset(data_files) if data_files else ds.dataset(json_files, format="json")
        if id_col not in kept.schema.names or text_col not in kept.schema.names:
            raise AuditError(f"{out / 'data'} lacks the id column {id_col!r} or text {text_col!r}")
        found = kept.to_table(columns=[id_col, text_col], filter=pc.field(id_col).isin(wanted))
        texts.update(
            zip(
                pc.cast(found.column(id_col), pa.string()).to_pylist(),
                found.column(text_col).to_pylist(),
                strict=False,
            )
        )
    # A survivor may have been dropped later by another step: it is then in the ledger.
    later = rejected.to_table(columns=["id", "text"], filter=pc.field("id").isin(wanted))
    texts.update(
        zip(
            pc.cast(later.column("id"), pa.string()).to_pylist(),
            later.column("text").to_pylist(),
            strict=False,
        )
    )
    dups = picked.column(dup_col).to_pylist()
    pairs = [
        (t, texts[d])
        for t, d in zip(picked.column("text").to_pylist(), dups, strict=True)
        if d in texts
    ]
    left = normalize(pa.array([a for a, _ in pairs], pa.string()), params).to_pylist()
    right = normalize(pa.array([b for _, b in pairs], pa.string()), params).to_pylist()
    jac = np.array(
        [
            len(a & b) / len(a | b) if a | b else 1.0
            for a, b in zip(_shingles(left, params), _shingles(right, params), strict=True)
        ]
    )
    bands, rows = params.lsh()
    eff = effective_threshold(bands, rows)
    sizes = (
        picked.column(size_col).to_numpy(zero_copy_only=False)
        if size_col in picked.column_names
        else np.zeros(0, np.int64)
    )
    return AuditReport(
        step=step,
        removed=removed,
        sampled=picked.num_rows,
        missing_survivor=picked.num_rows - len(pairs),
        threshold=params.threshold if params.threshold is not None else eff,
        effective_threshold=eff,
        jaccard=jac,
        cluster_sizes=sizes,
    )
