"""Training the fastText quality model from labels or from a teacher's scores (distillation)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import spearmanr

from . import _fasttext as ft
from .quality import QualityReport, binary_metrics, training_settings


@dataclass
class Agreement:
    """How a distilled student agrees with its teacher on held-out rows, and how fast each is."""

    auc_vs_teacher: float
    spearman: float
    decision_agreement: float
    student_docs_per_s: float
    teacher_docs_per_s: float | None
    teacher_steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _probs(model: Any, norm: ft.Normaliser, text: pa.ChunkedArray, label: str) -> np.ndarray:
    hl, hp = ft.predict(model, norm.lines(text), k=-1)
    return np.clip((hp * (hl == ft.LABEL_PREFIX + label)).sum(axis=1), 0.0, 1.0)


def train_labelled(
    text: pa.ChunkedArray,
    truth: np.ndarray,
    output: str,
    meta: dict[str, Any],
    label: str = "hq",
    negative_label: str = "lq",
    holdout: float = 0.1,
    lowercase: bool = True,
    max_chars: int | None = 10_000,
    settings: ft.TrainSettings | None = None,
) -> tuple[QualityReport, Any, ft.Normaliser, pa.ChunkedArray, np.ndarray]:
    """Train on rows whose keep/drop is given (labels or a binarised teacher), hold some out.

    No class is sampled down: labels are scarce, and a teacher split at a quantile is as
    balanced as asked. The held-out split is stratified (`holdout` of each class). Returns the
    report, the model, its normaliser and the held-out text with its truth.
    """
    settings, pos_label, neg_label = training_settings(
        output, label, negative_label, holdout, settings
    )
    truth = np.asarray(truth, bool)
    if truth.all() or not truth.any():
        raise ft.FastTextError(
            f"the labels are all {'keep' if truth.all() else 'drop'} ({len(truth)} rows): "
            "a classifier needs both"
        )
    rng = np.random.default_rng(settings.seed)
    train_parts, hold_parts = [], []
    for cls in (True, False):
        rows = np.flatnonzero(truth == cls)
        tr, ho = ft.split_holdout(len(rows), holdout, rng)
        train_parts.append(rows[tr])
        hold_parts.append(rows[ho])
    train_idx, hold_idx = np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(hold_parts))
    norm = ft.Normaliser(lowercase=lowercase, max_chars=max_chars)
    lines = norm.lines(text.take(train_idx))
    labels = np.where(truth[train_idx], pos_label, neg_label)
    with ft.Timer() as timer:
        model = ft.fit(lines, labels, output, settings)
    hold_text = text.take(hold_idx)
    metrics: dict[str, float] = {}
    if len(hold_idx):
        metrics = binary_metrics(truth[hold_idx], _probs(model, norm, hold_text, pos_label))
    side = ft.write_sidecar(
        output,
        {
            "kind": "quality",
            "labels": [pos_label, neg_label],
            "positive_label": pos_label,
            "normaliser": norm.to_dict(),
            "train": settings.to_dict(),
            "holdout": holdout,
            "metrics": metrics,
            **meta,
        },
    )
    counts = {
        pos_label: (int(truth[train_idx].sum()), int(truth[hold_idx].sum())),
        neg_label: (int((~truth[train_idx]).sum()), int((~truth[hold_idx]).sum())),
    }
    report = QualityReport(
        output=output,
        sidecar=str(side),
        model_bytes=os.path.getsize(output),
        train_seconds=timer.seconds,
        n_train={k: v[0] for k, v in counts.items()},
        n_holdout={k: v[1] for k, v in counts.items()},
        metrics=metrics,
    )
    return report, model, norm, hold_text, hold_idx


def teacher_rows(out: Any, column: str, text_column: str) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Text and teacher score of every row of OUT (kept and rejected) that has the score."""
    from curate_tools.report import OutputError

    types = out.column_types()
    if column not in types:
        numeric = [c for c in out.score_columns(pa.schema(list(types.items())))]
        raise OutputError(
            f"{out.root} has no column {column!r}; score columns: {', '.join(numeric)}"
        )
    parts = []
    for table, text in ((out.kept([text_column, column]), text_column),
                        (out.rejected(["text", column]), "text")):  # fmt: skip
        if table.num_rows and column in table.column_names and text in table.column_names:
            parts.append(
                pa.table(
                    {"text": table.column(text), "score": table.column(column).cast(pa.float64())}
                )
            )
    if not parts:
        raise OutputError(f"{out.root} has no rows with {column!r} and text")
    rows = pa.concat_tables(parts)
    ok = pc.and_(pc.is_finite(rows.column("score")), pc.is_valid(rows.column("text")))
    rows = rows.filter(pc.fill_null(ok, False))
    if rows.num_rows < 4:
        raise OutputError(f"{out.root}: only {rows.num_rows} rows have a finite {column!r}")
    return rows.column("text"), rows.column("score").to_numpy()


