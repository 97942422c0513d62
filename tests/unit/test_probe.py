"""The setup probe: a step whose model raises, crashes, hangs or runs away in a child process is
one StepError naming the step and the file; the parent lives on; passes are cached."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from curate import probe
from curate.config import load
from curate.models import sha256_path
from curate.process import BoundStep, StepError, bind_steps

USE = "tests.crash_doubles:ScriptedModel"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def bound(tmp_path: Path, behaviour: str, **step_extra) -> tuple[list[BoundStep], dict]:
    model = tmp_path / f"{behaviour}.model"
    model.write_text(behaviour + "\n")
    config = load(
        base={
            "input": {"path": str(tmp_path)},
            "output": {"path": str(tmp_path / "out")},
            "steps": [
                {"use": USE, "id": "scripted", "params": {"model": str(model)}, **step_extra}
            ],
        }
    )
    steps = bind_steps(config)
    models = {"scripted": {"model": {"path": str(model), "sha256": sha256_path(str(model))}}}
    return steps, models


def test_a_model_that_loads_passes_and_is_cached(tmp_path, monkeypatch):
    steps, models = bound(tmp_path, "ok")
    probe.check_setup(steps, "text", models)
    cached = json.loads(probe.cache_path().read_text())
    assert probe.cache_path().is_relative_to(tmp_path / "cache" / "curate")
    assert list(cached["ok"]) == [probe.probe_key(steps[0], "text", models["scripted"])]

    def no_second_probe(*args, **kwargs):
        raise AssertionError("a cached step was probed again")

    monkeypatch.setattr(probe, "probe", no_second_probe)
    assert probe.check_setup(steps, "text", models) < 1.0


def test_a_model_that_raises_is_a_sentence_naming_step_and_file(tmp_path):
    steps, models = bound(tmp_path, "raise")
    with pytest.raises(StepError) as info:
        probe.check_setup(steps, "text", models)
    path = models["scripted"]["model"]["path"]
    assert str(info.value) == (
        f"step 'scripted' cannot load its model {path}: {path} is not a scripted model"
    )
    assert not probe.cache_path().exists()


def test_a_segfault_while_loading_is_named_and_the_parent_survives(tmp_path):
    steps, models = bound(tmp_path, "segfault")
    with pytest.raises(StepError) as info:
        probe.check_setup(steps, "text", models)
    path = models["scripted"]["model"]["path"]
    assert str(info.value).startswith(f"step 'scripted' crashed (SIGSEGV) loading {path}: ")
    assert "truncated, corrupt or not a model tests.crash_doubles:ScriptedModel can load" in str(
        info.value
    )


def test_a_segfault_on_the_first_batch_is_named_as_scoring(tmp_path):
    steps, models = bound(tmp_path, "segfault-on-score")
    result = probe.probe(steps[0], "text")
    assert result == probe.ProbeResult("signal", "SIGSEGV", "score")
    assert "crashed (SIGSEGV) scoring a test batch with" in probe.describe(
        steps[0], models["scripted"], result
    )


def test_a_hang_is_stopped_at_the_timeout(tmp_path):
    steps, models = bound(tmp_path, "hang")
    t0 = time.perf_counter()
    with pytest.raises(StepError, match=r"did not finish loading .*hang\.model within 1s"):
        probe.check_setup(steps, "text", models, timeout=1)
    assert time.perf_counter() - t0 < 30  # generous: only proves the child did not run on


def test_a_runaway_allocation_is_stopped_at_the_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setenv(probe.MEMORY_ENV, "0.05")
    steps, models = bound(tmp_path, "ok")

    def grow(self):
        hog = bytearray(400 << 20)  # touched pages: resident, unlike a bare reservation
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(60)

    monkeypatch.setattr(steps[0].cls, "setup", grow)  # inherited by the forked child
    if probe._start_method() != "fork":
        pytest.skip("the patched setup only reaches a forked child")
    result = probe.probe(steps[0], "text", timeout=30)
    assert (result.status, result.stage) == ("memory", "setup")


def test_a_corrupt_cache_is_ignored_and_replaced(tmp_path):
    steps, models = bound(tmp_path, "ok")
    probe.cache_path().parent.mkdir(parents=True)
    probe.cache_path().write_text("{not json")
    probe.check_setup(steps, "text", models)
    assert json.loads(probe.cache_path().read_text())["version"] == 1


def test_the_cache_key_follows_the_model_bytes_and_params(tmp_path):
    steps, models = bound(tmp_path, "ok")
    key = probe.probe_key(steps[0], "text", models["scripted"])
    changed = {"model": {**models["scripted"]["model"], "sha256": "0" * 64}}
    assert probe.probe_key(steps[0], "text", changed) != key
    assert probe.probe_key(steps[0], "body", models["scripted"]) != key


def test_steps_without_models_or_reserving_gpus_are_not_probed(tmp_path, monkeypatch):
    steps, models = bound(tmp_path, "segfault", resources={"gpus": 1})
    monkeypatch.setattr(probe, "probe", lambda *a, **k: pytest.fail("probed"))
    assert probe.check_setup(steps, "text", models) == 0.0
    assert probe.check_setup(steps, "text", {}) == 0.0


def test_a_model_on_a_store_is_copied_locally_before_it_is_probed(tmp_path):
    """Workers get a local copy of a model named by URI; so does the probe (file:// stands in
    for s3:// here: the same pyarrow filesystem door)."""
    steps, models = bound(tmp_path, "ok")
    uri = "file://" + models["scripted"]["model"]["path"]
    steps[0].params.model = uri
    models["scripted"]["model"]["path"] = uri
    probe.check_setup(steps, "text", models)
    assert steps[0].params.model == uri  # the run's own params are left alone
