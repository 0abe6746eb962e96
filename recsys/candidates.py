"""The sparse cluster–item candidate graph behind Diag-LinUCB (Yi et al., RecSys 2023, arXiv 2307.15893).

Build (or rebuild) one parameter version from user and item vectors:

1. **Clusters.** faiss k-means over the user vectors → C centroids, warm-started from the previous
   version's centroids when there is one.
2. **Stable ids.** New centroids are matched to the previous ones by the Hungarian algorithm on
   squared L2 distance (``scipy.optimize.linear_sum_assignment``); a matched centroid keeps its
   old id, unmatched ones get fresh ids above the previous maximum.
3. **Moved clusters** (the rule). Let ``s`` be the median distance from each previous centroid to
   its nearest other previous centroid (the typical cluster spacing) and
   ``shift_c = ‖μ'_c − μ_c‖ / s``. Statistics of a matched cluster are *kept* when
   ``shift ≤ keep_shift`` (0.25), *reset* (``d = λ, b = 0``) when ``shift ≥ reset_shift`` (1.0), and
   in between *decayed* by ``γ = (reset_shift − shift)/(reset_shift − keep_shift)``:
   ``d ← λ + γ(d − λ)``, ``b ← γ b`` (old evidence counted with weight γ). Edges that leave a
   cluster's top-W list are dropped with their statistics.
4. **Context.** Each user's K nearest centroids (L2, the k-means geometry) with *normalised
   inverse-distance-power* weights ``w_uc = (δ_uc + ε)^-p / Σ_c' (δ_uc' + ε)^-p`` (``weighting=
   "inverse_distance"``, the default, p = ``power`` = 1: scale-free, Σ w = 1), or
   ``softmax(⟨u, μ_c⟩ / τ)`` over the K best inner products (``weighting="softmax"``). Larger p
   concentrates the weight on the nearest cluster (p → ∞ is K = 1, where Diag-LinUCB is disjoint
   LinUCB); scaling all weights by a constant only rescales λ. p = 1 was kept by measurement
   (p ∈ {0.5, 1, 2, 4, 8} and λ ∈ {0.3, 1, 3}, ``benchmarks/README.md`` § bandits). The weights are
   stored in the version's ``user_clusters``, so the service, its impressions and the batch job all
   use these same numbers. K ≥ 3 by default (with K = 1 Diag-LinUCB is disjoint LinUCB).
5. **Edges.** Each cluster is linked to its top-W items by inner product ⟨μ_c, v_j⟩ (exact faiss
   ``IndexFlatIP``). New edges start at ``d = λ, b = 0``. The manifest's ``off_graph`` (the typed,
   required serving mode, :class:`recsys.bandits.manifest.Manifest`) tells the service, the offline
   policy and the batch job how to treat a (context cluster, item) pair that is not an edge:
   ``skip`` (the default: the graph is the support of the parameters, as in the paper; such a pair
   neither scores nor learns) or ``prior`` (it scores with ``d = λ, b = 0`` and feedback on it
   creates the edge). ``skip`` was kept by measurement: more cumulative reward in every replay
   configuration and a graph that does not grow with traffic (``benchmarks/README.md`` § bandits).
   A manifest that does not state the mode is refused when read (see :mod:`recsys.bandits.manifest`).
6. **Cold start** (the recommender's ``user_vectors`` may carry ``source``: ``personal`` |
   ``social``, :mod:`recsys.bandits.inputs`). Users with a social-side vector get clusters like
   anyone else; the version's ``user_clusters`` keeps where each user's vector came from in its
   ``path`` column (``personal`` | ``social``; older user vectors without ``source``: all
   ``personal``), so the scoring service can say which path served a request. For users with
   neither (unknown to the version) the version stores ``popular(item, count)``: the ``popular_n``
   items with the most training interactions in the recommender's ``seen`` table (``--seen``,
   default: the ``seen`` table beside ``--user-vectors``); the service serves them as the
   ``fallback`` path. Without a ``seen`` table (or with ``popular_n = 0``) there is no fallback and
   the service answers unknown users with 404.
7. **Fresh items** (:func:`add_fresh_items`) join without a rebuild: with a vector, an item links to
   its ``fresh_clusters`` best clusters by inner product; without one (e.g. a trending catalogue
   id) it links to every cluster. They start at ``d = λ, b = 0``; existing edges are untouched.

CLI: ``python -m recsys.candidates --user-vectors DIR --item-vectors DIR [--seen DIR] [--popular N]
[--fresh-items DIR] --params PARAMS_DIR --clusters C --k K --w W`` publishes ``v=<n+1>`` (statistics,
merged event ids and watermark carried over from the current version).

>>> rng = np.random.default_rng(0)
>>> old = rng.normal(size=(4, 2)).astype(np.float32)
>>> ids = match_clusters(old, np.array([10, 11, 12, 13]), old[[2, 0, 3, 1]] + 0.01)
>>> ids.tolist()
[12, 10, 13, 11]
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from graphs.flags import arg, config_from
from graphs.flags import build_parser as flags_parser
from recsys.bandits.inputs import popular_items, read_fresh_items, read_user_vectors, read_vectors, seen_beside
from recsys.bandits.params import BanditParams, Watermark, current_version, load_merged_event_ids, load_params
from recsys.bandits.publish import publish_params
from recsys.bandits.state import OFF_GRAPH_MODES, check_off_graph

log = logging.getLogger(__name__)
WEIGHTINGS = ("inverse_distance", "softmax")

__all__ = ["CandidateConfig", "CandidateRunConfig", "kmeans", "match_clusters", "centroid_shift", "decay_factor",
           "user_context", "top_items", "build_params", "add_fresh_items", "read_vectors", "read_user_vectors",
           "read_fresh_items", "parse_args", "main"]


@dataclass(frozen=True)
class CandidateConfig:
    """Parameters of the candidate graph (see the module docstring for the rules)."""

    n_clusters: int = arg(64, "clusters C (k-means over the user vectors)", flag="--clusters")
    k: int = arg(3, "clusters K in a user's context")
    w: int = arg(100, "items W linked to each cluster")
    lam: float = arg(1.0, "prior precision λ of a new edge (d = λ)")
    alpha: float = arg(1.0, "exploration weight α of the UCB")
    weighting: str = arg("inverse_distance", "context weights of a user's clusters", choices=WEIGHTINGS)
    power: float = arg(1.0, "inverse_distance: w ∝ δ^-power")
    temperature: float = arg(1.0, "softmax: temperature τ")
    niter: int = arg(20, "k-means iterations", cli=False)
    seed: int = arg(0, "k-means seed")
    keep_shift: float = arg(0.25, "a cluster's statistics are kept up to this shift", cli=False)
    reset_shift: float = arg(1.0, "... and reset from this shift (decayed in between)", cli=False)
    fresh_clusters: int = arg(8, "clusters a fresh item with a vector links to", cli=False)
    off_graph: str = arg("skip", "pairs off the graph: ignore them (skip, the default: the paper's sparse graph) or "
                                 "score them with the prior and create the edge on feedback (prior)",
                         choices=tuple(sorted(OFF_GRAPH_MODES)))
    popular_n: int = arg(100, "how many popular items the version keeps for users without a context (0: no fallback)",
                         flag="--popular")

    def __post_init__(self) -> None:
        check_off_graph(self.off_graph, "CandidateConfig.off_graph")
        if self.popular_n < 0:
            raise ValueError(f"CandidateConfig.popular_n must be >= 0, got {self.popular_n}")
        if self.n_clusters < 1 or self.k < 1 or self.w < 1:
            raise ValueError(f"CandidateConfig: clusters, k, w must be >= 1, got {self.n_clusters}, {self.k}, {self.w}")
        if self.k > self.n_clusters:
            raise ValueError(f"CandidateConfig.k={self.k} exceeds n_clusters={self.n_clusters}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"CandidateConfig.weighting must be inverse_distance or softmax, got {self.weighting!r}")
        if not (self.lam > 0 and self.alpha >= 0 and self.temperature > 0 and self.power > 0):
            raise ValueError("CandidateConfig: need lam > 0, alpha >= 0, temperature > 0, power > 0")
        if not 0 <= self.keep_shift < self.reset_shift:
            raise ValueError("CandidateConfig: need 0 <= keep_shift < reset_shift")


@dataclass(frozen=True)
class CandidateRunConfig:
    """The CLI (``python -m recsys.candidates``): inputs, the parameter folder and the graph's settings."""

    params: str = arg(help="PARAMS_DIR (v=<n>/ and CURRENT)")
    user_vectors: str | None = arg(None, "DIR with (id, vector) Parquet (DIR/vectors or the table itself)")
    item_vectors: str | None = arg(None, "DIR with (id, vector) Parquet")
    fresh_items: str | None = arg(None, "Parquet DIR with item (or id) [+ vector] of items to add")
    seen: str | None = arg(None, "the recommender's seen(user, item) table for the fallback's popular items "
                                 "(default: 'seen' beside --user-vectors, when present)")
    graph: CandidateConfig = arg(CandidateConfig(), "the candidate graph (CandidateConfig)", nested=True)


