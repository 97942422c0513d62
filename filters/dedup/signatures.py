"""Vectorised shingling, shingle hashing and MinHash permutations over a whole Arrow batch.

The permutation schemes reproduce datasketch 2.0's `MinHash` bit for bit (default "affine32":
MurmurHash3 fmix32 pre-mix, then `a * h + b mod 2^32`; "legacy": `(a * h + b) mod (2^61 - 1)`
truncated to 32 bits), with `a`, `b` drawn from `np.random.RandomState(seed)` in the same order.
So with `hash="sha1"` a signature equals `datasketch.MinHash(num_perm, seed)` updated with the
same shingles. The default `hash="poly64"` replaces the per-shingle SHA1 call (a Python loop) by a
polynomial hash of each shingle's UTF-8 bytes computed for all shingles at once from prefix sums,
finalised by MurmurHash3 fmix64: a different base hash, the same permutations.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Literal

import numpy as np
import pyarrow as pa
import xxhash

from curate_filters import _kernels

ShingleKind = Literal["word", "char"]
HashName = Literal["poly64", "xxh32", "sha1"]
Scheme = Literal["affine32", "legacy"]

MAX_HASH32 = np.uint32(0xFFFFFFFF)
_MERSENNE = np.uint64((1 << 61) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)
# Odd multiplier of the polynomial byte hash and its inverse mod 2^64 (for sliding windows).
_POLY = 0x9E3779B97F4A7C15
_POLY_INV = pow(_POLY, -1, 1 << 64)
_LEN_MIX = np.uint64(0xC2B2AE3D27D4EB4F)
# Bound on the bytes handled at once: prefix arrays cost 24 bytes per input byte, and at
# 256 KB they stay in a core's L2 cache (a fifth faster than 1 MB slices).
_CHUNK_BYTES = 1 << 18
# Shingles permuted at once: one uint32 (uint64 for legacy) row of this length stays in cache.
_CHUNK_SHINGLES = 1 << 16


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser on a uint32 array (the datasketch affine32 pre-mix)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser on a uint64 array: an avalanching bijection."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def string_buffers(arr: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a string array and its offsets into them (n + 1 int64), zero-copy."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    offsets = offsets.astype(np.int64)
    data_buf = arr.buffers()[2]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    base = offsets[0] if len(offsets) else 0
    return data[base : offsets[-1] if len(offsets) else 0], offsets - base


def _units(data: np.ndarray, offsets: np.ndarray, kind: ShingleKind):
    """Byte ranges and document index of every word (or character) of normalised text."""
    lens = np.diff(offsets)
    if kind == "char":
        starts = np.flatnonzero((data & 0xC0) != 0x80)
        ends = np.append(starts[1:], len(data))
    else:
        # Normalised text has single spaces and no edge spaces: words lie between them.
        spaces = np.flatnonzero(data == 32)
        nonempty = lens > 0
        starts = np.sort(np.concatenate([offsets[:-1][nonempty], spaces + 1]), kind="stable")
        ends = np.sort(np.concatenate([spaces, offsets[1:][nonempty]]), kind="stable")
    # each document's units are contiguous: count them per document rather than search each
    counts = np.diff(np.searchsorted(starts, offsets))
    doc = np.repeat(np.arange(len(lens), dtype=np.int64), counts)
    return starts, ends, doc


def shingle_ranges(
    data: np.ndarray, offsets: np.ndarray, ngram: int, kind: ShingleKind = "word"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Byte ranges `[start, end)` and document index of every shingle, ordered by document.

    A word shingle is `ngram` consecutive words joined by one space; a char shingle `ngram`
    consecutive characters. A document shorter than `ngram` units gives one shingle, itself.
    """
    starts, ends, doc = _units(data, offsets, kind)
    n_docs = len(offsets) - 1
    counts = np.bincount(doc, minlength=n_docs)
    span = ngram - 1
    m = max(len(starts) - span, 0)
    full = doc[:m] == doc[span : span + m]
    s, e, d = starts[:m][full], ends[span : span + m][full], doc[:m][full]
    short = np.flatnonzero((counts > 0) & (counts < ngram))
    if len(short):
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])[short]
        s = np.concatenate([s, starts[first]])
        e = np.concatenate([e, ends[first + counts[short] - 1]])
        d = np.concatenate([d, short])
        order = np.argsort(d, kind="stable")
        s, e, d = s[order], e[order], d[order]
    return s, e, d


