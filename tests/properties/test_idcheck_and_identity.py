"""Properties: the distributed id check counts what a set would; plans notice every change."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate import idcheck, identity, io, ownership

ids = st.one_of(st.none(), st.sampled_from([f"id{i}" for i in range(12)]), st.text(max_size=4))


@settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    shards=st.lists(st.lists(ids, max_size=30), min_size=1, max_size=4), ranges=st.integers(1, 5)
)
def test_repeated_and_null_ids_match_a_plain_count(tmp_path_factory, shards, ranges):
    folder = tmp_path_factory.mktemp("ids")
    for s, values in enumerate(shards):
        table = pa.table({"id": pa.array(values, pa.string()), "text": ["x"] * len(values)})
        pq.write_table(table, folder / f"s{s}.parquet", row_group_size=5)
    found = io.discover(str(folder))
    total = sum(len([v for v in values if v is not None]) for values in shards)
    old = (idcheck.ROW_GROUP, idcheck.IDS_PER_RANGE)
    idcheck.ROW_GROUP, idcheck.IDS_PER_RANGE = 4, max(1, total // ranges)  # many groups, ranges
    try:
        got = idcheck.check_ids(found, "id", str(folder / "work"), lambda f, xs: [f(x) for x in xs])
    finally:
        idcheck.ROW_GROUP, idcheck.IDS_PER_RANGE = old
    flat = [v for values in shards for v in values]
    present = [v for v in flat if v is not None]
    assert got["null_id"] == len(flat) - len(present)
    assert got["duplicate_id"] == len(present) - len(set(present))
    assert set(got["examples"]) <= {v for v in present if present.count(v) > 1}


def test_curates_own_file_names_and_nothing_else():
    owned = [
        "data/part-00000.parquet",
        "data/part-00012.a0123456789ab.parquet",
        "rejected/part-00003-s1.parquet",
        "_sidecar/minhash/part-00001.parquet",
        "_manifest/s0-part-00000.json",
        "_manifest/plan.json",
        "_global/minhash/decision.parquet",
        "_global/minhash/work/edges/part-00001.parquet",
        "_ids/check.json",
        "stats.json",
        "run.yaml",
        "data/.part-00000.parquet.curate-" + "0" * 32 + ".tmp",
    ]
    foreign = [
        "thesis.txt",
        "data/my-extra.parquet",
        "data/draft.tmp",
        "data/.part-00000.parquet.123.tmp",
        "_sidecar/../../x/part-00000.parquet",
        "_global/minhash/notes.txt",
        "data/part-00000.parquet.bak",
    ]
    assert all(ownership.is_owned_file(p) for p in owned)
    assert not any(ownership.is_owned_file(p) for p in foreign)


def _plan(**over):
    base = {
        "format": 1,
        "config": {"steps": [{"id": "q", "params": {"min": 1}}]},
        "shards": [
            {"uri": "/in/a.parquet", "name": "a.parquet", "size": 10, "mtime_ns": 1, "rows": 3}
        ],
        "units": [{"name": "part-00000", "shard": 0, "row_groups": None, "first_row": 0}],
        "models": {"q": {"model": "aaa"}},
        "plugins": {"q": {"class": "m:Q", "version": "1", "source_sha256": "s"}},
    }
    base.update(over)
    base["digest"] = identity.digest(base)
    base["run_key"] = identity.run_key(base)
    return base


def test_plan_changes_are_named_in_a_users_words():
    old = _plan()
    added = _plan(shards=old["shards"] + [{**old["shards"][0], "uri": "/in/b.parquet"}])
    assert identity.changes(old, added) == ["input file added: /in/b.parquet"]
    model = _plan(models={"q": {"model": "bbb"}})
    assert identity.changes(old, model) == ["model of step 'q' (model) changed: sha256 aaa -> bbb"]
    config = _plan(config={"steps": [{"id": "q", "params": {"min": 2}}]})
    assert identity.changes(old, config) == ["config changed: steps.0.params.min (1 -> 2)"]
    touched = _plan(shards=[{**old["shards"][0], "mtime_ns": 2}])
    assert touched["digest"] != old["digest"] and touched["run_key"] == old["run_key"]
