"""Full-ranking Recall@K / NDCG@K against a brute-force per-user implementation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.metrics import evaluate, evaluate_embeddings, evaluate_popularity

CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")])


def brute_force(scores: np.ndarray, train: sp.csr_matrix, test: sp.csr_matrix, k: int) -> tuple[float, float]:
    recalls, ndcgs = [], []
    for u in range(scores.shape[0]):
        truth = set(test[u].indices.tolist())
        if not truth:
            continue
        seen = set(train[u].indices.tolist())
        ranked = [i for i in np.argsort(-scores[u], kind="stable") if i not in seen][:k]
        hits = [1.0 if i in truth else 0.0 for i in ranked]
        recalls.append(sum(hits) / len(truth))
        dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1.0 / np.log2(r + 2) for r in range(min(len(truth), k)))
        ndcgs.append(dcg / idcg)
    return float(np.mean(recalls)), float(np.mean(ndcgs))


def random_split(n_users, n_items, density, seed):
    rng = np.random.default_rng(seed)
    a = sp.random(n_users, n_items, density=density, format="csr", random_state=rng)
    a.data[:] = 1
    is_test = rng.random(a.nnz) < 0.3
    coo = a.tocoo()
    train = sp.csr_matrix((np.ones((~is_test).sum()), (coo.row[~is_test], coo.col[~is_test])), shape=a.shape)
    test = sp.csr_matrix((np.ones(is_test.sum()), (coo.row[is_test], coo.col[is_test])), shape=a.shape)
    return train, test


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("k,batch", [(5, 7), (20, 1000), (1, 3)])
def test_metrics_match_brute_force(device, k, batch):
    train, test = random_split(53, 71, 0.15, seed=k)
    rng = np.random.default_rng(1)
    U, V = rng.normal(size=(53, 6)).astype(np.float32), rng.normal(size=(71, 6)).astype(np.float32)
    scores = U @ V.T
    m = evaluate_embeddings(torch.from_numpy(U).to(device), torch.from_numpy(V).to(device), train, test, k=k,
                            batch_size=batch)
    r, n = brute_force(scores, train, test, k)
    assert m[f"recall@{k}"] == pytest.approx(r, abs=1e-6)
    assert m[f"ndcg@{k}"] == pytest.approx(n, abs=1e-6)
    assert m["users"] == int((np.diff(test.indptr) > 0).sum())


def test_perfect_scores_give_one_and_training_items_are_excluded():
    train, test = random_split(20, 30, 0.2, seed=3)
    test_dense = test.toarray()
    # test items score highest, training items even higher: they must be skipped, not counted
    scores = torch.from_numpy(test_dense * 10.0 + train.toarray() * 100.0).float()
    m = evaluate(lambda u: scores[u].clone(), train, test, k=30)
    assert m["recall@30"] == pytest.approx(1.0) and m["ndcg@30"] == pytest.approx(1.0)


def test_popularity_baseline_matches_brute_force():
    train, test = random_split(40, 25, 0.2, seed=4)
    pop = np.asarray(train.sum(0)).ravel()
    # tiny decreasing tie-break so argsort and topk agree on equal counts
    scores = np.tile(pop - np.arange(25) * 1e-6, (40, 1))
    m = evaluate_popularity(sp.csr_matrix(train), test, k=5)
    m2 = evaluate(lambda u: torch.from_numpy(scores[u.numpy()]).float(), train, test, k=5)
    r, n = brute_force(scores, train, test, 5)
    assert m2["recall@5"] == pytest.approx(r) and m2["ndcg@5"] == pytest.approx(n)
    assert 0 < m["recall@5"] <= 1


def test_k_larger_than_catalogue_rejected():
    train, test = random_split(5, 4, 0.5, seed=0)
    with pytest.raises(ValueError, match="exceeds"):
        evaluate(lambda u: torch.zeros(len(u), 4), train, test, k=10)
