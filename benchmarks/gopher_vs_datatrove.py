"""Where curate's gopher_repetition and datatrove's GopherRepetitionFilter disagree, and why.

Both filters judge the same first `--docs` documents (datatrove 0.10.1 in its own venv, its
default thresholds, `str.split` words as in bench_vs_datatrove.py). Prints how many documents
each removes, every disagreement as (datatrove's reason, curate's first failing rule) with its
count, and, for documents curate removes by a `dup_<n>_gram_frac` rule that datatrove keeps,
datatrove's own fraction as a share of the threshold. The corpus: `--corpus`, else
../shared/data/bench_100k, else a make_corpus.py corpus built from the shipped sample. Make
datatrove's venv first: bash benchmarks/setup_datatrove.sh.

Run: python benchmarks/gopher_vs_datatrove.py [--corpus DIR] [--docs 20000]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import text_corpus  # noqa: E402
from bench_vs_datatrove import DATATROVE_PYTHON  # noqa: E402

from curate import plugins  # noqa: E402

# Run by datatrove's interpreter: per document, its reason to drop (null: kept) and, for the
# dup n-gram rules, its fraction. Reads the texts from the Parquet file given.
DATATROVE_SIDE = """
import json, sys
sys.path.insert(0, sys.argv[3])
import pyarrow.parquet as pq
from _datatrove_side import SplitTokenizer
from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter
from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate
table = pq.read_table(sys.argv[1])
judge = GopherRepetitionFilter(language=SplitTokenizer())
out = {}
for doc_id, text in zip(table["id"].to_pylist(), table["text"].to_pylist()):
    verdict = judge.filter(Document(text=text or "", id=doc_id))
    reason = None if verdict is True else verdict[1]
    words = (text or "").split()
    dup = {n: find_all_duplicate(words, n) / max(1, len(text or "")) for n in range(5, 11)}
    out[doc_id] = [reason, dup]
json.dump(out, open(sys.argv[2], "w"))
"""


def curate_rules(table: pa.Table) -> dict[str, str | None]:
    """curate's first failing rule per document (None: kept), in batches of 4,096."""
    cls = plugins.load("gopher_repetition")
    step = cls(cls.Params())
    step.setup()
    out: dict[str, str | None] = {}
    for start in range(0, table.num_rows, 4096):
        batch = table.slice(start, 4096)
        scores = step.score(batch)
        keep = step.keep(scores).to_pylist()
        rules = scores["rule"].to_pylist()
        for doc_id, kept, rule in zip(batch["id"].to_pylist(), keep, rules, strict=True):
            out[doc_id] = None if kept else rule
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="shard_*.parquet folder (default: see above)")
    parser.add_argument("--docs", type=int, default=20_000)
    args = parser.parse_args()
    if not DATATROVE_PYTHON.exists():
        sys.exit(f"{DATATROVE_PYTHON} is missing: run `bash benchmarks/setup_datatrove.sh` first")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = text_corpus(args.corpus, args.docs, Path(tmp))
        shards = sorted(corpus.glob("shard_*.parquet"))
        table = pa.concat_tables(pq.read_table(s, columns=["id", "text"]) for s in shards)
        table = table.slice(0, args.docs)
        pq.write_table(table, Path(tmp) / "docs.parquet")
        subprocess.run(
            [str(DATATROVE_PYTHON), "-c", DATATROVE_SIDE, f"{tmp}/docs.parquet", f"{tmp}/dt.json"]
            + [str(Path(__file__).resolve().parent)],
            check=True,
        )
        theirs = json.loads(Path(tmp, "dt.json").read_text())
    ours = curate_rules(table)
    print(f"{table.num_rows:,} documents of {corpus}")
    print(
        f"removed: curate {sum(r is not None for r in ours.values()):,}, datatrove "
        f"{sum(v[0] is not None for v in theirs.values()):,}"
    )
    disagree = collections.Counter(
        (theirs[i][0], ours[i]) for i in ours if (theirs[i][0] is None) != (ours[i] is None)
    )
    print(f"disagreements: {sum(disagree.values()):,} (datatrove's reason, curate's rule):")
    for (their_reason, our_rule), count in disagree.most_common():
        print(f"  {count:6,}  {their_reason}  /  {our_rule}")
    thresholds = plugins.load("gopher_repetition").Params().dup_n_grams  # datatrove's defaults too
    shares = [
        theirs[i][1][str(n)] / thresholds[n]
        for i, rule in ours.items()
        if rule and rule.startswith("dup_") and theirs[i][0] is None
        for n in [int(rule.split("_")[1])]
    ]
    if shares:
        print(
            f"curate drops by dup_<n>_gram_frac, datatrove keeps: {len(shares):,}; datatrove's "
            f"fraction there is a median {statistics.median(shares):.2f} of the threshold "
            "(its greedy scan skips n words after each repeat; curate counts every covered word)"
        )


if __name__ == "__main__":
    main()
