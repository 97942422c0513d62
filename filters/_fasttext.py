"""fastText plumbing shared by the quality and language-id steps: the one module importing fasttext.

It owns the text normaliser (the same code path for training and scoring), model loading with
errors a user can act on, batch prediction, reading training text, and training + quantizing.
Every model curate trains gets a sidecar `<model>.json` recording how its text was normalised,
its labels and its sha256, so scoring can refuse settings that contradict training.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

LABEL_PREFIX = "__label__"
SIDECAR_FORMAT = "curate-fasttext/1"
# fastText splits tokens on ASCII whitespace and NUL itself but ends a line at "\n", so only
# newlines must go in ASCII rows. Rows with other characters are re-joined on Unicode
# whitespace too, so that "word\u00a0word" is two tokens.
_INPUT_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")


class FastTextError(ValueError):
    """A problem with a fastText model, its sidecar or its training data, worded for the user."""


def _fasttext():
    try:
        import fasttext
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise FastTextError(
            "the fastText steps need the fasttext library: pip install 'curate[fasttext]'"
        ) from e
    return fasttext


# --------------------------------------------------------------------------- normaliser


@dataclass(frozen=True)
class Normaliser:
    """Turns documents into the single lines fastText reads; training and scoring share it.

    `max_chars` truncates first (bounding the cost of long documents), then newlines (which end
    a fastText line) and Unicode space separators become spaces, then the text is optionally
    lowercased. Other ASCII whitespace stays: fastText already splits tokens on it.
    """

    lowercase: bool = False
    max_chars: int | None = None

    def __call__(self, text: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Normalise a string array; nulls become empty strings."""
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks() if text.num_chunks else pa.array([], text.type)
        text = pc.fill_null(text, "")
        # Byte length bounds character length: skip the slice when no row can be too long.
        if self.max_chars and len(text) and pc.max(pc.binary_length(text)).as_py() > self.max_chars:
            text = pc.utf8_slice_codeunits(text, 0, self.max_chars)
        unicode_rows = pc.invert(pc.string_is_ascii(text))
        text = pc.replace_substring(text, "\n", " ")
        if self.lowercase:
            text = pc.ascii_lower(text)
        if pc.any(unicode_rows).as_py():
            other = pc.binary_join(pc.utf8_split_whitespace(text.filter(unicode_rows)), " ")
            if self.lowercase:
                other = pc.utf8_lower(other)
            text = pc.replace_with_mask(text, unicode_rows, other)
        return text

    def lines(self, text: pa.Array | pa.ChunkedArray) -> list[str]:
        """Normalised texts, each ending in the newline fastText counts as an end-of-line token."""
        return pc.binary_join_element_wise(self(text), "\n", "").to_pylist()

    def to_dict(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase, "max_chars": self.max_chars}


# --------------------------------------------------------------------------- model loading


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """Where the settings a model was trained with are recorded: `<model>.json`."""
    return Path(f"{model_path}.json")


def strip_label(label: str) -> str:
    """`__label__hq` -> `hq`; a bare name is returned unchanged."""
    return label[len(LABEL_PREFIX) :] if label.startswith(LABEL_PREFIX) else label


