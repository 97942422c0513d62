"""Properties of the MinHash maths: Jaccard estimates, collisions, order-free clustering."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from curate_filters.dedup.components import components
from curate_filters.dedup.lsh import band_keys
from curate_filters.dedup.signatures import signatures

words = st.lists(st.integers(0, 400), min_size=30, max_size=200)


def as_text(tokens: list[int]) -> str:
    return " ".join(f"w{t}" for t in tokens)


def shingle_set(tokens: list[int]) -> set[tuple[int, ...]]:
    return {tuple(tokens[i : i + 5]) for i in range(len(tokens) - 4)}


@settings(max_examples=40, deadline=None)
@given(words, words, st.floats(0.0, 1.0))
def test_signature_agreement_estimates_jaccard(a, b, mix):
    b = a[: int(len(a) * mix)] + b  # overlap from none to a long shared prefix
    sig, _ = signatures(pa.array([as_text(a), as_text(b)]), num_perm=256)
    estimate = float(np.mean(sig[0] == sig[1]))
    sa, sb = shingle_set(a), shingle_set(b)
    exact = len(sa & sb) / len(sa | sb)
    # 256 permutations: standard error <= 0.031; allow about 4.5 sigma.
    assert abs(estimate - exact) < 0.14


@settings(max_examples=30, deadline=None)
@given(st.lists(words, min_size=1, max_size=5), st.integers(0, 4))
def test_identical_documents_always_collide(docs, which):
    texts = [as_text(d) for d in docs]
    texts.append(texts[which % len(texts)])
    sig, _ = signatures(pa.array(texts))
    keys = band_keys(sig, 14, 8)
    assert np.array_equal(keys[which % len(docs)], keys[-1])


edges = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(edges, st.randoms(use_true_random=False))
def test_components_do_not_depend_on_edge_order_or_direction(pairs, rnd):
    src, dst = (np.array(x, np.int64) * 1000 for x in zip(*pairs, strict=True))
    base = components(src, dst)
    order = list(range(len(pairs)))
    rnd.shuffle(order)
    flip = np.array([rnd.random() < 0.5 for _ in order])
    s2, d2 = src[order], dst[order]
    s2, d2 = np.where(flip, d2, s2), np.where(flip, s2, d2)
    for x, y in zip(base, components(s2, d2), strict=True):
        assert np.array_equal(x, y)


@settings(max_examples=60, deadline=None)
@given(edges)
def test_survivor_is_the_smallest_id_of_its_cluster(pairs):
    src, dst = (np.array(x, np.int64) for x in zip(*pairs, strict=True))
    nodes, root, size = components(src, dst)
    for r in np.unique(root):
        members = nodes[root == r]
        assert members.min() == r and len(members) == size[root == r][0]
    # Every edge joins rows of one cluster.
    lookup = dict(zip(nodes.tolist(), root.tolist(), strict=True))
    assert all(lookup[a] == lookup[b] for a, b in pairs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=400))
def test_components_match_scipys_connected_components(pairs):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src = np.array([a for a, _ in pairs], np.int64) * 7 + 3
    dst = np.array([b for _, b in pairs], np.int64) * 7 + 3
    nodes, root, size = components(src, dst)
    if not pairs:
        assert len(nodes) == len(root) == len(size) == 0
        return
    i, j = np.searchsorted(nodes, src), np.searchsorted(nodes, dst)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph.tocsr(), directed=False)
    # the same partition of the nodes, each part named by its smallest row id
    for label in np.unique(labels):
        members = labels == label
        assert (root[members] == nodes[members].min()).all()
        assert (size[members] == members.sum()).all()
