"""A model that cannot load fails `curate run` with exit 2 and one sentence naming the step and
the file, within seconds, in process and on Ray: never a segfault, never an actor restarted
forever (issue 10, crash-proof setup)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import REPO, SAMPLE, words, write_corpus

MODELS = REPO / "examples" / "quickstart" / "models"
cli = CliRunner()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Probe results cached in the test's folder, never in the user's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _truncated_ftz(tmp_path: Path) -> Path:
    """The shipped quality model cut to 300 KB, no sidecar: fastText would allocate 7 GB
    loading it and segfault on the first prediction."""
    path = tmp_path / "models" / "quality.ftz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((MODELS / "quality.ftz").read_bytes()[:300_000])
    return path


def _random_ftz(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "random.ftz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(300_000))
    return path


def _text_as_kenlm(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "lm.binary"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("these are notes about a language model,\nnot the model itself\n")
    return path


CASES = {
    "truncated fastText": (
        _truncated_ftz,
        {"use": "fasttext_quality", "id": "quality", "params": {"label": "hq"}},
        "fasttext",
    ),
    "random bytes as fastText": (
        _random_ftz,
        {"use": "fasttext_langid", "id": "lang", "params": {"languages": ["en"]}},
        "fasttext",
    ),
    "a text file as KenLM": (
        _text_as_kenlm,
        {"use": "perplexity", "id": "ppl", "params": {"backend": "kenlm"}},
        "kenlm",
    ),
}


def _config(tmp_path: Path, step: dict, model: Path) -> Path:
    step = {**step, "params": {**step["params"], "model": str(model)}}
    data = {
        "input": {"path": str(SAMPLE), "id_column": "id"},
        "output": {"path": str(tmp_path / "out")},
        "steps": [{"use": "gopher_quality"}, step],
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _assert_named(stderr: str, step: dict, model: Path) -> None:
    assert "Traceback" not in stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: step '{step['id']}' ")
    assert str(model) in stderr.replace("\n", "")


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_model_in_process_is_exit_2_naming_step_and_file(tmp_path, case):
    make, step, library = CASES[case]
    pytest.importorskip(library)
    model = make(tmp_path)
    conf = _config(tmp_path, step, model)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", str(conf), "--executor", "local", "-q"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    _assert_named(done.stderr, step, model)
    print(f"{case}: {time.perf_counter() - t0:.1f}s")  # seconds, not the minutes of a hang
    assert not (tmp_path / "out" / "data").exists() or not any(
        (tmp_path / "out" / "data").iterdir()
    )


@pytest.mark.ray
@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_model_on_ray_is_exit_2_naming_step_and_file(ray_session, tmp_path, case):
    make, step, library = CASES[case]
    pytest.importorskip(library)
    model = make(tmp_path)
    conf = _config(tmp_path, step, model)
    result = cli.invoke(app, ["run", str(conf), "-q"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    _assert_named(result.output, step, model)


def _scripted(tmp_path: Path, behaviour: str) -> Path:
    model = tmp_path / "scripted.model"
    model.write_text(behaviour + "\n")
    inp = write_corpus(tmp_path / "in", [[words(8, i) for i in range(6)]])
    data = {
        "input": {"path": str(inp), "id_column": "id"},
        "output": {"path": str(tmp_path / "out")},
        "steps": [
            {
                "use": "tests.crash_doubles:ScriptedModel",
                "id": "scripted",
                "params": {"model": str(model)},
            }
        ],
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.ray
def test_a_segfault_only_on_ray_workers_fails_the_run_instead_of_restarting_forever(
    ray_session, tmp_path
):
    """The driver's probe passes (the crash needs a Ray worker): the actors' own setup guard
    must then stop the run, where Ray used to restart the actor forever."""
    conf = _scripted(tmp_path, "segfault-on-ray")
    t0 = time.perf_counter()
    result = cli.invoke(app, ["run", str(conf), "-q", "--workers", "1"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "a Ray worker died setting up the steps (scripted)" in result.output
    assert time.perf_counter() - t0 < 120  # generous; a hang is what this test is about


def test_a_segfault_in_setup_in_process_is_exit_2_not_139(tmp_path):
    conf = _scripted(tmp_path, "segfault")
    done = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", str(conf), "--executor", "local", "-q"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    model = tmp_path / "scripted.model"
    assert f"error: step 'scripted' crashed (SIGSEGV) loading {model}" in done.stderr.replace(
        "\n", ""
    )


def test_a_good_model_is_probed_once_then_cached(tmp_path):
    pytest.importorskip("fasttext")
    model = tmp_path / "models" / "quality.ftz"
    model.parent.mkdir()
    shutil.copy(MODELS / "quality.ftz", model)
    shutil.copy(MODELS / "quality.ftz.json", str(model) + ".json")
    conf = _config(tmp_path, CASES["truncated fastText"][1], model)
    result = cli.invoke(app, ["run", str(conf), "-q", "--executor", "local"])
    assert result.exit_code == 0, result.output
    cache = tmp_path / "cache" / "curate" / "probe.json"
    assert cache.exists()
    before = cache.read_bytes()
    result = cli.invoke(app, ["run", str(conf), "-q", "--executor", "local", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert cache.read_bytes() == before  # nothing new to remember: the probe was skipped


def test_more_workers_than_cpus_on_embedded_ray_is_refused_with_the_number(tmp_path):
    """`--workers 100000` used to start Ray with 100000 CPUs and fork until the machine died."""
    conf = _scripted(tmp_path, "ok")
    have = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    done = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", str(conf), "--workers", "100000"],
        cwd=REPO,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "RAY_ADDRESS": "",
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    message = " ".join(done.stderr.split())
    assert f"error: --workers 100000: this machine has {have} CPUs" in message
    assert "Traceback" not in message
