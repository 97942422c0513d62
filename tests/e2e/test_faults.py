"""Fault injection through the CLI: disk full while writing a unit, a shard that turns unreadable
mid-run. Each ends, after the fault is fixed and the same command rerun, with output identical
to a clean run and kept + rejected == input. (A killed worker and a killed driver are in
test_cli_core.py; the second node removed mid-run is in test_cluster.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, assert_accounted, read_ids, words, write_corpus

pytestmark = pytest.mark.ray

STEPS = [
    {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 6}},
    {"use": "tests.doubles:TextDedup", "id": "dedup"},
]


def _corpus(tmp_path: Path, shards: int = 6, rows: int = 40) -> Path:
    texts = [
        [words(20 + (i * 7 + s) % 30, i * 13 + s) + f" doc{s}x{i}" for i in range(rows)]
        for s in range(shards)
    ]
    texts[3][2] = texts[0][1]
    return write_corpus(tmp_path / "in", texts, row_group_size=10)


def _config(tmp_path: Path, inp: Path, out: Path, steps: list[dict]) -> Path:
    path = tmp_path / "p.yaml"
    data = {
        "input": {"path": str(inp), "id_column": "id", "batch_size": 10},
        "output": {"path": str(out), "compression": "none"},
        "steps": steps,
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _run(conf: Path, *args: str, wait: bool = True):
    cmd = [sys.executable, "-m", "curate.cli", "run", str(conf), "--executor", "local", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if wait:
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("data", "rejected")
        for p in sorted((out / sub).glob("*.parquet"))
    }


@pytest.fixture
def small_disk(tmp_path):
    """A 160 KiB tmpfs: room for a few units, not for the whole run."""
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root on Linux")
    mnt = Path("/tmp") / f"curate-full-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)])
    if done.returncode:
        mnt.rmdir()
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
        mnt.rmdir()


def test_disk_full_while_writing_a_unit_is_a_clear_error_and_resumes(small_disk, tmp_path):
    inp = _corpus(tmp_path)
    out = small_disk / "out"
    conf = _config(tmp_path, inp, out, STEPS)
    failed = _run(conf, "--quiet")
    assert failed.returncode == 2, failed.stderr
    message = " ".join(failed.stderr.split())
    assert "cannot write the output under" in message and "No space left" in message
    assert "Traceback" not in failed.stderr
    # Nothing half-published: no temporaries left, and every published data file has its
    # manifest (a unit is published by its manifest, written last).
    assert not list(out.rglob("*.tmp"))
    done = {p.stem.split("-", 1)[1] for p in (out / "_manifest").glob("s0-*.json")}
    assert {p.stem for p in (out / "_segments" / "s0").glob("*.parquet")} <= done
    assert len(done) < 6

    # Make room (grow the tmpfs) and rerun the same command: it resumes.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = _run(conf, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    clean = _run(conf, "--quiet", "--output", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    assert files(out) == files(tmp_path / "clean")
    assert_accounted(read_ids(inp), out)


def test_shard_unreadable_mid_run_is_named_then_resumes(tmp_path):
    inp = _corpus(tmp_path, shards=5)
    out = tmp_path / "out"
    steps = [{"use": "tests.doubles:Slow", "params": {"seconds": 0.15}}, *STEPS]
    conf = _config(tmp_path, inp, out, steps)
    # The shard handed out last (the runner takes the biggest first): still unread when the
    # first unit is done.
    shards = sorted(inp.glob("shard-*.parquet"))
    victim = min(reversed(shards), key=lambda p: p.stat().st_size)
    unit = f"part-{shards.index(victim):05d}"
    original = victim.read_bytes()
    proc = _run(conf, "--quiet", wait=False)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list((out / "_manifest").glob("s0-*.json")):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        victim.write_bytes(b"PAR1 this shard was truncated by a failing disk")
        log, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, log
    assert victim.name in log and "cannot read" in log and "Traceback" not in log
    assert not (out / "_manifest" / f"s0-{unit}.json").exists()
    assert not list(out.rglob("*.tmp"))

    victim.write_bytes(original)  # the disk is back
    resumed = _run(conf, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    clean = _run(conf, "--quiet", "--output", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    assert files(out) == files(tmp_path / "clean")
    assert_accounted(read_ids(inp), out)
