"""A learned combiner of stored scores: the `learned_quality` step and its hashed JSON model.

`curate train combine` fits the model (filters/_combine_fit.py, scikit-learn); applying it needs
only numpy, so workers never import scikit-learn. The model file holds everything the step needs:
feature columns, the value that fills a missing one, per-feature quantiles (a rank transform
robust to heavy tails such as perplexity), and the linear weights or the trees.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.filter import Filter, ModelPath, Params, Resources

FORMAT = "curate-combine/1"
KINDS = ("logistic_regression", "gradient_boosting")


class CombinerError(ValueError):
    """A combiner model that cannot be read or applied; the message names the file."""


def canonical_hash(body: dict[str, Any]) -> str:
    """sha256 of the model's canonical JSON (sorted keys, no whitespace), `sha256` excluded."""
    content = {k: v for k, v in body.items() if k != "sha256"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def quantile_transform(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Map values to [0, 1] through a feature's training quantiles (ties take their mid-rank)."""
    refs = np.linspace(0.0, 1.0, len(quantiles))
    # Interpolating up and down and averaging gives tied quantiles (many zeros) their middle rank.
    with np.errstate(invalid="ignore", over="ignore"):
        up = np.interp(x, quantiles, refs)
        down = -np.interp(-x, -quantiles[::-1], -refs[::-1])
        out = 0.5 * (up + down)
    # Quantiles a subnormal apart make np.interp's slope overflow (inf * 0 = nan): take the
    # mid-rank of the quantiles around x there, which is what the interpolation tends to.
    bad = ~np.isfinite(out)
    if bad.any():
        last = len(quantiles) - 1
        lo = np.clip(np.searchsorted(quantiles, x[bad], side="left"), 0, last)
        hi = np.clip(np.searchsorted(quantiles, x[bad], side="right") - 1, 0, last)
        out[bad] = 0.5 * (refs[lo] + refs[hi])
    return np.clip(out, 0.0, 1.0)


@dataclass
class Combiner:
    """A fitted combiner as stored in its JSON file."""

    body: dict[str, Any]
    path: str = ""

    @property
    def features(self) -> list[str]:
        return list(self.body["features"])

    @property
    def sha256(self) -> str:
        return self.body["sha256"]

    def transform(self, columns: list[np.ndarray]) -> np.ndarray:
        """Features (one float64 array each) -> the model's input matrix (rows x features)."""
        fill = self.body["impute"]
        out = np.empty((len(columns[0]) if columns else 0, len(columns)), np.float64)
        for j, (values, quantiles) in enumerate(zip(columns, self.body["quantiles"], strict=True)):
            values = np.where(np.isfinite(values), values, fill[j])
            out[:, j] = quantile_transform(values, np.asarray(quantiles, np.float64))
        return out

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Log-odds of a keep for each row of the transformed matrix."""
        model = self.body["model"]
        if self.body["kind"] == "logistic_regression":
            return x @ np.asarray(model["coef"], np.float64) + float(model["intercept"])
        raw = np.full(len(x), float(model["init"]), np.float64)
        rate = float(model["learning_rate"])
        for tree in model["trees"]:
            raw += rate * _tree_values(tree, x)
        return raw

    def predict(self, columns: list[np.ndarray]) -> np.ndarray:
        """Probability of a keep for each row, from the raw feature values."""
        z = self.decision(self.transform(columns))
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: str) -> None:
        """Write the model atomically, with its hash."""
        self.body["sha256"] = canonical_hash(self.body)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.body, f, indent=1, sort_keys=True, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
        self.path = path


def _tree_values(tree: dict[str, list], x: np.ndarray) -> np.ndarray:
    """A regression tree's leaf value for every row: all rows descend one level per step."""
    feature = np.asarray(tree["feature"], np.int64)
    threshold = np.asarray(tree["threshold"], np.float64)
    left = np.asarray(tree["left"], np.int64)
    right = np.asarray(tree["right"], np.int64)
    value = np.asarray(tree["value"], np.float64)
    node = np.zeros(len(x), np.int64)
    rows = np.arange(len(x))
    while True:
        inner = left[node] >= 0
        if not inner.any():
            return value[node]
        go_left = x[rows, np.maximum(feature[node], 0)] <= threshold[node]
        node = np.where(inner, np.where(go_left, left[node], right[node]), node)


def load(path: str | os.PathLike) -> Combiner:
    """Read and verify a combiner file; errors name the file and what to do."""
    path = str(path)
    if not os.path.isfile(path):
        raise CombinerError(
            f"combiner model not found: {path}; make it with `curate train combine`"
        )
    try:
        with open(path, encoding="utf-8") as f:
            body = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CombinerError(f"{path} is not valid JSON ({exc}); retrain it") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        found = body.get("format") if isinstance(body, dict) else None
        raise CombinerError(
            f"{path} is not a curate combiner model (format {found!r}, expected {FORMAT!r})"
        )
    if body.get("kind") not in KINDS:
        raise CombinerError(f"{path}: unknown model kind {body.get('kind')!r}; known: {KINDS}")
    if body.get("sha256") != canonical_hash(body):
        raise CombinerError(
            f"{path} does not match the sha256 it records: the file was edited or is corrupt; "
            "retrain it with `curate train combine`"
        )
    return Combiner(body, path)


class LearnedQualityParams(Params):
    """Parameters of `learned_quality`."""

    model: ModelPath = Field(
        description="Combiner model from `curate train combine` (combine.json): the score "
        "columns it reads, their transforms and the fitted weights or trees."
    )
    min_prob: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Keep rows whose predicted probability of a keep label is at least this; "
        "or run in annotate mode and set it with `curate calibrate --keep F`.",
    )


class LearnedQuality(Filter):
    """Combines earlier steps' stored scores with a model fitted on labels: `prob` of a keep."""

    Params: ClassVar[type[Params]] = LearnedQualityParams
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=8192)
    calibration: ClassVar[dict] = {"score": "prob", "param": "min_prob", "direction": "min"}

    params: LearnedQualityParams

    def setup(self) -> None:
        """Load and verify the model file."""
        self._model = load(self.params.model)
        self.model_sha256 = self._model.sha256

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if batch.num_rows == 0:  # the schema probe runs before earlier steps add their columns
            return {"prob": pa.array([], pa.float32())}
        model = self._model
        missing = [c for c in model.features if c not in batch.schema.names]
        if missing:
            raise CombinerError(
                f"{model.path} reads score columns the input lacks: {', '.join(missing)}; run "
                "the steps that write them (same ids) before this step, or use an input that "
                "holds them (an annotate-mode output)"
            )
        columns = [
            batch.column(c).cast(pa.float64()).to_numpy(zero_copy_only=False)
            for c in model.features
        ]
        return {"prob": pa.array(model.predict(columns).astype(np.float32), pa.float32())}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pc.fill_null(pc.greater_equal(scores["prob"], self.params.min_prob), False)
