"""What the scoring service serves from: one parameter version's user contexts + the live Diag-LinUCB state.

The statistics, the score ``Σ_c w_uc · b/d + α · sqrt(Σ_c w_uc² / d)`` and the update (per-edge
sums, the version's ``off_graph`` rule) are :class:`recsys.bandits.state.EdgeStats` — the same
object the offline policy and the batch job use (Yi et al., RecSys 2023, arXiv 2307.15893).
This module adds what only the service needs: a user's context by id, top-``k`` ranking, and the
running position in the event log. Statistics are plain sums, so the serving state is exactly
*parameter version + Σ events after its watermark*.

**Serving paths** (:meth:`ServingStats.route`): a user of the version is served by Diag-LinUCB on
its clusters, as ``personal`` or ``social`` (the version's ``user_clusters.path``: whether its
vector was trained on its interactions or placed from the social side). A user the version does
not know gets the ``fallback`` path when the version has a ``popular`` table: the most popular
items, ranked by their training-interaction count, with ``mean = score = count / Σ counts`` (the
item's share of the table) and ``uncertainty = 0``; given candidates are ranked the same way
(count 0 outside the table). A fallback impression has **no cluster context**, so feedback on it is
logged and acknowledged but updates no statistic — online here and in the batch job alike
(:mod:`recsys.bandits.spark`). Without a popular table an unknown user stays an error
(:class:`UnknownUser`).

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
from recsys.bandits.versions import FALLBACK, USER_PATHS


class UnknownUser(KeyError):
    """The user has no cluster context in the served parameter version (and there is no fallback)."""


@dataclass(frozen=True)
class Route:
    """How one user is served: ``path`` (personal | social | fallback) and its context (empty for fallback)."""

    path: str
    clusters: np.ndarray
    weights: np.ndarray


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
        self._upath = pv.user_path
        self._pop_items, self._pop_counts = pv.popular_item, pv.popular_count.astype(np.float64)
        self._pop_total = float(self._pop_counts.sum())
        self._pop_order = np.argsort(self._pop_items)     # for looking candidates up
        self.events_applied = 0
        self.applied_seq = 0   # highest log sequence number applied (set by the service)

    # -- reads ------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return int(self._users.size)

    @property
    def n_edges(self) -> int:
        return self.core.n_edges

    @property
    def has_fallback(self) -> bool:
        """Whether users without a context are served the popular items."""
        return bool(self._pop_items.size)

    def _rows(self, user: int) -> tuple[int, int] | None:
        pos = int(np.searchsorted(self._users, user))
        if pos >= self._users.size or self._users[pos] != user:
            return None
        a = int(self._uptr[pos])
        return a, min(int(self._uptr[pos + 1]), a + self._k)

    def context(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """``(clusters, weights)`` of a user; raises :class:`UnknownUser`."""
        rows = self._rows(user)
        if rows is None:
            raise UnknownUser(user)
        return self._ucl[rows[0]:rows[1]], self._uw[rows[0]:rows[1]]

    def route(self, user: int) -> Route:
        """The user's serving path and context; :class:`UnknownUser` when unknown and there is no fallback."""
        rows = self._rows(user)
        if rows is not None:
            a, b = rows
            return Route(USER_PATHS[int(self._upath[a])], self._ucl[a:b], self._uw[a:b])
        if not self.has_fallback:
            raise UnknownUser(user)
        return Route(FALLBACK, np.empty(0, np.int64), np.empty(0, np.float64))

    def rank(self, route: Route, candidates: np.ndarray | None, k: int) -> Ranked:
        """Top-``k`` for a routed request: Diag-LinUCB on its clusters, or the popular items (fallback)."""
        if route.path == FALLBACK:
            return self.popular(candidates, k)
        return self.score(route.clusters, route.weights, candidates, k)

    def popular(self, candidates: np.ndarray | None, k: int) -> Ranked:
        """Items by popularity: ``mean = score = count / Σ counts`` over the popular table, uncertainty 0."""
        if candidates is None:
            items, counts = self._pop_items, self._pop_counts
        else:
            items = np.asarray(candidates, np.int64)
            srt = self._pop_items[self._pop_order]
            pos = np.minimum(np.searchsorted(srt, items), max(srt.size - 1, 0))
            hit = (srt[pos] == items) if srt.size else np.zeros(items.size, bool)
            counts = np.where(hit, self._pop_counts[self._pop_order][pos] if srt.size else 0.0, 0.0)
        if items.size == 0:
            e = np.empty(0)
            return Ranked(np.empty(0, np.int64), e, e, e)
        share = counts / self._pop_total if self._pop_total > 0 else np.zeros(items.size)
        return _top(items, share, np.zeros(items.size), share, k)

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
