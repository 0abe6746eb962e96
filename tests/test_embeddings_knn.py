"""kNN: exact search correctness, exclusions, and recall of the approximate indexes."""
from __future__ import annotations

import numpy as np
import pytest

from embeddings.knn import KnnConfig, Searcher, recall_at_k


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((50, 32))
    return (centers[rng.integers(0, 50, 5000)] + 0.3 * rng.standard_normal((5000, 32))).astype(np.float32)


def test_exact_matches_brute_force(clustered):
    x = clustered[:800]
    ids, scores = Searcher(x, KnnConfig(k=10, index="exact", device="cpu")).search(np.arange(50))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = xn[:50] @ xn.T
    sim[np.arange(50), np.arange(50)] = -np.inf
    truth = np.argsort(-sim, axis=1)[:, :10]
    assert recall_at_k(ids, truth) == 1.0
    assert np.allclose(scores, np.take_along_axis(sim, truth, 1), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


@pytest.mark.parametrize("kind,floor", [("hnsw", 0.9), ("ivf", 0.8)])
def test_approximate_recall(clustered, kind, floor):
    q = np.arange(0, 5000, 10)
    exact, _ = Searcher(clustered, KnnConfig(k=20, index="exact", device="cpu")).search(q)
    approx, _ = Searcher(clustered, KnnConfig(k=20, index=kind)).search(q)
    assert recall_at_k(approx, exact) >= floor


def test_exclusions_are_never_returned(clustered):
    s = Searcher(clustered[:500], KnnConfig(k=5, index="exact", device="cpu"))
    first, _ = s.search(np.array([0, 1]))
    excl = [first[0][:3], np.empty(0, np.int64)]
    ids, _ = s.search(np.array([0, 1]), excl)
    assert not np.isin(ids[0], first[0][:3]).any() and 0 not in ids[0]
    assert np.array_equal(ids[1], first[1])


def test_uneven_exclusions_give_the_brute_force_top_k_of_the_rest(clustered):
    x = clustered[:600]
    rng = np.random.default_rng(1)
    q = np.arange(40)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = xn[q] @ xn.T
    sim[q, q] = -np.inf
    excl = [np.sort(np.argsort(-sim[r])[: rng.integers(0, 12)]) for r in range(len(q))]  # 0–11 best ones each
    ids, _ = Searcher(x, KnnConfig(k=8, index="exact", device="cpu")).search(q, excl)
    for r, e in enumerate(excl):
        sim[r, e] = -np.inf
    assert recall_at_k(ids, np.argsort(-sim, axis=1)[:, :8]) == 1.0
    assert not any(np.isin(ids[r], e).any() for r, e in enumerate(excl))


def test_config_validation():
    with pytest.raises(ValueError):
        KnnConfig(k=0)
    with pytest.raises(ValueError):
        KnnConfig(index="lsh")
    assert KnnConfig(exact_threshold=10).kind(11) == "hnsw"


@pytest.mark.gpu
def test_torch_cuda_exact_matches_faiss(clustered):
    pytest.importorskip("torch")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    q = np.arange(100)
    a, _ = Searcher(clustered, KnnConfig(k=10, index="exact", device="cuda")).search(q)
    b, _ = Searcher(clustered, KnnConfig(k=10, index="exact", device="cpu")).search(q)
    assert recall_at_k(a, b) > 0.99


@pytest.mark.parametrize("index", ["exact", "hnsw"])
def test_zero_vectors_have_no_neighbours_and_are_nobodys(clustered, index):
    """A vertex without edges has a zero vector: every score against it is 0, so it gets no neighbours (not an
    arbitrary tie order) and is never returned as one."""
    x = clustered[:600].copy()
    zero = np.array([3, 17, 400])
    x[zero] = 0.0
    ids, scores = Searcher(x, KnnConfig(k=10, index=index, device="cpu")).search(np.arange(600))
    assert (ids[zero] == -1).all() and np.isneginf(scores[zero]).all()
    live = np.setdiff1d(np.arange(600), zero)
    assert (ids[live] >= 0).all() and not np.isin(ids[live], zero).any()
