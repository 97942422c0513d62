"""LSH banding: choose bands x rows for a Jaccard threshold, and hash each band to a bucket key."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from curate_filters.dedup.signatures import fmix64

_BAND_MUL = np.uint64(0x9FB21C651E98DF25)


def _false_positive(threshold: float, bands: int, rows: int) -> float:
    from scipy.integrate import quad  # lazily: scipy.integrate takes ~1 s to import

    return quad(lambda s: 1 - (1 - s**rows) ** bands, 0.0, threshold)[0]


def _false_negative(threshold: float, bands: int, rows: int) -> float:
    from scipy.integrate import quad

    return quad(lambda s: (1 - s**rows) ** bands, threshold, 1.0)[0]


@lru_cache(maxsize=64)
def optimal_params(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """`(bands, rows)` minimising the weighted false positive + negative areas, as datasketch's
    `MinHashLSH` does (same search order, so the same answer on ties)."""
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            err = fp_weight * _false_positive(threshold, b, r) + fn_weight * _false_negative(
                threshold, b, r
            )
            if err < best:
                best, opt = err, (b, r)
    return opt


def effective_threshold(bands: int, rows: int) -> float:
    """The Jaccard similarity at which two documents collide in some band with probability ~1/2:
    the steepest point of the S-curve, `(1 / bands) ** (1 / rows)`."""
    return (1.0 / bands) ** (1.0 / rows)


def collision_probability(jaccard: float | np.ndarray, bands: int, rows: int):
    """Probability that documents with this Jaccard similarity share at least one band."""
    return 1 - (1 - np.asarray(jaccard, dtype=float) ** rows) ** bands


def band_keys(sig: np.ndarray, bands: int, rows: int, seed: int = 1) -> np.ndarray:
    """One uint64 bucket key per band: `(n, bands)`, equal exactly when the band's rows are equal
    (up to 64-bit hash collisions). The band index is mixed in, so keys of different bands never
    meet in one bucket and the shuffle needs no band column.
    """
    n = sig.shape[0]
    view = sig[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    h = fmix64(np.arange(bands, dtype=np.uint64) + np.uint64(seed) * _BAND_MUL + np.uint64(1))
    h = np.broadcast_to(h, (n, bands)).copy()
    for j in range(rows):
        h *= _BAND_MUL
        h += view[:, :, j] + np.uint64(1)
        h = fmix64(h)
    return h
