"""Path properties of a simple digraph: the distance distribution (effective diameter) and PageRank.

* **Distances** follow out-edges. From ``s`` sources (every node when ``n <= sources``: exact;
  otherwise ``s`` nodes drawn uniformly without replacement) a level-synchronous BFS runs 64 sources
  at a time, one bit per source in a ``uint64`` word per node (a multi-source BFS: each level is one
  pass over the out-edges of the nodes on the frontier). ``hist[d]`` counts the (source, target)
  pairs at distance ``d >= 1``; targets that a source cannot reach are left out. From it:
  the **effective diameter** (Palmer, Gibbons & Faloutsos 2002; Leskovec et al. 2005) is the
  linearly interpolated distance ``d_90`` at which the cumulative fraction ``F(d)`` of reachable
  pairs reaches 0.9 — with ``D`` the smallest integer with ``F(D) >= 0.9``,
  ``d_90 = D - 1 + (0.9 - F(D - 1)) / (F(D) - F(D - 1))``; the **mean distance** among reachable
  pairs; the **reachable fraction** ``sum(hist) / (s (n - 1))``; the largest distance seen (a lower
  bound of the diameter). With sampled sources the estimate is unbiased for the pair distribution;
  its standard error is estimated from ``groups`` disjoint groups of sources (batch means).
* **PageRank** (Brin & Page 1998), networkx's convention: ``x <- a (x P + (dangling mass) / n) + (1 - a) / n``
  with damping ``a = 0.85``, dangling nodes spreading uniformly, until the L1 change is below ``tol``.
  Summaries of the scale-free ``n · PR`` (mean 1): quantiles, maximum, the share of the top 1 % of nodes.

>>> import numpy as np
>>> src, dst = np.array([0, 1, 2]), np.array([1, 2, 3])   # a directed path 0 -> 1 -> 2 -> 3
>>> d = distances(src, dst, 4)
>>> d.hist, round(d.effective_diameter, 3), d.exact
([0, 3, 2, 1], 2.4, True)
>>> round(float(pagerank(src, dst, 4).sum()), 6)
1.0
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


def effective_diameter(hist: np.ndarray, q: float = 0.9) -> float:
    """Interpolated ``q``-quantile of the distance distribution ``hist[d]`` (``d >= 1``; ``hist[0]`` ignored).

    >>> effective_diameter(np.array([0, 5, 4, 1]))
    2.0
    """
    h = np.asarray(hist, np.float64).copy()
    h[0] = 0.0
    total = h.sum()
    if total == 0:
        return 0.0
    cdf = np.cumsum(h) / total
    d = int(np.searchsorted(cdf, q - 1e-12))
    lo = cdf[d - 1] if d >= 1 else 0.0
    return float(d - 1 + (q - lo) / (cdf[d] - lo)) if cdf[d] > lo else float(d)


@dataclass(frozen=True)
class Distances:
    """Distance distribution over (source, reachable target) pairs along out-edges (module docstring)."""

    hist: list
    sources: int
    exact: bool
    effective_diameter: float
    mean_distance: float
    reachable_fraction: float
    max_distance: int
    effective_diameter_se: float = 0.0
    mean_distance_se: float = 0.0


def _summary(hist: np.ndarray, sources: int, n: int) -> tuple[float, float, float]:
    tot = hist[1:].sum()
    mean = float((np.arange(hist.size) * hist).sum() / tot) if tot else 0.0
    return effective_diameter(hist), mean, float(tot / max(sources * (n - 1), 1))


def _bfs_batch(indptr: np.ndarray, indices: np.ndarray, sources: np.ndarray, groups: np.ndarray,
               n_groups: int) -> np.ndarray:
    """Per-group pair counts ``out[g, d]`` of one BFS of up to 64 sources (bit ``i`` = ``sources[i]``)."""
    n = indptr.size - 1
    bits = np.left_shift(np.uint64(1), np.arange(sources.size, dtype=np.uint64))
    masks = np.zeros(n_groups, np.uint64)
    np.bitwise_or.at(masks, groups, bits)
    seen = np.zeros(n, np.uint64)
    np.bitwise_or.at(seen, sources, bits)
    front_nodes = np.sort(sources)
    front = seen[front_nodes]
    rows: list[np.ndarray] = [np.zeros(n_groups, np.int64)]
    acc = np.zeros(n, np.uint64)
    while front_nodes.size:
        lo, hi = indptr[front_nodes], indptr[front_nodes + 1]
        cnt = hi - lo
        pos = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt - lo, cnt)
        acc[:] = 0
        np.bitwise_or.at(acc, indices[pos], np.repeat(front, cnt))  # 6x faster than sorting by target
        acc &= ~seen
        front_nodes = np.flatnonzero(acc)
        front = acc[front_nodes]
        seen[front_nodes] |= front
        rows.append(np.array([int(np.bitwise_count(front & m).sum()) for m in masks], np.int64))
    return np.stack(rows, axis=1)


def source_sample(n: int, sources: int, seed: int) -> np.ndarray:
    """The BFS sources: every node when ``n <= sources``, else ``sources`` distinct uniform nodes (sorted)."""
    return np.arange(n) if n <= sources else np.sort(np.random.default_rng(seed).choice(n, sources, replace=False))


def distances(src: np.ndarray, dst: np.ndarray, n: int, sources: int = 256, groups: int = 8,
              seed: int = 0, source_ids: np.ndarray | None = None) -> Distances:
    """Distance distribution from ``sources`` BFS sources (all nodes when ``n <= sources``: exact).

    ``source_ids``: the sources themselves (e.g. :func:`source_sample` mapped through a relabelling), in the
    order that assigns them to batches and groups."""
    if n < 2:
        return Distances([0], n, True, 0.0, 0.0, 0.0, 0)
    a = sp.csr_array((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    a.sort_indices()
    indptr, indices = a.indptr.astype(np.int64), a.indices.astype(np.int64)
    exact = n <= sources
    srcs = source_sample(n, sources, seed) if source_ids is None else np.asarray(source_ids, np.int64)
    g_of = np.arange(srcs.size) % groups
    per_group: list[np.ndarray] = []
    for lo in range(0, srcs.size, 64):
        per_group.append(_bfs_batch(indptr, indices, srcs[lo:lo + 64], g_of[lo:lo + 64], groups))
    return distances_from_groups(per_group, int(srcs.size), n, exact)


def distances_from_groups(per_group: list, sources: int, n: int, exact: bool) -> Distances:
    """:class:`Distances` from per-batch ``(groups, levels)`` pair counts (the batch-means standard errors)."""
    width = max(x.shape[1] for x in per_group)
    gh = sum(np.pad(x, ((0, 0), (0, width - x.shape[1]))) for x in per_group)
    last = np.flatnonzero(gh.sum(axis=0))
    gh = gh[:, : (last[-1] + 1 if last.size else 1)]
    hist = gh.sum(axis=0)
    eff, mean, reach = _summary(hist, sources, n)
    se_eff = se_mean = 0.0
    if not exact and gh.shape[0] > 1:
        per = np.array([_summary(h, 1, n)[:2] for h in gh if h[1:].sum() > 0])
        if len(per) > 1:
            se_eff, se_mean = (per.std(axis=0, ddof=1) / np.sqrt(len(per))).tolist()
    return Distances(hist.astype(int).tolist(), sources, exact, eff, mean, reach, hist.size - 1,
                     float(se_eff), float(se_mean))


def pagerank(src: np.ndarray, dst: np.ndarray, n: int, damping: float = 0.85, tol: float = 1e-9,
             max_iter: int = 300) -> np.ndarray:
    """PageRank vector (sums to 1) by power iteration; dangling nodes spread uniformly (networkx's convention)."""
    if n == 0:
        return np.zeros(0)
    out_deg = np.bincount(src, minlength=n).astype(np.float64)
    w = 1.0 / np.maximum(out_deg, 1.0)
    pt = sp.csr_array((w[src], (dst, src)), shape=(n, n))  # P transposed: row v sums x[u] / d_out(u) over u -> v
    dangling = out_deg == 0
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        new = damping * (pt @ x + x[dangling].sum() / n) + (1.0 - damping) / n
        err = np.abs(new - x).sum()
        x = new
        if err < tol:
            break
    return x / x.sum()


@dataclass(frozen=True)
class PageRankSummary:
    """Distribution of ``n · PR`` (mean 1): quantiles, maximum, share of the top 1 % and a log-binned CCDF."""

    quantiles: dict
    max: float
    top1_share: float
    gini: float
    ccdf: dict = field(default_factory=dict)


QUANTILES = (0.1, 0.5, 0.9, 0.99, 0.999)


def pagerank_summary(pr: np.ndarray) -> PageRankSummary:
    """Summaries of a PageRank vector (see :class:`PageRankSummary`)."""
    n = pr.size
    if n == 0:
        return PageRankSummary({str(q): 0.0 for q in QUANTILES}, 0.0, 0.0, 0.0)
    x = np.sort(pr * n)
    qs = {str(q): float(np.quantile(x, q)) for q in QUANTILES}
    top = max(1, int(np.ceil(0.01 * n)))
    gini = float(1.0 - 2.0 * np.sum(np.cumsum(x) / x.sum()) / n + 1.0 / n)
    grid = np.logspace(np.log10(x[0]), np.log10(x[-1]), 40) if x[-1] > x[0] else x[:1]
    ccdf = 1.0 - np.searchsorted(x, grid, side="left") / n
    return PageRankSummary(qs, float(x[-1]), float(x[-top:].sum() / x.sum()), gini,
                           {"x": grid.tolist(), "ccdf": ccdf.tolist()})
