"""Diag-LinUCB as a :class:`~recsys.bandits.base.BanditPolicy` (Yi et al., RecSys 2023, arXiv 2307.15893).

    d_jc = λ + Σ w_uc²,    b_jc = Σ w_uc · r_uj,    θ_jc = b_jc / d_jc
    score(u, j) = Σ_c w_uc · θ_jc + α · sqrt(Σ_c w_uc² / d_jc)

A thin policy over the one state core, :class:`recsys.bandits.state.EdgeStats` (statistics,
scoring, the ``off_graph`` rule, partial sums :class:`EdgeDelta` merged by :func:`merge_deltas`) —
the same object the scoring service and the batch job learn through. With one-hot contexts
(K = 1) it equals disjoint LinUCB per edge.

>>> import numpy as np
>>> pol = DiagLinUCB.from_edges(cluster=[0, 0, 1], item=[10, 11, 10], lam=1.0, alpha=0.0)
>>> pol.update(np.array([[0, 1]]), np.array([[0.8, 0.6]]), np.array([10]), np.array([1.0]))
2
>>> s = pol.score(np.array([[0, 1]]), np.array([[0.8, 0.6]]), np.array([10, 11]))
>>> round(float(s.mean[0, 0]), 4), float(s.mean[0, 1])
(0.6549, 0.0)
"""
from __future__ import annotations

import numpy as np

from recsys.bandits.base import BanditPolicy, Scores, as_candidates, as_context, as_events, padded_scores
from recsys.bandits.edge_index import EdgeIndex, edge_keys
from recsys.bandits.state import EdgeDelta, EdgeStats, aggregate_terms, merge_deltas

__all__ = ["DiagLinUCB", "EdgeDelta", "aggregate_events", "merge_deltas"]


def aggregate_events(clusters: np.ndarray, weights: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> EdgeDelta:
    """Sum the per-event terms ``(w², w·r)`` of ``(m, K)`` contexts by (cluster, item) (padding dropped)."""
    c, w, it, r = as_events(clusters, weights, items, rewards)
    return aggregate_terms(c, np.broadcast_to(it[:, None], c.shape), w, np.broadcast_to(r[:, None], c.shape))


class DiagLinUCB(BanditPolicy):
    """Diag-LinUCB on an :class:`~recsys.bandits.state.EdgeStats`.

    Args:
        keys: sorted unique edge keys (:func:`recsys.bandits.edge_index.edge_keys`).
        d: ``λ + Σ w²`` per edge (copied).
        b: ``Σ w·r`` per edge (copied).
        lam: prior precision λ > 0 (new edges start at ``d = λ, b = 0``).
        alpha: exploration weight α ≥ 0.
        off_graph: ``"skip"`` (pairs that are not edges neither score nor learn) or ``"prior"``
            (they score with ``d = λ, b = 0`` and an event on one creates the edge).
    """

    name = "diag_linucb"

    def __init__(self, keys: np.ndarray, d: np.ndarray, b: np.ndarray, lam: float = 1.0, alpha: float = 1.0,
                 off_graph: str = "prior"):
        if lam <= 0 or alpha < 0:
            raise ValueError(f"DiagLinUCB: need lam > 0 and alpha >= 0, got lam={lam} alpha={alpha}")
        keys = np.asarray(keys, dtype=np.int64)
        if keys.size > 1 and not (np.diff(keys) > 0).all():
            raise ValueError("DiagLinUCB: keys must be sorted and unique")
        self.stats = EdgeStats(EdgeIndex.from_keys(keys), d, b, lam, off_graph)
        self.alpha = float(alpha)

    @classmethod
    def from_edges(cls, cluster, item, lam: float = 1.0, alpha: float = 1.0, off_graph: str = "prior") -> "DiagLinUCB":
        """Fresh statistics (d = λ, b = 0) on the given edges."""
        keys = np.unique(edge_keys(np.asarray(cluster), np.asarray(item)))
        return cls(keys, np.full(keys.size, float(lam)), np.zeros(keys.size), lam, alpha, off_graph)

    @classmethod
    def from_params(cls, params, alpha: float | None = None) -> "DiagLinUCB":
        """The statistics and serving mode (``off_graph``) of a :class:`recsys.bandits.params.BanditParams`."""
        pol = cls.__new__(cls)
        pol.stats = EdgeStats.from_params(params)
        pol.alpha = float(params.alpha if alpha is None else alpha)
        return pol

    @property
    def lam(self) -> float:
        return self.stats.lam

    @property
    def off_graph(self) -> str:
        return self.stats.off_graph

    @property
    def keys(self) -> np.ndarray:
        """Edge keys, sorted (a snapshot)."""
        return self.stats.table()[0]

    @property
    def d(self) -> np.ndarray:
        """``d`` aligned with :attr:`keys` (a snapshot)."""
        return self.stats.table()[1]

    @property
    def b(self) -> np.ndarray:
        """``b`` aligned with :attr:`keys` (a snapshot)."""
        return self.stats.table()[2]

    def score(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray) -> Scores:
        c, w = as_context(clusters, weights)
        it = as_candidates(items, c.shape[0])
        mean, unc = self.stats.score(c, w, it)
        return padded_scores(mean, self.alpha * unc, it)

    def update(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> int:
        """Apply events; returns the number of edges that learned."""
        return self.apply(aggregate_events(clusters, weights, items, rewards))

    def apply(self, delta: EdgeDelta) -> int:
        """Add partial sums; keys that are not edges are skipped or create the edge (``off_graph``).

        Returns the number of edges touched.
        """
        done = self.stats.apply(delta)
        return done.updated + done.created

    def add_edges(self, cluster, item) -> int:
        """Add (fresh) edges with ``d = λ, b = 0``; existing edges keep their statistics. Returns how many were new."""
        return self.stats.add_edges(cluster, item)

    def memory_bytes(self) -> int:
        return self.stats.memory_bytes()
