"""Document perplexity from a KenLM n-gram model or a small Hugging Face causal LM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate_filters._ccnet_normalize import normalized_lines

TORCH_HINT = "pip install 'curate[torch]'"
KENLM_HINT = "pip install 'curate[kenlm]'"


def doc_perplexity(
    line_log10: np.ndarray, line_lengths: np.ndarray, doc_index: np.ndarray, n_docs: int
) -> np.ndarray:
    """CCNet's length-weighted document perplexity: 10 ** (-sum log10 p / sum tokens).

    A line of n words counts n + 1 tokens (its end-of-sentence). Documents with no scored line
    get NaN: their perplexity is undefined.
    """
    log_score = np.bincount(doc_index, weights=line_log10, minlength=n_docs)
    length = np.bincount(doc_index, weights=line_lengths, minlength=n_docs)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(length > 0, 10.0 ** (-log_score / length), np.nan)


class KenLMBackend:
    """Scores normalised lines with `kenlm.Model.score` (bos and eos) and aggregates per document.

    Text is normalised CCNet-style, then split on whitespace: unlike CCNet we ship no
    SentencePiece model, so the n-gram model's tokens are the normalised words.
    """

    def __init__(self, model_path: str, strip_accents: bool = True) -> None:
        try:
            import kenlm
        except ImportError as exc:
            raise ImportError(f"The kenlm perplexity backend needs kenlm: {KENLM_HINT}") from exc
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"KenLM model {model_path!r} does not exist or is not a file")
        self.model = kenlm.Model(model_path)
        self.strip_accents = strip_accents

    def perplexity(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Perplexity of each document (float64; NaN when no word survives normalisation)."""
        lines, doc_index = normalized_lines(texts, strip_accents=self.strip_accents)
        # One C call per line; bos/eos default to True. Lines are single-spaced and trimmed, so
        # words = spaces + 1, and the +1 for the end-of-sentence token gives spaces + 2.
        log10 = np.fromiter(map(self.model.score, lines.to_pylist()), np.float64, len(lines))
        return doc_perplexity(log10, count_spaces(lines) + 2.0, doc_index, len(texts))


def count_spaces(lines: pa.Array) -> np.ndarray:
    """Spaces in each string, from the raw UTF-8 buffer (faster than pc.count_substring)."""
    lines = lines.cast(pa.large_string())
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[lines.offset : lines.offset + len(lines) + 1]
    if data_buf is None or len(lines) == 0:
        return np.zeros(len(lines), np.int64)
    spaces = np.flatnonzero(np.frombuffer(data_buf, np.uint8) == 0x20)
    return np.diff(np.searchsorted(spaces, offsets))


def _import_torch():
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ImportError(
            f"The hf perplexity backend needs torch and transformers: {TORCH_HINT}"
        ) from exc
    return torch, transformers


class HFBackend:
    """Token-weighted perplexity exp(mean NLL) from a local causal LM, batched by length."""

    def __init__(
        self,
        model_path: str,
        device: str = "auto",
        max_tokens: int = 1024,
        batch_size: int = 16,
        cap: bool = False,
    ) -> None:
        """`cap`: a `max_tokens` beyond the model's positions becomes them (else: refused)."""
        torch, transformers = _import_torch()
        if not Path(model_path).is_dir():
            raise FileNotFoundError(
                f"Hugging Face model folder {model_path!r} does not exist (the hf backend loads "
                "a local folder saved with save_pretrained; nothing is downloaded)"
            )
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device: cuda was asked for but torch sees no CUDA device")
        self.torch = torch
        self.device = torch.device(device)
        use_bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            model_path, local_files_only=True
        )
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            model_path,
            local_files_only=True,
            dtype=torch.bfloat16 if use_bf16 else torch.float32,
        ).to(self.device)
        self.model.eval()
        positions = model_positions(self.model.config)
        if positions is not None and max_tokens > positions and cap:
            max_tokens = positions
        if positions is not None and max_tokens > positions:
            # Past its positions a model indexes out of its embedding table (a bare IndexError
            # in the middle of a unit): refuse at setup, with the number to use.
            raise ValueError(
                f"params.max_tokens {max_tokens} is more than the {positions} positions model "
                f"{model_path!r} has: set max_tokens to {positions} or less"
            )
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        # A leading BOS lets the model score the document's first token too.
        self.bos = self.tokenizer.bos_token_id
        pad = self.tokenizer.pad_token_id
        self.pad = pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    def _encode(self, texts: list[str]) -> list[list[int]]:
        budget = self.max_tokens - (self.bos is not None)
        ids = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=budget)[
            "input_ids"
        ]
        if self.bos is not None:
            ids = [[self.bos, *row] for row in ids]
        return ids

    def perplexity(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Perplexity of each document (float64; NaN when it has no token to predict)."""
        torch = self.torch
        values = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        if len(values) == 0:
            return np.zeros(0, np.float64)
        ids = self._encode(pc.fill_null(values, "").to_pylist())
        lengths = np.fromiter(map(len, ids), np.int64, len(ids))
        nll = np.zeros(len(ids))
        count = np.maximum(lengths - 1, 0).astype(np.float64)
        # Longest first, so each padded batch holds documents of similar length.
        order = np.argsort(-lengths, kind="stable")
        order = order[lengths[order] >= 2]
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = int(lengths[rows[0]])
                batch = torch.full((len(rows), width), self.pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for j, row in enumerate(rows):
                    batch[j, : lengths[row]] = torch.tensor(ids[row])
                    mask[j, : lengths[row]] = 1
                logits = self.model(
                    input_ids=batch.to(self.device), attention_mask=mask.to(self.device)
                ).logits
                for j, row in enumerate(rows):
                    n = int(lengths[row])
                    # Float32 log-softmax per row: exact enough, and memory stays n x vocab.
                    nll[row] = torch.nn.functional.cross_entropy(
                        logits[j, : n - 1].float(),
                        batch[j, 1:n].to(self.device),
                        reduction="sum",
                    ).item()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(count > 0, np.exp(nll / count), np.nan)


def model_positions(config: Any) -> int | None:
    """The most tokens a causal LM's position embeddings cover, as its config names them."""
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
