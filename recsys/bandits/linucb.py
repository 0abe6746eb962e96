"""Full (disjoint) LinUCB over the C-dimensional cluster-weight context (Li et al., WWW 2010).

Per item j, with the user's context ``x_u ∈ R^C`` (its top-K cluster weights, zeros elsewhere):

    A_j = λI + Σ x xᵀ,   b_j = Σ r x,   θ_j = A_j⁻¹ b_j
    score(u, j) = θ_jᵀ x_u + α · sqrt(x_uᵀ A_j⁻¹ x_u)

Memory is ``2·C²`` floats per item (A and A⁻¹), so this is the offline reference at C ≤ 64 that
Diag-LinUCB (which keeps only diag(A) on the graph's edges) is compared against. Scoring gathers
only the K×K block of A⁻¹ a sparse context touches; an update adds the sparse outer products
with one ``np.add.at`` and re-inverts the touched items' matrices in one batched call.

>>> import numpy as np
>>> pol = LinUCB(items=[10, 11], n_clusters=2, lam=1.0, alpha=0.0)
>>> pol.update(np.array([[0, 1]]), np.array([[1.0, 0.0]]), np.array([10]), np.array([1.0]))
1
>>> float(pol.score(np.array([[0, -1]]), np.array([[1.0, 0.0]]), np.array([10, 11])).mean[0, 0])
0.5
"""
from __future__ import annotations

import numpy as np

from recsys.bandits.base import BanditPolicy, Scores, as_candidates, as_context, as_events, padded_scores

__all__ = ["LinUCB", "MAX_CLUSTERS"]

MAX_CLUSTERS = 256


class LinUCB(BanditPolicy):
    """Disjoint LinUCB on the items ``items`` with a ``n_clusters``-dimensional context.

    Args:
        items: the item universe (candidates outside it score the prior: mean 0,
            bonus ``α·sqrt(Σ w²/λ)``; their events are ignored).
        n_clusters: context dimension C (≤ 256; the comparison uses C ≤ 64).
        lam: ridge λ > 0.
        alpha: exploration weight α ≥ 0.
    """

    name = "linucb"

    def __init__(self, items, n_clusters: int, lam: float = 1.0, alpha: float = 1.0):
        if not 1 <= n_clusters <= MAX_CLUSTERS:
            raise ValueError(f"LinUCB.n_clusters must be in [1, {MAX_CLUSTERS}], got {n_clusters}")
        if lam <= 0 or alpha < 0:
            raise ValueError(f"LinUCB: need lam > 0 and alpha >= 0, got lam={lam} alpha={alpha}")
        self.items = np.unique(np.asarray(items, dtype=np.int64))
        self.C, self.lam, self.alpha = int(n_clusters), float(lam), float(alpha)
        n = self.items.size
        eye = np.eye(self.C)
        self.A = np.broadcast_to(eye * self.lam, (n, self.C, self.C)).copy()
        self.A_inv = np.broadcast_to(eye / self.lam, (n, self.C, self.C)).copy()
        self.b = np.zeros((n, self.C))
        self.theta = np.zeros((n, self.C))

    def _rows(self, items: np.ndarray) -> np.ndarray:
        if self.items.size == 0:
            return np.full(items.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.items, items), self.items.size - 1)
        return np.where(self.items[pos] == items, pos, -1)

    def _check_clusters(self, c: np.ndarray) -> None:
        if c.size and c.max() >= self.C:
            raise ValueError(f"LinUCB: cluster id {c.max()} >= n_clusters={self.C}")

    def score(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray) -> Scores:
        c, w = as_context(clusters, weights)
        self._check_clusters(c)
        it = as_candidates(items, c.shape[0])
        rows = self._rows(it)  # (n, M)
        known = rows >= 0
        r = np.where(known, rows, 0)
        cc = np.where(c >= 0, c, 0)  # padded slots have w = 0
        th = self.theta[r[:, :, None], cc[:, None, :]]  # (n, M, K)
        mean = np.where(known, (th * w[:, None, :]).sum(axis=2), 0.0)
        blk = self.A_inv[r[:, :, None, None], cc[:, None, :, None], cc[:, None, None, :]]  # (n, M, K, K)
        var = np.einsum("nk,nmkl,nl->nm", w, blk, w)
        var = np.where(known, var, (w * w).sum(axis=1)[:, None] / self.lam)
        bonus = self.alpha * np.sqrt(np.maximum(var, 0.0))
        return padded_scores(mean, bonus, it)

    def update(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> int:
        c, w, it, rew = as_events(clusters, weights, items, rewards)
        self._check_clusters(c)
        rows = self._rows(it)
        ok = rows >= 0
        if not ok.any():
            return 0
        c, w, rows, rew = np.where(c[ok] >= 0, c[ok], 0), w[ok], rows[ok], rew[ok]
        K = c.shape[1]
        ri = np.repeat(rows, K * K)
        ci = np.repeat(c, K, axis=1).ravel()
        cj = np.tile(c, (1, K)).ravel()
        np.add.at(self.A, (ri, ci, cj), (w[:, :, None] * w[:, None, :]).ravel())
        np.add.at(self.b, (np.repeat(rows, K), c.ravel()), (w * rew[:, None]).ravel())
        touched = np.unique(rows)
        self.A_inv[touched] = np.linalg.inv(self.A[touched])
        self.theta[touched] = np.einsum("nij,nj->ni", self.A_inv[touched], self.b[touched])
        return int(ok.sum())

    def memory_bytes(self) -> int:
        return int(self.A.nbytes + self.A_inv.nbytes + self.b.nbytes + self.theta.nbytes + self.items.nbytes)
