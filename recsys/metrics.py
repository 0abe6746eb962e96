"""Full-ranking top-K evaluation (Recall@K, NDCG@K), the LightGCN protocol.

For every user with at least one test item, all items are scored, the user's training items are
excluded (score -inf), and the top ``K`` are compared with the test set ``T_u``:

    Recall@K = |top_K ∩ T_u| / |T_u|
    NDCG@K   = Σ_{r<K} [top_K[r] ∈ T_u] / log2(r + 2)  /  Σ_{r<min(K, |T_u|)} 1 / log2(r + 2)

both averaged over the users with test items (He et al., "LightGCN", SIGIR 2020; its official
``Procedure.Test`` / ``utils.NDCGatK_r`` compute exactly these). Users are scored in batches on the
model's device (GPU when present).

>>> import numpy as np, scipy.sparse as sp, torch
>>> train = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
>>> test = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1]], dtype=np.float32))
>>> U = torch.tensor([[1.0], [1.0]]); V = torch.tensor([[3.0], [2.0], [1.0]])
>>> m = evaluate_embeddings(U, V, train, test, k=1)
>>> (m["recall@1"], m["ndcg@1"])
(0.5, 0.5)
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def _rows_to_dense(m: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(row-in-batch, column) index tensors of the non-zeros of ``m[rows]``."""
    sub = m[rows]
    r = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
    return torch.from_numpy(r).to(device), torch.from_numpy(sub.indices.astype(np.int64)).to(device)


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(k, device=device, dtype=torch.float64) + 2.0)


@torch.no_grad()
def evaluate(score_fn: ScoreFn, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 20,
             batch_size: int = 1024, device: torch.device | str = "cpu") -> dict[str, float]:
    """Recall@k and NDCG@k of ``score_fn`` (user index tensor -> fresh ``(b, n_items)`` scores).

    Args:
        score_fn: scores of all items for a batch of users, on ``device``.
        train: CSR of training positives (excluded from the ranking).
        test: CSR of held-out positives.
        k: cut-off.
        batch_size: users per scoring batch.
        device: where masks and top-k run (the score tensors' device).

    Returns:
        ``{"recall@k", "ndcg@k", "users"}`` (``users``: how many users had test items).
    """
    device = torch.device(device)
    train, test = train.tocsr(), test.tocsr()
    train.sort_indices()
    test.sort_indices()
    n_items = train.shape[1]
    if k > n_items:
        raise ValueError(f"k={k} exceeds the number of items {n_items}")
    n_test = np.diff(test.indptr)
    users = np.flatnonzero(n_test > 0)
    if len(users) == 0:
        return {f"recall@{k}": float("nan"), f"ndcg@{k}": float("nan"), "users": 0}
    disc = _discounts(k, device)
    idcg_table = torch.cumsum(disc, 0)
    recall_sum = 0.0
    ndcg_sum = 0.0
    for s in range(0, len(users), batch_size):
        rows = users[s:s + batch_size]
        scores = score_fn(torch.from_numpy(rows).to(device)).to(device=device, dtype=torch.float32)
        r, c = _rows_to_dense(train, rows, device)
        scores[r, c] = -torch.inf  # in place: score_fn returns a fresh tensor
        top = torch.topk(scores, k, dim=1).indices
        del scores
        r, c = _rows_to_dense(test, rows, device)
        keys = r * n_items + c  # sorted: CSR rows in order, sorted column indices
        q = torch.arange(len(rows), device=device).unsqueeze(1) * n_items + top
        pos = torch.searchsorted(keys, q).clamp_(max=len(keys) - 1)
        hits = (keys[pos] == q).to(torch.float64)
        nt = torch.from_numpy(n_test[rows]).to(device)
        recall_sum += float((hits.sum(1) / nt).sum())
        idcg = idcg_table[torch.clamp(nt, max=k) - 1]
        ndcg_sum += float(((hits * disc).sum(1) / idcg).sum())
    n = len(users)
    return {f"recall@{k}": recall_sum / n, f"ndcg@{k}": ndcg_sum / n, "users": int(n)}


def evaluate_embeddings(user_vecs: torch.Tensor, item_vecs: torch.Tensor, train: sp.csr_matrix,
                        test: sp.csr_matrix, k: int = 20, batch_size: int = 1024) -> dict[str, float]:
    """:func:`evaluate` for dot-product models: ``score(u, i) = <U_u, V_i>``."""
    device = user_vecs.device
    return evaluate(lambda u: user_vecs[u] @ item_vecs.T, train, test, k, batch_size, device)


def popularity_scores(train: sp.csr_matrix) -> np.ndarray:
    """Training interaction count of each item (the popularity baseline's score)."""
    return np.asarray(train.sum(axis=0)).ravel().astype(np.float32)


def evaluate_popularity(train: sp.csr_matrix, test: sp.csr_matrix, k: int = 20) -> dict[str, float]:
    """The most-popular baseline under the same protocol (a floor any trained model must beat)."""
    pop = torch.from_numpy(popularity_scores(train))
    return evaluate(lambda u: pop.repeat(len(u), 1), train, test, k)


def full_report(user_vecs: torch.Tensor, item_vecs: torch.Tensor, train: sp.csr_matrix, test: sp.csr_matrix,
                k: int = 20, cold_max_train: int = 5) -> dict:
    """Test metrics overall and for cold users (at most ``cold_max_train`` training items), each beside
    the popularity baseline on the same users, and the model/popularity ratio (``metrics.json``)."""
    cold = np.diff(train.tocsr().indptr) <= cold_max_train
    test_cold = (sp.diags(cold.astype(np.float32)) @ test).tocsr()
    out: dict = {}
    for suffix, t in (("", test), ("_cold", test_cold)):
        m = evaluate_embeddings(user_vecs, item_vecs, train, t, k)
        p = evaluate_popularity(train, t, k) if m["users"] else {f"recall@{k}": float("nan"), f"ndcg@{k}": float("nan")}
        out.update({f"recall@{k}{suffix}": m[f"recall@{k}"], f"ndcg@{k}{suffix}": m[f"ndcg@{k}"],
                    f"users{suffix}": m["users"], f"popularity_recall@{k}{suffix}": p[f"recall@{k}"],
                    f"popularity_ndcg@{k}{suffix}": p[f"ndcg@{k}"]})
        pr = p[f"recall@{k}"]
        out[f"vs_popularity{suffix}"] = m[f"recall@{k}"] / pr if pr and pr == pr else None
    return out
