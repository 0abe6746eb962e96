"""Structural properties of a simple digraph: clustering, connected components, k-cores.

All on numpy/scipy arrays (``src, dst`` without self-loops or duplicates, ids ``0..n-1``):

* **Clustering** of the *underlying undirected* graph ``U`` (an edge ``{u, v}`` when ``u -> v`` or
  ``v -> u``), networkx's ``average_clustering(G.to_undirected())`` convention: local
  ``c_v = 2 t_v / (d_v (d_v - 1))`` (``t_v`` triangles at ``v``, ``d_v`` its degree in ``U``; 0 when
  ``d_v < 2``), the average over *all* nodes, the global transitivity ``3 T / W`` (triangles over
  wedges = ``sum_v t_v / sum_v d_v (d_v - 1) / 2``) and the mean ``c_v`` per degree bin ``[2^b, 2^(b+1))``.
  *Exact* when the degree-ordered orientation of ``U`` has at most ``wedge_budget`` 2-paths
  (the edge-iterator / "forward" algorithm, Schank & Wagner 2005: ``O(m^1.5)`` worst case), else
  *sampled*: per degree bin up to ``nodes_per_bin`` nodes, ``wedges_per_node`` random neighbour
  pairs each (stratified estimate of the average, with its standard error), and ``transitivity_wedges``
  wedges drawn uniformly for the transitivity (Seshadhri, Pinar & Kolda 2013; standard error
  ``sqrt(p (1 - p) / M)``).
* **Components**: weakly and strongly connected (``scipy.sparse.csgraph``, Pearce's algorithm), exact.
* **k-cores** of ``U`` (Batagelj & Zaversnik 2003, run as batched peeling: each round removes every
  node of degree ``<= k`` at once), exact: coreness per node, the degeneracy and the size of every k-core.

>>> import numpy as np
>>> src, dst = np.array([0, 1, 2, 2]), np.array([1, 2, 0, 3])   # a directed triangle plus a pendant
>>> c = clustering(src, dst, 4)
>>> round(c.average, 4), round(c.transitivity, 4), c.exact
(0.5833, 0.6, True)
>>> core_numbers(*undirected_csr(src, dst, 4)).tolist()
[2, 2, 2, 1]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components


def unique_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``x`` and their counts (sort-based: numpy 2.4's hashed ``np.unique`` is
    ~40x slower on 10^6 distinct int64 values).

    >>> [a.tolist() for a in unique_counts(np.array([3, 1, 3]))]
    [[1, 3], [1, 2]]
    """
    s = np.sort(np.asarray(x).ravel())
    if s.size == 0:
        return s, np.zeros(0, np.int64)
    start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    return s[start], np.diff(np.r_[start, s.size])


