"""Shared fixtures: repository paths, small corpora, and one session-scoped local Ray."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import settings

from curate import embedded_ray

# No per-example deadline anywhere: on a busy machine (CI, a laptop compiling) a property that
# touches files can take seconds, and a timing failure says nothing about correctness.
settings.register_profile("curate", deadline=None)
settings.load_profile("curate")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "examples" / "quickstart" / "data"


def needs_shared():
    return pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} is not present")


@pytest.fixture(scope="session")
def ray_session():
    """One embedded Ray for every e2e test: the runner reuses it instead of starting its own."""
    ray = pytest.importorskip("ray")
    os.environ.pop("RAY_ADDRESS", None)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    # The same start as `curate run`'s embedded Ray, with a logical GPU: a step that declares
    # gpus then gets its own pool on a CPU machine.
    embedded_ray.start(ray, 2, gpus=1, PYTHONPATH=path)
    yield ray
    embedded_ray.stop(ray)


def write_corpus(
    folder: Path, texts_per_shard: list[list[str | None]], row_group_size: int = 4
) -> Path:
    """Parquet shards with `id` and `text` columns; ids say shard and row."""
    folder.mkdir(parents=True, exist_ok=True)
    for s, texts in enumerate(texts_per_shard):
        ids = [f"s{s}-{i}" for i in range(len(texts))]
        pq.write_table(
            pa.table({"id": ids, "text": pa.array(texts, pa.string())}),
            folder / f"shard-{s}.parquet",
            row_group_size=row_group_size,
        )
    return folder


def words(n: int, seed: int = 0) -> str:
    vocab = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
    ]
    return " ".join(vocab[(seed * 7 + i * 3 + i // 5) % len(vocab)] for i in range(n))


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    shards = [
        [words(10, i) for i in range(6)] + [words(3), None, "   ", words(10, 1)],
        [words(12, i) for i in range(5)] + [words(2, 9)],
        [],
    ]
    folder = write_corpus(tmp_path / "in", shards[:2])
    pq.write_table(
        pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}),
        folder / "shard-2.parquet",
    )
    return folder


def read_ids(folder: Path) -> list[str]:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return []
    ids = []
    for f in files:
        t = pq.read_table(f)
        col = "id" if "id" in t.schema.names else "curate_id"
        ids += [str(x) for x in t.column(col).to_pylist()]
    return ids


def assert_accounted(input_ids: list[str], out: Path) -> None:
    """The invariant: every input id is in data/ or rejected/, exactly once."""
    kept = read_ids(out / "data")
    rejected = read_ids(out / "rejected")
    assert sorted(kept + rejected) == sorted(input_ids)
    assert len(set(kept) & set(rejected)) == 0
