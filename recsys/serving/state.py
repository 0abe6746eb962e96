"""What the scoring service serves from: one parameter version's user contexts + the live Diag-LinUCB state.

The statistics, the score ``Σ_c w_uc · b/d + α · sqrt(Σ_c w_uc² / d)`` and the update (per-edge
sums, the version's ``off_graph`` rule) are :class:`recsys.bandits.state.EdgeStats` — the same
object the offline policy and the batch job use (Yi et al., RecSys 2023, arXiv 2307.15893).
This module adds what only the service needs: a user's context by id, top-``k`` ranking, and the
running position in the event log. Statistics are plain sums, so the serving state is exactly
*parameter version + Σ events after its watermark*.

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
from recsys.bandits.state import EdgeStats, aggregate_terms


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
    """The user contexts of one version and its live :class:`~recsys.bandits.state.EdgeStats`.

    A user's context is its ``user_clusters`` rows (at most K, weight-descending) as stored by the
    parameter version.
    """

    def __init__(self, pv: BanditParams) -> None:
        self.params = pv
        self.version, self.lam, self.alpha, self.watermark = pv.version, pv.lam, pv.alpha, pv.watermark
        self.core = EdgeStats.from_params(pv)
        self.off_graph = self.core.off_graph
        self._users, self._uptr = pv._users, pv._user_ptr
        self._ucl = pv.user_cluster.astype(np.int64)
        self._uw = pv.user_weight.astype(np.float64)
        self._k = int(pv.k)
        self.events_applied = 0
        self.applied_seq = 0   # highest log sequence number applied (set by the service)

    # -- reads ------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return int(self._users.size)

    @property
    def n_edges(self) -> int:
        return self.core.n_edges

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
        parts = [self.core.index.cluster_items(int(c)) for c in clusters]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)

    def score(self, clusters: np.ndarray, weights: np.ndarray, candidates: np.ndarray | None, k: int) -> Ranked:
        """Top-``k`` candidates by the Diag-LinUCB upper confidence bound."""
        cand = self.candidates(clusters) if candidates is None else np.asarray(candidates, np.int64)
        if cand.size == 0:
            e = np.empty(0)
            return Ranked(np.empty(0, np.int64), e, e, e)
        mean, unc = self.core.score(np.asarray(clusters, np.int64)[None, :], np.asarray(weights, np.float64)[None, :],
                                    cand[None, :])
        return _top(cand, mean[0], unc[0], mean[0] + self.alpha * unc[0], k)

    def cluster_table(self, cluster: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(items, d, b)`` of every edge of one cluster."""
        return self.core.cluster_table(cluster)

    def edges_table(self) -> dict[str, np.ndarray]:
        """All edges with their current statistics (columns of the ``edges`` contract), sorted."""
        return self.core.edges()

    # -- writes -----------------------------------------------------------------------------
    def apply(self, clusters: np.ndarray, items: np.ndarray, w: np.ndarray, r: np.ndarray, n_events: int | None = None) -> None:
        """Add per-term increments ``d += w²``, ``b += w·r`` (one term per event and cluster).

        Pairs that are not edges follow the version's ``off_graph`` (:meth:`EdgeStats.apply`).
        """
        clusters = np.asarray(clusters, np.int64)
        if clusters.size:
            self.core.apply(aggregate_terms(clusters, items, w, r))
        self.events_applied += int(n_events if n_events is not None else clusters.size)


def _top(items: np.ndarray, mean: np.ndarray, unc: np.ndarray, score: np.ndarray, k: int) -> Ranked:
    """The ``k`` best by score (ties: smaller item id first), best first."""
    k = min(int(k), items.size)
    top = np.argpartition(-score, k - 1)[:k] if k < items.size else np.arange(items.size)
    top = top[np.lexsort((items[top], -score[top]))]
    return Ranked(items[top], mean[top], unc[top], score[top])
