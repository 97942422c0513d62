"""The threshold search finds the exact best prefix, whatever the files and the band size."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from curate_filters.select import repeats, selection_keys
from curate_tools import selection
from curate_tools.selection import Columns, plan


def _local(fn, items):
    return [fn(i) for i in items]


def _write(folder: Path, table: pa.Table, parts: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    bounds = np.linspace(0, table.num_rows, parts + 1).astype(int)
    files = []
    for i in range(parts):
        path = folder / f"part-{i}.parquet"
        pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]), path)
        files.append(str(path))
    return files


def _table(seed: int, n: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": [f"doc-{seed}-{i}" for i in range(n)],
            "tokens": rng.integers(1, 50, n),
            "score": np.round(rng.normal(size=n), 1),  # coarse: many equal scores
            "source": rng.choice(["web", "wiki", "code"], n, p=[0.6, 0.3, 0.1]),
        }
    )


def _repeats(files, cols, plans):
    cuts = {g: p.cut for g, p in plans.items()}
    out = {}
    for f in files:
        t = pq.read_table(f)
        key, tie = selection_keys(t, cols.method, cols.score, cols.id, cols.seed, cols.lowest)
        times = repeats(t, cuts, cols.by, key, tie).tolist()
        out.update(zip(t["id"].to_pylist(), times, strict=True))
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 400),
    parts=st.integers(1, 5),
    budget=st.integers(1, 30_000),
    method=st.sampled_from(["gumbel", "topk", "random"]),
    band=st.sampled_from([2, 17, 50_000]),
)
def test_each_group_gets_the_prefix_closest_to_its_budget(
    tmp_path_factory, seed, n, parts, budget, method, band
):
    table = _table(seed, n)
    tmp = tmp_path_factory.mktemp("sel")
    cols = Columns(id="id", tokens="tokens", method=method, score="score", by="source", seed=seed)
    mix = {"web": 0.5, "wiki": 0.3, "code": 0.2}
    present = set(table["source"].to_pylist())
    mix = {g: v / sum(mix[g] for g in present) for g, v in mix.items() if g in present}
    with (
        mock.patch.object(selection, "BAND_ROWS", band),
        mock.patch.object(selection, "SAMPLES_PER_FILE", 8),
        mock.patch.object(selection, "CANDIDATES", 5),
    ):
        files = _write(tmp / "a", table, parts)
        plans, _ = plan(files, cols, budget, mix, 3, _local)
        chosen = _repeats(files, cols, plans)
        # The same rows in one file: the same choice (the cut never depends on the sharding).
        one = _write(tmp / "b", table, 1)
        again, _ = plan(one, cols, budget, mix, 3, _local)
        assert _repeats(one, cols, again) == chosen
    key, tie = selection_keys(table, method, "score", "id", seed, False)
    tokens = table["tokens"].to_numpy()
    groups = np.array(table["source"].to_pylist())
    times = np.array([chosen[i] for i in table["id"].to_pylist()])
    assert times.max() <= 3
    for g, gp in plans.items():
        mask = groups == g
        base = gp.cut.base
        assert set(times[mask]) <= {base, base + 1}
        if gp.short:
            assert base == 3 and (times[mask] == 3).all()
            continue
        want = gp.target - base * tokens[mask].sum()
        order = np.lexsort((tie[mask], key[mask]))[::-1]
        cum = np.concatenate(([0], np.cumsum(tokens[mask][order])))
        best = np.abs(cum - want).min()
        extra = times[mask][order] - base
        m = int(extra.sum())
        assert (extra[:m] == 1).all() and (extra[m:] == 0).all()  # a prefix of the order
        assert abs(cum[m] - want) == best
        assert (tokens[mask] * times[mask]).sum() == gp.planned
