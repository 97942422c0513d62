"""End to end through `curate run`: mappers between filters, then minhash and line_dedup; the
ledger, stats, record_changes, 1 vs 2 workers, and resume after a killed driver."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import REPO, assert_accounted, read_ids

pytest.importorskip("phonenumbers")
cli = CliRunner()

MENU = "Home | News | Sport | Contact"
COOKIES = "This website uses cookies to give you the best experience."


SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "phi", "an", "qui", "bes"]
VOCAB = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in ("", "n", "s")]


def sentence(seed: int) -> str:
    """Ten words drawn from a 432-word vocabulary: distinct pages share few 5-grams."""
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(10)).capitalize() + "."


def page(i: int) -> str:
    """A page of five sentences with a menu, a cookie banner and, on some pages, an email."""
    sentences = [sentence(i * 5 + k) for k in range(5)]
    if i % 3 == 0:
        sentences[2] = f"Write to editor{i}@example.org for a copy of the report."
    return "\n".join([MENU, *sentences, COOKIES])


def corpus(tmp_path: Path, shards: int = 4, rows: int = 10) -> tuple[Path, list[str]]:
    folder = tmp_path / "in"
    folder.mkdir(parents=True)
    ids = []
    for s in range(shards):
        texts = [page(s * rows + i) for i in range(rows)]
        texts[4] = f"{MENU}\n{COOKIES}"  # only boilerplate: c4_lines empties it
        if s:
            texts[6] = page(6)  # an exact copy of shard 0's page 6 for minhash
        shard_ids = [f"s{s}-{i}" for i in range(rows)]
        ids += shard_ids
        pq.write_table(
            pa.table({"id": shard_ids, "text": texts}),
            folder / f"shard-{s}.parquet",
            row_group_size=3,
        )
    return folder, ids


STEPS = [
    {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 5}},
    {"use": "c4_lines", "params": {"min_num_sentences": 3}},
    {"use": "pii"},
    {"use": "tests.doubles:MinWords", "id": "long", "params": {"min_words": 30}},
    {"use": "minhash"},
]


def config_file(tmp_path: Path, inp: Path, steps: list[dict], **output) -> Path:
    data = {
        "input": {"path": str(inp), "id_column": "id", "batch_size": 4},
        "output": {"path": str(tmp_path / "out"), **output},
        "steps": steps,
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_ok(conf: Path, out: Path, *extra: str) -> dict:
    result = cli.invoke(
        app, ["run", str(conf), "--output", str(out), "--quiet", "--overwrite", *extra]
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "stats.json").read_text())


def table_of(folder: Path) -> pa.Table:
    return pa.concat_tables(
        [pq.read_table(f) for f in sorted(folder.glob("*.parquet"))], promote_options="permissive"
    )


def files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("data", "rejected")
        for p in sorted((out / sub).glob("*.parquet"))
    }


def test_mappers_between_filters_then_minhash(tmp_path):
    inp, ids = corpus(tmp_path)
    conf = config_file(tmp_path, inp, STEPS)
    stats = run_ok(conf, tmp_path / "out", "--executor", "local")
    out = tmp_path / "out"
    assert_accounted(ids, out)
    kept, rejected = table_of(out / "data"), table_of(out / "rejected")
    texts = kept["text"].to_pylist()
    # Later steps saw and wrote the new text: no menu, no banner, no address.
    assert texts and not any(MENU in t or COOKIES in t or "@example.org" in t for t in texts)
    assert any("<EMAIL>" in t for t in texts)
    # The boilerplate-only pages were emptied: rejected by c4_lines, with their original text.
    emptied = rejected.filter(pc.equal(rejected["reason"], "c4_lines"))
    assert sorted(emptied["id"].to_pylist()) == [f"s{s}-4" for s in range(4)]
    assert all(t.startswith(MENU) for t in emptied["text"].to_pylist())
    # The copies of page 6 were found by minhash on the cleaned text.
    assert sorted(rejected.filter(pc.equal(rejected["reason"], "minhash"))["id"].to_pylist()) == [
        "s1-6",
        "s2-6",
        "s3-6",
    ]
    c4 = stats["steps"]["c4_lines"]
    assert c4["changed"] == c4["kept"]  # every kept page lost its menu and banner
    assert c4["chars_removed"] >= c4["kept"] * (len(MENU) + len(COOKIES))
    assert stats["steps"]["pii"]["changed"] == sum("<EMAIL>" in t for t in texts) + sum(
        "<EMAIL>" in t for t in rejected["text"].to_pylist() if t
    )
    assert set(kept["pii_email"].to_pylist()) <= {0, 1}
    assert "c4_lines_removed" not in kept.schema.names


def test_record_changes_writes_the_removed_spans(tmp_path):
    inp, _ = corpus(tmp_path, shards=1)
    conf = config_file(tmp_path, inp, STEPS[1:3], record_changes=True)
    run_ok(conf, tmp_path / "out", "--executor", "local")
    kept = table_of(tmp_path / "out" / "data").to_pylist()
    assert all(r["c4_lines_removed"] == [MENU, COOKIES] for r in kept)
    assert any(r["pii_removed"] and r["pii_removed"][0].endswith("@example.org") for r in kept)


def test_line_dedup_rewrites_and_rejects_what_it_empties(tmp_path):
    inp, ids = corpus(tmp_path, shards=2)
    steps = [{"use": "line_dedup"}, {"use": "tests.doubles:MinWords", "params": {"min_words": 1}}]
    stats = run_ok(config_file(tmp_path, inp, steps), tmp_path / "out", "--executor", "local")
    out = tmp_path / "out"
    assert_accounted(ids, out)
    kept = table_of(out / "data")
    first = kept.filter(pc.equal(kept["id"], "s0-0"))["text"].to_pylist()[0]
    assert first.startswith(MENU) and first.endswith(COOKIES)  # the first occurrence survives
    others = kept.filter(pc.not_equal(kept["id"], "s0-0"))["text"].to_pylist()
    assert not any(MENU in t or COOKIES in t for t in others)
    rejected = table_of(out / "rejected")
    # Boilerplate-only pages and the exact copies of page 6 have nothing left.
    assert sorted(rejected["id"].to_pylist()) == ["s0-4", "s1-4", "s1-6"]
    assert set(rejected["reason"].to_pylist()) == {"line_dedup"}
    assert stats["steps"]["line_dedup"]["changed"] == kept.num_rows - 1


@pytest.mark.ray
def test_one_or_two_workers_write_identical_bytes(ray_session, tmp_path):
    inp, _ = corpus(tmp_path)
    steps = [*STEPS, {"use": "line_dedup"}]
    conf = config_file(tmp_path, inp, steps)
    run_ok(conf, tmp_path / "w1", "--workers", "1")
    run_ok(conf, tmp_path / "w2", "--workers", "2")
    run_ok(conf, tmp_path / "local", "--executor", "local")
    assert files(tmp_path / "w1") == files(tmp_path / "w2") == files(tmp_path / "local")


def test_a_killed_run_resumes_to_identical_output(tmp_path):
    inp, ids = corpus(tmp_path, shards=6)
    steps = [{"use": "tests.doubles:Slow", "params": {"seconds": 0.3}}, *STEPS]
    conf = config_file(tmp_path, inp, steps)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "curate.cli", "run", str(conf), "--quiet", "--executor", "local"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "_manifest").glob("s0-*.json")):
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < len(list((out / "_manifest").glob("s0-*.json"))) < 6
    result = cli.invoke(app, ["run", str(conf), "--quiet", "--executor", "local"])
    assert result.exit_code == 0, result.output
    run_ok(conf, tmp_path / "ref", "--executor", "local")
    assert files(out) == files(tmp_path / "ref")
    assert_accounted(ids, out)
    assert sorted(read_ids(out / "data")) == sorted(read_ids(tmp_path / "ref" / "data"))


def test_url_filter_and_decontaminate_name_what_matched_in_the_ledger(tmp_path):
    question = json.loads((REPO / "tests/data/eval_tiny.jsonl").read_text().splitlines()[0])
    texts = [page(i) for i in range(4)]
    texts[2] = texts[2].replace(COOKIES, question["question"].upper())  # a copied eval item
    folder = tmp_path / "in"
    folder.mkdir()
    urls = ["https://news.example.org/a", "https://www.pornhub.com/v", "https://b.org/", None]
    pq.write_table(
        pa.table({"id": [f"d{i}" for i in range(4)], "text": texts, "url": urls}),
        folder / "shard-0.parquet",
    )
    eval_set = str(REPO / "tests/data/eval_tiny.jsonl")
    steps = [
        {"use": "url_filter"},
        {"use": "decontaminate", "params": {"eval_sets": [eval_set], "id_field": "id"}},
        {"use": "c4_lines", "params": {"min_num_sentences": 3}},
    ]
    run_ok(config_file(tmp_path, folder, steps), tmp_path / "out", "--executor", "local")
    rejected = {r["id"]: r for r in table_of(tmp_path / "out" / "rejected").to_pylist()}
    assert rejected["d1"]["reason"] == "url_filter"
    assert rejected["d1"]["url_filter_entry"] == "pornhub.com"
    assert rejected["d2"]["reason"] == "decontaminate"
    assert rejected["d2"]["decontaminate_eval_item"] == "eval_tiny.jsonl:arith-1"
    assert sorted(table_of(tmp_path / "out" / "data")["id"].to_pylist()) == ["d0", "d3"]
