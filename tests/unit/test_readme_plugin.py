"""The README's promises: its plugin example works as written, and CI runs its test command."""

from __future__ import annotations

import importlib
import re
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from curate import config as cfg
from curate import runner
from curate.testing import check_filter_contract
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _plugin_source() -> str:
    section = README.split("## Write a plugin", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_plugin_keeps_the_contract_and_runs_in_a_pipeline(tmp_path, monkeypatch):
    (tmp_path / "shouting.py").write_text(_plugin_source())
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("shouting", None)
    shouting = importlib.import_module("shouting")
    check_filter_contract(shouting.Shouting, {"max_upper": 0.4})
    (tmp_path / "in").mkdir()
    pq.write_table(
        pa.table(
            {"id": ["calm", "loud"], "text": ["A calm sentence.", "THIS IS ALL CAPS, Mostly!"]}
        ),
        tmp_path / "in" / "a.parquet",
    )
    config = cfg.load(
        base={
            "input": {"path": "in", "id_column": "id"},
            "output": {"path": "out"},
            "executor": "local",
            "steps": [{"use": "shouting:Shouting", "id": "shout"}],
        }
    )
    runner.run(config, progress="quiet")
    assert pq.read_table(tmp_path / "out" / "data")["id"].to_pylist() == ["calm"]
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert rejected[0]["reason"] == "shout" and rejected[0]["shout_upper"] > 0.7


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", README)
    assert len(commands) == 2, "the README has its two commands: quickstart and tests"
    test_command = commands[1].split("&& ", 2)[2]  # after creating and activating the venv
    assert test_command in (REPO / ".ci" / "run").read_text()
