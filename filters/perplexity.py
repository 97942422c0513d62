"""The `perplexity` filter (KenLM or Hugging Face causal LM) and training of its KenLM model."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from curate.filter import Filter, ModelPath, Params, Resources
from curate_filters._ccnet_normalize import normalized_lines

BUCKET_NAMES = ("head", "middle", "tail")
REPO_KENLM_BIN = Path(__file__).resolve().parents[1] / "tools" / "bin"


class PerplexityParams(Params):
    """Parameters of the `perplexity` step."""

    backend: Literal["kenlm", "hf"] = Field(
        "kenlm",
        description="kenlm: an n-gram model over CCNet-normalised words (fast, CPU). "
        "hf: a local Hugging Face causal LM folder (torch; GPU if present).",
    )
    model: ModelPath = Field(
        description="kenlm: a .arpa or .binary file (make one with `curate train lm`). "
        "hf: a local folder saved with save_pretrained (model + tokenizer); nothing is downloaded.",
    )
    max_perplexity: float | None = Field(
        None, description="Drop documents whose perplexity is above this value."
    )
    min_perplexity: float | None = Field(
        None,
        description="Drop documents whose perplexity is below this value (repetitive boilerplate).",
    )
    keep: list[Literal["head", "middle", "tail"]] | None = Field(
        None,
        description="Keep only documents in these buckets (CCNet: head = lowest perplexity). "
        "Needs bucket_cutoffs or reference.",
    )
    buckets: list[float] = Field(
        [30.0, 60.0],
        description="Two percentile cut points (0-100) that split documents into head / middle / "
        "tail, as CCNet does with [30, 60]; used with reference.",
    )
    bucket_cutoffs: list[float] | None = Field(
        None,
        description="Two perplexity values: head is ppl < first, middle is first <= ppl < second, "
        "tail is ppl >= second. Give these, or a reference file to compute them from.",
    )
    reference: ModelPath | None = Field(
        None,
        description="A Parquet file (column `text`) or a .txt file (one document per line) of "
        "in-domain text, scored once in setup: the `buckets` percentiles of its perplexities "
        "become the bucket cutoffs.",
    )
    strip_accents: bool = Field(
        True,
        description="kenlm: remove diacritics when normalising (must match how the model was "
        "trained; `curate train lm` strips them unless --keep-accents).",
    )
    max_tokens: int = Field(
        1024,
        ge=2,
        description="hf: documents are truncated to this many tokens (BOS included); the "
        "default is capped at the model's positions, a value set above them is refused.",
    )
    batch_size: int = Field(16, ge=1, description="hf: documents per forward pass.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="hf: where the model runs; auto picks cuda when available."
    )

    @model_validator(mode="after")
    def _check_buckets(self) -> PerplexityParams:
        if len(self.buckets) != 2 or not 0 < self.buckets[0] < self.buckets[1] < 100:
            raise ValueError("buckets must be two increasing percentiles between 0 and 100")
        if self.bucket_cutoffs is not None and self.reference is not None:
            raise ValueError("give bucket_cutoffs or reference, not both")
        cut = self.bucket_cutoffs
        if cut is not None and (len(cut) != 2 or not cut[0] <= cut[1]):
            raise ValueError("bucket_cutoffs must be two non-decreasing perplexity values")
        if self.keep is not None and cut is None and self.reference is None:
            raise ValueError("keep needs bucket_cutoffs or reference to define the buckets")
        return self


class Perplexity(Filter):
    """Scores each document's perplexity under a language model; drops by threshold or bucket.

    Score columns: `perplexity` (float64) and, when buckets are defined (bucket_cutoffs or
    reference), `bucket` (string: head / middle / tail). A document with nothing to score (its
    text normalises to nothing) has perplexity NaN and bucket null; `keep` drops it whenever the
    step has a condition (a threshold or a bucket list) and keeps it otherwise.
    """

    Params: ClassVar[type[PerplexityParams]] = PerplexityParams
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=4096)
    # `curate calibrate` and `curate inspect`: keep is `perplexity <= max_perplexity`.
    calibration: ClassVar[dict] = {
        "score": "perplexity",
        "param": "max_perplexity",
        "direction": "max",
    }
    threshold_params: ClassVar[tuple[str, ...]] = ("min_perplexity", "keep")

    def __init__(self, params: PerplexityParams | None = None, text_column: str = "text") -> None:
        super().__init__(params, text_column)
        self._backend = None
        self._cutoffs: list[float] | None = None

    def __getstate__(self) -> dict:
        # Loaded models do not travel: each worker calls setup() itself.
        return {**self.__dict__, "_backend": None}

    @property
    def bucketing(self) -> bool:
        """True when the step writes a `bucket` column."""
        return self.params.bucket_cutoffs is not None or self.params.reference is not None

    @property
    def cutoffs(self) -> list[float] | None:
        """The perplexity values that separate head / middle / tail (known after setup)."""
        return self._cutoffs

    def setup(self) -> None:
        from curate_filters._lm_backends import HFBackend, KenLMBackend

        p = self.params
        if p.backend == "kenlm":
            self._backend = KenLMBackend(p.model, strip_accents=p.strip_accents)
        else:
            # Only a max_tokens the user wrote is held to: the default yields to a small model.
            asked = "max_tokens" in p.model_fields_set
            self._backend = HFBackend(p.model, p.device, p.max_tokens, p.batch_size, cap=not asked)
        if p.bucket_cutoffs is not None:
            self._cutoffs = list(p.bucket_cutoffs)
        elif p.reference is not None:
            ppl = self._backend.perplexity(read_reference(p.reference))
            if np.isnan(ppl).all():
                raise ValueError(f"reference {p.reference!r} has no document to score")
            self._cutoffs = np.nanpercentile(ppl, p.buckets).tolist()

    def perplexity(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Perplexity of each text (float64, NaN where undefined); needs setup()."""
        if self._backend is None:
            self.setup()
        return self._backend.perplexity(texts)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        ppl = self.perplexity(self.text(batch))
        scores = {"perplexity": pa.array(ppl, pa.float64())}
        if self.bucketing:
            scores["bucket"] = assign_buckets(ppl, self._cutoffs)
        return scores

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        p = self.params
        ppl = scores["perplexity"]
        keep = pa.array(np.ones(len(ppl), dtype=bool))
        conditions = [p.max_perplexity, p.min_perplexity, p.keep]
        if all(c is None for c in conditions):
            return keep
        # NaN compares false, so comparisons drop undefined perplexities; so does is_in on null.
        keep = pc.and_(keep, pc.invert(pc.is_nan(ppl)))
        if p.max_perplexity is not None:
            keep = pc.and_(keep, pc.less_equal(ppl, p.max_perplexity))
        if p.min_perplexity is not None:
            keep = pc.and_(keep, pc.greater_equal(ppl, p.min_perplexity))
        if p.keep is not None:
            keep = pc.and_(keep, pc.is_in(scores["bucket"], pa.array(p.keep)))
        return pc.fill_null(keep, False)


