"""Golden decisions of the hot-path filters: what each step scores and keeps, as digests.

`record()` runs every step of the quickstart pipeline (and the heuristics + minhash pipeline's
params) on every document of a corpus, each step on its own, and reduces each score column to
a sha256 of its exact values and each keep mask to packed bits. The fixtures under
tests/fixtures/filter_golden/ were recorded from commit d805b91, before the hot paths were
rewritten; `tests/unit/test_filter_golden.py` checks the current code against them.

Regenerate (only when a decision is meant to change):
    python -m tests.filter_golden examples/quickstart/data \
        tests/fixtures/filter_golden/sample.json.gz
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import plugins
from curate.mapper import Mapper

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "examples" / "quickstart" / "models"
FIXTURES = REPO / "tests" / "fixtures" / "filter_golden"
BATCH_ROWS = 4096

# (golden name, registered step, params): the quickstart's steps, then the heuristics
# pipeline's (gopher_repetition -> gopher_quality -> c4_quality -> fineweb_quality -> minhash)
# where its params differ.
STEPS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "lang",
        "fasttext_langid",
        {"model": str(MODELS / "lid.ftz"), "languages": ["en"], "min_score": 0.5},
    ),
    ("gopher_quality_30", "gopher_quality", {"min_doc_words": 30}),
    ("gopher_quality", "gopher_quality", {}),
    ("gopher_repetition", "gopher_repetition", {}),
    ("fineweb_quality", "fineweb_quality", {}),
    ("c4_lines", "c4_lines", {"min_num_sentences": 3}),
    ("pii", "pii", {}),
    ("c4_quality", "c4_quality", {}),
    (
        "quality",
        "fasttext_quality",
        {"model": str(MODELS / "quality.ftz"), "label": "hq", "min_prob": 0.2},
    ),
    (
        "ppl",
        "perplexity",
        {"backend": "kenlm", "model": str(MODELS / "lm.binary"), "max_perplexity": 3000},
    ),
    ("minhash", "minhash", {"num_perm": 112, "bands": 14, "rows": 8, "ngram": 5}),
]


def build(use: str, params: dict[str, Any]) -> Any:
    """A set-up instance of a registered step."""
    cls = plugins.load(use)
    instance = cls(cls.Params(**params))
    instance.setup()
    return instance


def batches(corpus: Path) -> Iterator[pa.Table]:
    """`id` and `text` of every document, shard by shard in name order, BATCH_ROWS at a time."""
    for shard in sorted(corpus.glob("*.parquet")):
        if shard.name == "ground_truth.parquet":
            continue
        table = pq.read_table(shard, columns=["id", "text"])
        for start in range(0, table.num_rows, BATCH_ROWS):
            yield table.slice(start, BATCH_ROWS)


def digest(values: pa.Array | pa.ChunkedArray) -> str:
    """sha256 of a column's exact values: repr of every Python value (floats round-trip)."""
    h = hashlib.sha256()
    chunked = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    for chunk in chunked.chunks:
        h.update(repr(chunk.to_pylist()).encode())
    return h.hexdigest()


def pack(mask: np.ndarray) -> str:
    return base64.b64encode(np.packbits(mask.astype(bool))).decode()


def unpack(packed: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(packed), np.uint8))[:n].astype(bool)