def teacher_cost(out: Any, column: str) -> tuple[float | None, list[str]]:
    """Documents per second of the teacher: its step, plus, for a learned combiner, the steps
    writing its features; from stats.json's per-step seconds (one process each)."""
    sid = out.owner(column)
    if sid is None:
        return None, []
    steps = [sid]
    info = out.step(sid)
    if info.use == "learned_quality" and info.params.get("model"):
        from curate_filters.learned import CombinerError, load

        try:
            steps += sorted({out.owner(f) for f in load(info.params["model"]).features} - {None})
        except CombinerError:
            pass
    stats = out.stats["steps"]
    per_doc = 0.0
    for s in steps:
        st = stats.get(s) or {}
        if not st.get("in") or st.get("reused_scores"):
            return None, steps
        per_doc += st["seconds"] / st["in"]
    return (1.0 / per_doc if per_doc > 0 else None), steps


def agreement(
    model: Any,
    norm: ft.Normaliser,
    label: str,
    text: pa.ChunkedArray,
    teacher: np.ndarray,
    truth: np.ndarray,
    speed_text: pa.ChunkedArray,
    teacher_docs_per_s: float | None,
    teacher_steps: list[str],
) -> Agreement:
    """Student vs teacher on held-out rows: AUC against the teacher's split, rank correlation,
    share of the same keep decisions at the same keep rate; documents per second of the student
    over `speed_text`. NaN figures when nothing was held out."""
    from curate_tools.evaluate import weighted_auc

    start = time.perf_counter()
    _probs(model, norm, speed_text, label)
    seconds = time.perf_counter() - start
    probs = _probs(model, norm, text, label)
    k = int(truth.sum())
    student_keep = np.zeros(len(probs), bool)
    student_keep[np.argsort(-probs, kind="stable")[:k]] = True
    enough = len(probs) >= 2
    return Agreement(
        auc_vs_teacher=float(weighted_auc(probs, truth, np.ones((1, len(probs))))[0]),
        spearman=float(spearmanr(probs, teacher).statistic) if enough else float("nan"),
        decision_agreement=float((student_keep == truth).mean()) if enough else float("nan"),
        student_docs_per_s=len(speed_text) / seconds if seconds > 0 else float("inf"),
        teacher_docs_per_s=teacher_docs_per_s,
        teacher_steps=teacher_steps,
    )


def read_labelled(
    specs: list[str], text_column: str, label_column: str, min_grade: float | None
) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Text and keep/drop of labelled documents (binary, or grades binarised at `min_grade`)."""
    from curate_tools.evaluate import binary_truth

    table = ft.read_text(specs, text_column, extra_columns=(label_column,), what="labelled")
    truth = binary_truth(table.column(label_column), min_grade, f"--labels column {label_column!r}")
    return table.column(0), truth


def from_labels(
    specs: list[str], text_column: str, label_column: str, min_grade: float | None, **common: Any
) -> QualityReport:
    """Train on labelled documents alone."""
    text, truth = read_labelled(specs, text_column, label_column, min_grade)
    meta = {"source": {"labels": specs, "label_column": label_column, "min_grade": min_grade},
            "text_column": text_column}  # fmt: skip
    report, *_ = train_labelled(text, truth, meta=meta, **common)
    return report


def from_teacher(
    teacher: str,
    column: str,
    keep: float,
    labelled: tuple[pa.ChunkedArray, np.ndarray] | None = None,
    **common: Any,
) -> tuple[QualityReport, Agreement]:
    """Distil: label OUT's documents by the teacher score's top `keep` share, train, compare.

    `labelled` (text, truth) adds documents people labelled to the teacher's: on the DCLM dev
    set the student learns more from both than from either. Agreement with the teacher is
    measured on held-out teacher rows only.
    """
    from curate_tools.report import Output

    out = Output.open(teacher)
    text, scores = teacher_rows(out, column, out.text_column())
    threshold = float(np.quantile(scores, 1.0 - keep))
    truth = scores >= threshold
    if truth.all() or not truth.any():  # ties at the quantile: split strictly above instead
        truth = scores > threshold
    n_teacher = len(truth)
    meta = {"source": {"teacher": teacher, "teacher_column": column, "teacher_keep": keep,
                       "teacher_threshold": threshold, "teacher_rows": n_teacher,
                       "labelled_rows": 0 if labelled is None else len(labelled[1])}}  # fmt: skip
    if labelled is not None:
        text = pa.chunked_array(list(text.chunks) + list(labelled[0].chunks), pa.string())
        truth = np.concatenate([truth, np.asarray(labelled[1], bool)])
    report, model, norm, hold_text, hold_idx = train_labelled(text, truth, meta=meta, **common)
    from_teacher_rows = hold_idx < n_teacher
    docs_per_s, steps = teacher_cost(out, column)
    label = ft.strip_label(common.get("label", "hq"))
    held = hold_idx[from_teacher_rows]
    agree = agreement(
        model, norm, label, hold_text.filter(pa.array(from_teacher_rows, pa.bool_())),
        scores[held], truth[held], text.slice(0, min(n_teacher, 5_000)), docs_per_s, steps,
    )  # fmt: skip
    side = ft.sidecar_path(report.output)
    meta_all = json.loads(side.read_text())
    meta_all["agreement"] = agree.to_dict()
    side.write_text(json.dumps(meta_all, indent=2, sort_keys=True) + "\n")
    return report, agree
