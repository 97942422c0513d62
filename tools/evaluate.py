"""Agreement of stored scores with labels: ROC-AUC, average precision, keep-rate trade-offs, CIs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate_tools.report import Output, OutputError, calibration_spec

KEEP_RATES = (0.1, 0.25, 0.5, 0.75, 0.9)


# ----------------------------------------------------------------------------- metrics
def _groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending sort order and the start index of each run of tied scores in it."""
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return order, starts


def weighted_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC for each row of `weights` (B x n, bootstrap counts); ties count one half.

    One sort serves every resample: per group of tied scores, positives beat the negative
    weight below the group plus half the negative weight inside it (Mann-Whitney U).
    """
    weights = np.atleast_2d(np.asarray(weights, np.float64))
    if np.size(scores) == 0:
        return np.full(len(weights), np.nan)
    order, starts = _groups(np.asarray(scores, np.float64))
    labels = np.asarray(labels, bool)[order]
    w = weights[:, order]
    pos = np.add.reduceat(w * labels, starts, axis=1)
    neg = np.add.reduceat(w * ~labels, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    denom = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, wins / denom, np.nan)


def weighted_average_precision(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Average precision (scikit-learn's step definition) for each row of `weights`."""
    weights = np.atleast_2d(np.asarray(weights, np.float64))
    if np.size(scores) == 0:
        return np.full(len(weights), np.nan)
    order, starts = _groups(-np.asarray(scores, np.float64))  # descending scores
    labels = np.asarray(labels, bool)[order]
    w = weights[:, order]
    tp = np.cumsum(np.add.reduceat(w * labels, starts, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(w * ~labels, starts, axis=1), axis=1)
    total = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / total
        gain = np.diff(np.concatenate([np.zeros_like(total), recall], axis=1), axis=1)
        return np.where(total[:, 0] > 0, (gain * precision).sum(axis=1), np.nan)


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    order, starts = _groups(-np.asarray(scores, np.float64))
    labels = np.asarray(labels, bool)[order]
    ones = np.ones_like(labels, dtype=np.float64)
    tp = np.cumsum(np.add.reduceat(ones * labels, starts))
    fp = np.cumsum(np.add.reduceat(ones * ~labels, starts))
    return (
        np.r_[0.0, fp / max(fp[-1], 1.0)],
        np.r_[0.0, tp / max(tp[-1], 1.0)],
    )


def bootstrap_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """Multinomial counts of `resamples` bootstrap draws of n rows (B x n), seeded."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def trade_off(
    scores: np.ndarray, labels: np.ndarray, higher_is_better: bool, rates=KEEP_RATES
) -> list[dict[str, float]]:
    """For each keep rate: the threshold that keeps that share, and precision / recall there."""
    oriented = scores if higher_is_better else -scores
    order = np.argsort(-oriented, kind="stable")
    positives = max(int(labels.sum()), 1)
    rows = []
    for rate in rates:
        k = max(1, int(round(rate * len(scores))))
        kept = labels[order[:k]]
        rows.append(
            {
                "keep_rate": rate,
                "threshold": float(scores[order[k - 1]]),
                "kept": k,
                "precision": float(kept.mean()),
                "recall": float(kept.sum() / positives),
            }
        )
    return rows


# ----------------------------------------------------------------------------- labels
@dataclass
class Labels:
    """Labelled ids: binary truth, and where it came from."""

    ids: pa.Array
    truth: np.ndarray
    source: str
    positive_share: float


def read_labels(
    path: str | Path,
    label_column: str = "label",
    id_column: str = "id",
    min_grade: float | None = None,
) -> Labels:
    """Read a Parquet/JSONL labels file; graded labels are binarised at `min_grade`.

    Binary labels are 0/1, booleans or strings "0"/"1"/"true"/"false". Other numbers are
    grades (FineWeb-Edu style) and need `min_grade`: grade >= min_grade counts as positive.
    """
    from curate_filters._fasttext import FastTextError, read_text

    try:
        table = read_text([str(path)], id_column, extra_columns=(label_column,), what="labelled")
    except FastTextError as exc:
        raise OutputError(f"--labels {path}: {exc}") from exc
    truth = binary_truth(table.column(label_column), min_grade, f"{path}: column {label_column!r}")
    ids = table.column(id_column).combine_chunks()
    if pc.count_distinct(ids).as_py() != len(ids):
        raise OutputError(f"{path}: column {id_column!r} has repeated ids; give one label per id")
    return Labels(ids, truth, str(path), float(truth.mean()))


def binary_truth(column: pa.ChunkedArray, min_grade: float | None, where: str) -> np.ndarray:
    """Labels as booleans; errors name `where` and the values found."""
    if column.null_count:
        raise OutputError(f"{where} has {column.null_count} empty labels; label every row")
    if pa.types.is_boolean(column.type):
        return np.asarray(column.to_numpy(zero_copy_only=False), bool)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column))
        known = {"1": True, "true": True, "0": False, "false": False}
        values = set(pc.unique(lowered).to_pylist())
        if not values <= set(known):
            try:
                column = pc.cast(column, pa.float64())
            except pa.ArrowInvalid:
                raise OutputError(
                    f"{where}: labels must be 0/1, true/false or numeric grades; found "
                    f"{sorted(values)[:5]}"
                ) from None
        else:
            return np.array([known[v] for v in lowered.to_pylist()], bool)
    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    if min_grade is not None:
        return values >= min_grade
    if not set(np.unique(values).tolist()) <= {0.0, 1.0}:
        raise OutputError(
            f"{where}: graded labels ({sorted(set(np.unique(values).tolist()))[:6]}); give "
            "--min-grade G so that grade >= G counts as a keep (FineWeb-Edu keeps >= 3)"
        )
    return values == 1.0


def join_scores(out: Output, labels: Labels, columns: list[str]) -> tuple[pa.Table, int]:
    """Labelled rows of OUT (kept and rejected) with their score columns; count of unmatched."""
    id_col = out.id_column()
    parts = []
    for table, ident in (
        (out.kept([id_col, *columns]), id_col),
        (out.rejected(["id", *columns]), "id"),
    ):
        if table.num_rows == 0 or ident not in table.column_names:
            continue
        table = table.rename_columns(["__id__" if c == ident else c for c in table.column_names])
        parts.append(table.set_column(0, "__id__", pc.cast(table.column("__id__"), pa.string())))
    if not parts:
        raise OutputError(f"{out.root} has no rows")
    rows = pa.concat_tables(parts, promote_options="default")
    pos = pc.index_in(pc.cast(labels.ids, pa.string()), value_set=rows.column("__id__"))
    found = pc.is_valid(pos)
    matched = int(pc.sum(found).as_py() or 0)
    if matched == 0:
        raise OutputError(
            f"none of the {len(labels.ids)} ids in {labels.source} is in {out.root} (id column "
            f"{id_col!r}); score the labelled documents first, e.g. `curate eval CONFIG --labels`"
        )
    joined = rows.take(pos.filter(found)).append_column(
        "__truth__", pa.array(labels.truth[np.asarray(found)])
    )
    return joined, len(labels.ids) - matched


# ----------------------------------------------------------------------------- evaluation
@dataclass
class ColumnResult:
    """How well one score column ranks the labelled documents."""

    column: str
    step: str
    rows: int
    missing: int
    higher_is_better: bool
    direction_from: str  # "step" (declared by the plugin) or "data" (chosen by the AUC)
    auc: float
    auc_ci: tuple[float, float]
    average_precision: float
    ap_ci: tuple[float, float]
    trade_off: list[dict[str, float]]
    curve: tuple[np.ndarray, np.ndarray] = field(repr=False, default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "step": self.step,
            "rows": self.rows,
            "missing": self.missing,
            "better": "higher" if self.higher_is_better else "lower",
            "direction_from": self.direction_from,
            "roc_auc": round(self.auc, 6),
            "roc_auc_ci95": [round(v, 6) for v in self.auc_ci],
            "average_precision": round(self.average_precision, 6),
            "average_precision_ci95": [round(v, 6) for v in self.ap_ci],
            "trade_off": self.trade_off,
        }


@dataclass
class StepResult:
    """What a step's own keep decision does to the labelled documents."""

    step: str
    use: str
    rows: int
    kept: int
    precision: float
    recall: float

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "use": self.use,
            "rows": self.rows,
            "kept": self.kept,
            "keep_rate": round(self.kept / self.rows, 6) if self.rows else None,
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
        }