def step_outputs(instance: Any, batch: pa.Table) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Score columns (a mapper's new text as `text`, minhash's band keys) and the keep mask."""
    if hasattr(instance, "signature"):
        row_ids = pa.array(np.arange(batch.num_rows, dtype=np.int64))
        side = instance.signature(batch, row_ids, batch.column("id"))
        return {c: side.column(c) for c in side.column_names}, np.ones(batch.num_rows, bool)
    scores = instance.score(batch)
    if isinstance(instance, Mapper):
        scores = {**scores, "text": instance.map(batch).text}
    keep = instance.keep(scores)
    return scores, np.asarray(keep.to_numpy(zero_copy_only=False), bool)


def record(corpus: Path, steps: list[tuple[str, str, dict]] = STEPS) -> dict[str, Any]:
    """Per step: a digest per output column and the packed keep mask, over every document."""
    tables = list(batches(corpus))
    ids = pa.chunked_array([t.column("id") for t in tables])
    out: dict[str, Any] = {"documents": len(ids), "ids": digest(ids), "steps": {}}
    for name, use, params in steps:
        instance = build(use, params)
        columns: dict[str, list[pa.Array]] = {}
        keeps = []
        for batch in tables:
            scores, keep = step_outputs(instance, batch)
            for column, values in scores.items():
                columns.setdefault(column, []).append(values)
            keeps.append(keep)
        digests = {}
        for column, parts in columns.items():
            chunks = [p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in parts]
            digests[column] = digest(pa.chunked_array(chunks))
        keep = np.concatenate(keeps)
        out["steps"][name] = {"kept": int(keep.sum()), "keep": pack(keep), "digests": digests}
    return out


def load(path: Path) -> dict[str, Any]:
    with gzip.open(path, "rt") as f:
        return json.load(f)


def save(golden: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(json.dumps(golden, indent=1, sort_keys=True).encode())


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What differs, one line per step/column, with the first differing rows' positions."""
    found = []
    n = expected["documents"]
    if actual["documents"] != n or actual["ids"] != expected["ids"]:
        return ["the corpus differs from the one the golden was recorded on"]
    for name, want in expected["steps"].items():
        got = actual["steps"].get(name)
        if got is None:
            found.append(f"{name}: not run")
            continue
        if got["keep"] != want["keep"]:
            rows = np.flatnonzero(unpack(got["keep"], n) != unpack(want["keep"], n))
            found.append(f"{name}: keep differs on {len(rows)} rows, first {rows[:5].tolist()}")
        for column, value in want["digests"].items():
            if got["digests"].get(column) != value:
                found.append(f"{name}.{column}: values differ")
    return found


def pipeline_digest(out: Path) -> dict[str, str]:
    """sha256 of every column of a run's kept output and of its ledger (id, reason), by id."""
    kept = pa.concat_tables(pq.read_table(p) for p in sorted((out / "data").glob("*.parquet")))
    kept = kept.replace_schema_metadata(None).sort_by("id")
    rejected = pa.concat_tables(
        pq.read_table(p, columns=["id", "reason"])
        for p in sorted((out / "rejected").glob("*.parquet"))
    ).sort_by("id")
    found = {f"kept.{c}": digest(kept.column(c)) for c in kept.column_names}
    found |= {f"rejected.{c}": digest(rejected.column(c)) for c in rejected.column_names}
    found["kept.rows"] = str(kept.num_rows)
    found["rejected.rows"] = str(rejected.num_rows)
    found["rejected.reasons"] = json.dumps(
        {
            r["values"]: r["counts"]
            for r in pc.value_counts(rejected.column("reason").combine_chunks()).to_pylist()
        },
        sort_keys=True,
    )
    return found


HEURISTICS_PIPELINE = [
    {"use": "gopher_repetition"},
    {"use": "gopher_quality"},
    {"use": "c4_quality"},
    {"use": "fineweb_quality"},
    {"use": "minhash", "params": {"bands": 14, "rows": 8, "ngram": 5}},
]


def quickstart_steps() -> list[dict[str, Any]]:
    """The quickstart's steps with absolute model paths."""
    import yaml

    steps = yaml.safe_load((REPO / "examples" / "quickstart" / "pipeline.yaml").read_text())
    for step in steps["steps"]:
        model = step.get("params", {}).get("model")
        if model:
            step["params"]["model"] = str(REPO / model)
    return steps["steps"]


def run_pipeline(corpus: Path, out: Path, steps: list[dict[str, Any]]) -> dict[str, str]:
    """Run steps over a corpus in process (one worker) and digest the output."""
    from curate import config as cfg
    from curate import runner

    paths = [str(p) for p in sorted(corpus.glob("*.parquet")) if p.name != "ground_truth.parquet"]
    config = cfg.load(
        base={
            "input": {"path": paths, "id_column": "id"},
            "output": {"path": str(out)},
            "executor": "local",
            "steps": steps,
        }
    )
    runner.run(config, progress="quiet")
    return pipeline_digest(out)


if __name__ == "__main__":
    # python -m tests.filter_golden CORPUS TARGET [quickstart|heuristics OUT_DIR]
    corpus, target = Path(sys.argv[1]), Path(sys.argv[2])
    if len(sys.argv) > 3:
        steps = quickstart_steps() if sys.argv[3] == "quickstart" else HEURISTICS_PIPELINE
        golden = {"pipeline": run_pipeline(corpus, Path(sys.argv[4]), steps)}
    else:
        golden = record(corpus)
    save(golden, target)
    print(f"wrote {target}")
