"""The one Diag-LinUCB state: per-edge statistics, scoring, and the merge of partial sums.

Diag-LinUCB (Yi et al., "Online Matching", RecSys 2023, arXiv 2307.15893) keeps per edge
(cluster c, item j) of the candidate graph two sums over the events that showed j to a user u
with c in its context (weights ``w_uc``, rewards ``r``):

    d_jc = λ + Σ w_uc²,    b_jc = Σ w_uc · r_uj
    score(u, j) = Σ_c w_uc · b_jc / d_jc + α · sqrt(Σ_c w_uc² / d_jc)

It is LinUCB with the per-item design matrix ``A_j = λI + Σ x xᵀ`` replaced by its diagonal, so
an event touches one edge per context cluster and the statistics are plain sums: partial sums
(:class:`EdgeDelta`) from any number of workers merge in any order (:func:`merge_deltas`) and
:meth:`EdgeStats.apply` adds them. The offline policy (:class:`recsys.bandits.diag_linucb.DiagLinUCB`),
the scoring service (:class:`recsys.serving.state.ServingStats`) and the batch job
(``jobs/bandit_update.py``: Spark sums the per-edge deltas, the driver applies them here) all
score and learn through this class — the formulas exist once.

``off_graph`` (the version manifest's serving mode, :mod:`recsys.bandits.manifest`) says what a
(context cluster, item) pair that is not an edge does: ``"skip"`` — it neither scores nor learns
(the candidate graph is the support of the parameters); ``"prior"`` — it scores with
``d = λ, b = 0`` and a delta on it creates the edge. Terms with a padded cluster (< 0) or a zero
weight are dropped when deltas are summed (they change nothing but could create an edge).

>>> st = EdgeStats.from_edges([0, 0, 1], [10, 11, 10], lam=1.0, off_graph="prior")
>>> st.apply(aggregate_terms([0, 1], [10, 10], [0.8, 0.6], [1.0, 1.0]))
Applied(updated=2, created=0, skipped=0)
>>> mean, unc = st.score(np.array([[0, 1]]), np.array([[0.8, 0.6]]), np.array([[10, 11]]))
>>> round(float(mean[0, 0]), 4), float(mean[0, 1])
(0.6549, 0.0)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from recsys.bandits.edge_index import EdgeIndex, edge_keys, split_keys

__all__ = ["OFF_GRAPH_MODES", "check_off_graph", "EdgeDelta", "Applied", "aggregate_terms", "merge_deltas",
           "EdgeStats"]

OFF_GRAPH_MODES = ("skip", "prior")


def check_off_graph(mode: object, where: str = "off_graph") -> str:
    """``mode`` if it is one of :data:`OFF_GRAPH_MODES`, else a ValueError naming ``where``."""
    if mode not in OFF_GRAPH_MODES:
        raise ValueError(f"{where} must be 'skip' or 'prior', got {mode!r}")
    return str(mode)


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
        if not (np.isfinite(self.w2).all() and np.isfinite(self.wr).all()):
            raise ValueError("EdgeDelta sums must be finite")

    @classmethod
    def empty(cls) -> "EdgeDelta":
        return cls(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    @classmethod
    def from_pairs(cls, cluster, item, w2, wr) -> "EdgeDelta":
        """Per-pair sums (e.g. collected from Spark), summed again by key and sorted."""
        return merge_deltas([_sum_by_key(edge_keys(cluster, item), np.asarray(w2, np.float64),
                                         np.asarray(wr, np.float64))])


@dataclass(frozen=True)
class Applied:
    """What :meth:`EdgeStats.apply` did with a delta's pairs."""

    updated: int   # pairs that were edges
    created: int   # pairs off the graph that became edges (``prior``)
    skipped: int   # pairs off the graph that were dropped (``skip``)


def _sum_by_key(keys: np.ndarray, w2: np.ndarray, wr: np.ndarray) -> EdgeDelta:
    uk, inv = np.unique(keys, return_inverse=True)
    return EdgeDelta(uk, np.bincount(inv, w2, uk.size), np.bincount(inv, wr, uk.size))


def aggregate_terms(cluster, item, weight, reward) -> EdgeDelta:
    """Sum flat terms (one per event × context cluster) into ``(Σ w², Σ w·r)`` per edge.

    Terms with cluster < 0 (padding) or weight 0 are dropped; weights must be finite and >= 0,
    rewards finite.
    """
    c = np.asarray(cluster, np.int64).ravel()
    it = np.asarray(item, np.int64).ravel()
    w = np.asarray(weight, np.float64).ravel()
    r = np.asarray(reward, np.float64).ravel()
    if not (c.size == it.size == w.size == r.size):
        raise ValueError(f"terms: {c.size} clusters, {it.size} items, {w.size} weights, {r.size} rewards")
    if not (np.isfinite(w).all() and np.isfinite(r).all()):
        raise ValueError("terms: weights and rewards must be finite (NaN/inf rejected)")
    if w.size and w.min() < 0:
        raise ValueError(f"terms: weights must be >= 0, got {w.min()}")
    ok = (c >= 0) & (w != 0)
    c, it, w, r = c[ok], it[ok], w[ok], r[ok]
    return _sum_by_key(edge_keys(c, it), w * w, w * r)


def merge_deltas(deltas: Iterable[EdgeDelta]) -> EdgeDelta:
    """Add partial sums (any number, any order)."""
    ds = list(deltas)
    if not ds:
        return EdgeDelta.empty()
    return _sum_by_key(np.concatenate([d.keys for d in ds]), np.concatenate([d.w2 for d in ds]),
                       np.concatenate([d.wr for d in ds]))


