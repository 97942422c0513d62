"""benchmarks/make_corpus.py: deterministic corpora whose ground truth matches their text."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import make_corpus  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    make_corpus.make(out, docs=600, shards=3, seed=7)
    return out


def _texts(folder: Path) -> dict[str, str]:
    table = pq.read_table(sorted(folder.glob("shard_*.parquet")))
    return dict(zip(table["id"].to_pylist(), table["text"].to_pylist(), strict=True))


def test_same_seed_same_bytes_and_another_seed_another_corpus(corpus, tmp_path):
    make_corpus.make(tmp_path / "again", docs=600, shards=3, seed=7)
    make_corpus.make(tmp_path / "other", docs=600, shards=3, seed=8)
    names = sorted(p.name for p in corpus.iterdir())
    assert names == [
        "ground_truth.parquet",
        "shard_00.parquet",
        "shard_01.parquet",
        "shard_02.parquet",
    ]
    for name in names:
        assert (corpus / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    assert _texts(corpus) != _texts(tmp_path / "other")


def test_ground_truth_describes_every_document(corpus):
    texts = _texts(corpus)
    truth = pq.read_table(corpus / "ground_truth.parquet")
    bench_columns = ["id", "kind", "source_id", "edit_rate", "n_edits", "header", "footer"]
    assert truth.schema.names == bench_columns + ["jaccard", "origin", "length"]
    rows = truth.to_pylist()
    assert [r["id"] for r in rows] == list(texts) == sorted(texts)
    kinds = [r["kind"] for r in rows]
    assert (kinds.count("original"), kinds.count("near_dup"), kinds.count("exact_dup")) == (
        528,
        60,
        12,
    )
    sources = [r["source_id"] for r in rows if r["kind"] != "original"]
    assert len(set(sources)) == len(sources)  # one copy per source: clusters of two
    originals = {r["id"] for r in rows if r["kind"] == "original"}
    for r in rows:
        assert r["length"] == len(texts[r["id"]])
        if r["kind"] == "original":
            assert r["source_id"] is None and r["jaccard"] is None
        elif r["kind"] == "exact_dup":
            assert r["source_id"] in originals and texts[r["id"]] == texts[r["source_id"]]
        else:
            assert r["source_id"] in originals
            measured = make_corpus.jaccard(texts[r["id"]], texts[r["source_id"]])
            assert r["jaccard"] == pytest.approx(measured, abs=1e-4)
            assert 0.5 <= r["jaccard"] <= 0.95 and r["n_edits"] + (r["header"] != "none") > 0


def test_originals_are_not_near_duplicates_of_each_other(corpus):
    texts = _texts(corpus)
    truth = pq.read_table(corpus / "ground_truth.parquet").to_pylist()
    by_family: dict[str, list[set]] = {}
    for r in truth:
        if r["kind"] == "original":
            by_family.setdefault(r["origin"], []).append(make_corpus.shingles(texts[r["id"]]))
    assert len(by_family) >= 5
    worst = 0.0
    for sets in by_family.values():
        for i, a in enumerate(sets):
            for b in sets[i + 1 :]:
                worst = max(worst, len(a & b) / len(a | b))
    assert worst < 0.5
