"""End to end through `curate run`: `minhash` and `exact_dedup` between other steps, their ledger,
determinism across workers, executors and shardings, resume after a kill mid-shuffle, edge cases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate_filters.dedup.exact import ExactDedupParams
from curate_filters.dedup.normalize import normalize
from tests.conftest import REPO, SHARED, assert_accounted, read_ids, words

pytestmark = pytest.mark.ray
cli = CliRunner()
NEAR_DUP = SHARED / "near_dup" / "synthetic_web_neardups.parquet"
needs_near_dup = pytest.mark.skipif(not NEAR_DUP.exists(), reason=f"{NEAR_DUP} is not present")

MINHASH_STEPS = [
    {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 200}},
    {"use": "minhash", "id": "mh"},
    {"use": "tests.doubles:MinWords", "id": "long", "params": {"min_words": 350}},
]


# ----------------------------------------------------------------------------- corpora
def near_dup_rows(clusters: int = 24, singles: int = 24) -> pa.Table:
    """Whole truth clusters (a base and its variants) plus unrelated pages, in a fixed mixed
    order so some copies precede their base."""
    table = pq.read_table(NEAR_DUP, columns=["id", "text", "url", "cluster_id"])
    by_cluster: dict[str, list[int]] = {}
    for i, c in enumerate(table.column("cluster_id").to_pylist()):
        by_cluster.setdefault(c, []).append(i)
    names = sorted(by_cluster)
    multi = [c for c in names if len(by_cluster[c]) > 1][:clusters]
    single = [c for c in names if len(by_cluster[c]) == 1][:singles]
    rows = sorted(i for c in multi + single for i in by_cluster[c])
    # A fixed permutation (multiplicative, coprime step) mixes clusters across shards.
    order = [rows[(k * 37) % len(rows)] for k in range(len(rows))]
    assert len(set(order)) == len(rows)
    return table.take(pa.array(order))


def shard(table: pa.Table, folder: Path, n: int, row_group_size: int = 8) -> Path:
    """The rows split into `n` files in global order (shard-0 holds the first rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [round(k * table.num_rows / n) for k in range(n + 1)]
    for k in range(n):
        part = table.slice(bounds[k], bounds[k + 1] - bounds[k])
        pq.write_table(part, folder / f"shard-{k:02d}.parquet", row_group_size=row_group_size)
    return folder


def config_file(tmp_path: Path, inp: Path, steps: list[dict], name: str = "p.yaml", **extra):
    data = {
        "input": {"path": str(inp), "id_column": "id", "batch_size": 16, **extra},
        "output": {"path": str(tmp_path / "out")},
        "steps": steps,
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def invoke(*args: str):
    return cli.invoke(app, list(args), catch_exceptions=False)


def run_ok(conf: Path, out: Path, *extra: str) -> dict:
    result = invoke("run", str(conf), "--output", str(out), "--quiet", "--overwrite", *extra)
    assert result.exit_code == 0, result.output
    return json.loads((out / "stats.json").read_text())


def table_of(folder: Path) -> pa.Table:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return pa.table({})
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")


def files(out: Path, sub: str = "data") -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / sub).glob("*.parquet"))}


def kept_ids(out: Path) -> set[str]:
    return set(read_ids(out / "data"))


# ----------------------------------------------------------------------------- the ledger
def check_dedup_ledger(out: Path, sid: str, later: Collection[str] = ()) -> dict[str, str]:
    """The rows `sid` dropped name their survivor's user id and cluster size; every survivor
    (kept, or dropped by a later step) carries the same size. Returns {dropped: survivor}."""
    data, rejected = table_of(out / "data"), table_of(out / "rejected")
    dropped = rejected.filter(pc.equal(rejected["reason"], sid)).to_pylist()
    passed = data.to_pylist() + [
        r for r in rejected.to_pylist() if r["reason"] in later
    ]  # rows the step let through
    size_of = {r["id"]: r[f"{sid}_cluster_size"] for r in passed}
    assert all(r[f"{sid}_duplicate_of"] is None for r in passed)
    members: dict[str, int] = {}
    for r in dropped:
        survivor = r[f"{sid}_duplicate_of"]
        assert survivor in size_of, f"{r['id']}: survivor {survivor} was not let through"
        assert r[f"{sid}_cluster_size"] == size_of[survivor] >= 2
        members[survivor] = members.get(survivor, 0) + 1
    for survivor, n in members.items():
        assert size_of[survivor] == n + 1
    assert all(size == 1 for i, size in size_of.items() if i not in members)
    return {r["id"]: r[f"{sid}_duplicate_of"] for r in dropped}