def kmeans(x: np.ndarray, n_clusters: int, init: np.ndarray | None = None, niter: int = 20, seed: int = 0) -> np.ndarray:
    """faiss k-means centroids ``(C, dim)``; ``init`` warm-starts (rows beyond it are sampled users)."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    if n_clusters > x.shape[0]:
        raise ValueError(f"kmeans: {n_clusters} clusters for only {x.shape[0]} users")
    km = faiss.Kmeans(x.shape[1], n_clusters, niter=niter, seed=seed, verbose=False, max_points_per_centroid=1 << 20)
    if init is None or len(init) == 0:
        km.train(x)
    else:
        start = np.asarray(init, dtype=np.float32)[:n_clusters]
        if start.shape[0] < n_clusters:
            extra = np.random.default_rng(seed).choice(x.shape[0], n_clusters - start.shape[0], replace=False)
            start = np.vstack([start, x[extra]])
        km.train(x, init_centroids=np.ascontiguousarray(start))
    return np.asarray(km.centroids, dtype=np.float32).reshape(n_clusters, x.shape[1])


def match_clusters(old: np.ndarray, old_ids: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Ids for ``new`` centroids: Hungarian matching to ``old`` on squared L2; unmatched get fresh ids."""
    old, new = np.asarray(old, np.float64), np.asarray(new, np.float64)
    ids = np.full(new.shape[0], -1, dtype=np.int64)
    if old.shape[0]:
        cost = ((new[:, None, :] - old[None, :, :]) ** 2).sum(axis=2)
        rows, cols = linear_sum_assignment(cost)
        ids[rows] = np.asarray(old_ids)[cols]
    free = ids < 0
    nxt = int(np.max(old_ids, initial=-1)) + 1
    ids[free] = np.arange(nxt, nxt + free.sum())
    return ids.astype(np.int32)


