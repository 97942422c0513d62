"""Agreement with human labels on the DCLM dev set, by cross-validation, and docs/s in one run.

Usage: python benchmarks/bench_learned_quality.py [--folds 5] [--repeats 3] [--docs 6000]

Needs ../shared/data (labels/dclm_human_quality_labels_dev.parquet: 263 documents, MIT).
1. Scores the labelled documents once with the quickstart pipeline's steps in annotate mode
   (its shipped models; minhash left out) and prints each score's ROC-AUC with a bootstrap CI.
2. The combiner (`curate train combine`'s fit) by stratified k-fold cross-validation, over
   several fold seeds; and AUC against the number of training labels (subsampled train folds).
3. fastText trained on the labels alone (`curate train quality --labels`), same folds.
4. Distillation: an unlabelled corpus (../shared web crawl + reference text) is scored once by
   the same steps; in each fold the combiner fitted on the training labels scores it from the
   stored columns, its top half is labelled keep, a fastText student is trained on it
   (`curate train quality --teacher`'s code), alone and with the training fold's labelled
   documents added (`--teacher ... --labels`), and scored on the held-out labels.
5. Throughput, one process each (--executor local), same input, output written: the plain
   `fasttext_quality` step (quickstart model), the distilled student as a `fasttext_quality`
   step, and the combiner (every feature step + `learned_quality`); repeated, medians.
Figures are noisy on a shared machine: compare the ratios printed by one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import config as cfg
from curate import runner
from curate_filters import _fasttext as ft
from curate_filters._combine_fit import CombineSettings, fit, fit_once
from curate_filters._quality_labelled import _probs, train_labelled
from curate_tools import evaluate as ev
from curate_tools.commands.evaluate import annotate_labelled
from curate_tools.report import Output

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LABELS = SHARED / "labels" / "dclm_human_quality_labels_dev.parquet"
PIPELINE = ROOT / "examples" / "quickstart" / "pipeline.yaml"
QUALITY = ROOT / "examples" / "quickstart" / "models" / "quality.ftz"
UNLABELLED = [  # (file, rows taken): web pages and reference text, none of it in the dev set
    ("web_crawl/web_pages_html_benchmarks.parquet", None),
    ("web_crawl/commoncrawl_2008_arc_and_wayback.parquet", None),
    ("web_crawl/cc_fixture_samples.parquet", None),
    ("high_quality/wikipedia_vital_summaries_en.parquet", 1500),
    ("high_quality/public_domain_books_chunks.parquet", 500),
    ("high_quality/python311_docs.parquet", None),
    ("high_quality/python_peps.parquet", None),
]


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    return float(ev.weighted_auc(scores, truth, np.ones((1, len(scores))))[0])


def matrix(table: pa.Table, features: list[str]) -> np.ndarray:
    return np.column_stack(
        [table.column(f).cast(pa.float64()).to_numpy(zero_copy_only=False) for f in features]
    )


def folds_of(truth: np.ndarray, k: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(truth, truth))


def build_unlabelled(path: Path) -> int:
    parts = []
    for name, rows in UNLABELLED:
        t = pq.read_table(SHARED / name, columns=["id", "text"])
        t = t.slice(0, rows) if rows else t
        parts.append(pa.table({"id": pc.cast(t.column("id"), pa.string()), "text": t["text"]}))
    table = pa.concat_tables(parts)
    pq.write_table(table, path)
    return table.num_rows


def run_config(steps: list[dict], src: str, out: str) -> dict:
    base = {
        "input": {"path": src, "id_column": "id"},
        "output": {"path": out},
        "executor": "local",
        "steps": steps,
    }
    return runner.run(cfg.load(base=base), overwrite=True, progress="quiet").stats


def quickstart_steps(mode: str) -> list[dict]:
    """The quickstart pipeline's filters (no minhash), in `mode`."""
    steps = cfg.load(PIPELINE).model_dump(mode="json")["steps"]
    return [{**s, "mode": mode} for s in steps if s["use"] != "minhash"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="fold seeds for the combiner CV")
    parser.add_argument("--repeats", type=int, default=3, help="throughput repeats")
    parser.add_argument("--docs", type=int, default=6000, help="throughput corpus rows")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not LABELS.exists():
        sys.exit(f"{LABELS} is not present: this benchmark needs ../shared/data")
    figures: dict = {}
    work = Path(tempfile.mkdtemp(prefix="bench-learned-"))

    # 1. single scores -----------------------------------------------------------------------
    dev_out = str(work / "dev")
    annotate_labelled(PIPELINE, LABELS, "id", dev_out)
    out = Output.open(dev_out)
    labels = ev.read_labels(LABELS)
    result = ev.evaluate(out, labels, resamples=1000)
    print(f"dev set: {result.rows} labelled documents, {100 * result.positive_share:.1f}% keep")
    print("\n1. single scores (quickstart models, annotate mode), ROC-AUC [95% bootstrap CI]:")
    for c in sorted(result.columns, key=lambda c: -c.auc)[:12]:
        better = ("higher" if c.higher_is_better else "lower") + (
            " (from data)" if c.direction_from == "data" else ""
        )
        print(f"   {c.column:38s} {c.auc:.3f} [{c.auc_ci[0]:.3f}, {c.auc_ci[1]:.3f}]  {better}")
    figures["single_auc"] = {c.column: round(c.auc, 4) for c in result.columns}

    # 2. combiner ----------------------------------------------------------------------------
    from curate_tools.commands.train_combine import feature_columns

    features = feature_columns(out, None, None)
    joined, _ = ev.join_scores(out, labels, features)
    x = matrix(joined, features)
    keep_cols = [j for j in range(x.shape[1]) if np.nanstd(x[:, j]) > 0]
    features = [features[j] for j in keep_cols]
    x = x[:, keep_cols]
    y = joined.column("__truth__").to_numpy(zero_copy_only=False).astype(bool)
    texts = pq.read_table(LABELS, columns=["id", "text"])
    text_of = dict(zip(texts["id"].to_pylist(), texts["text"].to_pylist(), strict=True))
    dev_text = pa.chunked_array([pa.array([text_of[i] for i in joined["__id__"].to_pylist()])])
    print(f"\n2. combiner over {len(features)} stored score columns, {args.folds}-fold CV:")
    for kind in ("logistic_regression", "gradient_boosting"):
        per_seed = [
            fit(x, y, features, CombineSettings(kind=kind, folds=args.folds, seed=s)).cv_auc
            for s in range(args.seeds)
        ]
        print(
            f"   {kind:20s} ROC-AUC {np.mean(per_seed):.3f} (fold seeds: "
            + ", ".join(f"{a:.3f}" for a in per_seed)
            + ")"
        )
        figures[f"combiner_{kind}_cv_auc"] = round(float(np.mean(per_seed)), 4)

    print("   AUC against the number of training labels (logistic regression, held-out folds):")
    curve = {}
    rng = np.random.default_rng(0)
    for n in (20, 40, 80, 120, 160, 210):
        aucs = []
        for seed in range(args.seeds):
            for train, test in folds_of(y, args.folds, seed):
                if n > len(train):
                    continue
                for _ in range(2):
                    pick = rng.choice(train, n, replace=False)
                    if y[pick].all() or not y[pick].any():
                        continue
                    model = fit_once(x[pick], y[pick], features, CombineSettings())
                    aucs.append(auc(model.predict(list(x[test].T)), y[test]))
        if aucs:
            curve[n] = (float(np.mean(aucs)), float(np.std(aucs)))
            print(f"     {n:4d} labels: {curve[n][0]:.3f} ± {curve[n][1]:.3f}")
    figures["labels_curve"] = {str(k): round(v[0], 4) for k, v in curve.items()}

    # 3. fastText on labels ------------------------------------------------------------------
    aucs = []
    for i, (train, test) in enumerate(folds_of(y, args.folds, 0)):
        path = str(work / f"labels-{i}.ftz")
        _, model, norm, _, _ = train_labelled(
            dev_text.take(train), y[train], path, {}, holdout=0.0,
            settings=ft.TrainSettings(epoch=20),
        )  # fmt: skip
        aucs.append(auc(_probs(model, norm, dev_text.take(test), "hq"), y[test]))
    print(
        f"\n3. fastText trained on the labels alone: {args.folds}-fold ROC-AUC {np.mean(aucs):.3f}"
    )
    figures["fasttext_on_labels_cv_auc"] = round(float(np.mean(aucs)), 4)

    # 4. distillation ------------------------------------------------------------------------
    unl_path = work / "unlabelled.parquet"
    n_unl = build_unlabelled(unl_path)
    unl_out = str(work / "unlabelled-out")
    run_config(quickstart_steps("annotate"), str(unl_path), unl_out)
    unl = Output.open(unl_out)
    unl_rows = unl.kept(["text", *features])
    unl_text = unl_rows.column("text")
    xu = matrix(unl_rows, features)
    student_aucs, mixed_aucs, teacher_aucs, agree = [], [], [], []
    for i, (train, test) in enumerate(folds_of(y, args.folds, 0)):
        teacher = fit_once(x[train], y[train], features, CombineSettings())
        scores = teacher.predict(list(xu.T))
        truth = scores >= np.quantile(scores, 0.5)
        path = str(work / f"student-{i}.ftz")
        _, model, norm, hold_text, hold_idx = train_labelled(
            unl_text, truth, path, {}, holdout=0.1, settings=ft.TrainSettings(epoch=10),
        )  # fmt: skip
        agree.append(auc(_probs(model, norm, hold_text, "hq"), truth[hold_idx]))
        student_aucs.append(auc(_probs(model, norm, dev_text.take(test), "hq"), y[test]))
        teacher_aucs.append(auc(teacher.predict(list(x[test].T)), y[test]))
        # The same, with the training fold's labelled documents added (their human labels).
        both_text = pa.chunked_array(list(unl_text.chunks) + list(dev_text.take(train).chunks))
        _, model, norm, _, _ = train_labelled(
            both_text, np.concatenate([truth, y[train]]), path, {}, holdout=0.0,
            settings=ft.TrainSettings(epoch=10),
        )  # fmt: skip
        mixed_aucs.append(auc(_probs(model, norm, dev_text.take(test), "hq"), y[test]))
        print(f"   fold {i}: student {student_aucs[-1]:.3f}, with labels {mixed_aucs[-1]:.3f}",
              flush=True)  # fmt: skip
    print(
        f"\n4. distilled fastText student ({n_unl:,} unlabelled documents labelled by the "
        f"combiner's top half), held-out human labels ROC-AUC:\n"
        f"   teacher's documents only            {np.mean(student_aucs):.3f}\n"
        f"   + the training fold's labelled docs {np.mean(mixed_aucs):.3f}\n"
        f"   (the teacher itself on the same folds {np.mean(teacher_aucs):.3f}; the student's "
        f"agreement with the teacher on its held-out rows ROC-AUC {np.mean(agree):.3f})"
    )
    figures["student_cv_auc"] = round(float(np.mean(student_aucs)), 4)
    figures["student_with_labels_cv_auc"] = round(float(np.mean(mixed_aucs)), 4)
    figures["teacher_same_folds_cv_auc"] = round(float(np.mean(teacher_aucs)), 4)
    figures["student_vs_teacher_auc"] = round(float(np.mean(agree)), 4)

    # 5. throughput --------------------------------------------------------------------------
    final_teacher = fit(x, y, features, CombineSettings()).model
    combine_path = str(work / "combine.json")
    final_teacher.save(combine_path)
    scores = final_teacher.predict(list(xu.T))
    student_path = str(work / "student.ftz")
    train_labelled(
        pa.chunked_array(list(unl_text.chunks) + list(dev_text.chunks)),
        np.concatenate([scores >= np.quantile(scores, 0.5), y]), student_path, {}, holdout=0.0,
        settings=ft.TrainSettings(epoch=10),
    )  # fmt: skip
    bench = pq.read_table(unl_path)
    reps = -(-args.docs // bench.num_rows)
    corpus = pa.concat_tables([bench] * reps).slice(0, args.docs)
    corpus = corpus.set_column(
        0, "id", pa.array([f"d{i}" for i in range(corpus.num_rows)], pa.string())
    )
    src = str(work / "throughput.parquet")
    pq.write_table(corpus, src)
    configs = {
        "plain fasttext_quality": [
            {"use": "fasttext_quality", "id": "quality",
             "params": {"model": str(QUALITY), "min_prob": 0.2}}
        ],
        "distilled student": [
            {"use": "fasttext_quality", "id": "student",
             "params": {"model": student_path, "min_prob": 0.5}}
        ],
        "combiner (all steps + learned_quality)": quickstart_steps("annotate")
        + [{"use": "learned_quality", "id": "learned", "params": {"model": combine_path}}],
    }  # fmt: skip
    timings: dict[str, list[float]] = {k: [] for k in configs}
    step_rates: dict[str, list[float]] = {k: [] for k in configs}
    names = list(configs)
    for rep in range(args.repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:  # rotate the order
            steps = configs[name]
            start = time.perf_counter()
            stats = run_config(steps, src, str(work / "tp-out"))
            timings[name].append(corpus.num_rows / (time.perf_counter() - start))
            seconds = sum(st["seconds"] for st in stats["steps"].values())
            step_rates[name].append(corpus.num_rows / seconds)
    base = statistics.median(timings["plain fasttext_quality"])
    base_step = statistics.median(step_rates["plain fasttext_quality"])
    print(
        f"\n5. throughput over {corpus.num_rows:,} documents, one process, output written "
        f"(median of {args.repeats}):"
    )
    print(f"   {'':40s} {'run docs/s':>11s} {'ratio':>6s} {'step docs/s':>12s} {'ratio':>6s}")
    for name in configs:
        run_rate = statistics.median(timings[name])
        step_rate = statistics.median(step_rates[name])
        print(
            f"   {name:40s} {run_rate:11,.0f} {run_rate / base:6.2f} {step_rate:12,.0f} "
            f"{step_rate / base_step:6.2f}"
        )
        figures[f"docs_per_s {name}"] = round(run_rate, 1)
        figures[f"step_docs_per_s {name}"] = round(step_rate, 1)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
