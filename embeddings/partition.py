"""Size-bounded graph partitioning for DistNE: capped label propagation, quotient graph, balanced parts.

Design (docs/algorithms.md §1, measured — see benchmarks/README.md ``## embedding``): a literal
"border subgraph" of a social graph is nearly the whole graph, so every part's external structure is
represented by **proxy nodes**: the neighbouring *clusters* of other parts, contracted into
super-nodes. The pipeline (``embeddings.spark`` runs the same steps on DataFrames):

1. **Clusters** — size-capped label propagation: every node starts in its own label; in round ``r``
   the nodes with ``v ≡ r (mod 2)`` adopt the label of largest total edge weight among their
   neighbours (ties → smallest label), only if it beats their own label's weight and the label had
   fewer than ``cap`` members at the start of the round. Labels larger than ``cap`` are then split
   by rank of node id. ``O(|E|)`` per round.
2. **Quotient graph** ``Q``: one node per cluster, edge weights = summed weights between clusters.
3. **Parts** — recursive bisection of ``Q`` at the size-weighted median of its first principal
   coordinate (of a given cluster embedding), until every part has at most ``max_part_nodes`` nodes.
4. **Part subgraph** ``H_i`` = the part at full resolution + the rest of the graph contracted: the
   part's nodes and internal edges, one proxy super-node per cluster *outside* the part, a cut edge
   ``(v, u)`` as ``(v, cluster(u))``, and the quotient edges among the outside clusters (weights
   summed). ``|V(H_i)| = |P_i| + #outside clusters ≤ M`` and
   ``Σ_i |E(H_i)| ≤ |E_internal| + |E_cut| + k·|E(Q)|``. Every pair of parts shares the super-nodes
   of the clusters outside both, which anchor the alignment in :mod:`embeddings.fusion`.

>>> import scipy.sparse as sp
>>> blocks = sp.block_diag([np.ones((5, 5))] * 4).tocsr(); blocks.setdiag(0); blocks.eliminate_zeros()
>>> labels = label_propagation(blocks, cap=5, rounds=4)
>>> len(np.unique(labels))
4
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


def label_propagation(adj: sp.spmatrix, cap: int, rounds: int = 4, ids: np.ndarray | None = None) -> np.ndarray:
    """Size-capped label propagation (see module docstring); returns dense cluster ids ``0..n_c-1``.

    ``ids`` are the nodes' global ids (default ``0..n-1``): initial labels, the parity rule and
    tie-breaks use them, so a relabelled subgraph clusters exactly like the Spark run.
    """
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    a = sp.coo_matrix(adj)
    n = a.shape[0]
    ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    big = int(ids.max(initial=0)) + 1
    labels = ids.copy()
    for r in range(rounds):
        sizes = np.bincount(labels, minlength=big)
        v, lab, score = label_scores(a.row, labels[a.col], a.data, n, big)
        own = lab == labels[v]
        own_score = np.zeros(n)
        own_score[v[own]] = score[own]
        ok = (~own) & (sizes[lab] < cap) & (ids[v] % 2 == r % 2)
        v, lab, score = v[ok], lab[ok], score[ok]
        if len(v) == 0:
            continue
        v, lab, score = best_label(v, lab, score)
        move = score > own_score[v]
        labels[v[move]] = lab[move]
    return split_oversized(labels, cap, ids)


def label_scores(v: np.ndarray, lab: np.ndarray, w: np.ndarray, n: int, big: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(node, label, total weight)`` over the edges ``v → neighbour of label lab``, sorted by (node, label).

    A CSR build sums the duplicates (row counting sort, then a sort within rows): 4.4× faster than ``np.unique``
    of ``v·big + lab`` on R-MAT 2^20's 31M directed edges (1.5 s vs 6.7 s; the same triples)."""
    s = sp.csr_matrix((np.asarray(w, np.float64), (v, lab)), shape=(n, big))
    s.sum_duplicates()
    s.sort_indices()
    return np.repeat(np.arange(n, dtype=np.int64), np.diff(s.indptr)), s.indices.astype(np.int64), s.data