def centroid_shift(old: np.ndarray, old_ids: np.ndarray, new: np.ndarray, new_ids: np.ndarray) -> np.ndarray:
    """``‖μ'_c − μ_c‖ / s`` per new cluster (``inf`` for clusters without a previous centroid)."""
    old, new = np.asarray(old, np.float64), np.asarray(new, np.float64)
    shift = np.full(new.shape[0], np.inf)
    if old.shape[0] == 0:
        return shift
    if old.shape[0] > 1:
        dd = np.sqrt(((old[:, None, :] - old[None, :, :]) ** 2).sum(axis=2))
        np.fill_diagonal(dd, np.inf)
        spacing = float(np.median(dd.min(axis=1)))
    else:
        spacing = float(np.linalg.norm(old[0])) or 1.0
    spacing = spacing if spacing > 0 else 1.0
    order = np.argsort(old_ids)
    pos = np.searchsorted(np.asarray(old_ids)[order], new_ids)
    pos_c = np.minimum(pos, old.shape[0] - 1)
    found = np.asarray(old_ids)[order][pos_c] == new_ids
    prev = old[order][pos_c]
    shift[found] = np.linalg.norm(new[found] - prev[found], axis=1) / spacing
    return shift


def decay_factor(shift: np.ndarray, keep_shift: float = 0.25, reset_shift: float = 1.0) -> np.ndarray:
    """γ per cluster: 1 (keep) for shift ≤ keep_shift, 0 (reset) for shift ≥ reset_shift, linear between."""
    s = np.asarray(shift, dtype=np.float64)
    return np.clip((reset_shift - s) / (reset_shift - keep_shift), 0.0, 1.0)