@needs_near_dup
def test_minhash_between_steps_drops_near_duplicates_into_the_ledger(ray_session, tmp_path):
    table = near_dup_rows()
    inp = shard(table, tmp_path / "in", 4)
    stats = run_ok(config_file(tmp_path, inp, MINHASH_STEPS), tmp_path / "out")
    out = tmp_path / "out"
    assert_accounted(table.column("id").to_pylist(), out)
    assert stats["total"]["consistent"]
    pairs = check_dedup_ledger(out, "mh", later={"long"})
    assert stats["steps"]["mh"]["dropped"] == len(pairs) >= 10
    cluster = dict(zip(table["id"].to_pylist(), table["cluster_id"].to_pylist(), strict=True))
    position = {doc: k for k, doc in enumerate(table["id"].to_pylist())}
    for doc, survivor in pairs.items():
        assert cluster[doc] == cluster[survivor]  # true near-duplicates only
        assert position[survivor] < position[doc]  # the first in corpus order survives
    rejected = table_of(out / "rejected")
    reasons = set(rejected["reason"].to_pylist())
    assert {"words", "mh", "long"} <= reasons
    # Rows dropped before the global step never reach it: no minhash columns on them.
    early = rejected.filter(pc.equal(rejected["reason"], "words"))
    assert early.column("mh_cluster_size").null_count == early.num_rows


def first_occurrence(values: list[str | None], ids: list[str]) -> dict[str, str]:
    """{duplicate id: first id with the same value}, ignoring null and blank values."""
    first: dict[str, str] = {}
    dup = {}
    for value, doc in zip(values, ids, strict=True):
        if not value:
            continue
        if value in first:
            dup[doc] = first[value]
        else:
            first[value] = doc
    return dup


@needs_near_dup
def test_exact_dedup_on_url_then_on_text(ray_session, tmp_path):
    table = near_dup_rows(clusters=40, singles=10)
    # Exact copies of pages under a new url, so the text dedup has work after the url one.
    extra = table.slice(0, 6)
    extra = extra.set_column(0, "id", pa.array([f"copy-{i}" for i in range(6)]))
    extra = extra.set_column(2, "url", pa.array([f"https://copy.example/{i}" for i in range(6)]))
    table = pa.concat_tables([table, extra])
    inp = shard(table, tmp_path / "in", 3)
    steps = [
        {"use": "exact_dedup", "id": "url", "params": {"column": "url"}},
        {"use": "exact_dedup", "id": "same_text"},
    ]
    stats = run_ok(config_file(tmp_path, inp, steps), tmp_path / "out")
    out = tmp_path / "out"
    ids = table["id"].to_pylist()
    assert_accounted(ids, out)
    norm = ExactDedupParams()
    urls = normalize(table["url"], norm).to_pylist()
    by_url = first_occurrence(urls, ids)  # null urls normalise to "": never duplicates
    assert check_dedup_ledger(out, "url", later={"same_text"}) == by_url
    alive = [k for k, doc in enumerate(ids) if doc not in by_url]
    texts = normalize(table["text"], norm).to_pylist()
    by_text = first_occurrence([texts[k] for k in alive], [ids[k] for k in alive])
    assert check_dedup_ledger(out, "same_text") == by_text
    assert len(by_url) > 10 and len(by_text) > 0
    assert stats["steps"]["url"]["dropped"] == len(by_url)
    assert stats["steps"]["same_text"]["dropped"] == len(by_text)
    assert stats["total"]["consistent"]


# ----------------------------------------------------------------------------- determinism
@needs_near_dup
def test_same_survivors_for_any_workers_executor_and_sharding(ray_session, tmp_path):
    table = near_dup_rows(clusters=16, singles=8)
    four = shard(table, tmp_path / "in4", 4)
    conf = config_file(tmp_path, four, MINHASH_STEPS)
    outs = {}
    for name, extra in (
        ("w1", ["--workers", "1"]),
        ("w2", ["--workers", "2"]),
        ("local", ["--executor", "local"]),
    ):
        run_ok(conf, tmp_path / name, *extra)
        outs[name] = files(tmp_path / name) | files(tmp_path / name, "rejected")
    assert outs["w1"] == outs["w2"] == outs["local"]
    reference = table_of(tmp_path / "w1" / "data").sort_by("id")
    # The same rows in global order, cut into other files and into row-group work units.
    for n, unit_rows in ((1, 200000), (3, 200000), (7, 5)):
        inp = shard(table, tmp_path / f"in{n}", n, row_group_size=5)
        conf = config_file(tmp_path, inp, MINHASH_STEPS, f"p{n}.yaml", unit_rows=unit_rows)
        out = tmp_path / f"s{n}"
        run_ok(conf, out, "--workers", "2")
        got = table_of(out / "data").sort_by("id")
        assert got.equals(reference), f"{n} shards keep other rows"
        assert_accounted(table["id"].to_pylist(), out)