@dataclass
class LoadedModel:
    """A loaded fastText model with its bare label names, file hash and sidecar metadata."""

    path: str
    model: Any
    labels: list[str]
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)

    def normaliser(self, lowercase: bool | None, max_chars: int | None) -> Normaliser:
        """The normaliser for scoring: explicit settings, else those recorded at training.

        A lowercase setting that contradicts training is an error: the model never saw that text.
        With no sidecar, lowercase defaults to whether the model's vocabulary is all lowercase.
        `max_chars` may differ (it only bounds how much of each document is read).
        """
        trained = self.meta.get("normaliser", {})
        if lowercase is None:
            # Without a sidecar, a vocabulary with no uppercase word means lowercased training.
            lowercase = bool(trained.get("lowercase", not self._cased_vocabulary()))
        elif "lowercase" in trained and bool(trained["lowercase"]) != lowercase:
            raise FastTextError(
                f"lowercase={lowercase} contradicts how {self.path} was trained "
                f"(lowercase={trained['lowercase']} in {sidecar_path(self.path)}); "
                "drop the lowercase param or set it to the trained value"
            )
        if max_chars is None:
            max_chars = trained.get("max_chars")
        return Normaliser(lowercase=lowercase, max_chars=max_chars)

    def _cased_vocabulary(self) -> bool:
        return any(word != word.lower() for word in self.model.get_words())

    def require_label(self, label: str) -> str:
        """The bare label, or an error listing the labels the model has."""
        bare = strip_label(label)
        if bare not in self.labels:
            raise FastTextError(
                f"{self.path} has no label {bare!r}; its labels are: {', '.join(self.labels)}"
            )
        return bare


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Load a supervised fastText model, checking it against its sidecar when there is one.

    Raises FastTextError (a ValueError) naming the file when it is missing, is not a fastText
    model, is not supervised, or no longer matches the sha256 its sidecar recorded.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FastTextError(f"fastText model file not found: {path}")
    digest = sha256_file(path)
    meta: dict[str, Any] = {}
    side = sidecar_path(path)
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except ValueError as e:
            raise FastTextError(f"{side} is not valid JSON ({e}); retrain or delete it") from e
        if meta.get("sha256") and meta["sha256"] != digest:
            # fastText itself loads truncated files without complaint; the hash catches them.
            raise FastTextError(
                f"{path} does not match its sidecar {side} (sha256 {digest[:12]}... vs "
                f"{meta['sha256'][:12]}...): the model is corrupt or was replaced; "
                "retrain it, or delete the sidecar if the replacement is intended"
            )
    ft = _fasttext()
    try:
        model = ft.load_model(path)
    except ValueError as e:
        raise FastTextError(f"{path} is not a readable fastText model ({e})") from e
    labels = [strip_label(lb) for lb in model.get_labels()]
    if not labels:
        raise FastTextError(f"{path} is a fastText word-vector model, not a classifier")
    return LoadedModel(path=path, model=model, labels=labels, sha256=digest, meta=meta)


def predict(model: Any, lines: list[str], k: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """One library call over a whole batch of normalised lines.

    Returns (labels, probs): arrays of shape (n, k) (k = all labels when -1), labels as fastText
    names them (`__label__hq`) and sorted by falling probability per row; rows fastText returned
    fewer labels for are padded with "" and probability 0.
    """
    if not lines:
        width = len(model.get_labels()) if k < 0 else k
        return np.empty((0, width), dtype=object), np.empty((0, width), dtype=np.float32)
    labels, probs = model.f.multilinePredict(lines, k, 0.0, "replace")
    try:
        return np.array(labels, dtype=object), np.array(probs, dtype=np.float32)
    except ValueError:
        # Ragged: a line with no known token and no end-of-line token gets no prediction.
        width = max(len(row) for row in labels)
        lab = np.full((len(lines), width), "", dtype=object)
        prob = np.zeros((len(lines), width), dtype=np.float32)
        for i, (row_l, row_p) in enumerate(zip(labels, probs, strict=True)):
            lab[i, : len(row_l)] = row_l
            prob[i, : len(row_p)] = row_p
        return lab, prob


# --------------------------------------------------------------------------- training input


def expand_paths(specs: list[str]) -> list[str]:
    """Files named by paths, globs and folders (Parquet / JSONL inside), in a stable order."""
    out: list[str] = []
    for spec in specs:
        if os.path.isdir(spec):
            found = sorted(
                str(p) for p in Path(spec).rglob("*") if p.name.endswith(_INPUT_SUFFIXES)
            )
        elif glob.has_magic(spec):
            found = sorted(glob.glob(spec, recursive=True))
        else:
            if not os.path.isfile(spec):
                raise FastTextError(f"input file not found: {spec}")
            found = [spec]
        if not found:
            raise FastTextError(f"no Parquet or JSONL files match {spec}")
        out.extend(found)
    return out


def _read_one(path: str, columns: list[str]) -> pa.Table:
    if path.endswith(".parquet"):
        try:
            names = pq.read_schema(path).names
        except (OSError, pa.ArrowException) as e:
            raise FastTextError(f"cannot read {path} as Parquet ({e})") from e
        missing = [c for c in columns if c not in names]
        if missing:
            raise FastTextError(
                f"{path} has no column {missing[0]!r}; its columns are: {', '.join(names)}"
            )
        return pq.read_table(path, columns=columns)
    if path.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")):
        try:
            with pa.input_stream(path, compression="detect") as stream:
                table = pajson.read_json(stream)
        except (OSError, pa.ArrowException) as e:
            raise FastTextError(f"cannot read {path} as JSON lines ({e})") from e
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise FastTextError(
                f"{path} has no field {missing[0]!r}; its fields are: "
                f"{', '.join(table.column_names)}"
            )
        return table.select(columns)
    raise FastTextError(f"{path}: training input must be Parquet or JSONL(.gz)")


def parse_where(specs: list[str] | None) -> dict[str, list[str]]:
    """`["source=wikipedia_en,gutenberg"]` -> `{"source": ["wikipedia_en", "gutenberg"]}`."""
    out: dict[str, list[str]] = {}
    for spec in specs or []:
        column, sep, values = spec.partition("=")
        if not sep or not column or not values:
            raise FastTextError(f"row filter {spec!r} must look like COLUMN=VALUE[,VALUE...]")
        out.setdefault(column.strip(), []).extend(v.strip() for v in values.split(","))
    return out


def read_text(
    specs: list[str],
    text_column: str,
    extra_columns: tuple[str, ...] = (),
    where: dict[str, list[str]] | None = None,
    what: str = "input",
) -> pa.Table:
    """Read `text_column` (+ extras) from Parquet/JSONL inputs, keeping rows matching `where`.

    Null and whitespace-only texts are dropped, as the runner does. An empty result is an error
    that names the inputs and the filter.
    """
    where = where or {}
    columns = list(dict.fromkeys([text_column, *extra_columns, *where]))
    tables = []
    for path in expand_paths(specs):
        table = _read_one(path, columns)
        for column, values in where.items():
            col = pc.cast(table.column(column), pa.string())
            table = table.filter(pc.is_in(col, value_set=pa.array(values, pa.string())))
        tables.append(table.select([text_column, *extra_columns]))
    table = pa.concat_tables(tables, promote_options="permissive")
    text = pc.cast(table.column(text_column), pa.string())
    ok = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(pc.fill_null(text, ""))), 0)
    table = table.set_column(0, text_column, text).filter(ok)
    if table.num_rows == 0:
        cond = f" where {where}" if where else ""
        raise FastTextError(f"no {what} text in column {text_column!r} of {specs}{cond}")
    return table


