"""The `decontaminate` filter: drop documents that share normalised word n-grams with eval sets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from curate.filter import Filter, Params, Resources
from curate.models import sha256_path
from curate_filters.dedup.normalize import NormParams, normalize
from curate_filters.dedup.signatures import poly_hash64, shingle_ranges, string_buffers

# Case, punctuation, symbols and every kind of whitespace (line breaks included) fold away.
_NORM = NormParams(lowercase=True, strip_punctuation=True, nfkc=True)
# Bytes of normalised text hashed at once (the prefix sums cost 24 bytes per byte): the
# chunk the MinHash signatures use, so the cached powers fit every chunk.
_CHUNK_BYTES = 1 << 20
# A bitmap over the top bits of the indexed hashes: most n-grams of a clean document miss it
# with one lookup, and only the rest are binary-searched in the index.
_FILTER_BITS = 22


class DecontaminateParams(Params):
    """Parameters of the `decontaminate` step."""

    eval_sets: list[str] = Field(
        description="Evaluation sets as local files: .jsonl/.json (one record a line), .parquet, "
        "or .txt (one item per blank-line-separated paragraph)."
    )
    fields: list[str] | None = Field(
        None,
        description="Record fields holding eval text (JSONL/Parquet); default: every string "
        "field (and lists of strings). Each field is indexed apart: no n-gram spans two.",
    )
    id_field: str | None = Field(
        None, description="Record field naming an item in the ledger; default: its row number."
    )
    ngram: int = Field(13, ge=3, description="Words per n-gram (GPT-3 and Llama use 13).")
    min_overlap: int = Field(
        1, ge=1, description="Drop a document sharing at least this many n-grams with one item."
    )
    min_item_words: int = Field(
        8, ge=1, description="Eval texts with fewer words are not indexed (too generic to match)."
    )

    @field_validator("eval_sets")
    @classmethod
    def _files_exist(cls, paths: list[str]) -> list[str]:
        if not paths:
            raise ValueError("give at least one evaluation set file")
        for path in paths:
            if not Path(path).is_file():
                raise ValueError(f"evaluation set {path} is not a file")
            if _kind(path) is None:
                raise ValueError(f"{path}: use a .jsonl, .json, .parquet or .txt file")
        return [os.path.abspath(p) for p in paths]


def _kind(path: str) -> str | None:
    suffix = Path(path).suffix.lower()
    return {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".txt": "txt"}.get(suffix)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def read_eval_items(path: str, fields: list[str] | None, id_field: str | None):
    """(item name, texts) for every item of one eval file; the name is `file:id` or `file:row`."""
    stem = Path(path).name
    kind = _kind(path)
    if kind == "txt":
        paragraphs = [p for p in Path(path).read_text(encoding="utf-8").split("\n\n") if p.strip()]
        return [(f"{stem}:{i}", [p]) for i, p in enumerate(paragraphs)]
    if kind == "parquet":
        records = pq.read_table(path).to_pylist()
    else:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON record ({exc.msg})") from exc
    items = []
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"{path}: record {row} is not an object")
        keys = fields if fields is not None else list(record)
        texts = [t for k in keys if k != id_field for t in _strings(record.get(k))]
        name = record.get(id_field) if id_field else None
        items.append((f"{stem}:{name if name is not None else row}", texts))
    return items


def ngram_hashes(text: pa.Array, ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """64-bit hashes of the normalised word n-grams of each text, their text index, word counts.

    A text of fewer than `ngram` words gives one hash, of all its words.
    """
    norm = normalize(text, _NORM)
    words = np.asarray(pc.add(pc.count_substring(norm, " "), 1).to_numpy(zero_copy_only=False))
    words = np.where(np.asarray(pc.binary_length(norm)) == 0, 0, words)
    hashes, docs = [], []
    lengths = np.asarray(pc.binary_length(norm).to_numpy(zero_copy_only=False), np.int64)
    start = 0
    while start < len(norm):
        stop = start + 1 + int(np.searchsorted(np.cumsum(lengths[start:]), _CHUNK_BYTES))
        stop = min(stop, len(norm))
        data, offsets = string_buffers(norm.slice(start, stop - start))
        s, e, d = shingle_ranges(data, offsets, ngram, "word")
        hashes.append(poly_hash64(data, s, e) if len(s) else np.zeros(0, np.uint64))
        docs.append(d + start)
        start = stop
    if not hashes:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), words
    return np.concatenate(hashes), np.concatenate(docs), words


class Decontaminate(Filter):
    """Drop documents that share normalised word n-grams with evaluation sets.

    Text and eval items are NFKC-normalised, lowercased, stripped of punctuation and symbols
    and reduced to single spaces, so re-wrapped lines, changed case, punctuation or spacing
    still match. The n-gram index (64-bit hashes, sorted) is built once per worker in `setup`.
    Scores: `matches` (n-grams shared with the best-matching item), `eval_item` (that item,
    `file:id`); rows with `matches >= min_overlap` are dropped.
    """

    Params = DecontaminateParams
    resources = Resources(cpus=1.0, batch_size=2048)

    def references(self, owner: str) -> dict[str, str]:
        """The list files' sha256: a list edited between attempts is a different run."""
        return {path: sha256_path(path) for path in list(self.params.eval_sets)}

    def setup(self) -> None:
        p = self.params
        names: list[str] = []
        texts: list[str] = []
        owner: list[int] = []
        for path in p.eval_sets:
            for name, item_texts in read_eval_items(path, p.fields, p.id_field):
                names.append(name)
                texts += item_texts
                owner += [len(names) - 1] * len(item_texts)
        hashes, text_index, words = ngram_hashes(pa.array(texts, pa.string()), p.ngram)
        indexed = words[text_index] >= p.min_item_words
        hashes, items = hashes[indexed], np.asarray(owner, np.int64)[text_index[indexed]]
        order = np.lexsort([items, hashes])  # per hash, the first item in file order
        hashes, items = hashes[order], items[order]
        first = np.ones(len(hashes), bool)
        first[1:] = hashes[1:] != hashes[:-1]
        self._hashes, self._items = hashes[first], items[first]
        self._filter = np.zeros(1 << _FILTER_BITS, bool)
        self._filter[self._hashes >> np.uint64(64 - _FILTER_BITS)] = True
        self._names = pa.array(names, pa.string())

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        text = self.text(batch)
        text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
        n = len(text)
        matches = np.zeros(n, np.int32)
        best = np.full(n, -1, np.int64)
        hashes, docs, _ = ngram_hashes(pc.cast(text, pa.string()), self.params.ngram)
        if len(self._hashes) and len(hashes):
            maybe = np.flatnonzero(self._filter[hashes >> np.uint64(64 - _FILTER_BITS)])
            hashes, docs = hashes[maybe], docs[maybe]
            pos = np.minimum(np.searchsorted(self._hashes, hashes), len(self._hashes) - 1)
            hit = self._hashes[pos] == hashes
            pairs = np.unique(np.stack([docs[hit], self._items[pos[hit]]]), axis=1)
            if pairs.size:
                pair_docs, pair_items = pairs
                # n-gram positions of a document that hit one item, counted once per n-gram
                counts = _pair_counts(docs[hit], self._items[pos[hit]], hashes[hit])
                order = np.lexsort([pair_items, -counts, pair_docs])
                lead = np.ones(len(order), bool)
                lead[1:] = pair_docs[order][1:] != pair_docs[order][:-1]
                chosen = order[lead]
                matches[pair_docs[chosen]] = counts[chosen]
                best[pair_docs[chosen]] = pair_items[chosen]
        found = best >= 0
        names = self._names.take(pa.array(np.where(found, best, 0), mask=~found))
        return {"matches": pa.array(matches, pa.int32()), "eval_item": names}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pc.less(scores["matches"], self.params.min_overlap)


def _pair_counts(docs: np.ndarray, items: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Distinct n-grams per (doc, item) pair, in the sorted order of `np.unique` over pairs."""
    triples = np.unique(np.stack([docs, items, hashes.view(np.int64)]), axis=1)
    _, counts = np.unique(triples[:2], axis=1, return_counts=True)
    return counts
