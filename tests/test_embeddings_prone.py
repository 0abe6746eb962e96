"""Embedder contract (shared by every Embedder), ProNE details, and the evaluation protocols."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from embeddings.distne import DistNE, DistNEConfig
from embeddings.evaluate import link_prediction_auc, node_classification, split_edges
from embeddings.prone import (ProNE, RowSplit, chebyshev_filter, filter_operator, fix_signs, locality_order,
                              parallel, permuted, propagation_operator, randomized_svd)


def planted(n_blocks=4, size=60, p_in=0.25, p_out=0.01, seed=0):
    """Symmetric planted-partition graph and its block labels."""
    rng = np.random.default_rng(seed)
    n = n_blocks * size
    block = np.repeat(np.arange(n_blocks), size)
    p = np.where(block[:, None] == block[None, :], p_in, p_out)
    upper = np.triu(rng.random((n, n)) < p, k=1)
    a = sp.csr_matrix((upper | upper.T).astype(np.float32))
    return a, block


EMBEDDERS = {
    "prone": lambda seed: ProNE(dim=16, seed=seed),
    "distne": lambda seed: DistNE(DistNEConfig(dim=16, max_subgraph_nodes=160, seed=seed)),
}


@pytest.fixture(params=sorted(EMBEDDERS))
def make(request):
    return EMBEDDERS[request.param]


def test_contract_shape_dtype_finite(make):
    a, _ = planted()
    x = make(0).fit(a).transform()
    assert x.shape == (a.shape[0], 16) and x.dtype == np.float32
    assert np.isfinite(x).all()


def test_deterministic_per_seed(make):
    a, _ = planted()
    x1, x2 = make(3).fit_transform(a), make(3).fit_transform(a)
    assert np.array_equal(x1, x2)
    assert not np.allclose(x1, make(4).fit_transform(a))


def test_planted_communities_are_closer_inside(make):
    a, block = planted()
    x = make(0).fit_transform(a)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    same = block[:, None] == block[None, :]
    np.fill_diagonal(same, False)
    diff = block[:, None] != block[None, :]
    assert sim[same].mean() > sim[diff].mean() + 0.2


def test_transform_before_fit_raises(make):
    with pytest.raises(RuntimeError):
        make(0).transform()


def test_bad_adjacency_rejected():
    with pytest.raises(ValueError, match="square"):
        ProNE(dim=4).fit(sp.csr_matrix(np.ones((3, 4))))
    with pytest.raises(TypeError):
        ProNE(dim=4).fit(np.ones((3, 3)))
    with pytest.raises(ValueError, match="dim"):
        ProNE(dim=0)


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_row_split_product_equals_the_plain_product(threads):
    keep = np.ones(50, np.float32)
    keep[10:20] = 0  # empty rows: some blocks may hold no entry at all
    m = (sp.diags(keep) @ sp.random(50, 30, density=0.1, random_state=2, dtype=np.float32)).tocsr()
    m.eliminate_zeros()
    x = np.random.default_rng(0).standard_normal((30, 5)).astype(np.float32)
    split = parallel(m, threads)
    assert isinstance(split, RowSplit) and len(split.blocks) <= threads
    assert sum(b[2].nnz for b in split.blocks) == m.nnz
    assert np.array_equal(split @ x, m @ x)
    assert parallel(m, 1) is m


def test_threads_do_not_change_the_embedding():
    a, _ = planted(n_blocks=6, size=200, p_in=0.05)
    one = ProNE(dim=16, seed=3, threads=1).fit_transform(a)
    assert np.array_equal(ProNE(dim=16, seed=3, threads=2).fit_transform(a), one)
    with pytest.raises(ValueError, match="threads"):
        ProNE(dim=4, threads=-1)


def skewed_graph(n=400, seed=0):
    """A graph with hubs (preferential-attachment-like), ids shuffled: the degree order is far from the id order."""
    rng = np.random.default_rng(seed)
    w = rng.pareto(1.5, n) + 1
    src = rng.integers(0, n, 6 * n)
    dst = rng.choice(n, 6 * n, p=w / w.sum())
    a = sp.csr_matrix((np.ones(len(src), np.float32), (src, dst)), shape=(n, n))
    return sp.csr_matrix((a + a.T) > 0, dtype=np.float32)


def test_locality_order_sorts_by_degree_and_permuted_equals_fancy_indexing():
    a = skewed_graph()
    order = locality_order(a)
    deg = np.diff(a.indptr)
    assert sorted(order.tolist()) == list(range(a.shape[0])) and np.all(np.diff(deg[order]) <= 0)
    p = permuted(a, order)
    assert p.dtype == np.float32 and p.has_sorted_indices
    assert (p != a[order][:, order]).nnz == 0


@pytest.mark.parametrize("dim", [8, 32])
def test_reordered_prone_equals_the_unordered_one(dim):
    """``reorder=True`` runs on the degree-sorted vertices and undoes the permutation: the same SMF and final
    vectors as the input order, up to float32 rounding (column signs fixed by :func:`fix_signs`)."""
    a = skewed_graph()
    plain = ProNE(dim=dim, seed=1, reorder=False).fit(a)
    ordered = ProNE(dim=dim, seed=1, reorder=True).fit(a)
    x0, x1 = plain.transform(), ordered.transform()
    assert x1.dtype == np.float32 and x1.shape == x0.shape
    assert np.allclose(x1, x0, atol=2e-4), np.abs(x1 - x0).max()
    assert np.allclose(ordered.smf_, plain.smf_, atol=2e-4)
    assert np.median((x0 * x1).sum(1)) > 0.9999


def test_fix_signs_does_not_depend_on_the_row_order():
    u = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    s = fix_signs(u)
    assert set(s.tolist()) <= {-1.0, 1.0} and np.all(((u * s) ** 3).sum(0) >= 0)
    assert np.array_equal(fix_signs(u[::-1]), s)


def test_chebyshev_filter_is_float32_and_equals_the_unfused_float64_recursion():
    """The fused operator ``M = (1−μ)I − D̃⁻¹(I+A)`` and float32 coefficients give the official recursion's result
    (computed here in float64 with separate products) and never promote to float64."""
    from scipy.special import iv

    a = skewed_graph(200)
    _, da = propagation_operator(a)
    x = np.random.default_rng(0).standard_normal((200, 6)).astype(np.float32)
    m_op = filter_operator(da, 0.2)
    assert m_op.dtype == np.float32 and m_op.nnz == da.nnz  # I + A holds the diagonal: same pattern
    got = chebyshev_filter(da, x, order=10, mu=0.2, theta=0.5)
    d64, x64 = da.astype(np.float64), x.astype(np.float64)

    def m(y):
        return 0.8 * y - d64 @ y

    lx0, lx1 = x64, 0.5 * m(m(x64)) - x64
    conv = iv(0, 0.5) * lx0 - 2 * iv(1, 0.5) * lx1
    for i in range(2, 10):
        lx2 = m(m(lx1)) - 2 * lx1 - lx0
        conv = conv + (2 if i % 2 == 0 else -2) * iv(i, 0.5) * lx2
        lx0, lx1 = lx1, lx2
    assert got.dtype == np.float32
    assert np.allclose(got, conv, atol=1e-5)


def test_randomized_svd_matches_exact_top_singular_values():
    rng = np.random.default_rng(0)
    m = sp.random(300, 200, density=0.05, random_state=1, dtype=np.float32).tocsr()
    _, s, _ = randomized_svd(m, 10, n_iter=6, seed=rng.integers(100))
    exact = np.linalg.svd(m.toarray(), compute_uv=False)[:10]
    assert np.allclose(s, exact, rtol=1e-2)


def test_node_classification_separates_informative_from_random():
    a, block = planted()
    y = sp.csr_matrix(np.eye(4, dtype=np.int8)[block])
    good = node_classification(ProNE(dim=16).fit_transform(a), y, ratios=(0.5,), repeats=2)
    noise = node_classification(np.random.default_rng(0).standard_normal((a.shape[0], 16)), y, ratios=(0.5,), repeats=2)
    assert good["micro_f1"]["0.5"] > 0.9 > 0.5 > noise["micro_f1"]["0.5"]


def test_split_edges_keeps_components_and_holds_out_non_edges():
    a, _ = planted(seed=2)
    split = split_edges(a, 0.1, seed=0)
    from scipy.sparse.csgraph import connected_components

    assert connected_components(split.train)[0] == connected_components(a)[0]
    assert all(a[u, v] for u, v in split.test_pos) and not any(split.train[u, v] for u, v in split.test_pos)
    assert not any(a[u, v] for u, v in split.test_neg)
    auc = link_prediction_auc(ProNE(dim=16).fit_transform(split.train), split)
    assert auc > 0.7