# --------------------------------------------------------------------------- training


@dataclass
class TrainSettings:
    """fastText hyper-parameters curate exposes.

    Sampling, splits, file order and fastText's own initialisation follow `seed`, so with
    threads=1 the same data and settings give a byte-identical model file. More threads train
    faster but never reproducibly: fastText's threads update shared weights without locks.
    """

    epoch: int = 10
    dim: int = 32
    lr: float = 0.1
    word_ngrams: int = 2
    min_count: int = 1
    minn: int = 0
    maxn: int = 0
    bucket: int = 200_000
    seed: int = 0
    threads: int = 1
    quantize: bool = False
    cutoff: int = 20_000

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def split_holdout(
    n: int, holdout: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train / held-out row indices; at least one held-out row when holdout > 0."""
    order = rng.permutation(n)
    n_hold = int(round(n * holdout))
    if holdout > 0:
        n_hold = min(max(n_hold, 1), n - 1)
    return order[n_hold:], order[:n_hold]


def fit(
    lines: list[str], labels: list[str] | np.ndarray, output: str, settings: TrainSettings
) -> Any:
    """Train a supervised model on normalised lines, quantize it if asked, and save it.

    The training rows are shuffled with the seed first: fastText's SGD reads the file in order,
    and class-sorted input trains a much worse model.
    """
    ft = _fasttext()
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(lines))
    with tempfile.TemporaryDirectory(prefix="curate-fasttext-") as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8") as f:
            for i in order:
                f.write(f"{LABEL_PREFIX}{labels[i]} {lines[i]}")
        try:
            model = _train_once(ft, train_file, settings)
        except RuntimeError as e:
            if "NaN" not in str(e):
                raise
            # Training is deterministic: the same settings diverge again, so say what to change.
            raise FastTextError(
                f"fastText training diverged (NaN) with lr={settings.lr}: lower --lr"
            ) from e
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    model.save_model(output)
    return model


def _train_once(ft: Any, train_file: str, settings: TrainSettings) -> Any:
    model = ft.train_supervised(
        input=train_file,
        epoch=settings.epoch,
        dim=settings.dim,
        lr=settings.lr,
        wordNgrams=settings.word_ngrams,
        minCount=settings.min_count,
        minn=settings.minn,
        maxn=settings.maxn,
        bucket=settings.bucket,
        seed=settings.seed,
        thread=settings.threads,
        verbose=0,
    )
    if settings.quantize:
        # Retraining after pruning to `cutoff` rows recovers most of the lost accuracy.
        model.quantize(
            input=train_file,
            qnorm=True,
            retrain=True,
            cutoff=settings.cutoff,
            thread=settings.threads,
            verbose=0,
        )
    return model


def write_sidecar(output: str, meta: dict[str, Any]) -> Path:
    """Record training settings, labels and the model's sha256 in `<model>.json`."""
    side = sidecar_path(output)
    full = {"format": SIDECAR_FORMAT, "sha256": sha256_file(output), **meta}
    side.write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return side


class Timer:
    """Wall-clock seconds of a `with` block."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
