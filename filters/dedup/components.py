"""Duplicate edges -> connected components -> survivors (the smallest row id of each cluster)."""

from __future__ import annotations

import numpy as np


def components(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster the rows joined by edges `src[i] - dst[i]` (int64 row ids, undirected).

    Returns, for every row that has an edge, sorted by row id: the row ids, the root of its
    cluster (its smallest row id, so the result does not depend on the order of the edges) and
    the cluster size. Memory is O(edges + rows with an edge), never O(corpus).
    """
    # Imported here: scipy.sparse costs 0.2 s to import, and only the decide tasks need it, not
    # the driver that binds the step or a worker that computes signatures.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    nodes = np.unique(np.concatenate([src, dst]))
    if len(nodes) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    i = np.searchsorted(nodes, src)
    j = np.searchsorted(nodes, dst)
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph.tocsr(), directed=False)
    # Nodes are sorted, so a label's first occurrence is its smallest row id.
    _, first = np.unique(labels, return_index=True)
    root = nodes[first][labels]
    size = np.bincount(labels)[labels].astype(np.int64)
    return nodes, root, size
