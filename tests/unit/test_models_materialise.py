"""Shipped models unpacked on a worker: several actors of one node unpacking at once all succeed."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from pathlib import Path

import pytest

from curate.models import materialise, pack, sha256_path

MODELS = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "models"
RACERS = 8


def _unpack_together(args: tuple) -> str:
    files, digest, name, barrier = args
    barrier.wait()  # all racers past the "is it there yet?" check before any has moved its copy
    return materialise(files, digest, name)


def _race(files: dict[str, bytes], digest: str, name: str, cache: Path) -> list[str]:
    # spawn, not fork: the session's Ray threads may be running in this process (a forked
    # child would inherit their locks). The children find the cache through TMPDIR.
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(RACERS)
        with context.Pool(RACERS) as pool:
            return pool.map(_unpack_together, [(files, digest, name, barrier)] * RACERS)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path / "curate-models"


def test_a_folder_model_unpacked_by_many_processes_at_once_is_one_verified_copy(cache):
    files, digest = pack(str(MODELS)), sha256_path(str(MODELS))
    paths = _race(files, digest, "models", cache)
    assert set(paths) == {str(cache / digest / "models")}
    assert sha256_path(paths[0]) == digest
    # Every loser's staging folder is gone: only the one copy is left in the cache.
    assert sorted(os.listdir(cache)) == [digest]


def test_a_file_model_with_its_settings_sidecar_unpacked_at_once(cache):
    model = MODELS / "quality.ftz"
    files, digest = pack(str(model)), sha256_path(str(model))
    paths = _race(files, digest, "quality.ftz", cache)
    assert set(paths) == {str(cache / digest / "quality.ftz")}
    assert (cache / digest / "quality.ftz.json").read_bytes() == files[".json"]
    assert sorted(os.listdir(cache)) == [digest]


def test_a_cached_copy_that_differs_from_the_drivers_is_refused(cache):
    files, digest = pack(str(MODELS)), sha256_path(str(MODELS))
    materialise(files, digest, "models")
    (cache / digest / "models" / "README.md").write_text("edited on this worker")
    with pytest.raises(ValueError, match="differs from the driver's"):
        materialise(files, digest, "models")
