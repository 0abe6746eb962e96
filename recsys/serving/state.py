"""In-memory Diag-LinUCB statistics that the scoring service serves from and updates online.

Diag-LinUCB (Yi et al., "Online Matching: A Real-time Bandit System for Large-scale
Recommendations", RecSys 2023, arXiv 2307.15893) keeps, per (cluster c, item j) edge of the
candidate graph, ``d_jc = λ + Σ w_uc²`` and ``b_jc = Σ w_uc · r_uj`` and scores

    score(u, j) = Σ_c w_uc · b_jc / d_jc  +  α · sqrt(Σ_c w_uc² / d_jc)

over the user's clusters ``c`` (weights ``w_uc``).  The version's manifest says what a pair that is not
an edge does: with ``extra.off_graph = "skip"`` (what :mod:`recsys.candidates` writes by default) only
the clusters that have an edge to the item count, and events on non-edges are not applied; with
``"prior"`` (also what a manifest without the key means) it scores with ``d = λ, b = 0`` and an event
on it creates the edge — the same rule as :class:`recsys.bandits.diag_linucb.DiagLinUCB` and the
batch job.  Statistics are plain sums, so an update is ``np.add.at`` over the
touched edges and the serving state is exactly *parameter version + Σ events after its watermark*.

>>> from recsys.bandits.params import BanditParams
>>> p = BanditParams.build(lam=1.0, alpha=0.5, k=2, w=2, edge_cluster=[0, 0, 1], edge_item=[10, 11, 10],
...     user=[5, 5], user_cluster=[0, 1], user_weight=[0.6, 0.4], centroids=np.zeros((2, 2)))
>>> st = ServingStats(p)
>>> c, w = st.context(5)
>>> st.apply(np.array([0, 1]), np.array([10, 10]), np.array([0.6, 0.4]), np.array([1.0, 1.0]))
>>> r = st.score(c, w, None, k=2)
>>> r.items.tolist(), round(float(r.mean[0]), 4)
([10, 11], 0.4026)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.bandits.params import BanditParams
from recsys.serving.edge_index import CAP, EdgeIndex


class UnknownUser(KeyError):
    """The user has no cluster context in the served parameter version."""


@dataclass(frozen=True)
class Ranked:
    """Scored candidates, best first."""

    items: np.ndarray
    mean: np.ndarray
    uncertainty: np.ndarray
    score: np.ndarray


class ServingStats:
    """Per-edge ``d``/``b`` arrays, the edge index and the user contexts of one version.

    A user's context is its ``user_clusters`` rows (at most K, weight-descending) as stored by the
    parameter version.
    """

    def __init__(self, pv: BanditParams) -> None:
        self.params = pv
        self.version, self.lam, self.alpha, self.watermark = pv.version, pv.lam, pv.alpha, pv.watermark
        self.index = EdgeIndex.build(pv.edge_cluster, pv.edge_item)
        n = self.index.n_edges
        cap = max(16, int(n * 1.25))
        self._d = np.full(cap, self.lam, np.float64)
        self._b = np.zeros(cap, np.float64)
        self._d[:n] = np.asarray(pv.d, np.float64)
        self._b[:n] = np.asarray(pv.b, np.float64)
        u = np.asarray(pv.user, np.int64)
        order = np.argsort(u, kind="stable")
        us = u[order]
        self._users, starts = np.unique(us, return_index=True)
        self._uptr = np.append(starts, us.size).astype(np.int64)
        self._ucl = np.asarray(pv.user_cluster, np.int64)[order]
        self._uw = np.asarray(pv.user_weight, np.float64)[order]
        self._k = int(pv.k)
        self.off_graph = str((pv.extra or {}).get("off_graph", "prior"))
        if self.off_graph not in ("prior", "skip"):
            raise ValueError(f"manifest extra.off_graph must be 'prior' or 'skip', got {self.off_graph!r}")
        self.events_applied = 0
        self.applied_seq = 0   # highest log sequence number applied (set by the service)

    # -- reads ------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return int(self._users.size)

    def context(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """``(clusters, weights)`` of a user; raises :class:`UnknownUser`."""
        pos = int(np.searchsorted(self._users, user))
        if pos >= self._users.size or self._users[pos] != user:
            raise UnknownUser(user)
        a = self._uptr[pos]
        b = min(self._uptr[pos + 1], a + self._k)
        return self._ucl[a:b], self._uw[a:b]

    def candidates(self, clusters: np.ndarray) -> np.ndarray:
        """Union of the clusters' linked items (the default candidate set)."""
        parts = [self.index.cluster_items(int(c)) for c in clusters]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    def edge_stats(self, clusters: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(d, b, is_edge)`` with shape ``(len(clusters), len(items))``; non-edges give ``(λ, 0)``."""
        clusters = np.asarray(clusters, np.int64)
        items = np.asarray(items, np.int64)
        idx = self.index.item_index(items)
        keys = np.where(idx >= 0, clusters[:, None] * CAP + idx[None, :], -1)
        eids = self.index.lookup_keys(keys.ravel()).reshape(keys.shape)
        hit = eids >= 0
        safe = np.where(hit, eids, 0)
        d = np.where(hit, self._d[safe], self.lam)
        b = np.where(hit, self._b[safe], 0.0)
        return d, b, hit

    def score(self, clusters: np.ndarray, weights: np.ndarray, candidates: np.ndarray | None, k: int) -> Ranked:
        """Top-``k`` candidates by the Diag-LinUCB upper confidence bound."""
        cand = self.candidates(clusters) if candidates is None else np.asarray(candidates, np.int64)
        if cand.size == 0:
            e = np.empty(0)
            return Ranked(np.empty(0, np.int64), e, e, e)
        d, b, hit = self.edge_stats(clusters, cand)
        w = np.asarray(weights, np.float64)
        if self.off_graph == "skip":        # only the clusters that have an edge to the item count
            ww = np.where(hit, w[:, None], 0.0)
            mean = (ww * (b / d)).sum(axis=0)
            unc = np.sqrt((ww * ww / d).sum(axis=0))
        else:
            mean = w @ (b / d)
            unc = np.sqrt((w * w) @ (1.0 / d))
        score = mean + self.alpha * unc
        k = min(int(k), cand.size)
        top = np.argpartition(-score, k - 1)[:k] if k < cand.size else np.arange(cand.size)
        top = top[np.lexsort((cand[top], -score[top]))]
        return Ranked(cand[top], mean[top], unc[top], score[top])

    def cluster_table(self, cluster: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(items, d, b)`` of every edge of one cluster."""
        items, eids = self.index.cluster_edges(cluster)
        return items, self._d[eids].copy(), self._b[eids].copy()

    def edges_table(self) -> dict[str, np.ndarray]:
        """All edges with their current statistics (columns of the ``edges`` contract)."""
        cl, it = self.index.edge_pairs()
        n = self.index.n_edges
        return {"cluster": cl, "item": it, "d": self._d[:n].copy(), "b": self._b[:n].copy()}

    # -- writes -----------------------------------------------------------------------------
    def apply(self, clusters: np.ndarray, items: np.ndarray, w: np.ndarray, r: np.ndarray, n_events: int | None = None) -> None:
        """Add per-term increments ``d += w²``, ``b += w·r`` (one term per event and cluster).

        A term on a pair that is not an edge creates the edge (``off_graph="prior"``, from ``d = λ,
        b = 0``) or is dropped (``off_graph="skip"``), as the version's manifest says.
        """
        clusters = np.asarray(clusters, np.int64)
        if clusters.size == 0:
            return
        w = np.asarray(w, np.float64)
        r = np.asarray(r, np.float64)
        if self.off_graph == "skip":
            eids = self.index.lookup(clusters, np.asarray(items, np.int64))
            on = eids >= 0
            eids, w, r = eids[on], w[on], r[on]
        else:
            eids = self.index.add(clusters, np.asarray(items, np.int64))
            self._grow(self.index.n_edges)
        np.add.at(self._d, eids, w * w)
        np.add.at(self._b, eids, w * r)
        self.events_applied += int(n_events if n_events is not None else clusters.size)

    def _grow(self, n: int) -> None:
        if n <= self._d.size:
            return
        cap = max(n, int(self._d.size * 1.5))
        d = np.full(cap, self.lam, np.float64)
        b = np.zeros(cap, np.float64)
        d[: self._d.size] = self._d
        b[: self._b.size] = self._b
        self._d, self._b = d, b
