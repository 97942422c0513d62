"""Perplexity on real text: a KenLM model trained on Wikipedia, scored on held-out and web text.

Trains an order-5 model (`curate train lm`'s code) on 90% of English Wikipedia's vital-article
summaries, then prints perplexity percentiles for: the held-out 10%, WikiText-2 articles, English
web pages (main content and full page text), and the CCNet "head" documents of
cc_fixture_samples, whose `meta` carries CCNet's own perplexity (Spearman rank correlation).
Needs lmplz/build_binary (bash scripts/build_kenlm.sh).

    python benchmarks/perplexity_real_data.py [--data /work/shared/data] [--order 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import spearmanr

from curate_filters.perplexity import Perplexity, PerplexityParams, train_kenlm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import needs_shared  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
PERCENTILES = [10, 25, 50, 75, 90]


def row(name: str, ppl: np.ndarray) -> str:
    ppl = ppl[~np.isnan(ppl)]
    cells = " ".join(f"{v:>9,.0f}" for v in np.percentile(ppl, PERCENTILES))
    return f"{name:<34} {len(ppl):>6} {cells}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--order", type=int, default=5)
    args = parser.parse_args()
    data = args.data.resolve()
    needs_shared(
        data / "high_quality/wikipedia_vital_summaries_en.parquet",
        why="reference text to train and hold out",
    )

    wiki = pq.read_table(data / "high_quality/wikipedia_vital_summaries_en.parquet")
    order = np.random.default_rng(0).permutation(wiki.num_rows)
    n_held = wiki.num_rows // 10
    held, train = wiki.take(order[:n_held]), wiki.take(order[n_held:])

    with tempfile.TemporaryDirectory() as tmp:
        train_path = Path(tmp) / "train.parquet"
        pq.write_table(train.select(["text"]), train_path)
        model = Path(tmp) / "wiki.binary"
        started = time.perf_counter()
        stats = train_kenlm([str(train_path)], model, order=args.order)
        print(
            f"trained order-{args.order} model on {stats.documents:,} Wikipedia summaries "
            f"({stats.words:,} words) in {time.perf_counter() - started:.1f} s, "
            f"{model.stat().st_size / 1e6:.1f} MB (probing)"
        )
        step = Perplexity(PerplexityParams(model=str(model)))
        step.setup()

        web = pq.read_table(data / "web_crawl/web_pages_html_benchmarks.parquet")
        lang = pc.fill_null(pc.utf8_lower(web["html_lang"]), "")
        web_en = web.filter(pc.starts_with(lang, "en"))
        wikitext = pq.read_table(data / "high_quality/wikitext2_articles_tokenized.parquet")
        cc = pq.read_table(data / "web_crawl/cc_fixture_samples.parquet")

        header = " ".join(f"{'p' + str(p):>9}" for p in PERCENTILES)
        print(f"\n{'perplexity':<34} {'docs':>6} {header}")
        print(row("wikipedia held-out 10%", step.perplexity(held["text"])))
        print(row("wikitext-2 articles (tokenized)", step.perplexity(wikitext["text"])))
        print(row("web pages en: text_main", step.perplexity(web_en["text_main"])))
        print(row("web pages en: full text", step.perplexity(web_en["text"])))
        print(row("cc_fixture_samples: all", step.perplexity(cc["text"])))

        metas = [json.loads(m) if m else {} for m in cc["meta"].to_pylist()]
        has_ppl = np.array(["perplexity" in m for m in metas])
        ccnet = np.array([m["perplexity"] for m in metas if "perplexity" in m], np.float64)
        ours = step.perplexity(cc.filter(pa.array(has_ppl))["text"])
        rho, p_value = spearmanr(ours, ccnet)
        print(row("cc_fixture CCNet docs: ours", ours))
        print(row("cc_fixture CCNet docs: CCNet's", ccnet))
        print(
            f"\nSpearman rank correlation, ours vs CCNet's perplexity on {len(ccnet)} CCNet docs: "
            f"rho = {rho:.3f} (p = {p_value:.2g})"
        )


if __name__ == "__main__":
    main()
