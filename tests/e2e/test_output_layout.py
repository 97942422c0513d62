"""The output layout through the CLI: row groups of a target size, no empty files, a run that
keeps nothing, and readers (inspect, check, resume, stats) that go by the manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import assert_accounted, read_ids, words, write_corpus

cli = CliRunner()
WORDS = "tests.doubles:MinWords"
DEDUP = "tests.doubles:TextDedup"


def corpus(tmp_path: Path) -> Path:
    dup = "shared " + words(9)
    shards = [
        [f"first{i} " + words(8 + i % 5, i) for i in range(20)] + [dup],  # one duplicate
        [words(2, i) for i in range(6)],  # every document too short: the unit keeps nothing
        [f"third{i} " + words(9, i) for i in range(7)] + [dup],
    ]
    return write_corpus(tmp_path / "in", shards, row_group_size=4)


def config(tmp_path: Path, inp: Path, steps: list[dict], **output) -> Path:
    data = {
        "input": {"path": str(inp), "id_column": "id", "batch_size": 3},
        "output": {"path": str(tmp_path / "out"), "row_group_rows": 5, **output},
        "executor": "local",
        "steps": steps,
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(*args: str):
    return cli.invoke(app, ["run", *args], catch_exceptions=False)


def manifests(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "_manifest").glob("s*-part-*.json")}


def row_groups(path: Path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


STEPS = [
    {"use": WORDS, "id": "words", "params": {"min_words": 8}},
    {"use": DEDUP, "id": "dedup"},
    {"use": WORDS, "id": "tag", "mode": "annotate"},
]


def test_files_hold_row_groups_of_the_target_size_and_only_rows(tmp_path):
    inp = corpus(tmp_path)
    out = tmp_path / "out"
    result = run(str(config(tmp_path, inp, STEPS)), "--quiet")
    assert result.exit_code == 0, result.output
    assert_accounted(read_ids(inp), out)
    # 21 rows kept, read 3 at a time: row groups of 5, not one per batch.
    assert row_groups(out / "data" / "part-00000.parquet") == [5, 5, 5, 5, 1]
    # shard-1 keeps nothing: no data file, no sidecar; its ledger holds all six.
    assert not (out / "data" / "part-00001.parquet").exists()
    assert not (out / "_sidecar" / "dedup" / "part-00001.parquet").exists()
    assert row_groups(out / "rejected" / "part-00001.parquet") == [5, 1]
    # Only shard-2's copy of the duplicate goes in segment 1: one ledger file there.
    assert sorted(p.name for p in (out / "rejected").glob("*-s1.parquet")) == [
        "part-00002-s1.parquet"
    ]
    for name, m in manifests(out).items():  # every file named holds rows
        for kind, uri in m["files"].items():
            if kind != "data" or m["final"]:  # (segment files go once the run is done)
                assert pq.ParquetFile(uri).metadata.num_rows > 0, name
    m = manifests(out)["s1-part-00001"]
    assert (m["input"]["rows"], m["kept"], m["rejected"], m["files"]) == (0, 0, 0, {})
    stats = json.loads((out / "stats.json").read_text())
    assert stats["total"]["consistent"] and stats["total"]["documents"] == 35


def test_a_run_that_keeps_nothing_ends_cleanly_and_says_so(tmp_path):
    inp = corpus(tmp_path)
    out = tmp_path / "out"
    steps = [{"use": WORDS, "id": "words", "params": {"min_words": 100}}, *STEPS[1:]]
    conf = config(tmp_path, inp, steps)
    result = run(str(conf), "--progress", "plain")
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "kept 0 of 35 documents" in flat and "nothing was kept (data/ holds no file)" in flat
    assert not (out / "data").exists() and not (out / "_sidecar").exists()
    assert_accounted(read_ids(inp), out)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["total"]["kept"] == 0 and stats["total"]["consistent"]
    # The readers cope: inspect shows the funnel, a sample of the ledger and the HTML report.
    shown = cli.invoke(app, ["inspect", str(out), "--reason", "words", "--sample", "2"])
    assert shown.exit_code == 0, shown.output
    report = cli.invoke(app, ["inspect", str(out), "--html", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output
    # check says why it cannot check the kept schema, and still checks the rest.
    expect = tmp_path / "expect.yaml"
    expect.write_text(yaml.safe_dump({"schema": {"text": "string"}, "min_documents": 1}))
    checked = cli.invoke(app, ["check", str(out), "--expect", str(expect), "--json"])
    assert checked.exit_code == 1, checked.output
    results = {r["name"]: r for r in json.loads(checked.output)["expectations"]}
    assert "no document was kept" in results["schema[text]"]["message"]
    # A rerun finds it complete.
    again = run(str(conf))
    assert again.exit_code == 0 and "already complete" in again.output


@pytest.mark.ray
def test_row_groups_are_the_same_bytes_on_ray_and_in_process(ray_session, tmp_path):
    inp = corpus(tmp_path)
    conf = config(tmp_path, inp, STEPS)
    outs = {}
    for name, extra in (("w2", ["--executor", "ray", "--workers", "2"]), ("local", [])):
        out = tmp_path / name
        result = run(str(conf), "--output", str(out), "--quiet", *extra)
        assert result.exit_code == 0, result.output
        outs[name] = {
            str(p.relative_to(out)): p.read_bytes()
            for sub in ("data", "rejected")
            for p in sorted((out / sub).glob("*.parquet"))
        }
    # data: shards 0 and 2; ledger: shard-1's short texts, shard-2's duplicate (segment 1)
    assert sorted(outs["local"]) == [
        "data/part-00000.parquet",
        "data/part-00002.parquet",
        "rejected/part-00001.parquet",
        "rejected/part-00002-s1.parquet",
    ]
    assert outs["w2"] == outs["local"]


def test_segment_files_are_uncompressed_on_a_local_disk_the_output_compressed(tmp_path):
    inp = corpus(tmp_path)
    out = tmp_path / "out"
    conf = config(tmp_path, inp, STEPS, keep_intermediate=True)
    assert run(str(conf), "--quiet").exit_code == 0

    def codecs(path: Path) -> set[str]:
        meta = pq.ParquetFile(path).metadata
        return {
            meta.row_group(g).column(c).compression
            for g in range(meta.num_row_groups)
            for c in range(meta.num_columns)
        }

    segment = sorted((out / "_segments").rglob("*.parquet"))
    assert segment and all(codecs(p) == {"UNCOMPRESSED"} for p in segment)
    finals = [*(out / "data").glob("*.parquet"), *(out / "rejected").glob("*.parquet")]
    assert finals and all(codecs(p) == {"ZSTD"} for p in finals)
    # stats.json says where the wall time went, phase by phase, in order.
    stats = json.loads((out / "stats.json").read_text())
    phases = stats["total"]["phases"]
    assert list(phases) == [
        "planning",
        "model_check",
        "start",
        "id_check",
        "segment_0",
        "decide_dedup",
        "segment_1",
        "close",
        "finish",
    ]
    assert all(v >= 0 for v in phases.values())
