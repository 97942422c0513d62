"""The `tokens` step: tokens per document, from a local tokenizers JSON or a regex estimate."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.filter import Filter, ModelPath, Params, Resources

# GPT-style pre-tokenisation: letter runs, digit runs, punctuation runs (each ~ one token or more).
REGEX_PATTERN = r"\pL+|\pN+|[^\s\pL\pN]+"
WHITESPACE_PATTERN = r"\S+"


def load_tokenizer(path: str):
    """A Hugging Face `tokenizers` Tokenizer from a local JSON file, with an actionable error."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the tokens step needs the tokenizers library: pip install 'curate[tokens]'"
        ) from exc
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:
        raise ValueError(f"{path} is not a tokenizers JSON file ({exc})") from exc


def count_tokens(tokenizer, texts: list[str], add_special_tokens: bool = False) -> np.ndarray:
    """Tokens per text with one batched call (no offsets computed: `encode_batch_fast`)."""
    encodings = tokenizer.encode_batch_fast(texts, add_special_tokens=add_special_tokens)
    return np.fromiter((len(e) for e in encodings), np.int64, len(encodings))


class Tokens(Filter):
    """Counts tokens per document (annotate only: it never drops a row).

    With `tokenizer` it runs that Hugging Face `tokenizers` JSON over each batch in one
    `encode_batch_fast` call; without, it estimates from regex matches times `scale`. The
    funnel, stats.json and `curate select` read the count column `<id>_count`.
    """

    class Params(Params):
        tokenizer: ModelPath | None = Field(
            None,
            description="A tokenizers JSON file (e.g. from `curate train tokenizer`); "
            "unset: estimate with `estimator`.",
        )
        estimator: Literal["regex", "whitespace"] = Field(
            "regex",
            description="Without a tokenizer: count letter/digit/punctuation runs (regex) or "
            "whitespace-separated words.",
        )
        scale: float = Field(
            1.0, gt=0, description="Estimated tokens per estimator match (e.g. 1.3 for words)."
        )
        add_special_tokens: bool = Field(False, description="Count the tokenizer's BOS/EOS too.")

    resources: ClassVar[Resources] = Resources(cpus=1.0)
    metric: ClassVar[str] = "count"

    def setup(self) -> None:
        self._tokenizer = (
            load_tokenizer(self.params.tokenizer) if self.params.tokenizer is not None else None
        )

    def token_columns(self, sid: str) -> list[str]:
        return [f"{sid}_{self.metric}"]

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        text = pc.fill_null(self.text(batch), "")
        if getattr(self, "_tokenizer", None) is not None:
            counts = count_tokens(self._tokenizer, text.to_pylist(), self.params.add_special_tokens)
            return {self.metric: pa.array(counts, pa.int64())}
        if self.params.tokenizer is not None:
            raise RuntimeError("the tokens step was not set up (its tokenizer is not loaded)")
        pattern = REGEX_PATTERN if self.params.estimator == "regex" else WHITESPACE_PATTERN
        matches = pc.count_substring_regex(text, pattern)
        if isinstance(matches, pa.ChunkedArray):
            matches = matches.combine_chunks()
        counts = matches.to_numpy(zero_copy_only=False).astype(np.int64)
        if self.params.scale != 1.0:
            counts = np.rint(counts * self.params.scale).astype(np.int64)
        return {self.metric: pa.array(counts, pa.int64())}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pa.array(np.ones(len(scores[self.metric]), bool))