def user_context(users: np.ndarray, centroids: np.ndarray, k: int, weighting: str = "inverse_distance",
                 temperature: float = 1.0, power: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Top-K cluster rows ``(n, K)`` and weights ``(n, K)`` (each row sums to 1) for user vectors.

    ``inverse_distance``: ``w_uc ∝ (δ_uc + ε)^-p`` (``power`` p), computed as ``((δ_u1 + ε)/(δ_uc + ε))^p``
    so large p cannot overflow; ``softmax``: ``w_uc ∝ exp(⟨u, μ_c⟩ / τ)``.
    """
    import faiss

    u = np.ascontiguousarray(users, dtype=np.float32)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    if weighting == "inverse_distance":
        index = faiss.IndexFlatL2(c.shape[1])
        index.add(c)
        dist2, rows = index.search(u, k)
        dist = np.sqrt(np.maximum(dist2.astype(np.float64), 0.0)) + 1e-6
        inv = (dist[:, :1] / dist) ** power          # nearest first: 1 for it, ≤ 1 for the others
        w = inv / inv.sum(axis=1, keepdims=True)
    elif weighting == "softmax":
        index = faiss.IndexFlatIP(c.shape[1])
        index.add(c)
        ip, rows = index.search(u, k)
        z = (ip - ip[:, :1]) / temperature
        w = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown weighting {weighting!r}")
    return rows.astype(np.int64), w.astype(np.float32)


def top_items(centroids: np.ndarray, item_vectors: np.ndarray, w: int) -> np.ndarray:
    """Rows ``(C, W)`` of the top-W items per centroid by inner product (exact)."""
    import faiss

    v = np.ascontiguousarray(item_vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(v.shape[1])
    index.add(v)
    _, rows = index.search(np.ascontiguousarray(centroids, dtype=np.float32), min(w, v.shape[0]))
    return rows


def build_params(user_ids: np.ndarray, user_vecs: np.ndarray, item_ids: np.ndarray, item_vecs: np.ndarray,
                 cfg: CandidateConfig, prev: BanditParams | None = None, user_path: np.ndarray | None = None,
                 popular: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[BanditParams, dict]:
    """A new version's parameters (version 0 until published) and a report of the matching.

    ``user_path``: one code per user (``USER_PATHS`` index; None: all personal); ``popular``:
    ``(items, counts)`` of the fallback table (None: no fallback).
    """
    t0 = time.perf_counter()
    init = None
    if prev is not None and prev.centroids.shape[1] == user_vecs.shape[1]:
        init = prev.centroids[np.argsort(prev.centroid_ids)]
    cen = kmeans(user_vecs, cfg.n_clusters, init=init, niter=cfg.niter, seed=cfg.seed)
    if init is not None:
        ids = match_clusters(prev.centroids, prev.centroid_ids, cen)
        shift = centroid_shift(prev.centroids, prev.centroid_ids, cen, ids)
    else:
        ids = np.arange(cfg.n_clusters, dtype=np.int32)
        shift = np.full(cfg.n_clusters, np.inf)
    rows, weights = user_context(user_vecs, cen, cfg.k, cfg.weighting, cfg.temperature, cfg.power)
    item_rows = top_items(cen, item_vecs, cfg.w)
    ec = np.repeat(ids, item_rows.shape[1])
    ei = np.asarray(item_ids, np.int64)[item_rows.ravel()]
    d = np.full(ec.size, cfg.lam)
    b = np.zeros(ec.size)
    gamma = decay_factor(shift, cfg.keep_shift, cfg.reset_shift)
    if prev is not None and prev.num_edges:
        g_edge = np.repeat(gamma, item_rows.shape[1])
        idx = prev.edge_index(ec, ei)
        has = (idx >= 0) & (g_edge > 0)
        d[has] = cfg.lam + g_edge[has] * (prev.d[idx[has]] - prev.lam)
        b[has] = g_edge[has] * prev.b[idx[has]]
    params = BanditParams.build(
        lam=cfg.lam, alpha=cfg.alpha, k=cfg.k, w=cfg.w, edge_cluster=ec, edge_item=ei, d=d, b=b,
        user=np.repeat(np.asarray(user_ids, np.int64), cfg.k), user_cluster=ids[rows].ravel(),
        user_weight=weights.ravel(), centroids=cen, centroid_ids=ids,
        user_path=None if user_path is None else np.repeat(np.asarray(user_path, np.int8), rows.shape[1]),
        popular_item=None if popular is None else popular[0], popular_count=None if popular is None else popular[1],
        watermark=prev.watermark if prev is not None else Watermark(),
        off_graph=cfg.off_graph, extra={"weighting": cfg.weighting, "power": cfg.power, "temperature": cfg.temperature})
    report = {
        "clusters": int(ids.size), "edges": params.num_edges, "users": int(len(user_ids)),
        "social_users": 0 if user_path is None else int((np.asarray(user_path) == 1).sum()),
        "popular_items": params.num_popular,
        "kept": int((gamma >= 1).sum()), "decayed": int(((gamma > 0) & (gamma < 1)).sum()),
        "reset": int(((gamma <= 0) & np.isfinite(shift)).sum()), "new_ids": int((ids > int(np.max(prev.centroid_ids, initial=-1))).sum()) if prev is not None else int(ids.size),
        "max_shift": float(np.max(shift[np.isfinite(shift)], initial=0.0)), "seconds": time.perf_counter() - t0,
    }
    return params, report


def add_fresh_items(params: BanditParams, items: Sequence[int], vectors: np.ndarray | None = None,
                    fresh_clusters: int = 8) -> BanditParams:
    """Link fresh items to clusters (d = λ, b = 0) without a rebuild; existing edges keep their statistics."""
    items = np.asarray(items, np.int64)
    cids = np.sort(params.centroid_ids)
    if vectors is None:
        ec, ei = np.repeat(cids, items.size), np.tile(items, cids.size)
    else:
        cen = params.centroids[np.argsort(params.centroid_ids)]
        top = top_items(np.asarray(vectors, np.float32), cen, min(fresh_clusters, cids.size))  # item → clusters
        ec, ei = cids[top].ravel(), np.repeat(items, top.shape[1])
    keep = params.edge_index(ec, ei) < 0
    ec, ei = ec[keep], ei[keep]
    return params.with_edges(
        np.concatenate([params.edge_cluster, ec]), np.concatenate([params.edge_item, ei]),
        np.concatenate([params.d, np.full(ec.size, params.lam)]), np.concatenate([params.b, np.zeros(ec.size)]),
    ).replace(extra={**params.extra, "fresh_items_added": int(np.unique(ei).size)})


def build_parser() -> argparse.ArgumentParser:
    return flags_parser(CandidateRunConfig, "python -m recsys.candidates", __doc__.split("\n")[0])


def parse_args(argv: Sequence[str] | None = None) -> CandidateRunConfig:
    return config_from(CandidateRunConfig, build_parser().parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = a.graph
    has_prev = current_version(a.params) is not None
    prev = load_params(a.params) if has_prev else None
    report: dict = {}
    if a.user_vectors and a.item_vectors:
        uid, uvec, upath = read_user_vectors(a.user_vectors)
        iid, ivec = read_vectors(a.item_vectors)
        seen = a.seen or seen_beside(a.user_vectors)
        popular = popular_items(seen, cfg.popular_n) if seen is not None and cfg.popular_n else None
        if popular is None:
            log.warning("no popular items (seen table: %s, --popular %d): users without a context get 404", seen,
                        cfg.popular_n)
        params, report = build_params(uid, uvec, iid, ivec, cfg, prev, user_path=upath, popular=popular)
    elif prev is not None and a.fresh_items:
        params = prev
    else:
        build_parser().error("--user-vectors and --item-vectors are required (or --fresh-items with an existing "
                             "version)")
    if a.fresh_items:
        fid, fvec = read_fresh_items(a.fresh_items)
        params = add_fresh_items(params, fid, fvec, cfg.fresh_clusters)
        report["fresh_items"] = int(fid.size)
    merged = load_merged_event_ids(a.params) if has_prev else None
    out = publish_params(a.params, params, merged_events=merged, producer="recsys.candidates",
                         meta={"config": asdict(cfg), "report": report, "previous_version": prev.version if prev else None},
                         expect_current=prev.version if prev else None, previous_version=prev.version if prev else None)
    log.info("published version %d: %s", out.version, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
