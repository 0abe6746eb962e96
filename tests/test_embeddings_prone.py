"""Embedder contract (shared by every Embedder), ProNE details, and the evaluation protocols."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from embeddings.distne import DistNE, DistNEConfig
from embeddings.evaluate import link_prediction_auc, node_classification, split_edges
from embeddings.prone import ProNE, RowSplit, parallel, randomized_svd


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