# ----------------------------------------------------------------------------- resume
@needs_near_dup
@pytest.mark.parametrize("phase", ["scatter", "gather", "large_star"])
def test_driver_killed_mid_shuffle_resumes_to_identical_output(ray_session, tmp_path, phase):
    table = near_dup_rows(clusters=16, singles=8)
    inp = shard(table, tmp_path / "in", 4)
    marker = tmp_path / "paused"
    steps = [
        MINHASH_STEPS[0],
        {
            "use": "tests.doubles:PausedMinHash",
            "id": "mh",
            "params": {"marker": str(marker), "after": phase, "seconds": 120},
        },
        MINHASH_STEPS[2],
    ]
    conf = config_file(tmp_path, inp, steps)
    out = tmp_path / "out"
    address = ray_session.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "curate.cli", "run", str(conf), "--quiet"]
    proc = subprocess.Popen(
        [*cmd, "--ray-address", address, "--workers", "1"],
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not marker.exists():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    work = out / "_global" / "mh" / "work"
    # Killed inside the shuffle, or inside the distributed components.
    assert bool(list((work / "buckets").rglob("*.parquet"))) == (phase != "large_star")
    assert bool(list(work.glob("edges/*.parquet"))) == (phase != "scatter")
    assert bool(list(work.glob("cc/*-large-*.parquet"))) == (phase == "large_star")
    assert not (out / "_global" / "mh" / "decide.json").exists()
    assert not list((out / "_global" / "mh").glob("decision/*.parquet"))
    result = invoke("run", str(conf), "--quiet")  # resumes; the marker makes it not pause
    assert result.exit_code == 0, result.output
    run_ok(conf, tmp_path / "ref", "--executor", "local")
    assert files(out) == files(tmp_path / "ref")
    assert files(out, "rejected") == files(tmp_path / "ref", "rejected")
    assert_accounted(table["id"].to_pylist(), out)
    assert not list(out.rglob("*.tmp"))
    assert not (out / "_global" / "mh" / "work").exists() or not list(
        (out / "_global" / "mh" / "work").rglob("*.parquet")
    )  # work files go once the decision is committed


# ----------------------------------------------------------------------------- edge cases
def test_empty_corpus_runs_to_an_empty_consistent_output(ray_session, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    empty = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    for k in range(3):
        pq.write_table(empty, inp / f"shard-{k}.parquet")
    steps = [{"use": "minhash", "id": "mh"}, {"use": "exact_dedup", "id": "ex"}]
    stats = run_ok(config_file(tmp_path, inp, steps), tmp_path / "out")
    assert stats["total"]["documents"] == 0 and stats["total"]["consistent"]
    assert_accounted([], tmp_path / "out")


def test_single_document_is_kept_with_cluster_size_one(ray_session, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    pq.write_table(pa.table({"id": ["only"], "text": [words(40)]}), inp / "one.parquet")
    steps = [{"use": "minhash", "id": "mh"}, {"use": "exact_dedup", "id": "ex"}]
    run_ok(config_file(tmp_path, inp, steps), tmp_path / "out")
    data = table_of(tmp_path / "out" / "data")
    assert data["id"].to_pylist() == ["only"]
    assert data["mh_cluster_size"].to_pylist() == data["ex_cluster_size"].to_pylist() == [1]
    assert data["mh_duplicate_of"].to_pylist() == [None]


def test_documents_shorter_than_a_shingle_are_kept(ray_session, tmp_path):
    long = words(60, 3)
    texts = [
        "one",
        "two words",
        "three short words",
        "four words in all",
        "!!!",  # no shingle at all once punctuation is stripped
        "!!!",
        "?? -- ??",
        long,
        long + " .",  # the same words: a near-duplicate that must go
    ]
    inp = tmp_path / "in"
    inp.mkdir()
    ids = [f"d{i}" for i in range(len(texts))]
    pq.write_table(pa.table({"id": ids, "text": texts}), inp / "a.parquet", row_group_size=3)
    run_ok(config_file(tmp_path, inp, [{"use": "minhash", "id": "mh"}]), tmp_path / "out")
    out = tmp_path / "out"
    assert_accounted(ids, out)
    assert kept_ids(out) == set(ids) - {"d8"}
    assert check_dedup_ledger(out, "mh") == {"d8": "d7"}