class EdgeStats:
    """Per-edge ``d``/``b`` over one growable :class:`~recsys.bandits.edge_index.EdgeIndex`.

    Args:
        index: the edges; statistics are indexed by its edge ids.
        d: ``λ + Σ w²`` per edge id (copied).
        b: ``Σ w·r`` per edge id (copied).
        lam: prior precision λ > 0 (new edges start at ``d = λ, b = 0``).
        off_graph: ``"skip"`` or ``"prior"`` (see the module docstring).
    """

    def __init__(self, index: EdgeIndex, d: np.ndarray, b: np.ndarray, lam: float, off_graph: str) -> None:
        if not (lam > 0 and np.isfinite(lam)):
            raise ValueError(f"EdgeStats: lam must be > 0, got {lam}")
        self.off_graph = check_off_graph(off_graph, "EdgeStats.off_graph")
        self.lam = float(lam)
        self.index = index
        n = index.n_edges
        d, b = np.asarray(d, np.float64), np.asarray(b, np.float64)
        if not (d.shape == b.shape == (n,)):
            raise ValueError(f"EdgeStats: need d and b of shape ({n},), got {d.shape} and {b.shape}")
        cap = max(16, int(n * 1.25) + 1)      # the last slot always holds (λ, 0): what an edge id -1 reads
        self._d = np.full(cap, self.lam)
        self._b = np.zeros(cap)
        self._d[:n], self._b[:n] = d, b

    @classmethod
    def from_edges(cls, cluster, item, d=None, b=None, *, lam: float, off_graph: str) -> "EdgeStats":
        """Statistics on the given edges (d defaults to λ, b to 0; duplicate edges raise)."""
        ix = EdgeIndex.build(np.asarray(cluster, np.int64).ravel(), np.asarray(item, np.int64).ravel())
        n = ix.n_edges
        return cls(ix, np.full(n, lam) if d is None else d, np.zeros(n) if b is None else b, lam, off_graph)

    @classmethod
    def from_params(cls, params) -> "EdgeStats":
        """The statistics of a :class:`recsys.bandits.params.BanditParams` version (its ``off_graph``)."""
        return cls(EdgeIndex.from_keys(params.keys), params.d, params.b, params.lam, params.off_graph)

    @property
    def n_edges(self) -> int:
        return self.index.n_edges

    # -- reads ----------------------------------------------------------------------------------
    def score(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, uncertainty)``, each ``(n, M)``, of items ``(n, M)`` for contexts ``(n, K)``.

        ``mean = Σ_c w·b/d`` and ``uncertainty = sqrt(Σ_c w²/d)`` over the clusters that count
        (``skip``: those with an edge to the item; ``prior``: every cluster ≥ 0); the UCB score is
        ``mean + α · uncertainty``. Padded clusters (< 0) must carry weight 0 or are ignored.
        """
        c = np.asarray(clusters, np.int64)[:, None, :]
        w = np.where(c >= 0, np.asarray(weights, np.float64)[:, None, :], 0.0)          # (n, 1, K)
        eid = self.index.lookup(c, np.asarray(items, np.int64)[:, :, None])             # (n, M, K)
        inv_d = 1.0 / self._d[eid]          # eid -1 reads the last slot: the prior (λ, 0)
        ww = np.where(eid >= 0, w, 0.0) if self.off_graph == "skip" else w
        return (ww * self._b[eid] * inv_d).sum(axis=2), np.sqrt((ww * ww * inv_d).sum(axis=2))

    def cluster_table(self, cluster: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(items, d, b)`` of every edge of one cluster (items ascending)."""
        items, eids = self.index.cluster_edges(cluster)
        return items, self._d[eids].copy(), self._b[eids].copy()

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All edges sorted by key: ``(keys, d, b)``."""
        keys = self.index.keys_by_id()
        order = np.argsort(keys, kind="stable")
        n = self.n_edges
        return keys[order], self._d[:n][order], self._b[:n][order]

    def edges(self) -> dict[str, np.ndarray]:
        """All edges with their statistics, sorted by (cluster, item) (the ``edges`` table columns)."""
        keys, d, b = self.table()
        cl, it = split_keys(keys)
        return {"cluster": cl, "item": it, "d": d, "b": b}

    def memory_bytes(self) -> int:
        n = self.n_edges
        return int(self.index.nbytes() + 16 * n)

    # -- writes ---------------------------------------------------------------------------------
    def apply(self, delta: EdgeDelta) -> Applied:
        """Add partial sums ``d += Σ w²``, ``b += Σ w·r``; pairs off the graph follow ``off_graph``."""
        eid = self.index.lookup_keys(delta.keys)
        on = eid >= 0
        n_off = int(delta.keys.size - on.sum())
        if self.off_graph == "prior":
            if n_off:
                eid = self.index.add_keys(delta.keys)
                self._grow(self.index.n_edges)
            self._d[eid] += delta.w2
            self._b[eid] += delta.wr
            return Applied(int(on.sum()), n_off, 0)
        self._d[eid[on]] += delta.w2[on]
        self._b[eid[on]] += delta.wr[on]
        return Applied(int(on.sum()), 0, n_off)

    def add_edges(self, cluster, item) -> int:
        """Add fresh edges (``d = λ, b = 0``); existing edges keep their statistics. Returns how many were new."""
        before = self.n_edges
        self.index.add(np.asarray(cluster, np.int64).ravel(), np.asarray(item, np.int64).ravel())
        self._grow(self.index.n_edges)
        return self.n_edges - before

    def _grow(self, n: int) -> None:
        if n < self._d.size:                # keep the last slot free (the prior)
            return
        cap = max(n + 1, int(self._d.size * 1.5))
        d, b = np.full(cap, self.lam), np.zeros(cap)
        d[: self._d.size], b[: self._b.size] = self._d, self._b
        self._d, self._b = d, b
