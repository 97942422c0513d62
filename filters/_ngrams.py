"""Hashed word unigram + bigram features of text batches, vectorised over the Arrow buffers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

_ASCII_SEPARATOR = np.array(
    [not (chr(b).isascii() and chr(b).isalnum()) if b < 0x80 else False for b in range(256)]
)
_LATIN1_PUNCT = np.array([0xA0, 0xAB, 0xBB, 0xB7, 0xBF, 0xA1], np.uint8)
_LANES = np.arange(8)
_BIGRAM = np.uint64(0x9E3779B97F4A7C15)


def mix64(h: np.ndarray, seed: int = 0) -> np.ndarray:
    """splitmix64's finaliser: spreads a 64-bit value's bits (vectorised, wraps mod 2**64)."""
    with np.errstate(over="ignore"):
        h = h.astype(np.uint64, copy=True) + np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def _buffers(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (len n+1, int64, absolute) and the UTF-8 bytes of a string array without nulls."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = text.cast(pa.large_string())
    _, offsets_buf, data_buf = text.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return offsets, data


def hash_spans(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each byte span data[starts[i]:ends[i]], eight bytes at a time."""
    lengths = (ends - starts).astype(np.int64)
    hashes = mix64(lengths.astype(np.uint64), 0x51ED27)
    windows = sliding_window_view(np.concatenate((data, np.zeros(8, np.uint8))), 8)
    todo = np.flatnonzero(lengths > 0)
    chunk = 0
    while len(todo):
        left = lengths[todo] - 8 * chunk
        block = windows[starts[todo] + 8 * chunk]
        block = np.where(_LANES < left[:, None], block, 0).astype(np.uint8)
        hashes[todo] = mix64(hashes[todo] ^ block.view(np.uint64).ravel())
        todo = todo[left > 8]
        chunk += 1
    return hashes


def hash_strings(values: pa.Array, seed: int = 0) -> np.ndarray:
    """A 64-bit hash of each string (or integer) value: stable across runs and batchings."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_integer(values.type):
        return mix64(np.asarray(pc.fill_null(values, 0).to_numpy(), np.int64).view(np.uint64), seed)
    values = pc.fill_null(values.cast(pa.string()), "")
    offsets, data = _buffers(values)
    starts, ends = offsets[:-1], offsets[1:]
    out = np.zeros(len(values), np.uint64)
    nonempty = ends > starts
    out[nonempty] = hash_spans(data, starts[nonempty], ends[nonempty])
    return mix64(out, seed)


def _separators(data: np.ndarray) -> np.ndarray:
    """True for bytes between words: ASCII non-alphanumerics and common Unicode punctuation."""
    sep = _ASCII_SEPARATOR[data]
    # U+2000-U+206F (dashes, quotes, ellipsis: E2 80 xx / E2 81 xx) and NBSP, guillemets (C2 xx).
    e2 = np.flatnonzero((data[:-2] == 0xE2) & ((data[1:-1] == 0x80) | (data[1:-1] == 0x81)))
    for k in range(3):
        sep[e2 + k] = True
    c2 = np.flatnonzero((data[:-1] == 0xC2) & np.isin(data[1:], _LATIN1_PUNCT))
    sep[c2] = sep[c2 + 1] = True
    return sep


def word_hashes(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(row index, 64-bit hash) of every word of every row, in text order; nulls have no words.

    A word is a run of ASCII letters and digits or non-ASCII characters (after lowercasing),
    cut at ASCII punctuation and space and at common Unicode punctuation: classified with a
    byte lookup table rather than a Unicode regex, which is ten times slower.
    """
    # A trailing space per row means no word runs across two rows.
    clean = pc.binary_join_element_wise(pc.utf8_lower(pc.fill_null(text, "")), "", " ")
    offsets, data = _buffers(clean)
    lo, hi = int(offsets[0]), int(offsets[-1])
    is_word = ~_separators(data[lo:hi])
    prev = np.concatenate(([False], is_word[:-1]))
    nxt = np.concatenate((is_word[1:], [False]))
    starts = np.flatnonzero(is_word & ~prev) + lo
    ends = np.flatnonzero(is_word & ~nxt) + lo + 1
    rows = np.searchsorted(offsets, starts, side="right") - 1
    return rows, hash_spans(data, starts, ends)


def ngram_features(text: pa.Array, num_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """(row index, bucket) of every hashed unigram and bigram of every row (DSIR's features)."""
    rows, words = word_hashes(text)
    same_row = rows[1:] == rows[:-1]
    with np.errstate(over="ignore"):
        bigrams = mix64(words[:-1] * _BIGRAM + words[1:])[same_row]
    buckets = np.concatenate((words, bigrams)) % np.uint64(num_buckets)
    return np.concatenate((rows, rows[:-1][same_row])), buckets.astype(np.int64)


def feature_counts(
    text: pa.Array, num_buckets: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Summed feature counts over rows (each row's features weighted by `weights[row]`)."""
    rows, buckets = ngram_features(text, num_buckets)
    w = None if weights is None else np.asarray(weights, np.float64)[rows]
    return np.bincount(buckets, weights=w, minlength=num_buckets).astype(np.float64)


def kl_divergence(p_counts: np.ndarray, q_counts: np.ndarray, alpha: float = 1.0) -> float:
    """KL(p || q) in nats between two feature-count vectors, add-`alpha` smoothed."""
    p = (p_counts + alpha) / (p_counts.sum() + alpha * len(p_counts))
    q = (q_counts + alpha) / (q_counts.sum() + alpha * len(q_counts))
    return float(np.sum(p * (np.log(p) - np.log(q))))
