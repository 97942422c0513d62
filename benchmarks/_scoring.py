"""Precision / recall of a dedup against bench_100k's ground truth, shared by the benchmarks
(plain Python, so scripts run in other virtual environments can use it too)."""

from __future__ import annotations


def accuracy(removed: set[str], cluster_of: dict[str, str]) -> tuple[float, float, float]:
    """Order-free scores: a truth cluster (a source and its copies) of size k should lose k - 1
    documents, whichever they are; a removal outside any cluster or beyond k - 1 is wrong."""
    sizes: dict[str, int] = {}
    for c in cluster_of.values():
        sizes[c] = sizes.get(c, 0) + 1
    hits: dict[str, int] = {}
    for doc in removed:
        if doc in cluster_of:
            hits[cluster_of[doc]] = hits.get(cluster_of[doc], 0) + 1
    tp = sum(min(h, sizes[c] - 1) for c, h in hits.items())
    expected = sum(k - 1 for k in sizes.values())
    p = tp / len(removed) if removed else 1.0
    r = tp / expected if expected else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def truth_clusters(gt: dict, subset: set[str] | None = None) -> dict[str, str]:
    """Document id -> its source id, for sources with copies (within `subset` if given)."""
    out = {}
    for doc, kind, source in zip(gt["id"], gt["kind"], gt["source_id"], strict=True):
        if kind != "original" and (subset is None or (doc in subset and source in subset)):
            out[doc] = out[source] = source
    return out
