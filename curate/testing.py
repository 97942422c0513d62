"""The plugin contract as a reusable check: third-party plugin authors call it from their tests."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curate.filter import Filter, GlobalStep
from curate.mapper import Mapper, MapResult, RewritingGlobalStep

CONTRACT_TEXTS = [
    "The quick brown fox jumps over the lazy dog. " * 20,
    "Une phrase en français, avec des accents : été, où, garçon. " * 10,
    "表情符号 🚀🔥 emoji, CJK 漢字かな交じり文, and RTL שלום עולם مرحبا بالعالم " * 5,
    "combining marks: e\u0301 a\u0308 n\u0303; zero width\u200bjoiner; tabs\tand\nnewlines\n",
    "short",
    "   leading and trailing whitespace   ",
    "x" * 5000,
    "# Heading\n\n- bullet one\n- bullet two\n\nA paragraph with numbers 1234 and symbols #@$%.",
]


def _check_scores(name: str, scores: Any, rows: int) -> dict[str, pa.Array]:
    assert isinstance(scores, dict), f"{name}.score must return a dict of arrays"
    out = {}
    for key, values in scores.items():
        arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        assert isinstance(arr, pa.Array), f"{name}.score['{key}'] is {type(values)}, not Arrow"
        assert len(arr) == rows, f"{name}.score['{key}'] has {len(arr)} values for {rows} rows"
        out[key] = arr
    return out


def check_filter_contract(
    cls: type,
    params: dict[str, Any] | None = None,
    texts: list[str] | None = None,
    text_column: str = "text",
    columns: dict[str, list[Any]] | None = None,
) -> None:
    """Assert the contract every step keeps; raises AssertionError naming what broke.

    Picklable before setup; typed scores for an empty batch; one score per row; the same types
    for every batch; deterministic; row-independent (scoring halves equals scoring the whole);
    `keep` returns one boolean per row. `columns` adds input columns (one value per text), for
    steps that read earlier steps' scores.
    """
    name = cls.__name__
    texts = texts or CONTRACT_TEXTS
    step = cls(cls.Params.model_validate(params or {}), text_column=text_column)
    step = pickle.loads(pickle.dumps(step))
    step.setup()
    batch = pa.table(
        {
            text_column: pa.array(texts, pa.string()),
            "id": pa.array([f"doc-{i}" for i in range(len(texts))]),
            **{col: pa.array(values) for col, values in (columns or {}).items()},
        }
    )
    empty = batch.slice(0, 0)
    if isinstance(step, GlobalStep):
        row_ids = pa.array(range(len(texts)), pa.int64())
        sig = step.signature(batch, row_ids, batch["id"])
        assert isinstance(sig, pa.Table), f"{name}.signature must return a pa.Table"
        again = step.signature(batch, row_ids, batch["id"])
        assert sig.equals(again), f"{name}.signature is not deterministic"
        empty_sig = step.signature(empty, row_ids.slice(0, 0), batch["id"].slice(0, 0))
        assert empty_sig.schema == sig.schema, f"{name}.signature schema differs when empty"
        if isinstance(step, RewritingGlobalStep):
            result = step.rewrite(batch, step.empty_decision())
            _check_map_result(name, result, len(texts))
            assert result.text.to_pylist() == texts, f"{name}: an empty decision changed text"
        return
    assert isinstance(step, Filter), f"{name} is neither a Filter nor a GlobalStep"
    if isinstance(step, Mapper):  # first: a broken rewrite would break its scores obscurely
        check_mapper_contract(step, batch)
    empty_scores = _check_scores(name, step.score(empty), 0)
    for key, arr in empty_scores.items():
        assert arr.type != pa.null(), f"{name}.score['{key}'] is untyped for an empty batch"
    scores = _check_scores(name, step.score(batch), len(texts))
    assert set(scores) == set(empty_scores), f"{name}.score returns other columns when empty"
    for key, arr in scores.items():
        assert arr.type == empty_scores[key].type, (
            f"{name}.score['{key}'] is {arr.type} but {empty_scores[key].type} when empty"
        )
    again = _check_scores(name, step.score(batch), len(texts))
    for key in scores:
        assert scores[key].equals(again[key]), f"{name}.score['{key}'] is not deterministic"
    half = len(texts) // 2
    parts = [
        _check_scores(name, step.score(batch.slice(lo, hi - lo)), hi - lo)
        for lo, hi in ((0, half), (half, len(texts)))
    ]
    for key in scores:
        joined = pa.concat_arrays([p[key] for p in parts])
        assert joined.equals(scores[key]), (
            f"{name}.score['{key}'] of a row depends on the other rows of its batch"
        )
    keep = step.keep(scores)
    keep = keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep
    assert pa.types.is_boolean(keep.type) and len(keep) == len(texts), (
        f"{name}.keep must return one boolean per row"
    )


def _check_map_result(name: str, result: Any, rows: int) -> None:
    assert isinstance(result, MapResult), f"{name}.map must return a curate.mapper.MapResult"
    text = result.text.combine_chunks() if isinstance(result.text, pa.ChunkedArray) else result.text
    assert isinstance(text, pa.Array) and pa.types.is_string(text.type), (
        f"{name}.map text must be a pa.string() array"
    )
    assert len(text) == rows, f"{name}.map returned {len(text)} texts for {rows} rows"
    changes = pa.chunked_array([result.changes]).combine_chunks()
    assert len(changes) == rows and pa.types.is_integer(changes.type), (
        f"{name}.map changes must be one integer per row"
    )
    assert (pc.min(changes).as_py() or 0) >= 0, f"{name}.map changes must not be negative"
    _check_scores(f"{name}.map", result.scores, rows)
    if result.removed is not None:
        assert len(result.removed) == rows, f"{name}.map removed must hold one list per row"


def check_mapper_contract(step: Mapper, batch: pa.Table) -> None:
    """The rewrite part of the contract: one string per row; changes counted; unchanged rows
    report 0 changes; deterministic; row-independent; spans recorded when asked."""
    name = type(step).__name__
    rows = batch.num_rows
    _check_map_result(name, step.map(batch.slice(0, 0)), 0)
    result = step.map(batch)
    _check_map_result(name, result, rows)
    again = step.map(batch)
    assert result.text.equals(again.text), f"{name}.map is not deterministic"
    half = rows // 2
    parts = [step.map(batch.slice(lo, hi - lo)) for lo, hi in ((0, half), (half, rows))]
    joined = pa.concat_arrays([pa.chunked_array([p.text]).combine_chunks() for p in parts])
    assert joined.equals(pa.chunked_array([result.text]).combine_chunks()), (
        f"{name}.map of a row depends on the other rows of its batch"
    )
    same = pc.equal(
        pa.chunked_array([result.text]).combine_chunks(), step.text(batch).combine_chunks()
    )
    changes = pa.chunked_array([result.changes]).combine_chunks()
    unchanged_but_counted = pc.and_(same, pc.greater(changes, 0))
    assert not pc.any(unchanged_but_counted).as_py(), (
        f"{name}.map counts changes in a row whose text it did not change"
    )
    recording = pickle.loads(pickle.dumps(step))
    recording.record_changes = True
    removed = recording.map(batch).removed
    assert removed is not None, f"{name}.map returns no removed spans with record_changes"


def tiny_causal_lm(
    folder: str | Path,
    texts: list[str],
    *,
    n_embd: int = 32,
    n_positions: int = 64,
    max_vocab: int = 8000,
    split_punctuation: bool = True,
) -> str:
    """Save a 2-layer GPT-2 with random weights and a word-level tokenizer built from `texts`.

    For tests and benchmarks of the `perplexity` step's hf backend: nothing is downloaded.
    Needs torch, transformers and tokenizers (`pip install 'curate[torch]'`).
    """
    from collections import Counter

    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    counts = Counter(w for t in texts for w in t.lower().split())
    words = [w for w, _ in counts.most_common(max_vocab)]
    vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = (
        pre_tokenizers.Whitespace() if split_punctuation else pre_tokenizers.WhitespaceSplit()
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<eos>", eos_token="<eos>",
        pad_token="<eos>",
    )  # fmt: skip
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(vocab), n_layer=2, n_embd=n_embd, n_head=2, n_positions=n_positions,
        bos_token_id=1, eos_token_id=1,
    )  # fmt: skip
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