@dataclass
class Evaluation:
    """Every score column and step of an output, measured against labels."""

    output: str
    labels: str
    rows: int
    unmatched: int
    positive_share: float
    resamples: int
    columns: list[ColumnResult]
    steps: list[StepResult]

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "labels": self.labels,
            "rows": self.rows,
            "unmatched_labels": self.unmatched,
            "positive_share": round(self.positive_share, 6),
            "bootstrap_resamples": self.resamples,
            "columns": [c.to_json() for c in self.columns],
            "steps": [s.to_json() for s in self.steps],
        }


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _ci(values: np.ndarray) -> tuple[float, float]:
    ok = values[np.isfinite(values)]
    if not len(ok):
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(ok, [2.5, 97.5])
    return (float(lo), float(hi))


def score_column(
    name: str,
    step: str,
    values: np.ndarray,
    truth: np.ndarray,
    declared: str | None,
    resamples: int,
    seed: int,
) -> ColumnResult | None:
    """One column's AUC, AP, trade-off and bootstrap CIs; None when it cannot rank anything."""
    ok = np.isfinite(values)
    v, y = values[ok], truth[ok]
    if len(v) < 2 or y.all() or not y.any() or np.ptp(v) == 0:
        return None
    auc = float(weighted_auc(v, y, np.ones((1, len(v))))[0])
    if declared is not None:
        higher, source = declared == "min", "step"
    else:
        higher, source = auc >= 0.5, "data"
    oriented = v if higher else -v
    weights = bootstrap_weights(len(v), resamples, seed)
    aucs = weighted_auc(oriented, y, weights)
    aps = weighted_average_precision(oriented, y, weights)
    ones = np.ones((1, len(v)))
    return ColumnResult(
        column=name,
        step=step,
        rows=len(v),
        missing=int((~ok).sum()),
        higher_is_better=higher,
        direction_from=source,
        auc=float(weighted_auc(oriented, y, ones)[0]),
        auc_ci=_ci(aucs),
        average_precision=float(weighted_average_precision(oriented, y, ones)[0]),
        ap_ci=_ci(aps),
        trade_off=trade_off(v, y, higher),
        curve=roc_curve(oriented, y),
    )