def best_label(v: np.ndarray, lab: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ``(node, label, score)`` per node: the highest score, ties to the smallest label. The input is sorted
    by (node, label) (:func:`label_scores`), so the winner is the first maximum of each node's run: no sort."""
    if len(v) == 0:
        return v, lab, score
    new = np.r_[True, v[1:] != v[:-1]]
    seg = np.cumsum(new) - 1
    top = np.flatnonzero(score == np.maximum.reduceat(score, np.flatnonzero(new))[seg])
    first = top[np.r_[True, seg[top][1:] != seg[top][:-1]]]
    return v[first], lab[first], score[first]


def split_oversized(labels: np.ndarray, cap: int, ids: np.ndarray | None = None) -> np.ndarray:
    """Split every label with more than ``cap`` members by the rank of node id; renumber densely
    in (label, sub-block) order."""
    n = len(labels)
    ids = np.arange(n) if ids is None else ids
    order = np.lexsort((ids, labels))
    sl = labels[order]
    start = np.r_[0, np.flatnonzero(sl[1:] != sl[:-1]) + 1] if n else np.zeros(0, np.int64)
    rank = np.arange(n) - np.repeat(start, np.diff(np.r_[start, n]))
    sub = np.empty(n, np.int64)
    sub[order] = rank // cap
    _, dense = np.unique(labels * (n // max(cap, 1) + 1) + sub, return_inverse=True)
    return dense.astype(np.int64)


def quotient_graph(adj: sp.spmatrix, labels: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(Q, sizes)``: cluster adjacency with summed weights (no self-loops) and cluster sizes."""
    nc = int(labels.max()) + 1
    a = sp.coo_matrix(adj)
    q = sp.coo_matrix((a.data, (labels[a.row], labels[a.col])), shape=(nc, nc)).tocsr()
    q.setdiag(0)
    q.eliminate_zeros()
    return q.astype(np.float32), np.bincount(labels, minlength=nc)


def bisect_parts(coords: np.ndarray, sizes: np.ndarray, max_part_nodes: int) -> np.ndarray:
    """Recursive bisection of clusters at the size-weighted median of the top principal coordinate.

    Returns the part of each cluster (dense ``0..k-1``); every part's total size ≤ ``max_part_nodes``
    unless a single cluster is larger.
    """
    if max_part_nodes < int(sizes.max(initial=0)):
        raise ValueError(f"max_part_nodes={max_part_nodes} is smaller than the largest cluster ({sizes.max()})")
    part = np.zeros(len(sizes), np.int64)
    stack = [np.arange(len(sizes))]
    out = []
    while stack:
        idx = stack.pop()
        if sizes[idx].sum() <= max_part_nodes or len(idx) == 1:
            out.append(idx)
            continue
        c = coords[idx] - coords[idx].mean(axis=0)
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        proj = c @ vt[0]
        order = idx[np.lexsort((idx, proj))]
        cum = np.cumsum(sizes[order])
        cut = int(np.searchsorted(cum, cum[-1] / 2.0))
        cut = min(max(cut, 1), len(order) - 1)
        stack += [order[cut:], order[:cut]]
    for p, idx in enumerate(sorted(out, key=lambda i: int(i.min()))):
        part[idx] = p
    return part


@dataclass(frozen=True)
class PartSubgraph:
    """One part's embedded subgraph ``H_i``: local rows ``[nodes..., proxies...]`` and its adjacency."""

    part: int
    nodes: np.ndarray     # global node ids of the part (sorted)
    proxies: np.ndarray   # ids of all clusters outside the part (sorted): the contracted rest
    adjacency: sp.csr_matrix

    def __post_init__(self) -> None:
        k = len(self.nodes) + len(self.proxies)
        if self.adjacency.shape != (k, k):
            raise ValueError(f"part {self.part}: adjacency {self.adjacency.shape} != ({k}, {k})")


def build_part_subgraph(part: int, nodes: np.ndarray, proxies: np.ndarray, internal: tuple, cut: tuple,
                        coarse: tuple) -> PartSubgraph:
    """Assemble ``H_i`` from edge lists given as ``(a, b, w)`` triples of arrays (each undirected edge once):

    * ``internal``: node–node edges inside the part;
    * ``cut``: ``(node, cluster, w)`` — a cut edge ``(v, u)`` contracted to ``u``'s cluster;
    * ``coarse``: ``(cluster, cluster, w)`` — quotient edges between clusters outside the part.

    Duplicate pairs are summed, in an order that does not depend on the input's (so float weights give the same
    bits on every run). Used identically by the numpy reference and inside Spark tasks.
    """
    nodes, proxies = np.asarray(nodes, np.int64), np.asarray(proxies, np.int64)
    k0 = len(nodes)
    r = np.r_[np.searchsorted(nodes, internal[0]), np.searchsorted(nodes, cut[0]),
              k0 + np.searchsorted(proxies, coarse[0])]
    c = np.r_[np.searchsorted(nodes, internal[1]), k0 + np.searchsorted(proxies, cut[1]),
              k0 + np.searchsorted(proxies, coarse[1])]
    w = np.r_[internal[2], cut[2], coarse[2]].astype(np.float32)
    k = k0 + len(proxies)
    keep = r != c
    r, c, w = r[keep], c[keep], w[keep]
    if not np.array_equal(w, np.rint(w)):  # integer weights sum exactly in any order; others in one canonical order,
        canon = np.lexsort((w, c, r))  # whatever order a shuffle delivered them in (3.7 s per 7M edges: not paid
        r, c, w = r[canon], c[canon], w[canon]  # by unweighted graphs)
    adj = sp.coo_matrix((np.r_[w, w], (np.r_[r, c], np.r_[c, r])), shape=(k, k)).tocsr()
    return PartSubgraph(part, nodes, proxies, adj)


def heaviest_edges(a: np.ndarray, b: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Mask of the edges ``(a, b, w)`` (each undirected edge once) that are among the ``k`` heaviest edges of
    at least one of their ends (ties: the earlier edge). Every node keeps ``min(k, degree)`` of its edges."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    e = len(a)
    ends, ww, eid = np.r_[a, b], np.r_[w, w], np.r_[np.arange(e), np.arange(e)]
    order = np.lexsort((eid, -ww, ends))
    se = ends[order]
    start = np.r_[0, np.flatnonzero(se[1:] != se[:-1]) + 1] if e else np.zeros(0, np.int64)
    rank = np.arange(2 * e) - np.repeat(start, np.diff(np.r_[start, 2 * e]))
    keep = np.zeros(e, bool)
    keep[eid[order][rank < k]] = True
    return keep


def keep_heaviest_edges(q: sp.coo_matrix, k: int | None) -> sp.coo_matrix:
    """The upper-triangle quotient ``q`` with only the edges among the ``k`` heaviest of one of their clusters
    (:func:`heaviest_edges`); ``q`` itself when ``k`` is ``None``."""
    if k is None:
        return q
    keep = heaviest_edges(q.row, q.col, q.data, k)
    return sp.coo_matrix((q.data[keep], (q.row[keep], q.col[keep])), shape=q.shape)


def heaviest(w: np.ndarray, n: int | None) -> np.ndarray:
    """Mask of the ``n`` largest ``w`` (ties: the earlier one); all of them when ``n`` is ``None`` or ≥ ``len(w)``."""
    keep = np.ones(len(w), bool)
    if n is not None and n < len(w):
        keep[:] = False
        keep[np.argsort(-np.asarray(w), kind="stable")[:max(n, 0)]] = True
    return keep


def fit_coarse(coarse: tuple, own_edges: int, max_edges: int | None) -> tuple:
    """The coarse edges ``(a, b, w)`` of a part subgraph within ``max_edges`` edges in all: the part's
    ``own_edges`` (internal + cut) always stay, then the heaviest coarse edges that fit."""
    if max_edges is None or own_edges + len(coarse[2]) <= max_edges:
        return coarse
    keep = heaviest(coarse[2], max_edges - own_edges)
    return tuple(c[keep] for c in coarse)


def part_subgraphs(adj: sp.spmatrix, labels: np.ndarray, cluster_part: np.ndarray,
                   coarse_k: int | None = None, max_edges: int | None = None) -> list[PartSubgraph]:
    """All ``H_i`` of a partition (numpy reference of the Spark construction). ``coarse_k``: keep only the quotient
    edges among the ``k`` heaviest of one of their clusters (:func:`heaviest_edges`) as coarse edges;
    ``max_edges``: at most that many edges per subgraph (:func:`fit_coarse`)."""
    a = sp.triu(sp.coo_matrix(adj), k=1).tocoo()
    q = keep_heaviest_edges(sp.triu(quotient_graph(adj, labels)[0], k=1).tocoo(), coarse_k)
    node_part = cluster_part[labels]
    ps, pd = node_part[a.row], node_part[a.col]
    out = []
    for p in range(int(cluster_part.max()) + 1):
        nodes = np.flatnonzero(node_part == p)
        proxies = np.flatnonzero(cluster_part != p)
        m_in = (ps == p) & (pd == p)
        m1, m2 = (ps == p) & (pd != p), (ps != p) & (pd == p)
        cut = (np.r_[a.row[m1], a.col[m2]], np.r_[labels[a.col[m1]], labels[a.row[m2]]], np.r_[a.data[m1], a.data[m2]])
        mq = (cluster_part[q.row] != p) & (cluster_part[q.col] != p)
        coarse = fit_coarse((q.row[mq], q.col[mq], q.data[mq]), int(m_in.sum()) + len(cut[0]), max_edges)
        out.append(build_part_subgraph(p, nodes, proxies, (a.row[m_in], a.col[m_in], a.data[m_in]), cut, coarse))
    return out


def partition_stats(adj: sp.spmatrix, labels: np.ndarray, cluster_part: np.ndarray,
                    subgraphs: list[PartSubgraph] | None = None) -> dict:
    """Edge-cut fraction, balance and the embedded-size invariants of a partition."""
    a = sp.triu(sp.coo_matrix(adj), k=1).tocoo()
    node_part = cluster_part[labels]
    cut = float((node_part[a.row] != node_part[a.col]).sum())
    sizes = np.bincount(node_part)
    out = {"parts": int(len(sizes)), "clusters": int(labels.max() + 1),
           "edge_cut_fraction": cut / max(a.nnz, 1),
           "balance": float(sizes.max() / sizes.mean()), "largest_part": int(sizes.max())}
    if subgraphs is not None:
        out["largest_subgraph_nodes"] = int(max(len(s.nodes) + len(s.proxies) for s in subgraphs))
        edges = [sp.triu(s.adjacency, k=1).nnz for s in subgraphs]
        out["subgraph_edges"], out["largest_subgraph_edges"] = int(sum(edges)), int(max(edges))
    return out


def lpa_local_round(src: np.ndarray, dst: np.ndarray, w: np.ndarray, lab_ids: np.ndarray, lab: np.ndarray,
                    size_labels: np.ndarray, size_counts: np.ndarray, cap: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """One round of :func:`label_propagation` for the nodes owning the edges ``src → dst`` (one Spark bucket).

    ``lab_ids``/``lab`` (sorted by id): the current label of every ``src`` and ``dst``; ``size_labels``/
    ``size_counts`` (sorted by label): the global label sizes at the start of the round. Returns
    ``(own ids sorted, their new labels)`` — the same rule as the single-process function, so a bucketed
    run reproduces it exactly.
    """
    own = np.unique(src)
    lu = lab[np.searchsorted(lab_ids, dst)]
    v = np.searchsorted(own, src)
    own_lab = lab[np.searchsorted(lab_ids, own)]
    big = int(max(lab.max(initial=0), 0)) + 1
    vv, ll, score = label_scores(v, lu, w, len(own), big)
    is_own = ll == own_lab[vv]
    own_score = np.zeros(len(own))
    own_score[vv[is_own]] = score[is_own]
    size = size_counts[np.minimum(np.searchsorted(size_labels, ll), len(size_labels) - 1)]
    ok = (~is_own) & (size < cap) & (own[vv] % 2 == r % 2)
    vv, ll, score = vv[ok], ll[ok], score[ok]
    new = own_lab.copy()
    if len(vv):
        vv, ll, score = best_label(vv, ll, score)
        move = score > own_score[vv]
        new[vv[move]] = ll[move]
    return own, new
