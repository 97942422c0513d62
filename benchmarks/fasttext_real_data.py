"""Real-data check of the fastText steps: quality AUC, text_main vs text ranking, LID accuracy.

Usage: python benchmarks/fasttext_real_data.py [--out /tmp/curate-ft]   (a few minutes, 1 CPU)
Quality: positives = shared/data/high_quality (Wikipedia summaries, books, Python docs, PEPs),
negatives = full-page `text` of web_crawl (html benchmarks + Common Crawl 2008); reports
held-out metrics, then scores `text_main` and `text` of the same web pages. LID: trained on the
lingua sentences (75 languages), evaluated on held-out rows and two other multilingual files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate_filters._fasttext import TrainSettings
from curate_filters.langid import FastTextLangID, accuracy_by_language, train_langid
from curate_filters.quality import FastTextQuality, train_quality

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compare import needs_shared  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
HQ = ["wikipedia_vital_summaries_en", "public_domain_books_chunks", "python311_docs", "python_peps"]
WEB = ["web_pages_html_benchmarks", "commoncrawl_2008_arc_and_wayback"]


def quality(out: Path) -> None:
    pos = [str(DATA / "high_quality" / f"{n}.parquet") for n in HQ]
    neg = [str(DATA / "web_crawl" / f"{n}.parquet") for n in WEB]
    model = str(out / "quality.ftz")
    r = train_quality(pos, neg, model, settings=TrainSettings(quantize=True))
    m = r.metrics
    print(f"quality: train {r.n_train}, held-out {r.n_holdout}")
    print(
        f"  held-out precision {m['precision']:.4f} recall {m['recall']:.4f} "
        f"F1 {m['f1']:.4f} ROC-AUC {m['roc_auc']:.4f}"
    )
    print(f"  model {r.model_bytes / 1e6:.2f} MB, training {r.train_seconds:.1f} s (quantized)")
    step = FastTextQuality(FastTextQuality.Params(model=model))
    step.setup()
    for name in WEB:
        t = pq.read_table(DATA / "web_crawl" / f"{name}.parquet", columns=["text", "text_main"])
        ok = pc.greater(
            pc.utf8_length(pc.utf8_trim_whitespace(pc.fill_null(t["text_main"], ""))), 0
        )
        t = t.filter(ok)
        full = step.score(t.select(["text"]))["prob"].to_numpy()
        main = step.score(pa.table({"text": t["text_main"]}))["prob"].to_numpy()
        print(
            f"  {name} ({t.num_rows} pages, most used as negatives in training): "
            f"P(main > full) {np.mean(main > full):.3f}, mean prob main {main.mean():.3f} "
            f"vs full {full.mean():.3f}"
        )


def langid(out: Path) -> None:
    lingua = str(DATA / "multilingual" / "lingua_testdata_75langs.parquet")
    model = str(out / "lid.ftz")
    r = train_langid(
        [lingua],
        model,
        where=["kind=sentences"],
        settings=TrainSettings(dim=16, minn=2, maxn=4, word_ngrams=1, quantize=True),
    )
    worst = sorted(r.per_language.items(), key=lambda kv: kv[1])[:5]
    print(
        f"LID: {sum(r.n_train.values())} train sentences, {len(r.n_train)} languages, "
        f"held-out accuracy {r.accuracy:.4f}; worst {worst}"
    )
    print(f"  model {r.model_bytes / 1e6:.2f} MB, training {r.train_seconds:.1f} s (quantized)")
    step = FastTextLangID(FastTextLangID.Params(model=model))
    step.setup()
    for name in ["wikipedia_vital_summaries_fr_es", "debian_reference_9langs"]:
        t = pq.read_table(DATA / "multilingual" / f"{name}.parquet", columns=["text", "lang"])
        truth = pc.replace_substring(t["lang"], "zh-cn", "zh").to_numpy(zero_copy_only=False)
        pred = step.score(t)["lang"].to_numpy(zero_copy_only=False)
        acc, per = accuracy_by_language(truth, pred)
        print(f"  {name}: accuracy {acc:.4f} " + " ".join(f"{k}={v:.2f}" for k, v in per.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/curate-fasttext-real")
    out = Path(parser.parse_args().out)
    needs_shared(
        DATA / "high_quality",
        DATA / "web_crawl",
        DATA / "multilingual",
        why="labelled quality and language-id text",
    )
    out.mkdir(parents=True, exist_ok=True)
    quality(out)
    langid(out)


if __name__ == "__main__":
    main()