def evaluate(
    out: Output,
    labels: Labels,
    step: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> Evaluation:
    """Measure each numeric score column (of `step`, or all) and each step's decision."""
    from curate import plugins

    types = out.column_types()
    columns = [
        c for c in out.score_columns(pa.schema(list(types.items())), step) if _numeric(types[c])
    ]
    if not columns:
        raise OutputError(
            f"{out.root} has no numeric score columns" + (f" for step '{step}'" if step else "")
        )
    every = out.score_columns(pa.schema(list(types.items())), step)
    joined, unmatched = join_scores(out, labels, every)
    truth = joined.column("__truth__").to_numpy(zero_copy_only=False).astype(bool)
    results = []
    for col in columns:
        owner = out.owner(col) or ""
        spec = calibration_spec(out.step(owner).use) if owner else None
        declared = spec["direction"] if spec and col == f"{owner}_{spec['score']}" else None
        values = (
            joined.column(col).cast(pa.float64()).to_numpy(zero_copy_only=False)
            if col in joined.column_names
            else np.full(joined.num_rows, np.nan)
        )
        res = score_column(col, owner, values, truth, declared, resamples, seed)
        if res is not None:
            results.append(res)
    steps = []
    for info in out.steps:
        if step is not None and info.sid != step:
            continue
        mine = [c for c in columns if out.owner(c) == info.sid]
        if not mine or not info.use:
            continue
        try:
            cls = plugins.load(info.use)
            instance = cls(cls.Params.model_validate(info.params))
            scores = {
                c[len(info.sid) + 1 :]: joined.column(c).combine_chunks()
                for c in out.score_columns(joined.schema, info.sid)
            }
            kept = np.asarray(pc.fill_null(instance.keep(scores), False))
        except Exception:  # a step whose keep needs more than its stored scores: columns only
            continue
        tp = int((kept & truth).sum())
        steps.append(
            StepResult(
                info.sid,
                info.use,
                len(truth),
                int(kept.sum()),
                tp / max(int(kept.sum()), 1),
                tp / max(int(truth.sum()), 1),
            )
        )
    return Evaluation(
        str(out.root),
        labels.source,
        joined.num_rows,
        unmatched,
        float(truth.mean()),
        resamples,
        results,
        steps,
    )


# ----------------------------------------------------------------------------- HTML
def roc_svg(columns: list[ColumnResult], title: str) -> str:
    """ROC curves of several columns on one chart, the diagonal for chance."""
    from curate_tools.report import _plt, _svg

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="#bbb", linestyle=":", linewidth=1)
    for c in columns:
        fpr, tpr = c.curve
        ax.plot(fpr, tpr, linewidth=1.3, label=f"{c.column} ({c.auc:.3f})")
    ax.set_xlabel("false-positive rate", fontsize=8)
    ax.set_ylabel("true-positive rate", fontsize=8)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def evaluation_html(ev: Evaluation, per_chart: int = 6) -> str:
    """The report section: a table of every column, ROC curves per step, step decisions."""
    import html

    from curate_tools.report import _table

    parts = [
        "<h2 id='evaluation'>Agreement with labels</h2>",
        f"<p>{ev.rows:,} labelled documents from {html.escape(ev.labels)} "
        f"({100 * ev.positive_share:.1f}% keep labels; {ev.unmatched:,} labels not in the "
        f"output). 95% intervals from {ev.resamples:,} bootstrap resamples. Direction "
        "'data' means the plugin declares none and the better side was read from the labels.</p>",
    ]
    ranked = sorted(ev.columns, key=lambda c: -c.auc)
    rows = [
        [c.column, c.rows, "higher" if c.higher_is_better else "lower", c.direction_from,
         c.auc, f"{c.auc_ci[0]:.3f}-{c.auc_ci[1]:.3f}", c.average_precision,
         f"{c.ap_ci[0]:.3f}-{c.ap_ci[1]:.3f}"]
        for c in ranked
    ]  # fmt: skip
    header = ["column", "rows", "better", "direction", "ROC-AUC", "95% CI", "AP", "95% CI"]
    parts.append(_table(header, rows, {1, 4, 6}))
    by_step: dict[str, list[ColumnResult]] = {}
    for c in ranked:
        by_step.setdefault(c.step, []).append(c)
    charts = [roc_svg(ranked[:per_chart], "best columns")]
    charts += [roc_svg(cols[:per_chart], sid) for sid, cols in by_step.items()]
    parts.append("<div class='grid' id='roc-curves'>" + "".join(charts) + "</div>")
    parts.append("<h3>Keep rate vs precision (best columns)</h3>")
    trade = [
        [c.column, t["keep_rate"], t["threshold"], t["precision"], t["recall"]]
        for c in ranked[:per_chart]
        for t in c.trade_off
    ]
    parts.append(_table(["column", "keep rate", "threshold", "precision", "recall"], trade,
                        {1, 2, 3, 4}))  # fmt: skip
    if ev.steps:
        parts.append("<h3>Each step's own decision</h3>")
        rows = [
            [s.step, s.use, s.rows, s.kept, s.kept / s.rows if s.rows else 0.0, s.precision,
             s.recall]
            for s in ev.steps
        ]  # fmt: skip
        parts.append(_table(["step", "use", "rows", "kept", "keep rate", "precision", "recall"],
                            rows, {2, 3, 4, 5, 6}))  # fmt: skip
    return "\n".join(parts)
