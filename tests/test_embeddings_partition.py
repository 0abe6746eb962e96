"""Partition invariants: every node in exactly one part, size bound held, proxy structure as defined."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from embeddings import partition
from embeddings.distne import DistNE, DistNEConfig, coarsen
from embeddings.prone import ProNE


def rmat_like(n=400, m=3000, seed=0):
    rng = np.random.default_rng(seed)
    u = (rng.pareto(1.5, m) * 10).astype(np.int64) % n
    v = rng.integers(0, n, m)
    keep = u != v
    a = sp.coo_matrix((np.ones(keep.sum(), np.float32), (u[keep], v[keep])), shape=(n, n)).tocsr()
    a = ((a + a.T) > 0).astype(np.float32).tocsr()
    live = np.flatnonzero(np.diff(a.indptr))
    return a[live][:, live]


@pytest.fixture(scope="module")
def setup():
    a = rmat_like()
    m = 240
    cfg = DistNEConfig(dim=8, max_subgraph_nodes=m)
    max_part, budget = cfg.sizes(a.shape[0])
    labels, _ = coarsen(a, budget, cfg.lpa_cap, cfg.lpa_rounds)
    q, sizes = partition.quotient_graph(a, labels)
    z = ProNE(dim=8).fit_transform(q)
    cpart = partition.bisect_parts(z, sizes, max_part)
    return a, labels, cpart, partition.part_subgraphs(a, labels, cpart), m, max_part


def test_label_propagation_respects_cap():
    a = rmat_like(seed=1)
    for cap in (3, 7, 20):
        lab = partition.label_propagation(a, cap=cap, rounds=5)
        sizes = np.bincount(lab)
        assert sizes.max() <= cap and sizes.min() >= 1
        assert set(np.unique(lab)) == set(range(lab.max() + 1))


def test_label_propagation_finds_cliques():
    blocks = sp.block_diag([np.ones((6, 6))] * 5).tocsr()
    blocks.setdiag(0)
    blocks.eliminate_zeros()
    lab = partition.label_propagation(blocks, cap=6, rounds=4)
    assert all(len(np.unique(lab[i * 6:(i + 1) * 6])) == 1 for i in range(5))


def test_every_node_in_exactly_one_part_and_bounds(setup):
    a, labels, cpart, subs, m, max_part = setup
    all_nodes = np.concatenate([s.nodes for s in subs])
    assert np.array_equal(np.sort(all_nodes), np.arange(a.shape[0]))
    assert len(subs) >= 2
    assert max(len(s.nodes) for s in subs) <= max_part
    assert max(s.adjacency.shape[0] for s in subs) <= m


def test_proxy_structure_exactly_as_defined(setup):
    a, labels, cpart, subs, m, _ = setup
    q, _ = partition.quotient_graph(a, labels)
    node_part = cpart[labels]
    dense = a.toarray()
    for s in subs:
        k = len(s.nodes)
        assert np.array_equal(s.proxies, np.flatnonzero(cpart != s.part))
        h = s.adjacency.toarray()
        assert np.allclose(h, h.T)
        # internal block is the induced subgraph
        assert np.allclose(h[:k, :k], dense[np.ix_(s.nodes, s.nodes)])
        # node -> proxy weight = sum of the node's edges into that cluster
        outside = node_part != s.part
        expect = np.zeros((k, len(s.proxies)))
        for j, c in enumerate(s.proxies):
            expect[:, j] = dense[np.ix_(s.nodes, np.flatnonzero((labels == c) & outside))].sum(axis=1)
        assert np.allclose(h[:k, k:], expect)
        # proxy block is the quotient graph restricted to the outside clusters
        assert np.allclose(h[k:, k:], q.toarray()[np.ix_(s.proxies, s.proxies)])


def test_distne_stats_report_invariants():
    a = rmat_like()
    model = DistNE(DistNEConfig(dim=8, max_subgraph_nodes=240)).fit(a)
    st = model.stats_
    assert st["parts"] >= 2 and st["largest_subgraph_nodes"] <= 240
    assert 1.0 <= st["embedded_edges_multiple"] < 2 * st["parts"]
    assert 0.0 < st["edge_cut_fraction"] < 1.0


def test_bisect_rejects_too_small_parts():
    with pytest.raises(ValueError, match="largest cluster"):
        partition.bisect_parts(np.zeros((3, 2)), np.array([5, 1, 1]), 4)


@pytest.mark.parametrize("buckets", [1, 3])
def test_bucketed_rounds_reproduce_label_propagation(buckets):
    """The Spark message-passing rounds (one bucket of nodes per task) follow the single-process rule exactly."""
    a = rmat_like(seed=3).tocoo()
    n, cap, rounds = a.shape[0], 6, 4
    ids = np.arange(n, dtype=np.int64)
    labels = ids.copy()
    for r in range(rounds):
        lab_sizes = np.bincount(labels, minlength=n)
        size_labels = np.flatnonzero(lab_sizes)
        new = labels.copy()
        for b in range(buckets):
            m = a.row % buckets == b
            own, lab = partition.lpa_local_round(a.row[m].astype(np.int64), a.col[m].astype(np.int64), a.data[m],
                                                 ids, labels, size_labels, lab_sizes[size_labels], cap, r)
            new[own] = lab
        labels = new
    ref = partition.label_propagation(a.tocsr(), cap=cap, rounds=rounds)
    assert np.array_equal(partition.split_oversized(labels, cap), ref)
    assert len(np.unique(ref)) < n  # it did merge nodes


def test_heaviest_edges_keeps_k_per_node_and_only_those(setup):
    a, labels, cpart, subs, _, _ = setup
    q = sp.triu(partition.quotient_graph(a, labels)[0], k=1).tocoo()
    k = 3
    keep = partition.heaviest_edges(q.row, q.col, q.data, k)
    deg = np.bincount(np.r_[q.row, q.col], minlength=q.shape[0])
    kept = np.bincount(np.r_[q.row[keep], q.col[keep]], minlength=q.shape[0])
    assert (kept >= np.minimum(deg, k)).all() and keep.sum() < len(keep)
    for e in np.flatnonzero(keep)[:50]:  # a kept edge is among the k heaviest at one of its ends
        ok = False
        for v in (q.row[e], q.col[e]):
            at = (q.row == v) | (q.col == v)
            ok |= (q.data[at] > q.data[e]).sum() < k
        assert ok
    pruned = partition.part_subgraphs(a, labels, cpart, coarse_k=k)
    for s_full, s_pr in zip(subs, pruned):
        assert np.array_equal(s_full.nodes, s_pr.nodes) and np.array_equal(s_full.proxies, s_pr.proxies)
        assert s_pr.adjacency.nnz <= s_full.adjacency.nnz
        full_e, pr = s_full.adjacency.tocoo(), s_pr.adjacency.tocoo()
        assert set(zip(pr.row, pr.col)) <= set(zip(full_e.row, full_e.col))  # a subset of the edges


def test_subgraph_edge_bound_keeps_own_edges_and_the_heaviest_coarse_edges(setup):
    """``max_edges``: a part subgraph keeps its own (internal and cut) edges and the heaviest coarse edges that fit."""
    a, labels, cpart, subs, _, _ = setup
    blocks = []
    for s in subs:
        k0, u = len(s.nodes), sp.triu(s.adjacency, k=1).tocoo()
        own = (u.row < k0) | (u.col < k0)
        blocks.append((k0, int(own.sum()), u.data[~own]))
    cap = max(o + len(c) // 2 for _, o, c in blocks)
    bounded = partition.part_subgraphs(a, labels, cpart, max_edges=cap)
    pruned = 0
    for s, b, (k0, own, coarse) in zip(subs, bounded, blocks):
        assert np.array_equal(s.nodes, b.nodes) and np.array_equal(s.proxies, b.proxies)
        assert sp.triu(b.adjacency, k=1).nnz <= cap
        assert (s.adjacency[:k0] != b.adjacency[:k0]).nnz == 0  # own edges untouched
        kept = sp.triu(b.adjacency[k0:, k0:], k=1).tocoo().data
        if len(kept) < len(coarse):
            pruned += 1
            dropped = np.sort(coarse)[::-1][len(kept):]  # the heaviest survive
            assert len(kept) == 0 or kept.min() >= dropped.max()
    assert pruned >= 1
    assert all(np.array_equal(x.adjacency.toarray(), y.adjacency.toarray())
               for x, y in zip(subs, partition.part_subgraphs(a, labels, cpart, max_edges=None)))


def test_fit_coarse_and_heaviest():
    w = np.array([1.0, 5.0, 3.0, 5.0, 2.0], np.float32)
    assert partition.heaviest(w, 2).tolist() == [False, True, False, True, False]
    assert partition.heaviest(w, None).all() and partition.heaviest(w, 9).all() and not partition.heaviest(w, -1).any()
    coarse = (np.arange(5), np.arange(5) + 10, w)
    assert partition.fit_coarse(coarse, 2, None) is coarse and partition.fit_coarse(coarse, 2, 7) is coarse
    a, b, kw = partition.fit_coarse(coarse, 4, 7)  # room for 3: the weights 5, 5, 3
    assert a.tolist() == [1, 2, 3] and sorted(kw.tolist()) == [3.0, 5.0, 5.0]
    assert len(partition.fit_coarse(coarse, 8, 7)[0]) == 0  # own edges alone exceed the bound: they stay, no coarse


def test_label_scores_and_best_label_match_a_brute_force():
    """The per-(node, label) weights and the winner per node (highest score, ties to the smallest label) equal a
    dictionary-based count over random edges with many ties (integer weights)."""
    rng = np.random.default_rng(7)
    v, lab = rng.integers(0, 30, 2000), rng.integers(0, 12, 2000)
    w = rng.integers(1, 3, 2000).astype(np.float32)
    vv, ll, score = partition.label_scores(v, lab, w, 30, 12)
    want: dict = {}
    for a, b, x in zip(v.tolist(), lab.tolist(), w.tolist()):
        want[a, b] = want.get((a, b), 0.0) + x
    assert sorted(want) == list(zip(vv.tolist(), ll.tolist()))
    assert np.allclose(score, [want[k] for k in zip(vv.tolist(), ll.tolist())])
    bv, bl, bs = partition.best_label(vv, ll, score)
    for node in np.unique(v):
        cand = {b: x for (a, b), x in want.items() if a == node}
        top = max(cand.values())
        i = int(np.flatnonzero(bv == node)[0])
        assert bs[i] == top and bl[i] == min(b for b, x in cand.items() if x == top)
    assert len(partition.best_label(vv[:0], ll[:0], score[:0])[0]) == 0
