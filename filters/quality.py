"""fastText quality classifier: the `fasttext_quality` step and the training of its model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from curate.filter import Filter, ModelPath, Params, Resources

from . import _fasttext as ft


class FastTextQualityParams(Params):
    """Parameters of `fasttext_quality`."""

    model: ModelPath = Field(
        "models/quality.bin",
        description="fastText classifier (.bin or quantized .ftz), e.g. from `curate train "
        "quality`; its sidecar <model>.json, when present, records the training normaliser.",
    )
    label: str = Field(
        "hq",
        description="The positive (high-quality) label; `hq` and `__label__hq` are the same. "
        "The score is this label's probability.",
    )
    min_prob: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Keep rows whose probability of `label` is at least this. "
        "Do not combine with keep_fraction.",
    )
    keep_fraction: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Instead of min_prob: keep about this fraction of rows. The threshold is the "
        "(1 - keep_fraction) quantile of the scores of the `calibration` file, scored once in "
        "setup. Without a calibration file, run the step in annotate mode and derive min_prob "
        "from the stored scores with `curate calibrate`.",
    )
    calibration: ModelPath | None = Field(
        None,
        description="Parquet or JSONL sample of the corpus (its pipeline text column is read) "
        "that sets the keep_fraction threshold; required with keep_fraction.",
    )
    max_chars: int | None = Field(
        None,
        gt=0,
        description="Read at most this many characters of each document. Default: the value the "
        "model was trained with (from <model>.json), else the whole document.",
    )
    lowercase: bool | None = Field(
        None,
        description="Lowercase text before scoring. Must match training: default is the trained "
        "setting from <model>.json (else false); a contradicting value is an error.",
    )

    @model_validator(mode="after")
    def _one_threshold(self) -> FastTextQualityParams:
        if self.keep_fraction is not None:
            if "min_prob" in self.model_fields_set:
                raise ValueError("give min_prob or keep_fraction, not both")
            if self.calibration is None:
                raise ValueError(
                    "keep_fraction needs a calibration file (a sample of the corpus); or run "
                    "the step with mode: annotate and set min_prob with `curate calibrate`"
                )
        return self


class FastTextQuality(Filter):
    """Scores each document with a fastText classifier: `prob` = probability of `label`."""

    Params: ClassVar[type[Params]] = FastTextQualityParams
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=4096)
    # `curate calibrate` and `curate inspect`: keep is `prob >= min_prob` (keep_fraction unset).
    calibration: ClassVar[dict] = {
        "score": "prob",
        "param": "min_prob",
        "direction": "min",
        "unset": ["keep_fraction", "calibration"],
    }

    params: FastTextQualityParams

    def setup(self) -> None:
        """Load the model (errors name the file and its labels) and calibrate if asked."""
        loaded = ft.load_model(self.params.model)
        self.model_sha256 = loaded.sha256
        self._model = loaded.model
        self._label = ft.LABEL_PREFIX + loaded.require_label(self.params.label)
        self._norm = loaded.normaliser(self.params.lowercase, self.params.max_chars)
        self._threshold = None
        if self.params.keep_fraction is not None:
            sample = ft.read_text([self.params.calibration], self.text_column, what="calibration")
            probs = self._probs(sample.column(0))
            self._threshold = float(np.quantile(probs, 1.0 - self.params.keep_fraction))

    def _probs(self, text: pa.Array | pa.ChunkedArray) -> np.ndarray:
        labels, probs = ft.predict(self._model, self._norm.lines(text), k=-1)
        # fastText reports p + 1e-5 (it takes log(p + 1e-5)): clip back into [0, 1].
        prob = (probs * (labels == self._label)).sum(axis=1, dtype=np.float32)
        return np.clip(prob, 0.0, 1.0, out=prob)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        return {"prob": pa.array(self._probs(self.text(batch)), type=pa.float32())}

    @property
    def threshold(self) -> float:
        """The probability a row needs to be kept (calibrated in setup for keep_fraction)."""
        if self.params.keep_fraction is None:
            return self.params.min_prob
        if getattr(self, "_threshold", None) is None:
            raise RuntimeError("keep_fraction is calibrated in setup(); call setup() first")
        return self._threshold

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pc.fill_null(pc.greater_equal(scores["prob"], self.threshold), False)


# --------------------------------------------------------------------------- training


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U); ties count one half."""
    from scipy.stats import rankdata  # lazily: scipy.stats takes ~2 s to import

    y_true = np.asarray(y_true, dtype=bool)
    n_pos = int(y_true.sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict:
    """Precision, recall and F1 of `scores >= threshold` for the positive class, and ROC-AUC."""
    y_true = np.asarray(y_true, dtype=bool)
    pred = np.asarray(scores) >= threshold
    tp = int((pred & y_true).sum())
    precision = tp / max(int(pred.sum()), 1)
    recall = tp / max(int(y_true.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(y_true, scores),
        "threshold": threshold,
    }


@dataclass
class QualityReport:
    """What `train_quality` did and how the model does on held-out rows."""

    output: str
    sidecar: str
    model_bytes: int
    train_seconds: float
    n_train: dict[str, int]
    n_holdout: dict[str, int]
    metrics: dict[str, float] = field(default_factory=dict)


def training_settings(
    output: str,
    label: str,
    negative_label: str,
    holdout: float,
    settings: ft.TrainSettings | None,
) -> tuple[ft.TrainSettings, str, str]:
    """Settings (an `.ftz` output implies quantization) and the two labels, checked."""
    settings = settings or ft.TrainSettings()
    if output.endswith(".ftz"):
        settings.quantize = True
    pos_label, neg_label = ft.strip_label(label), ft.strip_label(negative_label)
    if pos_label == neg_label:
        raise ft.FastTextError("the positive and negative labels must differ")
    if not 0.0 <= holdout < 1.0:
        raise ft.FastTextError(f"holdout must be in [0, 1), got {holdout}")
    return settings, pos_label, neg_label


def train_quality(
    positive: list[str],
    negative: list[str],
    output: str,
    text_column: str = "text",
    positive_where: list[str] | None = None,
    negative_where: list[str] | None = None,
    label: str = "hq",
    negative_label: str = "lq",
    holdout: float = 0.1,
    max_per_class: int | None = None,
    lowercase: bool = True,
    max_chars: int | None = 10_000,
    settings: ft.TrainSettings | None = None,
) -> QualityReport:
    """Train a binary fastText quality classifier and evaluate it on held-out rows.

    Classes are balanced by sampling each down to the smaller one (and to `max_per_class`)
    with the seed; `holdout` of each class is kept out of training. Text goes through the same
    normaliser the step uses, and its settings are written to `<output>.json`. An output
    ending in `.ftz` implies quantization.
    """
    settings, pos_label, neg_label = training_settings(
        output, label, negative_label, holdout, settings
    )
    pos = ft.read_text(
        positive, text_column, where=ft.parse_where(positive_where), what="positive"
    ).column(0)
    neg = ft.read_text(
        negative, text_column, where=ft.parse_where(negative_where), what="negative"
    ).column(0)
    norm = ft.Normaliser(lowercase=lowercase, max_chars=max_chars)
    rng = np.random.default_rng(settings.seed)
    n = min(len(pos), len(neg), max_per_class or len(pos))
    split = {}
    for name, text in ((pos_label, pos), (neg_label, neg)):
        chosen = text.take(np.sort(rng.choice(len(text), n, replace=False)))
        train_idx, hold_idx = ft.split_holdout(n, holdout, rng)
        split[name] = (chosen.take(train_idx), chosen.take(hold_idx))
    lines = norm.lines(pa.chunked_array([split[pos_label][0], split[neg_label][0]]))
    labels = [pos_label] * len(split[pos_label][0]) + [neg_label] * len(split[neg_label][0])
    with ft.Timer() as timer:
        model = ft.fit(lines, labels, output, settings)
    metrics: dict[str, float] = {}
    hold = pa.chunked_array([split[pos_label][1], split[neg_label][1]])
    if len(hold):
        hl, hp = ft.predict(model, norm.lines(hold), k=-1)
        probs = (hp * (hl == ft.LABEL_PREFIX + pos_label)).sum(axis=1)
        y = np.arange(len(hold)) < len(split[pos_label][1])
        metrics = binary_metrics(y, probs)
    side = ft.write_sidecar(
        output,
        {
            "kind": "quality",
            "labels": [pos_label, neg_label],
            "positive_label": pos_label,
            "normaliser": norm.to_dict(),
            "text_column": text_column,
            "train": settings.to_dict(),
            "holdout": holdout,
            "metrics": metrics,
        },
    )
    return QualityReport(
        output=output,
        sidecar=str(side),
        model_bytes=os.path.getsize(output),
        train_seconds=timer.seconds,
        n_train={k: len(v[0]) for k, v in split.items()},
        n_holdout={k: len(v[1]) for k, v in split.items()},
        metrics=metrics,
    )
