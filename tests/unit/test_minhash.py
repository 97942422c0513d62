"""The `minhash` step: datasketch-compatible signatures, banding, and who survives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from curate_filters.dedup.lsh import band_keys, effective_threshold, optimal_params
from curate_filters.dedup.normalize import NormParams, normalize
from curate_filters.dedup.signatures import (
    poly_hash32,
    shingle_ranges,
    signatures,
    string_buffers,
)
from curate_filters.dedup.step import MinHashDedup, MinHashParams

datasketch = pytest.importorskip("datasketch")
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "near_dup"

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank today.",
    "short text",
    "héllo wörld, ça va très bien — merci beaucoup mon ami!",
    "!!!",
    "one two three four five six seven eight nine ten eleven twelve",
]


def word_shingles(text: str, n: int = 5) -> list[bytes]:
    words = text.split(" ") if text else []
    return [
        " ".join(words[k : k + n]).encode()
        for k in range(max(len(words) - n + 1, min(1, len(words))))
    ]


def local_map(fn, items):
    return [fn(x) for x in items]


def run_step(step, shards: list[list[str]], tmp_path: Path, ids=None) -> pa.Table:
    step.setup()
    paths = []
    for s, texts in enumerate(shards):
        batch = pa.table({"text": texts})
        rows = pa.array((s << 40) + np.arange(len(texts)), pa.int64())
        user = pa.array(ids[s] if ids else [f"s{s}-{i}" for i in range(len(texts))])
        path = tmp_path / "sidecar" / f"part-{s}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(step.signature(batch, rows, user), path)
        paths.append(str(path))
    return step.decide(paths, local_map, str(tmp_path / "work"))


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
def test_sha1_signatures_equal_datasketch(scheme):
    text = normalize(pa.array(TEXTS), NormParams())
    sig, counts = signatures(text, num_perm=64, hash="sha1", scheme=scheme, seed=3)
    for i, t in enumerate(text.to_pylist()):
        m = datasketch.MinHash(num_perm=64, seed=3, scheme=scheme)
        m.update_batch(word_shingles(t))
        assert counts[i] == len(word_shingles(t))
        assert np.array_equal(sig[i], m.hashvalues)


def test_poly_hash_is_a_function_of_the_shingle_bytes():
    text = normalize(pa.array(["a b c a b c", "x a b c"]), NormParams())
    data, offsets = string_buffers(text)
    s, e, d = shingle_ranges(data, offsets, 3)
    got = dict(
        zip(
            [bytes(data[a:b]) for a, b in zip(s, e, strict=True)],
            poly_hash32(data, s, e).tolist(),
            strict=False,
        )
    )
    assert len(got) == 4  # "a b c", "b c a", "c a b", "x a b" and repeats hash alike
    again = normalize(pa.array(["b c a"]), NormParams())
    d2, o2 = string_buffers(again)
    assert poly_hash32(d2, np.array([0]), np.array([5]))[0] == got[b"b c a"]


def test_shingles_words_chars_and_short_documents():
    text = normalize(pa.array(["a b c d", "a b", "", "héé"]), NormParams())
    data, offsets = string_buffers(text)
    s, e, d = shingle_ranges(data, offsets, 3)
    got = [(int(x), bytes(data[a:b]).decode()) for a, b, x in zip(s, e, d, strict=True)]
    assert got == [(0, "a b c"), (0, "b c d"), (1, "a b"), (3, "héé")]
    s, e, d = shingle_ranges(data, offsets, 2, kind="char")
    assert [bytes(data[a:b]).decode() for a, b in zip(s, e, strict=True)][-2:] == ["hé", "éé"]


def test_optimal_params_match_datasketch():
    from datasketch.lsh import _optimal_param

    for t in (0.5, 0.8):
        assert optimal_params(t, 64) == _optimal_param(t, 64, 0.5, 0.5)
    assert 0.7 < effective_threshold(14, 8) < 0.75


def test_band_keys_equal_iff_band_equal():
    sig = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [5, 2, 3, 4]], np.uint32)
    keys = band_keys(sig, 2, 2)
    assert keys[0, 0] == keys[1, 0] and keys[0, 1] != keys[1, 1] and keys[0, 1] == keys[2, 1]
    assert keys[0, 0] != keys[2, 0]


def test_params_bands_rows_threshold():
    assert MinHashParams().lsh() == (14, 8)
    assert MinHashParams(threshold=0.8, num_perm=112).lsh() == (9, 12)
    with pytest.raises(ValidationError):
        MinHashParams(bands=4)
    with pytest.raises(ValidationError):
        MinHashParams(bands=20, rows=8, num_perm=112)


def test_near_duplicates_keep_the_first_and_name_it(tmp_path):
    base = " ".join(f"word{i}" for i in range(200))
    edited = base.replace("word100", "WORD100!")
    other = " ".join(f"other{i}" for i in range(200))
    decision = run_step(MinHashDedup(), [[other, edited], [base, "tiny", base]], tmp_path)
    assert decision.column_names == ["row_id", "drop", "duplicate_of", "cluster_size"]
    rows = decision.column("row_id").to_pylist()
    assert rows == sorted(set(rows)) == [1, 1 << 40, (1 << 40) + 2]
    assert decision.column("drop").to_pylist() == [False, True, True]
    assert decision.column("duplicate_of").to_pylist() == [None, "s0-1", "s0-1"]
    assert decision.column("cluster_size").to_pylist() == [3, 3, 3]
    assert MinHashDedup.defaults == {"cluster_size": 1}


def test_partition_count_does_not_change_the_decision(tmp_path):
    docs = [" ".join(f"w{(i * 7 + k) % 50}" for k in range(40)) for i in range(30)]
    one = run_step(MinHashDedup(MinHashParams(partitions=1)), [docs], tmp_path / "a")
    many = run_step(MinHashDedup(MinHashParams(partitions=7)), [docs], tmp_path / "b")
    assert one.equals(many)


def test_empty_batch_and_blank_text_give_typed_empty_sidecars():
    step = MinHashDedup()
    step.setup()
    empty = step.signature(
        pa.table({"text": pa.array([], pa.string())}),
        pa.array([], pa.int64()),
        pa.array([], pa.string()),
    )
    assert empty.num_rows == 0 and empty.schema == step.sidecar_schema()
    blank = step.signature(
        pa.table({"text": ["!!!", "ok"]}), pa.array([0, 1], pa.int64()), pa.array([7, 8])
    )
    assert blank.column("row_id").to_pylist() == [1] and blank.column("id").to_pylist() == ["8"]


def test_no_duplicates_gives_an_empty_decision(tmp_path):
    decision = run_step(
        MinHashDedup(), [["alpha beta gamma delta epsilon", "one two three four five"]], tmp_path
    )
    assert decision.num_rows == 0 and decision.schema.field("duplicate_of").type == pa.string()


@pytest.mark.skipif(not DATA.exists(), reason="shared/data/near_dup is absent")
def test_real_near_duplicates_are_found(tmp_path):
    table = pq.read_table(
        DATA / "synthetic_web_neardups.parquet", columns=["id", "text", "transform"]
    )
    decision = run_step(MinHashDedup(), [table.column("text").to_pylist()], tmp_path)
    clustered = set(decision.column("row_id").to_pylist())
    exact = {i for i, t in enumerate(table.column("transform").to_pylist()) if t == "exact_copy"}
    assert exact and exact <= clustered
