"""The `select` step: keeps the rows above per-group key thresholds that `curate select` found."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from curate.filter import Filter, Params, Resources
from curate_filters._ngrams import hash_strings, mix64

Method = Literal["gumbel", "topk", "random"]
_UNIT = 1.0 / (1 << 53)


class Cut(BaseModel):
    """One group's selection: every row `base` times, rows at or above (key, tie) once more."""

    model_config = ConfigDict(extra="forbid")
    base: int = Field(0, ge=0)
    key: float = float("inf")
    tie: int = Field(0, ge=0, lt=1 << 64)


def selection_keys(
    table: pa.Table, method: Method, score: str | None, id_column: str, seed: int, lowest: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The sort key of each row (higher = chosen first) and a tie-breaker, both from the row alone.

    `gumbel`: score + Gumbel(0, 1) noise, so taking the top keys samples without replacement
    with probability proportional to exp(score) (Gumbel top-k, as DSIR resamples). `topk`: the
    score itself. `random`: the noise alone. The noise is a hash of the row's id and the seed,
    so a row gets the same key in every batch, shard and worker count.
    """
    hashed = hash_strings(table.column(id_column), seed)
    tie = mix64(hashed, 0x7E1E)
    n = table.num_rows
    noise = np.zeros(n)
    if method != "topk":
        uniform = ((hashed >> np.uint64(11)).astype(np.float64) + 0.5) * _UNIT
        noise = -np.log(-np.log(uniform))
    if method == "random":
        return noise, tie
    values = table.column(score).combine_chunks() if n else pa.array([], pa.float64())
    values = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    values = -values if lowest else values
    key = np.where(np.isfinite(values), values, -np.inf) + noise
    return key, tie


def group_values(table: pa.Table, by: str | None) -> pa.Array:
    """The group of each row as a string ("" for a null group; "all" without `by`)."""
    if by is None:
        return pa.array(["all"] * table.num_rows, pa.string())
    column = table.column(by).combine_chunks()
    return pc.fill_null(pc.cast(column, pa.string()), "")


def repeats(
    table: pa.Table, cuts: dict[str, Cut], by: str | None, key: np.ndarray, tie: np.ndarray
) -> np.ndarray:
    """Times each row is selected: its group's base, plus one if it is at or above the cut."""
    names = sorted(cuts)
    # Rows of groups without a cut (not in the mix) point at a sentinel cut that selects none.
    index = pc.index_in(group_values(table, by), value_set=pa.array(names, pa.string()))
    at = pc.fill_null(index, len(names)).to_numpy(zero_copy_only=False).astype(np.int64)
    base = np.array([cuts[g].base for g in names] + [0], np.int64)
    cut_key = np.array([cuts[g].key for g in names] + [np.inf], np.float64)
    cut_tie = np.array([cuts[g].tie for g in names] + [0], np.uint64)
    above = (key > cut_key[at]) | ((key == cut_key[at]) & (tie >= cut_tie[at]))
    above &= at < len(names)
    return (base[at] + above).astype(np.int64)


class Select(Filter):
    """Keeps the rows `curate select` chose; `<id>_repeat` is how many times each is used.

    Not a registered step: `curate select` writes it into the run it starts, with the cuts it
    computed from the whole corpus. Every other row goes to the ledger with reason `select`.
    """

    class Params(Params):
        method: Method = "gumbel"
        score: str | None = None
        lowest: bool = False
        id_column: str
        tokens: str
        by: str | None = None
        seed: int = 0
        cuts: dict[str, Cut] = Field(default_factory=dict)

    resources: ClassVar[Resources] = Resources(cpus=1.0)

    def token_columns(self, sid: str) -> list[str]:
        return [self.params.tokens]

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        p = self.params
        key, tie = selection_keys(batch, p.method, p.score, p.id_column, p.seed, p.lowest)
        times = repeats(batch, p.cuts, p.by, key, tie)
        return {"repeat": pa.array(times, pa.int64()), "key": pa.array(key, pa.float64())}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pc.greater(scores["repeat"], 0)
