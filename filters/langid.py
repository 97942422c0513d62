"""fastText language identification: the `fasttext_langid` step and the training of its model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from curate.filter import Filter, ModelPath, Params, Resources

from . import _fasttext as ft


class FastTextLangIDParams(Params):
    """Parameters of `fasttext_langid`."""

    model: ModelPath = Field(
        "models/lid.bin",
        description="fastText language-id model whose labels are language codes "
        "(`__label__en`), e.g. from `curate train langid` or fastText's lid.176.",
    )
    languages: list[str] = Field(
        default_factory=list,
        description="Languages to keep, as the model's labels name them (ISO 639-1 codes such "
        "as en, fr; `__label__en` also accepted). Empty: keep every language.",
    )
    min_score: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Keep rows whose top language has at least this probability.",
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

    @field_validator("languages")
    @classmethod
    def _bare(cls, value: list[str]) -> list[str]:
        return [ft.strip_label(v) for v in value]


class FastTextLangID(Filter):
    """Scores each document's most likely language: `lang` (label) and `score` (probability)."""

    Params: ClassVar[type[Params]] = FastTextLangIDParams
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=4096)
    # `curate calibrate` and `curate inspect`: keep is `score >= min_score` (and the languages).
    calibration: ClassVar[dict] = {"score": "score", "param": "min_score", "direction": "min"}
    threshold_params: ClassVar[tuple[str, ...]] = ("languages",)

    params: FastTextLangIDParams

    def setup(self) -> None:
        """Load the model; every language to keep must be one of its labels."""
        loaded = ft.load_model(self.params.model)
        self.model_sha256 = loaded.sha256
        for lang in self.params.languages:
            loaded.require_label(lang)
        self._model = loaded.model
        self._norm = loaded.normaliser(self.params.lowercase, self.params.max_chars)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        labels, probs = ft.predict(self._model, self._norm.lines(self.text(batch)), k=1)
        lang = pa.array(labels[:, 0] if len(labels) else [], type=pa.string())
        return {
            "lang": pc.utf8_slice_codeunits(lang, len(ft.LABEL_PREFIX)),
            "score": pa.array(probs[:, 0] if len(probs) else [], type=pa.float32()),
        }

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        keep = pc.greater_equal(scores["score"], self.params.min_score)
        if self.params.languages:
            languages = pa.array(self.params.languages, pa.string())
            keep = pc.and_(keep, pc.is_in(scores["lang"], value_set=languages))
        return pc.fill_null(keep, False)


# --------------------------------------------------------------------------- training


@dataclass
class LangIDReport:
    """What `train_langid` did and its held-out accuracy, overall and per language."""

    output: str
    sidecar: str
    model_bytes: int
    train_seconds: float
    n_train: dict[str, int]
    n_holdout: dict[str, int]
    accuracy: float = float("nan")
    per_language: dict[str, float] = field(default_factory=dict)


def accuracy_by_language(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, dict]:
    """Overall accuracy and accuracy within each true language."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if len(truth) == 0:
        return float("nan"), {}
    correct = truth == predicted
    langs, inverse = np.unique(truth, return_inverse=True)
    per = np.bincount(inverse, weights=correct) / np.bincount(inverse)
    return float(correct.mean()), dict(zip(langs.tolist(), per.tolist(), strict=True))


def _parse_map(specs: list[str] | None) -> dict[str, str]:
    out = {}
    for spec in specs or []:
        for pair in spec.split(","):
            old, sep, new = pair.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise ft.FastTextError(f"label map {pair!r} must look like OLD=NEW[,OLD=NEW...]")
            out[old.strip()] = new.strip()
    return out


def _counts(values: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(values, return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def train_langid(
    inputs: list[str],
    output: str,
    label_column: str = "lang",
    text_column: str = "text",
    where: list[str] | None = None,
    label_map: list[str] | None = None,
    holdout: float = 0.1,
    max_per_class: int | None = None,
    lowercase: bool = False,
    max_chars: int | None = 2_000,
    settings: ft.TrainSettings | None = None,
) -> LangIDReport:
    """Train a fastText language-id model on labelled text and report held-out accuracy.

    `label_map` renames label values (`["wikipedia_en=en"]`), e.g. to ISO codes. Each language
    is capped at `max_per_class` rows (sampled with the seed) and `holdout` of each is kept out
    of training. Character n-grams (minn/maxn) carry most of the signal.
    An output ending in `.ftz` implies quantization.
    """
    settings = settings or ft.TrainSettings(dim=16, minn=2, maxn=4, word_ngrams=1)
    if output.endswith(".ftz"):
        settings.quantize = True
    if not 0.0 <= holdout < 1.0:
        raise ft.FastTextError(f"holdout must be in [0, 1), got {holdout}")
    table = ft.read_text(
        inputs, text_column, extra_columns=(label_column,), where=ft.parse_where(where)
    )
    table = table.filter(pc.is_valid(table.column(label_column)))
    langs = np.asarray(pc.cast(table.column(label_column), pa.string()).to_pylist(), dtype=object)
    for old, new in _parse_map(label_map).items():
        langs[langs == old] = new
    bad = [lang for lang in np.unique(langs) if not lang or len(lang.split()) != 1]
    if bad:
        raise ft.FastTextError(
            f"label column {label_column!r} has values fastText cannot use as labels "
            f"(empty or with spaces): {bad[:5]}"
        )
    rng = np.random.default_rng(settings.seed)
    train_idx, hold_idx = [], []
    for lang in np.unique(langs):
        rows = np.flatnonzero(langs == lang)
        if max_per_class and len(rows) > max_per_class:
            rows = np.sort(rng.choice(rows, max_per_class, replace=False))
        if len(rows) < 2 and holdout > 0:
            train_idx.append(rows)
            continue
        tr, ho = ft.split_holdout(len(rows), holdout, rng)
        train_idx.append(rows[tr])
        hold_idx.append(rows[ho])
    train_idx = np.concatenate(train_idx)
    hold_idx = np.concatenate(hold_idx) if hold_idx else np.array([], dtype=np.int64)
    text = table.column(text_column)
    norm = ft.Normaliser(lowercase=lowercase, max_chars=max_chars)
    with ft.Timer() as timer:
        model = ft.fit(norm.lines(text.take(train_idx)), langs[train_idx], output, settings)
    accuracy, per_language = float("nan"), {}
    if len(hold_idx):
        labels, _ = ft.predict(model, norm.lines(text.take(hold_idx)), k=1)
        predicted = np.array([ft.strip_label(lb) for lb in labels[:, 0]])
        accuracy, per_language = accuracy_by_language(langs[hold_idx], predicted)
    side = ft.write_sidecar(
        output,
        {
            "kind": "langid",
            "labels": np.unique(langs[train_idx]).tolist(),
            "normaliser": norm.to_dict(),
            "text_column": text_column,
            "label_column": label_column,
            "label_map": _parse_map(label_map),
            "train": settings.to_dict(),
            "holdout": holdout,
            "metrics": {"accuracy": accuracy, "per_language": per_language},
        },
    )
    return LangIDReport(
        output=output,
        sidecar=str(side),
        model_bytes=os.path.getsize(output),
        train_seconds=timer.seconds,
        n_train=_counts(langs[train_idx]),
        n_holdout=_counts(langs[hold_idx]),
        accuracy=accuracy,
        per_language=per_language,
    )
