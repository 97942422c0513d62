"""datatrove's side of bench_vs_datatrove.py; runs in benchmarks/.venv-datatrove, not curate's venv.

The four filters and the 4-stage MinHash as datatrove's own examples chain them (FineWeb's recipe:
filter, write, then MinHash over what was written), every executor a LocalPipelineExecutor with
`--tasks` tasks on `--workers` processes (the bucket stage: one task per bucket, on the same
workers; the cluster stage: one task):
  1. ParquetReader(shard_*.parquet) -> GopherRepetitionFilter -> GopherQualityFilter ->
     C4QualityFilter -> FineWebQualityFilter -> ParquetWriter(filtered/); each filter has an
     exclusion writer (ParquetWriter(rejected/<filter>/)).
  2. ParquetReader(filtered/) -> MinhashDedupSignature;  3. MinhashDedupBuckets;
  4. MinhashDedupCluster;  5. ParquetReader(filtered/) -> MinhashDedupFilter (exclusion writer
     ParquetWriter(rejected/minhash/)) -> ParquetWriter(kept/).
MinHash: 14 buckets x 8 hashes, 5-grams, 64-bit xxhash (datatrove's defaults but for the
bands/rows/n-grams, set to curate's). Filters: datatrove's defaults. Word tokenizer (filters and
MinHash): `split` = `str.split` words and sentences split after . ! ? (followed by closing quotes
or brackets) and whitespace, as curate counts them; `spacy` = datatrove's default for English,
spacy.blank("en") + sentencizer (built in to spaCy: nothing is downloaded).

`--no-filters`: stages 2-5 only, reading the corpus (MinHash alone, bench_minhash_datatrove.py).
Prints one JSON line: seconds per stage and the counts read back from the outputs.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import pyarrow.parquet as pq
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer

SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(\s+|$)")


class SplitTokenizer(WordTokenizer):
    """Words by `str.split`, sentences ending at terminal punctuation followed by whitespace."""

    def __init__(self) -> None:
        super().__init__("en")

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        spans, start = [], 0
        for match in SENTENCE_END.finditer(text):
            if match.end() > start:
                spans.append((start, match.end()))
                start = match.end()
        if start < len(text):
            spans.append((start, len(text)))
        return spans

    def sent_tokenize(self, text: str) -> list[str]:
        return [s for a, b in self.span_tokenize(text) if (s := text[a:b].strip())]


def run(
    corpus: Path, work: Path, tasks: int, workers: int, tokenizer: str, filters: bool = True
) -> dict[str, float]:
    lang = SplitTokenizer() if tokenizer == "split" else "en"
    config = MinhashConfig(
        n_grams=5, num_buckets=14, hashes_per_bucket=8, hash_config=HashConfig(precision=64)
    )

    def reader(folder: Path, pattern: str) -> ParquetReader:
        return ParquetReader(str(folder), glob_pattern=pattern, text_key="text", id_key="id")

    def rejected(name: str) -> ParquetWriter:
        return ParquetWriter(str(work / "rejected" / name))

    def executor(pipeline: list, name: str, n_tasks: int, n_workers: int):
        return LocalPipelineExecutor(
            pipeline, tasks=n_tasks, workers=n_workers, logging_dir=str(work / "logs" / name)
        )

    # MinHash alone (`--no-filters`): its stages read the corpus itself.
    deduped = (work / "filtered", "*.parquet") if filters else (corpus, "shard_*.parquet")
    stages = {
        "filters": executor(
            [
                reader(corpus, "shard_*.parquet"),
                GopherRepetitionFilter(exclusion_writer=rejected("gopher_rep"), language=lang),
                GopherQualityFilter(exclusion_writer=rejected("gopher_qual"), language=lang),
                C4QualityFilter(exclusion_writer=rejected("c4"), language=lang),
                FineWebQualityFilter(exclusion_writer=rejected("fineweb"), language=lang),
                ParquetWriter(str(work / "filtered")),
            ],
            "filters",
            tasks,
            workers,
        ),
        "signatures": executor(
            [
                reader(*deduped),
                MinhashDedupSignature(
                    output_folder=str(work / "sigs"), config=config, language=lang
                ),
            ],
            "signatures",
            tasks,
            workers,
        ),
        "buckets": executor(
            [
                MinhashDedupBuckets(
                    input_folder=str(work / "sigs"),
                    output_folder=str(work / "buckets"),
                    config=config,
                )
            ],
            "buckets",
            config.num_buckets,
            workers,
        ),
        "cluster": executor(
            [
                MinhashDedupCluster(
                    input_folder=str(work / "buckets"),
                    output_folder=str(work / "remove_ids"),
                    config=config,
                )
            ],
            "cluster",
            1,
            1,
        ),
        "dedup": executor(
            [
                reader(*deduped),
                MinhashDedupFilter(
                    input_folder=str(work / "remove_ids"), exclusion_writer=rejected("minhash")
                ),
                ParquetWriter(str(work / "kept")),
            ],
            "dedup",
            tasks,
            workers,
        ),
    }
    if not filters:
        del stages["filters"]
    seconds = {}
    for name, stage in stages.items():
        start = time.perf_counter()
        stage.run()
        seconds[name] = time.perf_counter() - start
    return seconds


def _rows(folder: Path) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.rglob("*.parquet"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tokenizer", choices=["split", "spacy"], default="split")
    ap.add_argument("--no-filters", action="store_true", help="MinHash alone, on the corpus")
    args = ap.parse_args()
    seconds = run(
        args.corpus, args.work, args.tasks, args.workers, args.tokenizer, not args.no_filters
    )
    rejected = {p.name: _rows(p) for p in sorted((args.work / "rejected").iterdir())}
    print(json.dumps({"seconds": seconds, "kept": _rows(args.work / "kept"), "rejected": rejected}))


if __name__ == "__main__":
    main()
