"""The select step: keys from the row alone, cuts per group, repeat counts, the plugin contract."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.testing import check_filter_contract
from curate_filters.select import Cut, Select, repeats, selection_keys

TABLE = pa.table(
    {
        "id": [f"d{i}" for i in range(6)],
        "score": [3.0, 1.0, None, 2.0, 5.0, 4.0],
        "source": ["a", "a", "a", "b", "b", None],
    }
)


def test_topk_keys_are_the_scores_and_a_null_score_comes_last():
    key, _ = selection_keys(TABLE, "topk", "score", "id", 0, lowest=False)
    assert key.tolist()[:2] == [3.0, 1.0] and key[2] == -np.inf
    low, _ = selection_keys(TABLE, "topk", "score", "id", 0, lowest=True)
    assert low[0] == -3.0


def test_keys_depend_on_the_id_and_seed_not_on_the_batch():
    whole, tie = selection_keys(TABLE, "gumbel", "score", "id", 7, False)
    parts = [
        selection_keys(TABLE.slice(i, 2), "gumbel", "score", "id", 7, False) for i in (0, 2, 4)
    ]
    assert np.array_equal(whole, np.concatenate([p[0] for p in parts]))
    assert np.array_equal(tie, np.concatenate([p[1] for p in parts]))
    other, _ = selection_keys(TABLE, "gumbel", "score", "id", 8, False)
    assert not np.array_equal(whole, other)


def test_the_noise_is_standard_gumbel():
    ids = pa.table({"id": pa.array(np.arange(200_000))})
    noise, _ = selection_keys(ids, "random", None, "id", 0, False)
    assert abs(noise.mean() - np.euler_gamma) < 0.01
    assert abs(noise.var() - np.pi**2 / 6) < 0.03


def test_rows_at_or_above_the_cut_get_one_more_copy_and_groups_outside_the_mix_none():
    key, tie = selection_keys(TABLE, "topk", "score", "id", 0, False)
    cuts = {"a": Cut(base=0, key=3.0, tie=0), "b": Cut(base=2, key=float("inf"))}
    assert repeats(TABLE, cuts, "source", key, tie).tolist() == [1, 0, 0, 2, 2, 0]


def test_the_step_keeps_the_selected_rows_and_counts_tokens_from_its_param():
    params = {
        "method": "topk",
        "score": "score",
        "id_column": "id",
        "tokens": "n",
        "by": "source",
        "cuts": {"a": {"base": 0, "key": 1.0}, "b": {"base": 1}},
    }
    step = Select(Select.Params.model_validate(params))
    scores = step.score(TABLE)
    assert scores["repeat"].to_pylist() == [1, 1, 0, 1, 1, 0]
    assert step.keep(scores).to_pylist() == [True, True, False, True, True, False]
    assert step.token_columns("select") == ["n"]


def test_the_step_keeps_the_plugin_contract():
    cuts = {"all": {"base": 0, "key": 0.0}}  # about half the rows: noise >= 0
    check_filter_contract(
        Select, {"method": "random", "id_column": "id", "tokens": "n", "cuts": cuts}
    )
