"""Choose documents to fill a token budget per group: cuts found by a distributed threshold search.

No task and not the driver ever sorts the corpus. Tasks read one file each and return small
summaries; the driver narrows, per group, a key interval that holds the budget's boundary
(a few rounds of pooled rank samples -> candidate thresholds -> token counts above each), then
gathers only the rows inside that interval, sorts those, and cuts where the cumulative tokens
come closest to the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate_filters.select import Cut, Method, group_values, repeats, selection_keys

ParallelMap = Callable[[Callable[..., Any], Iterable[Any]], list[Any]]
SAMPLES_PER_FILE = 256
CANDIDATES = 128
BAND_ROWS = 50_000  # rows per group gathered on the driver for the final, exact cut


class SelectError(ValueError):
    """The request cannot be met as asked; the message says what to change."""


@dataclass(frozen=True)
class Columns:
    """What a task reads from each file and how it keys the rows."""

    id: str
    tokens: str
    method: Method
    score: str | None = None
    by: str | None = None
    seed: int = 0
    lowest: bool = False

    def read(self, path: str, extra: tuple[str, ...] = ()) -> pa.Table:
        names = [self.id, self.tokens, *([self.score] if self.score else [])]
        names += [*([self.by] if self.by else []), *extra]
        return pq.read_table(path, columns=list(dict.fromkeys(names)))

    def keyed(self, path: str, groups: list[str]) -> dict[int, tuple[np.ndarray, ...]]:
        """Per group index: (key, tie, tokens) of the file's rows of that group."""
        table = self.read(path)
        key, tie = selection_keys(table, self.method, self.score, self.id, self.seed, self.lowest)
        index = pc.index_in(group_values(table, self.by), value_set=pa.array(groups, pa.string()))
        at = pc.fill_null(index, -1).to_numpy(zero_copy_only=False)
        tokens = _tokens(table, self.tokens)
        return {g: (key[at == g], tie[at == g], tokens[at == g]) for g in np.unique(at) if g >= 0}


def _tokens(table: pa.Table, column: str) -> np.ndarray:
    values = pc.fill_null(table.column(column).combine_chunks(), 0)
    return values.to_numpy(zero_copy_only=False).astype(np.int64)


# ----------------------------------------------------------------------------- tasks (one file)
def group_tokens_task(item: tuple[str, Columns]) -> dict[str, list[int]]:
    """Tokens and rows per group value in one file: {group: [tokens, rows]}."""
    path, cols = item
    table = cols.read(path)
    grouped = (
        pa.table({"g": group_values(table, cols.by), "t": pa.array(_tokens(table, cols.tokens))})
        .group_by("g")
        .aggregate([("t", "sum"), ("t", "count")])
    )
    return {
        g: [int(t), int(c)]
        for g, t, c in zip(
            grouped["g"].to_pylist(),
            grouped["t_sum"].to_pylist(),
            grouped["t_count"].to_pylist(),
            strict=True,
        )
    }


def sample_task(item: tuple[str, Columns, list[str], dict[int, tuple[float, float]]]) -> dict:
    """Up to SAMPLES_PER_FILE evenly ranked keys inside each group's open interval [lo, hi)."""
    path, cols, groups, brackets = item
    out = {}
    for g, (key, _, _) in cols.keyed(path, groups).items():
        if g not in brackets:
            continue
        lo, hi = brackets[g]
        inside = np.sort(key[(key >= lo) & (key < hi)])
        if len(inside) > SAMPLES_PER_FILE:
            inside = inside[np.linspace(0, len(inside) - 1, SAMPLES_PER_FILE).astype(np.int64)]
        out[g] = inside
    return out


def above_task(item: tuple[str, Columns, list[str], dict[int, np.ndarray]]) -> dict:
    """Per group and candidate threshold c: tokens and rows with key >= c."""
    path, cols, groups, candidates = item
    out = {}
    for g, (key, _, tokens) in cols.keyed(path, groups).items():
        if g not in candidates:
            continue
        order = np.argsort(key, kind="stable")
        cum = np.concatenate(([0], np.cumsum(tokens[order][::-1])))  # tokens of the top-j keys
        below = np.searchsorted(key[order], candidates[g], side="left")
        top = len(key) - below
        out[g] = (cum[top], top)
    return out


