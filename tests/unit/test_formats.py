"""CSV and TSV in, JSONL(.gz) out, and a run says which input files it skipped and why."""

from __future__ import annotations

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from curate import config as cfg
from curate import io, runner
from tests.conftest import words


def mixed_folder(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": [words(8), words(2)]}), inp / "a.parquet")
    (inp / "b.jsonl").write_text(json.dumps({"id": "j1", "text": words(9)}) + "\n")
    with open(inp / "c.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "n"])
        w.writerow(["c1", 'a "quoted", multi\nline ' + words(6), "007"])
        w.writerow(["c2", "short", "2"])
    with gzip.open(inp / "d.tsv.gz", "wt") as f:
        f.write("id\ttext\n" + f"t1\t{words(7)}\n")
    (inp / "notes.txt").write_text("not a corpus")
    (inp / "_SUCCESS").write_text("")
    return inp


def run(tmp_path, inp, name="out", console=None, **output):
    conf = cfg.load(
        base={
            "input": {"path": str(inp), "id_column": "id"},
            "output": {"path": str(tmp_path / name), **output},
            "executor": "local",
            "steps": [{"use": "tests.doubles:MinWords", "params": {"min_words": 5}}],
        }
    )
    return runner.run(conf, progress="plain" if console else "quiet", console=console)


def test_csv_and_tsv_are_read_with_parquet_and_jsonl_and_skips_are_said(tmp_path, capsys):
    inp = mixed_folder(tmp_path)
    result = run(tmp_path, inp, console=Console(stderr=True))
    files = sorted((tmp_path / "out" / "data").glob("*.parquet"))
    kept = [row for f in files for row in pq.read_table(f).to_pylist()]
    assert sorted(r["id"] for r in kept) == ["c1", "j1", "p1", "t1"]
    csv_row = [r for r in kept if r["id"] == "c1"][0]
    assert csv_row["n"] == "007" and csv_row["text"].startswith('a "quoted", multi\nline')
    assert result.stats["total"]["consistent"] and result.stats["total"]["documents"] == 6
    said = " ".join(capsys.readouterr().err.split())
    assert "skipped 2 input files:" in said
    assert "notes.txt (unknown type)" in said and "_SUCCESS (hidden or metadata" in said


def test_a_folder_with_only_unknown_files_says_what_it_skipped(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.txt").write_text("x")
    with pytest.raises(io.InputError, match=r"matches no files: 1 files skipped, e\.g\. .*a\.txt"):
        io.discover(str(inp))


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz"])
def test_jsonl_output_is_reproducible_and_holds_the_kept_rows(tmp_path, fmt):
    inp = mixed_folder(tmp_path)
    run(tmp_path, inp, "one", format=fmt)
    run(tmp_path, inp, "two", format=fmt)
    files = sorted((tmp_path / "one" / "data").glob(f"*.{fmt}"))
    assert files and all(
        f.read_bytes() == (tmp_path / "two" / "data" / f.name).read_bytes() for f in files
    )
    rows = []
    for f in files:
        text = gzip.decompress(f.read_bytes()) if fmt.endswith(".gz") else f.read_bytes()
        rows += [json.loads(line) for line in text.decode().splitlines()]
    assert sorted(r["id"] for r in rows) == ["c1", "j1", "p1", "t1"]
    assert all("minwords_words" in r for r in rows)


def test_executor_auto_runs_small_plans_in_process_and_big_or_explicit_ones_on_ray(monkeypatch):
    import sys
    import types

    from curate.process import bind_steps

    # As in a fresh process: no Ray started yet (the test session may have one running).
    fake_ray = types.SimpleNamespace(is_initialized=lambda: False)
    monkeypatch.setitem(sys.modules, "ray", fake_ray)

    base = {"input": {"path": "x"}, "output": {"path": "y"}, "steps": [{"use": "gopher_quality"}]}
    small = cfg.load(base=base)
    steps = bind_steps(small)
    assert runner.choose_executor(small, steps, 1_000) == "local"
    assert runner.choose_executor(small, steps, runner.AUTO_LOCAL_ROWS + 1) == "ray"
    workers = cfg.load(base={**base, "ray": {"workers": 2}})
    assert runner.choose_executor(workers, steps, 1_000) == "ray"
    cluster = cfg.load(base={**base, "ray": {"address": "auto"}})
    assert runner.choose_executor(cluster, steps, 1_000) == "ray"
    forced = cfg.load(base={**base, "executor": "local"})
    assert runner.choose_executor(forced, steps, 10**9) == "local"
    gpu = cfg.load(base={**base, "steps": [{"use": "gopher_quality", "resources": {"gpus": 1}}]})
    assert runner.choose_executor(gpu, bind_steps(gpu), 1_000) == "ray"
    fake_ray.is_initialized = lambda: True  # a program that already started Ray uses it
    assert runner.choose_executor(small, steps, 1_000) == "ray"