_power_cache: dict[int, np.ndarray] = {}


def _powers(base: int, n: int) -> np.ndarray:
    """`base ** k mod 2^64` for k in [0, n], by repeated doubling; cached per process."""
    cached = _power_cache.get(base)
    if cached is None or len(cached) <= n:
        size = max(n + 1, _CHUNK_BYTES + 1)
        cached = np.empty(size, np.uint64)
        cached[0] = 1
        filled, step = 1, base
        while filled < size:
            m = min(filled, size - filled)
            np.multiply(cached[:m], np.uint64(step), out=cached[filled : filled + m])
            filled += m
            step = step * step % (1 << 64)
        _power_cache[base] = cached
    return cached


_scratch = threading.local()


def _scratch_uint64(n: int) -> np.ndarray:
    """A uint64 work array of `n` values, reused by this thread: a fresh one per 1 MB chunk
    costs more in page faults than the arithmetic on it."""
    if n > 4 * _CHUNK_BYTES:  # one very long document: not worth holding on to
        return np.empty(n, np.uint64)
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or len(buffer) < n:
        buffer = np.empty(max(n, _CHUNK_BYTES + 1), np.uint64)
        _scratch.buffer = buffer
    return buffer[:n]


def poly_hash32(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """32-bit hash of each byte range: fmix64 of a polynomial hash mod 2^64, top 32 bits.

    Prefix sums make every range O(1) whatever its length, with no Python loop.
    """
    return (poly_hash64(data, starts, ends) >> np.uint64(32)).astype(np.uint32)


def poly_hash64(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hash of each byte range: fmix64 of a polynomial hash mod 2^64 (see poly_hash32)."""
    n = len(data)
    powers = _powers(_POLY, n)
    inv_powers = _powers(_POLY_INV, n)
    prefix = _scratch_uint64(n + 1)
    prefix[0] = 0
    terms = prefix[1:]  # the prefix sums are computed in place over the terms
    np.add(data, np.uint64(1), out=terms, dtype=np.uint64)
    terms *= powers[:n]
    np.cumsum(terms, out=terms)
    h = prefix[ends]
    h -= prefix[starts]
    h *= inv_powers[starts]
    h ^= (ends - starts).astype(np.uint64) * _LEN_MIX
    return fmix64(h)


def string_hashes64(strings: pa.StringArray) -> np.ndarray:
    """`poly_hash64` of each whole string, hashed in chunks of about `_CHUNK_BYTES` bytes."""
    out = np.empty(len(strings), np.uint64)
    data, offsets = string_buffers(strings)
    start = 0
    while start < len(strings):
        stop = int(np.searchsorted(offsets, offsets[start] + _CHUNK_BYTES, side="right"))
        stop = min(max(stop - 1, start + 1), len(strings))
        lo, hi = offsets[start], offsets[stop]
        out[start:stop] = poly_hash64(
            data[lo:hi], offsets[start:stop] - lo, offsets[start + 1 : stop + 1] - lo
        )
        start = stop
    return out


def sha1_hash32(b: bytes | memoryview) -> int:
    """datasketch's default hash: the first 4 bytes of SHA1, little-endian."""
    return int.from_bytes(hashlib.sha1(b).digest()[:4], "little")


_SCALAR_HASHES: dict[str, Callable[[bytes | memoryview], int]] = {
    "sha1": sha1_hash32,
    "xxh32": xxhash.xxh32_intdigest,
}


def scalar_hash32(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, name: str) -> np.ndarray:
    """32-bit hash of each byte range with a per-shingle library call (datasketch-compatible)."""
    fn = _SCALAR_HASHES[name]
    mv = memoryview(data)
    return np.fromiter(
        (fn(mv[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)),
        dtype=np.uint32,
        count=len(starts),
    )


def permutations(num_perm: int, seed: int, scheme: Scheme = "affine32") -> np.ndarray:
    """The `(2, num_perm)` permutation parameters `a, b` that datasketch draws for this seed."""
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        return np.array(
            [
                (
                    gen.randint(1, _MERSENNE, dtype=np.uint64),
                    gen.randint(0, _MERSENNE, dtype=np.uint64),
                )
                for _ in range(num_perm)
            ],
            dtype=np.uint64,
        ).T
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return np.array([a, b])


def minhash_matrix(
    hashes: np.ndarray, doc: np.ndarray, n_docs: int, perms: np.ndarray, scheme: Scheme
) -> np.ndarray:
    """Per-document minimum over permuted shingle hashes: a `(n_docs, num_perm)` uint32 matrix.

    `doc` must be sorted. Documents without shingles keep the all-max signature, as an empty
    datasketch MinHash. One permutation at a time over a cache-sized run of shingles: a 1-D
    `minimum.reduceat` is an order of magnitude faster than the 2-D one over a shingle matrix.
    """
    a, b = perms
    out = np.full((a.shape[0], n_docs), MAX_HASH32, np.uint32)
    premixed = fmix32(hashes) if scheme == "affine32" else hashes.astype(np.uint64)
    for i in range(0, len(hashes), _CHUNK_SHINGLES):
        hv = premixed[i : i + _CHUNK_SHINGLES]
        d = doc[i : i + _CHUNK_SHINGLES]
        seg = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
        docs = d[seg]
        tmp = np.empty(len(hv), hv.dtype)
        for k in range(a.shape[0]):
            np.multiply(hv, a[k], out=tmp)
            tmp += b[k]
            if scheme == "legacy":
                tmp %= _MERSENNE
                tmp &= _MASK32
            out[k, docs] = np.minimum(out[k, docs], np.minimum.reduceat(tmp, seg))
    return np.ascontiguousarray(out.T)


def signatures(
    text: pa.StringArray,
    num_perm: int = 112,
    ngram: int = 5,
    kind: ShingleKind = "word",
    seed: int = 1,
    hash: HashName = "poly64",
    scheme: Scheme = "affine32",
    perms: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of normalised text: `(n, num_perm)` uint32 and shingle counts (n,)."""
    if perms is None:
        perms = permutations(num_perm, seed, scheme)
    data, offsets = string_buffers(text)
    if kind == "word" and hash == "poly64" and scheme == "affine32" and 1 <= ngram <= 64:
        return compiled_signatures(data, offsets, ngram, perms)
    return chunked_signatures(data, offsets, ngram, kind, hash, scheme, perms)


def compiled_signatures(
    data: np.ndarray, offsets: np.ndarray, ngram: int, perms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`signatures` of the default scheme (word shingles, poly64, affine32) in one compiled
    pass: the same values as `chunked_signatures`, about 3x faster."""
    n = len(offsets) - 1
    sig = np.empty((n, perms.shape[1]), np.uint32)
    counts = np.zeros(n, np.int64)
    longest = int(np.diff(offsets).max()) if n else 0
    a, b = (np.ascontiguousarray(p, np.uint32) for p in perms)
    powers, inv_powers = _powers(_POLY, longest), _powers(_POLY_INV, longest)
    _kernels.word_minhash(data, offsets, ngram, a, b, powers, inv_powers, sig, counts)
    return sig, counts


def chunked_signatures(
    data: np.ndarray,
    offsets: np.ndarray,
    ngram: int,
    kind: ShingleKind,
    hash: HashName,
    scheme: Scheme,
    perms: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`signatures` of any scheme with numpy, in slices of about `_CHUNK_BYTES` bytes so memory
    is bounded by the slice, not the batch."""
    n = len(offsets) - 1
    sig = np.empty((n, perms.shape[1]), np.uint32)
    counts = np.zeros(n, np.int64)
    lo = 0
    while lo < n:
        hi = int(np.searchsorted(offsets, offsets[lo] + _CHUNK_BYTES, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        base = offsets[lo]
        chunk = data[base : offsets[hi]]
        s, e, d = shingle_ranges(chunk, offsets[lo : hi + 1] - base, ngram, kind)
        if hash == "poly64":
            hv = poly_hash32(chunk, s, e)
        else:
            hv = scalar_hash32(chunk, s, e, hash)
        sig[lo:hi] = minhash_matrix(hv, d, hi - lo, perms, scheme)
        counts[lo:hi] = np.bincount(d, minlength=hi - lo)
        lo = hi
    return sig, counts
