"""The driver reads each Parquet footer and each unit manifest once per run, and lists the
manifest folder once: counted through a counting filesystem on hand-made shards (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate import io, runner
from curate.config import PipelineConfig
from tests.conftest import words, write_corpus
from tests.storage_doubles import Phases, recording

SHARDS = 6
ROWS = 40  # 5 row groups of 8; unit_rows 16 -> 3 units a shard


def _corpus(tmp_path: Path) -> Path:
    texts = [[words(4 + (i % 7), s * 100 + i) for i in range(ROWS)] for s in range(SHARDS)]
    return write_corpus(tmp_path / "in", texts, row_group_size=8)


def _config(inp: Path, out: Path) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "input": {"path": str(inp), "unit_rows": 16, "batch_size": 8},
            "output": {"path": str(out)},
            "executor": "local",
            "steps": [
                {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 5}},
                {"use": "minhash", "id": "mh"},
            ],
        }
    )


def _run(config: PipelineConfig):
    with recording() as recorder, Phases(recorder).installed() as phases:
        result = runner.run(config, progress="plain")
    return result, phases


def _shard_paths(inp: Path) -> list[str]:
    return sorted(str(p) for p in inp.glob("*.parquet"))


def test_a_fresh_run_reads_each_footer_once_and_no_manifest(tmp_path):
    inp = _corpus(tmp_path)
    result, phases = _run(_config(inp, tmp_path / "out"))
    assert result.stats["total"]["documents"] == SHARDS * ROWS
    footers, _ = phases.split("footers")
    assert dict(footers) == {p: 1 for p in _shard_paths(inp)}
    counts, _ = phases.split("counts")
    # The units' manifests come back as their summaries: the driver never reads one back.
    assert not [p for (op, p) in counts if op == "read" and "/_manifest/s" in p]


def test_a_rerun_with_nothing_left_reads_each_footer_and_manifest_once(tmp_path):
    inp = _corpus(tmp_path)
    config = _config(inp, tmp_path / "out")
    runner.run(config, progress="plain")
    result, phases = _run(config)  # no unit runs: every read is the driver's
    assert result.already_complete
    footers, units = phases.split("footers")
    assert dict(footers) == {p: 1 for p in _shard_paths(inp)} and not units
    counts, _ = phases.split("counts")
    manifests = {p: n for (op, p), n in counts.items() if op == "read" and "/_manifest/s" in p}
    assert len(manifests) == 2 * SHARDS * 3  # two segments of 18 units
    assert set(manifests.values()) == {1}
    listed = [n for (op, p), n in counts.items() if op == "list" and p.endswith("/_manifest")]
    assert listed == [1]


def test_the_footer_cache_lives_for_one_run_only(tmp_path):
    inp = _corpus(tmp_path)
    config = _config(inp, tmp_path / "out")
    with recording() as recorder:
        runner.run(config, progress="plain")
        first = sum(recorder.footers[p] for p in _shard_paths(inp))
        runner.run(config, progress="plain")
        second = sum(recorder.footers[p] for p in _shard_paths(inp))
    # Each run reads the footers afresh (a file changed between runs is seen by the next).
    assert second - first == SHARDS


def test_discover_keeps_the_footers_it_read_for_the_checks(tmp_path):
    inp = _corpus(tmp_path)
    footers = io.Footers()
    shards = io.discover(str(inp), footers=footers)
    assert footers.reads == SHARDS
    assert [s.num_rows for s in shards] == [ROWS] * SHARDS
    assert footers.schema(shards[0].uri).names == ["id", "text"]
    assert footers.reads == SHARDS  # asked again: nothing re-read


def test_an_unreadable_footer_is_named_in_input_order(tmp_path):
    inp = _corpus(tmp_path)
    for bad in ("shard-2.parquet", "shard-4.parquet"):
        (inp / bad).write_bytes(b"not parquet at all")
    with pytest.raises(io.InputError, match="shard-2.parquet: not a readable Parquet file"):
        io.discover(str(inp))


def test_open_unit_reads_the_footer_once_and_gives_what_the_two_calls_give(tmp_path):
    inp = _corpus(tmp_path)
    units = io.plan_units(io.discover(str(inp)), 16)
    unit = units[4]  # shard 1, row groups 2-3
    with recording() as recorder:
        schema, batches = io.open_unit(unit, 8)
        got = [b.to_pydict() for b in batches]
    assert recorder.footers == {str(inp / "shard-1.parquet"): 1}
    assert schema == io.unit_schema(unit)
    assert got == [b.to_pydict() for b in io.read_unit(unit, 8)]
    assert [r for b in got for r in b["id"]] == [f"s1-{i}" for i in range(16, 32)]