def band_task(item: tuple[str, Columns, list[str], dict[int, tuple[float, float]]]) -> dict:
    """Per group, the rows inside [lo, hi): (key, tie, tokens)."""
    path, cols, groups, brackets = item
    out = {}
    for g, (key, tie, tokens) in cols.keyed(path, groups).items():
        if g in brackets:
            lo, hi = brackets[g]
            inside = (key >= lo) & (key < hi)
            out[g] = (key[inside], tie[inside], tokens[inside])
    return out


# ----------------------------------------------------------------------------- the plan
@dataclass
class GroupPlan:
    """One group's target, what the pool holds, and the cut that meets the target."""

    name: str
    share: float
    target: int
    pool_tokens: int
    pool_rows: int
    cut: Cut = field(default_factory=Cut)
    planned: int = 0
    short: bool = False


def parse_budget(text: str) -> int:
    """'2B' -> 2_000_000_000; also k, M, T suffixes, plain integers and 1.5e9."""
    text = str(text).strip().replace("_", "").replace(",", "")
    scale = {"k": 1e3, "K": 1e3, "M": 1e6, "m": 1e6, "B": 1e9, "b": 1e9, "G": 1e9, "T": 1e12}
    factor = scale.get(text[-1:], 1.0)
    number = text[:-1] if text[-1:] in scale else text
    try:
        value = float(number) * factor
    except ValueError:
        raise SelectError(
            f"--budget {text!r} is not a token count (e.g. 2B, 500M, 10000)"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise SelectError(f"--budget {text!r} must be a positive token count")
    return int(round(value))


def plan(
    files: list[str],
    cols: Columns,
    budget: int,
    mix: dict[str, float] | None,
    max_repeat: int,
    parallel_map: ParallelMap,
) -> tuple[dict[str, GroupPlan], dict[str, list[int]]]:
    """The cut of every group in the mix, and the pool's {group: [tokens, rows]}."""
    pool: dict[str, list[int]] = {}
    for part in parallel_map(group_tokens_task, [(f, cols) for f in files]):
        for g, (t, n) in part.items():
            acc = pool.setdefault(g, [0, 0])
            acc[0] += t
            acc[1] += n
    total = sum(t for t, _ in pool.values())
    if total == 0:
        raise SelectError("the input holds no tokens (all token counts are 0 or null)")
    if mix is None:  # no mix: keep each group's share of the pool
        mix = {g: t / total for g, (t, _) in pool.items() if t}
    missing = [g for g in mix if mix[g] > 0 and pool.get(g, [0])[0] == 0]
    if missing:
        raise SelectError(
            f"the mix names group '{missing[0]}' but the input has no tokens in it "
            f"(groups: {', '.join(sorted(pool)[:20])})"
        )
    groups = sorted(g for g in mix if mix[g] > 0)
    plans: dict[str, GroupPlan] = {}
    remainder: dict[int, int] = {}
    for i, g in enumerate(groups):
        tokens, rows = pool[g]
        target = int(round(budget * mix[g]))
        base = min(target // tokens, max_repeat)
        gp = GroupPlan(g, mix[g], target, tokens, rows, Cut(base=base), planned=base * tokens)
        if base == max_repeat:
            gp.short = gp.planned < target
        elif target - gp.planned > 0:
            remainder[i] = target - gp.planned
        plans[g] = gp
    rows_total = {i: pool[groups[i]][1] for i in remainder}
    for i, cut, got in _search(files, cols, groups, remainder, rows_total, parallel_map):
        gp = plans[groups[i]]
        gp.cut = Cut(base=gp.cut.base, key=cut[0], tie=cut[1])
        gp.planned += got
    return plans, pool


def _search(
    files: list[str],
    cols: Columns,
    groups: list[str],
    remainder: dict[int, int],
    rows_total: dict[int, int],
    parallel_map: ParallelMap,
) -> list[tuple[int, tuple[float, int], int]]:
    """For each group index with a remainder R: the (key, tie) cut whose top rows sum nearest R."""
    if not remainder:
        return []
    brackets = {g: (-np.inf, np.inf) for g in remainder}
    above_hi = dict.fromkeys(remainder, 0)  # tokens with key >= hi
    rows_lo = {g: rows_total[g] for g in remainder}  # rows with key >= lo
    rows_hi = dict.fromkeys(remainder, 0)  # rows with key >= hi
    stuck: set[int] = set()  # groups whose interval no longer narrows (many equal keys)
    for _ in range(16):
        wide = {
            g: b
            for g, b in brackets.items()
            if rows_lo[g] - rows_hi[g] > BAND_ROWS and g not in stuck
        }
        if not wide:
            break
        pooled: dict[int, list[np.ndarray]] = {}
        for part in parallel_map(sample_task, [(f, cols, groups, wide) for f in files]):
            for g, keys in part.items():
                pooled.setdefault(g, []).append(keys)
        candidates = {}
        for g in wide:
            keys = np.unique(np.concatenate(pooled.get(g, [np.zeros(0)])))
            if len(keys) > CANDIDATES:
                keys = keys[np.linspace(0, len(keys) - 1, CANDIDATES).astype(np.int64)]
            candidates[g] = keys
        sums = {
            g: [np.zeros(len(c), np.int64), np.zeros(len(c), np.int64)]
            for g, c in candidates.items()
        }
        for part in parallel_map(above_task, [(f, cols, groups, candidates) for f in files]):
            for g, (tokens, rows) in part.items():
                sums[g][0] += tokens
                sums[g][1] += rows
        for g, cand in candidates.items():
            tokens, rows = sums[g]
            lo, hi = brackets[g]
            ok = np.flatnonzero(tokens >= remainder[g])  # candidates ascending, tokens falling
            if len(ok):
                lo, rows_lo[g] = float(cand[ok[-1]]), int(rows[ok[-1]])
            j = ok[-1] + 1 if len(ok) else 0
            if j < len(cand):
                hi, above_hi[g], rows_hi[g] = float(cand[j]), int(tokens[j]), int(rows[j])
            if (lo, hi) == brackets[g]:  # gather the band as it is
                stuck.add(g)
            brackets[g] = (lo, hi)
    band: dict[int, list[tuple[np.ndarray, ...]]] = {}
    for part in parallel_map(band_task, [(f, cols, groups, brackets) for f in files]):
        for g, rows in part.items():
            band.setdefault(g, []).append(rows)
    empty = (np.zeros(0), np.zeros(0, np.uint64), np.zeros(0, np.int64))
    out = []
    for g, want in remainder.items():
        parts = band.get(g) or [empty]
        rows = tuple(np.concatenate(column) for column in zip(*parts, strict=True))
        cut, got = _exact_cut(rows, above_hi[g], want, brackets[g][1])
        out.append((g, cut, got))
    return out


def _exact_cut(
    band: tuple[np.ndarray, np.ndarray, np.ndarray], above: int, want: int, hi: float
) -> tuple[tuple[float, int], int]:
    """Sort the band rows (key, tie) descending; take the prefix whose total is nearest `want`.

    `above` tokens (rows with key >= hi) are taken whatever the band holds. Returns the cut
    (the last taken row's key and tie, or (hi, 0) for none of the band) and the tokens taken.
    """
    key, tie, tokens = band
    order = np.lexsort((tie, key))[::-1]
    cum = above + np.concatenate(([0], np.cumsum(tokens[order])))
    m = int(np.argmin(np.abs(cum - want)))
    if m == 0:
        return (float(hi), 0), int(cum[0])
    last = order[m - 1]
    return (float(key[last]), int(tie[last])), int(cum[m])


# ----------------------------------------------------------------------------- what was chosen
def selected_task(item: tuple[str, Columns, str]) -> dict[str, list[int]]:
    """{group: [tokens x repeat, rows selected, rows with repeat > 1]} of one selected file."""
    path, cols, repeat_column = item
    table = cols.read(path, (repeat_column,))
    times = table.column(repeat_column).to_numpy(zero_copy_only=False).astype(np.int64)
    groups = group_values(table, cols.by).to_numpy(zero_copy_only=False)
    tokens = _tokens(table, cols.tokens)
    out = {}
    for g in np.unique(groups):
        mask = groups == g
        out[str(g)] = [
            int((tokens[mask] * times[mask]).sum()),
            int(mask.sum()),
            int((times[mask] > 1).sum()),
        ]
    return out


def repeats_for(path: str, cols: Columns, cuts: dict[str, Cut]) -> tuple[pa.Table, np.ndarray]:
    """A file's columns and each row's repeat count under `cuts` (the same rule as the step)."""
    table = cols.read(path)
    key, tie = selection_keys(table, cols.method, cols.score, cols.id, cols.seed, cols.lowest)
    return table, repeats(table, cuts, cols.by, key, tie)