def assign_buckets(ppl: np.ndarray, cutoffs: Sequence[float]) -> pa.Array:
    """head / middle / tail by perplexity cut values (lower is head); null where ppl is NaN."""
    index = np.searchsorted(np.asarray(cutoffs, np.float64), ppl, side="right")
    names = pa.array(BUCKET_NAMES)
    buckets = names.take(pa.array(np.minimum(index, 2)))
    return pc.if_else(pa.array(np.isnan(ppl)), pa.scalar(None, pa.string()), buckets)


def read_reference(path: str, text_column: str = "text") -> pa.ChunkedArray:
    """The documents of a reference file: Parquet (column `text`) or text, one document a line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"reference file {path!r} does not exist")
    if p.suffix == ".parquet":
        schema = pq.read_schema(p)
        if text_column not in schema.names:
            raise ValueError(f"reference {path!r} has no column {text_column!r}")
        return pq.read_table(p, columns=[text_column]).column(text_column)
    lines = p.read_text(encoding="utf-8").splitlines()
    return pa.chunked_array([pa.array([line for line in lines if line.strip()], pa.string())])


# ---------------------------------------------------------------------------------------------
# Training a KenLM model (`curate train lm`)


class KenLMNotFound(RuntimeError):
    """lmplz / build_binary are not installed where curate looks for them."""


def find_kenlm_bin(tool: str, kenlm_bin: str | None = None) -> str:
    """Path of a KenLM program: --kenlm-bin, then $CURATE_KENLM_BIN, then PATH, then tools/bin."""
    candidates = [kenlm_bin, os.environ.get("CURATE_KENLM_BIN")]
    for folder in candidates:
        if folder and (Path(folder) / tool).is_file():
            return str(Path(folder) / tool)
    on_path = shutil.which(tool)
    if on_path:
        return on_path
    if (REPO_KENLM_BIN / tool).is_file():
        return str(REPO_KENLM_BIN / tool)
    looked = [c for c in candidates if c] + ["PATH", str(REPO_KENLM_BIN)]
    raise KenLMNotFound(
        f"KenLM's {tool} was not found (looked in: {', '.join(looked)}). Build it with "
        "`bash scripts/build_kenlm.sh` (installs into tools/bin/), or point --kenlm-bin or "
        "CURATE_KENLM_BIN at a folder holding lmplz and build_binary."
    )


@dataclass
class CorpusStats:
    """What went into a training corpus."""

    documents: int = 0
    lines: int = 0
    words: int = 0


def parse_where(where: Sequence[str] | None) -> dict[str, list[str]]:
    """['source=wikipedia_en,wiki_fr'] -> {'source': ['wikipedia_en', 'wiki_fr']}."""
    out: dict[str, list[str]] = {}
    for item in where or ():
        column, sep, values = item.partition("=")
        if not sep or not column or not values:
            raise ValueError(f"--where {item!r} is not COLUMN=VALUE[,VALUE...]")
        out.setdefault(column.strip(), []).extend(v.strip() for v in values.split(","))
    return out


def write_training_corpus(
    inputs: Sequence[str],
    out_path: str | Path,
    text_column: str = "text",
    strip_accents: bool = True,
    where: dict[str, list[str]] | None = None,
) -> CorpusStats:
    """Write one normalised line per input line (the normalisation scoring uses) to `out_path`.

    `inputs` are Parquet/JSONL files, folders or globs; `where` keeps only rows whose column
    holds one of the given values.
    """
    from curate.io import discover, plan_units, read_unit

    stats = CorpusStats()
    units = plan_units(discover(list(inputs)), unit_rows=1 << 62)
    with open(out_path, "w", encoding="utf-8") as out:
        for unit in units:
            for batch in read_unit(unit, batch_size=8192):
                for column in [text_column, *(where or {})]:
                    if column not in batch.schema.names:
                        raise ValueError(
                            f"{unit.describe()}: no column {column!r} "
                            f"(columns: {', '.join(batch.schema.names)})"
                        )
                for column, values in (where or {}).items():
                    mask = pc.is_in(batch.column(column).cast(pa.string()), pa.array(values))
                    batch = batch.filter(pc.fill_null(mask, False))
                lines, _ = normalized_lines(batch.column(text_column), strip_accents)
                stats.documents += batch.num_rows
                stats.lines += len(lines)
                stats.words += len(lines) + int(pc.sum(pc.count_substring(lines, " ")).as_py() or 0)
                if len(lines):
                    out.write("\n".join(lines.to_pylist()))
                    out.write("\n")
    return stats


def parse_prune(prune: str | None, order: int) -> list[int]:
    """'0 0 1' or '0,0,1' -> [0, 0, 1]; lmplz needs non-decreasing counts with unigrams at 0."""
    if not prune:
        return []
    values = [int(v) for v in prune.replace(",", " ").split()]
    if len(values) > order:
        raise ValueError(f"--prune has {len(values)} values but the order is {order}")
    if values[0] != 0 or values != sorted(values):
        raise ValueError("--prune values must be non-decreasing and start with 0 (unigrams)")
    return values


def train_kenlm(
    inputs: Sequence[str],
    output: str | Path,
    order: int = 5,
    text_column: str = "text",
    prune: Sequence[int] = (),
    memory: str = "20%",
    kenlm_bin: str | None = None,
    strip_accents: bool = True,
    structure: Literal["probing", "trie"] = "probing",
    quantize: int | None = None,
    where: dict[str, list[str]] | None = None,
) -> CorpusStats:
    """Train an order-`order` KenLM model on the text column of Parquet files.

    Writes an ARPA file when `output` ends in .arpa, else a KenLM binary (probing hash tables,
    or a trie, optionally with `quantize`-bit probabilities and backoffs: smaller, a bit slower).
    """
    lmplz = find_kenlm_bin("lmplz", kenlm_bin)
    build_binary = find_kenlm_bin("build_binary", kenlm_bin)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="curate-lm-") as tmp:
        corpus = Path(tmp) / "corpus.txt"
        stats = write_training_corpus(inputs, corpus, text_column, strip_accents, where)
        if stats.lines == 0:
            raise ValueError(f"no text to train on in column {text_column!r} of the inputs")
        arpa = output if output.suffix == ".arpa" else Path(tmp) / "model.arpa"
        cmd = [lmplz, "-o", str(order), "-S", memory, "-T", tmp, "--discount_fallback"]
        if prune:
            cmd += ["--prune", *map(str, prune)]
        with open(corpus, "rb") as src, open(arpa, "wb") as dst:
            _run(cmd, stdin=src, stdout=dst)
        if output.suffix != ".arpa":
            cmd = [build_binary, "-S", memory, "-T", tmp]
            if structure == "trie" and quantize:
                cmd += ["-q", str(quantize), "-b", str(quantize)]
            _run([*cmd, structure, str(arpa), str(output)])
    return stats


def _run(cmd: list[str], **kwargs) -> None:
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, check=False, **kwargs)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-15:]
        raise RuntimeError(
            f"{Path(cmd[0]).name} failed (exit {proc.returncode}):\n" + "\n".join(tail)
        )
