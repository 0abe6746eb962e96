"""Synthetic Diag-LinUCB parameter versions for service tests, benchmarks and the demo traffic.

Each cluster links ``w`` items drawn without replacement from ``n_items`` (popular items more
often, Zipf-like); each user gets ``k`` distinct clusters with weights ``softmax`` of random
similarities (summing to 1, descending) — the shape the candidate-graph builder produces.

>>> p = synthetic_params(n_clusters=4, n_items=50, n_users=10, w=5, k=3, seed=0)
>>> p.num_edges, int(p.user.size), round(float(p.user_weight[:3].sum()), 5)
(20, 30, 1.0)
"""
from __future__ import annotations

import numpy as np

from recsys.bandits.params import BanditParams


def synthetic_params(n_clusters: int, n_items: int, n_users: int, w: int, k: int = 3, lam: float = 1.0,
                     alpha: float = 0.5, seed: int = 0, dim: int = 8) -> BanditParams:
    """A random but well-formed :class:`BanditParams` (``d = λ``, ``b = 0``: nothing learnt yet)."""
    if not (1 <= w <= n_items and 1 <= k <= n_clusters):
        raise ValueError("need 1 <= w <= n_items and 1 <= k <= n_clusters")
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.6
    pop /= pop.sum()
    # w distinct items per cluster: Gumbel top-w over log-popularity (sampling without replacement),
    # a block of clusters at a time to bound memory
    logp = np.log(pop)[None, :]
    step = max(1, 4_000_000 // n_items)
    items = np.concatenate([np.argpartition(-(logp + rng.gumbel(size=(min(step, n_clusters - s), n_items))), w - 1, axis=1)[:, :w]
                            for s in range(0, n_clusters, step)])
    edge_cluster = np.repeat(np.arange(n_clusters, dtype=np.int32), w)
    # k distinct clusters per user: base + j·stride (mod C) with 1 <= stride <= C/k
    base = rng.integers(0, n_clusters, n_users)
    stride = rng.integers(1, max(1, n_clusters // k) + 1, n_users)
    ucl = (base[:, None] + np.arange(k)[None, :] * stride[:, None]) % n_clusters
    sims = np.sort(rng.normal(size=(n_users, k)), axis=1)[:, ::-1] * 2.0
    wts = np.exp(sims - sims[:, :1])
    wts /= wts.sum(axis=1, keepdims=True)
    return BanditParams.build(lam=lam, alpha=alpha, k=k, w=w, edge_cluster=edge_cluster, edge_item=items.ravel(),
                              user=np.repeat(np.arange(n_users, dtype=np.int64), k), user_cluster=ucl.ravel(),
                              user_weight=wts.ravel(), centroids=rng.normal(size=(n_clusters, dim)).astype(np.float32))
