"""A step that declares GPUs runs on its own pool of GPU actors (Ray's logical GPU on this
machine); CPU steps stay on the unit actors; the output is the in-process run's, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import SAMPLE, assert_accounted, read_ids
from tests.unit.test_perplexity import tiny_gpt2  # noqa: F401  (fixture)

pytestmark = pytest.mark.ray
cli = CliRunner()
ON_GPU = {"gpus": 1}


def config(tmp_path: Path, steps: list[dict], name: str = "p.yaml") -> Path:
    path = tmp_path / name
    data = {
        "input": {"path": str(SAMPLE), "id_column": "id", "batch_size": 64, "unit_rows": 100},
        "output": {"path": str(tmp_path / "out")},
        "steps": steps,
    }
    path.write_text(yaml.safe_dump(data))
    return path


def run(conf: Path, out: Path, *extra: str):
    return cli.invoke(app, ["run", str(conf), "--output", str(out), "--quiet", *extra])


def files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("data", "rejected")
        for p in sorted((out / sub).glob("*.parquet"))
    }


def test_a_gpu_step_runs_on_its_own_pool_and_cpu_steps_reserve_no_gpu(ray_session, tmp_path):
    steps = [
        {"use": "gopher_quality", "params": {"min_doc_words": 30}},
        {"use": "tests.pool_doubles:WhereScored", "id": "on_gpu", "resources": ON_GPU},
        {"use": "tests.pool_doubles:WhereScored", "id": "on_cpu"},
    ]
    out = tmp_path / "ray"
    result = run(config(tmp_path, steps), out, "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert_accounted(read_ids(SAMPLE), out)
    # 2 CPUs, 1 GPU: the GPU step's actor holds 1 CPU + the GPU, one unit actor the other CPU.
    stats = json.loads((out / "stats.json").read_text())
    assert stats["total"]["actors"] == {"unit_actors": 1, "on_gpu_actors": 1}
    kept = pq.read_table(out / "data")
    assert kept.num_rows > 0
    assert set(kept["on_gpu_gpus"].to_pylist()) == {1.0}  # scored where the GPU is reserved
    assert set(kept["on_cpu_gpus"].to_pylist()) == {0.0}  # the unit actor reserves none
    gpu_pids, cpu_pids = set(kept["on_gpu_pid"].to_pylist()), set(kept["on_cpu_pid"].to_pylist())
    assert len(gpu_pids) == len(cpu_pids) == 1 and not gpu_pids & cpu_pids


def _same_bytes_as_in_process(tmp_path: Path, steps: list[dict]) -> dict[str, bytes]:
    conf = config(tmp_path, steps)
    outs = {}
    for name in ("ray", "local"):
        result = run(conf, tmp_path / name, "--executor", name)
        assert result.exit_code == 0, result.output
        assert_accounted(read_ids(SAMPLE), tmp_path / name)
        outs[name] = files(tmp_path / name)
    assert outs["ray"] == outs["local"]
    stats = json.loads((tmp_path / "ray" / "stats.json").read_text())
    assert len(stats["total"]["actors"]) == 2  # the unit actors and the GPU step's pool
    return outs["ray"]


def test_a_real_filter_on_the_gpu_pool_writes_the_in_process_bytes_and_resumes(
    ray_session, tmp_path
):
    steps = [
        {"use": "gopher_quality", "params": {"min_doc_words": 30}},
        # Slices of 7 rows: its score() never sees more, wherever it runs.
        {"use": "fineweb_quality", "resources": {**ON_GPU, "batch_size": 7}},
        {"use": "c4_quality", "mode": "annotate"},
    ]
    expected = _same_bytes_as_in_process(tmp_path, steps)
    kept = pq.read_table(tmp_path / "ray" / "data")
    assert "fineweb_quality_rule" in kept.schema.names
    # Resume: a unit that had not finished (its manifest gone) is redone on the pool.
    out = tmp_path / "ray"
    manifests = sorted((out / "_manifest").glob("s0-*.json"))
    manifests[-1].unlink()
    result = run(config(tmp_path, steps), out, "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert files(out) == expected
    assert json.loads((out / "stats.json").read_text())["total"]["documents"] == 904


def test_the_hf_small_lm_on_the_gpu_pool_writes_the_in_process_bytes(
    ray_session,
    tmp_path,
    tiny_gpt2,  # noqa: F811
):
    steps = [
        {"use": "gopher_quality", "params": {"min_doc_words": 30}},
        {
            "use": "perplexity",
            "id": "lm",
            "resources": ON_GPU,
            "params": {
                "backend": "hf",
                "model": tiny_gpt2,
                "device": "cpu",
                "max_tokens": 64,  # the tiny model's positions
                "max_perplexity": 1e9,
            },
        },
    ]
    _same_bytes_as_in_process(tmp_path, steps)
    kept = pq.read_table(tmp_path / "ray" / "data")
    assert all(v > 1 for v in kept["lm_perplexity"].to_pylist())


def test_an_error_on_the_gpu_pool_names_the_step_and_the_unit(ray_session, tmp_path):
    steps = [{"use": "tests.doubles:Boom", "id": "boom", "resources": ON_GPU}]
    result = run(config(tmp_path, steps), tmp_path / "out", "--executor", "ray")
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "step 'boom' failed on" in said and "part-" in said and "RuntimeError: boom" in said
