"""Throughput of the perplexity step: kenlm backend vs a plain Model.score loop; hf on CPU.

kenlm: the step's score() (normalisation included) over ~10k bench_100k documents in batches
of the step's resources.batch_size (4,096), against a plain Python loop of `kenlm.Model.score`
over the same documents already normalised (CCNet's per-line loop), in the same run: docs/s and
ratio (goal >= 0.9).
hf: a tiny random 2-layer GPT-2 (word-level tokenizer built from the data) on CPU: tokens/s.
The kenlm model is an order-5 probing model trained on English Wikipedia summaries (needs
lmplz: bash scripts/build_kenlm.sh, and ../shared/data), unless --model is given; from a clone
alone, the quickstart's shipped lm.binary. Documents: --corpus, else ../shared/data/bench_100k,
else a make_corpus.py corpus built from the shipped sample.

    python benchmarks/bench_perplexity.py [--docs 10000] [--repeat 3] [--model lm.binary]
        [--corpus DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate_filters._ccnet_normalize import normalized_lines
from curate_filters.perplexity import Perplexity, PerplexityParams, train_kenlm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import REPO, text_corpus  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
BATCH = Perplexity.resources.batch_size


def plain_loop(model, docs_lines: list[list[str]]) -> np.ndarray:
    """The baseline: CCNet's loop over pre-normalised lines, one Python iteration per line."""
    out = np.empty(len(docs_lines))
    for i, lines in enumerate(docs_lines):
        log_score, length = 0.0, 0
        for line in lines:
            log_score += model.score(line)
            length += len(line.split()) + 1
        out[i] = 10.0 ** (-log_score / length) if length else np.nan
    return out


def bench_kenlm(model_path: str, texts: pa.Array, repeat: int) -> None:
    step = Perplexity(PerplexityParams(model=model_path))
    step.setup()
    table = pa.table({"text": texts})
    lines, doc = normalized_lines(texts)
    docs_lines: list[list[str]] = [[] for _ in range(len(texts))]
    for d, line in zip(doc.tolist(), lines.to_pylist(), strict=True):
        docs_lines[d].append(line)

    ours, base = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        ppl = np.concatenate(
            [
                step.score(table.slice(i, BATCH))["perplexity"].to_numpy()
                for i in range(0, len(texts), BATCH)
            ]
        )
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        ref = plain_loop(step._backend.model, docs_lines)
        base.append(time.perf_counter() - started)
    np.testing.assert_allclose(ppl, ref, rtol=1e-9)
    n = len(texts)
    words = len(lines) + int(sum(line.count(" ") for line in lines.to_pylist()))
    t_ours, t_base = min(ours), min(base)
    print(f"kenlm: {n:,} docs, {len(lines):,} lines, {words:,} words; best of {repeat}")
    print(f"  filter score() incl. normalisation: {n / t_ours:>9,.0f} docs/s  ({t_ours:.2f} s)")
    print(f"  plain Model.score loop, pre-normed: {n / t_base:>9,.0f} docs/s  ({t_base:.2f} s)")
    print(f"  ratio filter / plain loop: {t_base / t_ours:.2f}")
    started = time.perf_counter()
    normalized_lines(texts)
    print(f"  normalisation alone: {n / (time.perf_counter() - started):,.0f} docs/s")


def tiny_gpt2(folder: Path, texts: list[str]) -> None:
    from curate.testing import tiny_causal_lm

    tiny_causal_lm(folder, texts, n_embd=64, n_positions=512, split_punctuation=False)


def bench_hf(texts: pa.Array, n_docs: int) -> None:
    if n_docs <= 0:
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        print("hf: skipped (torch not installed: pip install 'curate[torch]')")
        return
    sample = texts.slice(0, n_docs)
    with tempfile.TemporaryDirectory() as tmp:
        tiny_gpt2(Path(tmp), texts.to_pylist())
        step = Perplexity(
            PerplexityParams(model=tmp, backend="hf", device="cpu", max_tokens=512, batch_size=16)
        )
        step.setup()
        tokens = sum(len(ids) for ids in step._backend._encode(sample.to_pylist()))
        started = time.perf_counter()
        step.score(pa.table({"text": sample}))
        elapsed = time.perf_counter() - started
    print(
        f"hf (tiny GPT-2: 2 layers, d=64, 8k vocab, max_tokens 512, batch 16, CPU): "
        f"{n_docs} docs, {tokens:,} tokens: {tokens / elapsed:,.0f} tokens/s, "
        f"{n_docs / elapsed:,.0f} docs/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hf-docs", type=int, default=256)
    parser.add_argument("--model", help="KenLM model (default: train one on Wikipedia)")
    parser.add_argument("--corpus", type=Path, help="shard_*.parquet folder (default: see above)")
    args = parser.parse_args()
    data = args.data.resolve()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = text_corpus(args.corpus, args.docs, Path(tmp))
        shards = sorted(corpus.glob("shard_*.parquet"))
        texts = pa.concat_tables(pq.read_table(s, columns=["text"]) for s in shards)["text"]
        texts = texts.slice(0, args.docs).combine_chunks()
        model = args.model
        wiki = data / "high_quality/wikipedia_vital_summaries_en.parquet"
        if model is None and wiki.exists():
            model = str(Path(tmp) / "wiki.binary")
            train_kenlm([str(wiki)], model, order=5)
        elif model is None:
            model = str(REPO / "examples/quickstart/models/lm.binary")
            print(f"model: {wiki} is not here; the quickstart's shipped {model}")
        bench_kenlm(model, texts, args.repeat)
    bench_hf(texts, args.hf_docs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