def undirected_csr(src: np.ndarray, dst: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` of the underlying simple undirected graph, both directions, rows sorted."""
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    a, b = np.minimum(src, dst), np.maximum(src, dst)
    key, _ = unique_counts(a * np.int64(n) + b)
    a, b = key // n, key % n
    # rows b then rows a: scipy's counting sort keeps input order inside a row, so every row comes out
    # sorted (its neighbours below it, ascending, then those above it, ascending)
    m = sp.csr_array((np.ones(2 * key.size, np.int8), (np.r_[b, a], np.r_[a, b])), shape=(n, n))
    return m.indptr.astype(np.int64), m.indices.astype(np.int64)


def gather(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every row in ``rows``, the positions of its entries: ``(index into rows, position)``."""
    lo = indptr[rows]
    cnt = indptr[rows + 1] - lo
    owner = np.repeat(np.arange(rows.size), cnt)
    pos = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt - lo, cnt)
    return owner, pos


def _is_edge(keys: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Membership of the keys ``q`` in the sorted array ``keys``."""
    if keys.size == 0:
        return np.zeros(q.shape, bool)
    pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    return keys[pos] == q


def degree_bins(deg: np.ndarray) -> np.ndarray:
    """Bin ``b`` of each degree: ``2^b <= d < 2^(b+1)`` (``-1`` for ``d = 0``)."""
    out = np.full(deg.shape, -1, np.int64)
    pos = deg > 0
    out[pos] = np.floor(np.log2(deg[pos])).astype(np.int64)
    return out


@dataclass(frozen=True)
class Clustering:
    """Clustering of the underlying undirected graph (module docstring).

    ``by_degree``: ``{"bin_lo": [...], "nodes": [...], "mean": [...]}`` for bins ``[lo, 2 lo)`` with
    ``lo >= 2``. ``average_se``/``transitivity_se`` are 0 when exact.
    """

    average: float
    transitivity: float
    exact: bool
    average_se: float = 0.0
    transitivity_se: float = 0.0
    triangles: int | None = None
    oriented_wedges: int = 0
    by_degree: dict = field(default_factory=dict)


def oriented_wedges(indptr: np.ndarray, indices: np.ndarray) -> tuple[int, np.ndarray]:
    """2-paths of the degree-ordered orientation of ``U`` (the exact algorithm's work) and node ranks."""
    n = indptr.size - 1
    deg = np.diff(indptr)
    rank = np.empty(n, np.int64)
    rank[np.lexsort((np.arange(n), deg))] = np.arange(n)
    rows = np.repeat(np.arange(n), deg)
    fwd = rank[rows] < rank[indices]
    out_l = np.bincount(rows[fwd], minlength=n)
    in_l = deg - out_l
    return int((out_l * in_l).sum()), rank


def triangles_per_node(indptr: np.ndarray, indices: np.ndarray, rank: np.ndarray,
                       chunk: int = 4_000_000) -> np.ndarray:
    """Exact triangles at every node: every 2-path ``u -> v -> w`` of the orientation (``rank`` increasing)
    closed by ``u -> w`` is one triangle, credited to ``u``, ``v`` and ``w``. Work in chunks of ``chunk`` paths."""
    n = indptr.size - 1
    deg = np.diff(indptr)
    rows = np.repeat(np.arange(n), deg)
    fwd = rank[rows] < rank[indices]
    lu, lv = rows[fwd], indices[fwd]  # sorted by (u, v): the CSR of the orientation, row-major keys
    lptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(lu, minlength=n), out=lptr[1:])
    keys = lu * np.int64(n) + lv
    work = np.cumsum(np.diff(lptr)[lv])
    t = np.zeros(n, np.int64)
    start = 0
    while start < lu.size:
        stop = max(int(np.searchsorted(work, (work[start - 1] if start else 0) + chunk, side="right")), start + 1)
        u, v = lu[start:stop], lv[start:stop]
        owner, pos = gather(lptr, v)
        w = lv[pos]
        closed = _is_edge(keys, u[owner] * np.int64(n) + w)
        for x in (u[owner][closed], v[owner][closed], w[closed]):
            t += np.bincount(x, minlength=n)
        start = stop
    return t


def _by_degree(deg: np.ndarray, c_mean_by_bin: dict[int, tuple[int, float]]) -> dict:
    bins = sorted(b for b in c_mean_by_bin if b >= 1)
    return {"bin_lo": [int(2 ** b) for b in bins], "nodes": [c_mean_by_bin[b][0] for b in bins],
            "mean": [c_mean_by_bin[b][1] for b in bins]}


def clustering(src: np.ndarray, dst: np.ndarray, n: int, wedge_budget: int = 30_000_000, nodes_per_bin: int = 4000,
               wedges_per_node: int = 32, transitivity_wedges: int = 400_000, seed: int = 0,
               csr: tuple[np.ndarray, np.ndarray] | None = None) -> Clustering:
    """Average clustering, transitivity and clustering by degree of ``U`` (exact or sampled, see module doc)."""
    indptr, indices = csr if csr is not None else undirected_csr(src, dst, n)
    deg = np.diff(indptr)
    pairs = deg * (deg - 1) // 2
    total_wedges = int(pairs.sum())
    if n == 0 or total_wedges == 0:
        return Clustering(0.0, 0.0, True, triangles=0, by_degree=_by_degree(deg, {}))
    work, rank = oriented_wedges(indptr, indices)
    bins = degree_bins(deg)
    if work <= wedge_budget:
        t = triangles_per_node(indptr, indices, rank)
        c = np.where(pairs > 0, t / np.maximum(pairs, 1), 0.0)
        per_bin = {int(b): (int((bins == b).sum()), float(c[bins == b].mean())) for b in np.unique(bins[bins >= 1])}
        return Clustering(float(c.mean()), float(t.sum() / total_wedges), True, triangles=int(t.sum() // 3),
                          oriented_wedges=work, by_degree=_by_degree(deg, per_bin))
    rng = np.random.default_rng(seed)
    keys = np.repeat(np.arange(n, dtype=np.int64), deg) * np.int64(n) + indices
    avg, var, per_bin = 0.0, 0.0, {}
    for b in np.unique(bins[bins >= 1]):
        members = np.flatnonzero(bins == b)
        nb = members.size
        pick = members if nb <= nodes_per_bin else rng.choice(members, nodes_per_bin, replace=False)
        est = _local_estimates(indptr, indices, keys, pick, wedges_per_node, rng)
        mean = float(est.mean())
        # no finite-population correction: conservative, it keeps the noise of the pair draws inside a node
        v = float(est.var(ddof=1)) / pick.size if pick.size > 1 else 0.0
        avg += nb / n * mean
        var += (nb / n) ** 2 * v
        per_bin[int(b)] = (int(nb), mean)
    centers = rng.choice(n, transitivity_wedges, p=pairs / total_wedges)
    closed = _local_estimates(indptr, indices, keys, centers, 1, rng)
    p = float(closed.mean())
    return Clustering(avg, p, False, float(np.sqrt(var)), float(np.sqrt(p * (1 - p) / transitivity_wedges)),
                      oriented_wedges=work, by_degree=_by_degree(deg, per_bin))


def _local_estimates(indptr, indices, keys, nodes, k, rng) -> np.ndarray:
    """Fraction of ``k`` random neighbour pairs (with replacement) of each node that are adjacent."""
    n = indptr.size - 1
    d = np.repeat(indptr[nodes + 1] - indptr[nodes], k)
    base = np.repeat(indptr[nodes], k)
    i = (rng.random(d.size) * d).astype(np.int64)
    j = (rng.random(d.size) * (d - 1)).astype(np.int64)
    j += j >= i
    a, b = indices[base + i], indices[base + j]
    return _is_edge(keys, a * np.int64(n) + b).reshape(-1, k).mean(axis=1)


@dataclass(frozen=True)
class Components:
    """Sizes of the weakly and strongly connected components (exact; SCC fields None when not computed)."""

    wcc_count: int
    wcc_largest: int
    scc_count: int | None
    scc_largest: int | None
    wcc_sizes: dict = field(default_factory=dict)
    scc_sizes: dict = field(default_factory=dict)


def size_histogram(sizes: np.ndarray) -> dict:
    """``{"size": [...], "count": [...]}``: how many components have each size."""
    s, c = unique_counts(sizes)
    return {"size": s.tolist(), "count": c.tolist()}


def components(src: np.ndarray, dst: np.ndarray, n: int) -> Components:
    """Weakly and strongly connected components of the digraph ``src -> dst`` on ``n`` nodes."""
    if n == 0:
        return Components(0, 0, 0, 0)
    a = sp.csr_array((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    out = []
    for kind in ("weak", "strong"):
        k, lab = connected_components(a, directed=True, connection=kind)
        out.append((int(k), np.bincount(lab, minlength=k)))
    (wk, ws), (sk, ss) = out
    return Components(wk, int(ws.max()), sk, int(ss.max()), size_histogram(ws), size_histogram(ss))


def core_numbers(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Coreness of every node of an undirected simple graph (CSR, both directions), by batched peeling.

    At level ``k`` every live node of degree ``<= k`` is removed at once and its live neighbours lose
    one degree per removed neighbour, until none is left at ``<= k``; those nodes have coreness ``k``.
    Work ``O(m + n_live * levels)`` (the live set is compacted at every level).
    """
    n = indptr.size - 1
    deg = np.diff(indptr).astype(np.int64)
    core = np.zeros(n, np.int64)
    alive = np.ones(n, bool)
    live = np.arange(n)
    k = 0
    while live.size:
        k = max(k, int(deg[live].min()))
        front = live[deg[live] <= k]
        while front.size:
            alive[front] = False
            core[front] = k
            _, pos = gather(indptr, front)
            nb = indices[pos]
            nb = nb[alive[nb]]
            if nb.size == 0:
                break
            u, c = unique_counts(nb)
            deg[u] -= c
            front = u[deg[u] <= k]
        live = live[alive[live]]
        k += 1
    return core


@dataclass(frozen=True)
class Cores:
    """k-core decomposition of ``U``: ``sizes[k]`` nodes have coreness ``>= k`` (``k = 0..degeneracy``)."""

    degeneracy: int
    mean_coreness: float
    sizes: list = field(default_factory=list)


def cores(src: np.ndarray, dst: np.ndarray, n: int, csr: tuple[np.ndarray, np.ndarray] | None = None) -> Cores:
    """k-core sizes of the underlying undirected graph (exact)."""
    if n == 0:
        return Cores(0, 0.0, [0])
    indptr, indices = csr if csr is not None else undirected_csr(src, dst, n)
    c = core_numbers(indptr, indices)
    sizes = np.cumsum(np.bincount(c)[::-1])[::-1]
    return Cores(int(c.max()), float(c.mean()), sizes.tolist())
