"""Samples read only the rows they show, and pick the same rows as a sample of the whole table;
`curate dedup audit` on a real minhash run."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate_tools.report import sample_files, sample_rows
from tests.conftest import REPO

cli = CliRunner()
FIXTURE = REPO / "tests" / "fixtures" / "near_dup" / "near_dup.parquet"


def test_a_sample_of_files_is_the_sample_of_the_whole_filtered_table(tmp_path):
    reasons = ["a", "b", None, "a", "c", "a", "b", "a"] * 7
    files = []
    for f in range(3):
        table = pa.table(
            {
                "id": [f"{f}-{i}" for i in range(len(reasons))],
                "reason": reasons,
                "text": [f"text {f} {i}" for i in range(len(reasons))],
            }
        )
        path = tmp_path / f"part-{f}.parquet"
        pq.write_table(table, path, row_group_size=5)
        files.append(str(path))
    whole = pa.concat_tables([pq.read_table(p) for p in files])
    for n, seed in ((3, 0), (10, 7), (500, 1)):
        mine = whole.filter(pa.compute.equal(whole["reason"], "a"))
        expected = sample_rows(mine.select(["id", "text"]), n, seed)
        got, total = sample_files(files, ["id", "text"], n, seed, reason="a")
        assert total == mine.num_rows
        assert got.to_pylist() == expected.to_pylist()


def test_dedup_audit_on_a_real_minhash_run(tmp_path):
    conf = tmp_path / "p.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(FIXTURE), "id_column": "id"},
                "output": {"path": str(tmp_path / "out")},
                "executor": "local",
                "steps": [{"use": "minhash", "params": {"bands": 14, "rows": 8}}],
            }
        )
    )
    assert cli.invoke(app, ["run", str(conf), "--quiet"]).exit_code == 0
    result = cli.invoke(app, ["dedup", "audit", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert report["removed"] == stats["steps"]["minhash"]["dropped"] > 0
