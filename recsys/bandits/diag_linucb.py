"""Diag-LinUCB over the sparse cluster–item graph (Yi et al., "Online Matching", RecSys 2023, arXiv 2307.15893).

Per edge (cluster c, item j) two sums over the events that showed j to a user u with c in its context:

    d_jc = λ + Σ w_uc²,    b_jc = Σ w_uc · r_uj,    θ_jc = b_jc / d_jc
    score(u, j) = Σ_c w_uc · θ_jc + α · sqrt(Σ_c w_uc² / d_jc)

the sums running over the user's clusters c that have an edge to j (``off_graph="skip"``: the
candidate graph is the support of the parameters; an event on a pair that is not an edge is not
applied), or over all the user's clusters with the prior ``d = λ, b = 0`` for a pair that is not an
edge yet (``off_graph="prior"``: an event on it creates the edge — the diagonal of LinUCB over the
whole C-dimensional context). The scoring service and the batch job follow the version's manifest;
candidate graphs are built with ``skip`` by default (:mod:`recsys.candidates`). It is LinUCB
with the per-item design matrix ``A_j = λI + Σ x xᵀ`` replaced by its diagonal, so every update
touches one edge per context cluster: statistics are plain sums, and partial sums
(:class:`EdgeDelta`) from any number of workers merge in any order (:func:`merge_deltas`).
With one-hot contexts (K = 1) it equals disjoint LinUCB per edge.

>>> import numpy as np
>>> pol = DiagLinUCB.from_edges(cluster=[0, 0, 1], item=[10, 11, 10], lam=1.0, alpha=0.0)
>>> pol.update(np.array([[0, 1]]), np.array([[0.8, 0.6]]), np.array([10]), np.array([1.0]))
2
>>> s = pol.score(np.array([[0, 1]]), np.array([[0.8, 0.6]]), np.array([10, 11]))
>>> round(float(s.mean[0, 0]), 4), float(s.mean[0, 1])
(0.6549, 0.0)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from recsys.bandits.base import BanditPolicy, Scores, as_candidates, as_context, as_events, padded_scores
from recsys.bandits.edge_index import edge_keys, lookup, split_keys

__all__ = ["DiagLinUCB", "EdgeDelta", "aggregate_events", "merge_deltas"]


@dataclass(frozen=True, eq=False)
class EdgeDelta:
    """Partial sums per edge key: ``w2 = Σ w²`` (adds to d) and ``wr = Σ w·r`` (adds to b)."""

    keys: np.ndarray
    w2: np.ndarray
    wr: np.ndarray

    def __post_init__(self) -> None:
        if not (self.keys.shape == self.w2.shape == self.wr.shape):
            raise ValueError("EdgeDelta arrays differ in shape")
        if self.keys.size > 1 and not (np.diff(self.keys) > 0).all():
            raise ValueError("EdgeDelta.keys must be sorted and unique")

    @classmethod
    def empty(cls) -> "EdgeDelta":
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))


def aggregate_events(clusters: np.ndarray, weights: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> EdgeDelta:
    """Sum the per-event terms ``(w², w·r)`` by (cluster, item); padded clusters and w = 0 are dropped."""
    c, w, it, r = as_events(clusters, weights, items, rewards)
    ok = (c >= 0) & (w != 0)
    cc = c[ok]
    ii = np.broadcast_to(it[:, None], c.shape)[ok]
    ww = w[ok]
    rr = np.broadcast_to(r[:, None], c.shape)[ok]
    keys, inv = np.unique(edge_keys(cc, ii), return_inverse=True)
    return EdgeDelta(keys, np.bincount(inv, ww * ww, keys.size), np.bincount(inv, ww * rr, keys.size))


def merge_deltas(deltas: Iterable[EdgeDelta]) -> EdgeDelta:
    """Add partial sums (any number, any order)."""
    ds = list(deltas)
    if not ds:
        return EdgeDelta.empty()
    keys, inv = np.unique(np.concatenate([d.keys for d in ds]), return_inverse=True)
    w2 = np.bincount(inv, np.concatenate([d.w2 for d in ds]), keys.size)
    wr = np.bincount(inv, np.concatenate([d.wr for d in ds]), keys.size)
    return EdgeDelta(keys, w2, wr)


class DiagLinUCB(BanditPolicy):
    """Diag-LinUCB with statistics in arrays indexed by edge row (edges sorted by key).

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
        if off_graph not in ("skip", "prior"):
            raise ValueError(f"DiagLinUCB.off_graph must be 'skip' or 'prior', got {off_graph!r}")
        self.off_graph = off_graph
        self.keys = np.asarray(keys, dtype=np.int64)
        self.d = np.array(d, dtype=np.float64)
        self.b = np.array(b, dtype=np.float64)
        if not (self.keys.shape == self.d.shape == self.b.shape):
            raise ValueError("DiagLinUCB: keys, d, b differ in shape")
        if self.keys.size > 1 and not (np.diff(self.keys) > 0).all():
            raise ValueError("DiagLinUCB: keys must be sorted and unique")
        self.lam, self.alpha = float(lam), float(alpha)

    @classmethod
    def from_edges(cls, cluster, item, lam: float = 1.0, alpha: float = 1.0, off_graph: str = "prior") -> "DiagLinUCB":
        """Fresh statistics (d = λ, b = 0) on the given edges."""
        keys = np.unique(edge_keys(np.asarray(cluster), np.asarray(item)))
        return cls(keys, np.full(keys.size, lam), np.zeros(keys.size), lam, alpha, off_graph)

    @classmethod
    def from_params(cls, params, alpha: float | None = None, off_graph: str | None = None) -> "DiagLinUCB":
        """Statistics of a :class:`recsys.bandits.params.BanditParams` version (``off_graph`` from its manifest)."""
        mode = off_graph or (params.extra or {}).get("off_graph", "prior")
        return cls(params.keys, params.d, params.b, params.lam, params.alpha if alpha is None else alpha, mode)

    def score(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray) -> Scores:
        c, w = as_context(clusters, weights)
        it = as_candidates(items, c.shape[0])
        idx = lookup(self.keys, c[:, None, :], it[:, :, None])  # (n, M, K)
        on = idx >= 0
        use = on if self.off_graph == "skip" else np.broadcast_to(c[:, None, :] >= 0, idx.shape)
        ww = np.where(use, w[:, None, :], 0.0)
        d = np.where(on, self.d[idx], self.lam)
        b = np.where(on, self.b[idx], 0.0)
        mean = (ww * b / d).sum(axis=2)
        bonus = self.alpha * np.sqrt((ww * ww / d).sum(axis=2))
        return padded_scores(mean, bonus, it)

    def update(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> int:
        """Apply events; returns the number of (event, edge) terms applied."""
        return self.apply(aggregate_events(clusters, weights, items, rewards))

    def apply(self, delta: EdgeDelta) -> int:
        """Add partial sums; keys that are not edges are skipped or create the edge (``off_graph``).

        Returns the number of edges touched.
        """
        idx = lookup(self.keys, *split_keys(delta.keys))
        if self.off_graph == "prior" and (idx < 0).any():
            self.add_edges(*split_keys(delta.keys[idx < 0]))
            idx = lookup(self.keys, *split_keys(delta.keys))
        on = idx >= 0
        self.d[idx[on]] += delta.w2[on]
        self.b[idx[on]] += delta.wr[on]
        return int(on.sum())

    def add_edges(self, cluster, item) -> int:
        """Add (fresh) edges with ``d = λ, b = 0``; existing edges keep their statistics. Returns how many were new."""
        new = np.setdiff1d(edge_keys(np.asarray(cluster), np.asarray(item)), self.keys)
        if new.size == 0:
            return 0
        keys = np.concatenate([self.keys, new])
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.d = np.concatenate([self.d, np.full(new.size, self.lam)])[order]
        self.b = np.concatenate([self.b, np.zeros(new.size)])[order]
        return int(new.size)

    def memory_bytes(self) -> int:
        return int(self.keys.nbytes + self.d.nbytes + self.b.nbytes)
