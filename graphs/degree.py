"""Per-node degrees, the degree correlation matrix (DCM) and the joint degree matrix (JDM) of a digraph.

Definitions (Yan & Jiang, "Constructing and Sampling Directed Graphs with Linearly Rescaled Degree
Matrices", KDD-UC 2022, arXiv 2507.23025; indices are (out-degree i, in-degree j)):

* DCM  ``B[i, j] = |{v : d_out(v) = i, d_in(v) = j}|``   (nodes),
* JDM  ``A[i, j] = |{(u, v) in E : d_out(u) = i, d_in(v) = j}|``   (edges).

Consistency (the D2K conditions, Tillman et al., KDD 2017): ``sum_j A[i, j] = i * sum_j B[i, j]``
and ``sum_i A[i, j] = j * sum_i B[i, j]``. Both matrices are stored sparse (``scipy.sparse.csr_array``);
their non-zero counts are what the paper's Table 1 reports.

>>> import numpy as np
>>> m = degree_matrices(np.array([0, 0, 1]), np.array([1, 2, 2]))
>>> m.n_nodes, m.n_edges, m.dcm.nnz, m.jdm.nnz
(3, 3, 3, 3)
>>> m.jdm.toarray().tolist()
[[0, 0, 0], [0, 0, 1], [0, 1, 1]]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class DegreeMatrices:
    """Degrees of every node and the two degree matrices of one digraph.

    Attributes:
        out_deg: out-degree per node id ``0..n-1`` (int64).
        in_deg: in-degree per node id (int64).
        dcm: ``B`` as a ``csr_array`` of shape ``(max_out + 1, max_in + 1)``.
        jdm: ``A`` as a ``csr_array`` of the same shape.
    """

    out_deg: np.ndarray
    in_deg: np.ndarray
    dcm: sp.csr_array
    jdm: sp.csr_array

    def __post_init__(self) -> None:
        if self.out_deg.shape != self.in_deg.shape:
            raise ValueError("out_deg and in_deg must have the same length")
        if self.dcm.shape != self.jdm.shape:
            raise ValueError(f"dcm shape {self.dcm.shape} != jdm shape {self.jdm.shape}")

    @property
    def n_nodes(self) -> int:
        return int(self.out_deg.size)

    @property
    def n_edges(self) -> int:
        return int(self.out_deg.sum())

    def summary(self) -> dict:
        """Counts for reports: nodes, edges, non-zero DCM/JDM cells, max degrees."""
        return {
            "nodes": self.n_nodes,
            "edges": self.n_edges,
            "dcm_nnz": int(self.dcm.nnz),
            "jdm_nnz": int(self.jdm.nnz),
            "max_out_degree": int(self.out_deg.max(initial=0)),
            "max_in_degree": int(self.in_deg.max(initial=0)),
        }


def node_degrees(src: np.ndarray, dst: np.ndarray, n_nodes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Out- and in-degree per node id (ids must be dense ``0..n_nodes-1``)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    if n_nodes is None:
        n_nodes = int(max(src.max(initial=-1), dst.max(initial=-1)) + 1)
    return np.bincount(src, minlength=n_nodes), np.bincount(dst, minlength=n_nodes)


def cells_to_csr(i: np.ndarray, j: np.ndarray, v: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """Sum duplicate ``(i, j)`` cells into a canonical int64 ``csr_array`` (explicit zeros dropped)."""
    m = sp.csr_array((np.asarray(v, dtype=np.int64), (np.asarray(i), np.asarray(j))), shape=shape)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def dcm_from_degrees(out_deg: np.ndarray, in_deg: np.ndarray, shape: tuple[int, int] | None = None) -> sp.csr_array:
    """``B[i, j]`` = number of nodes with out-degree ``i`` and in-degree ``j``."""
    if shape is None:
        shape = (int(out_deg.max(initial=0)) + 1, int(in_deg.max(initial=0)) + 1)
    return cells_to_csr(out_deg, in_deg, np.ones(out_deg.size, dtype=np.int64), shape)


def jdm_from_edges(src: np.ndarray, dst: np.ndarray, out_deg: np.ndarray, in_deg: np.ndarray,
                   shape: tuple[int, int] | None = None) -> sp.csr_array:
    """``A[i, j]`` = number of edges from an out-degree-``i`` node to an in-degree-``j`` node."""
    if shape is None:
        shape = (int(out_deg.max(initial=0)) + 1, int(in_deg.max(initial=0)) + 1)
    return cells_to_csr(out_deg[src], in_deg[dst], np.ones(len(src), dtype=np.int64), shape)


def degree_matrices(src: np.ndarray, dst: np.ndarray, n_nodes: int | None = None) -> DegreeMatrices:
    """Degrees, DCM and JDM of the digraph ``src -> dst`` (ids dense ``0..n-1``; multi-edges counted)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    out_deg, in_deg = node_degrees(src, dst, n_nodes)
    shape = (int(out_deg.max(initial=0)) + 1, int(in_deg.max(initial=0)) + 1)
    return DegreeMatrices(out_deg, in_deg, dcm_from_degrees(out_deg, in_deg, shape),
                          jdm_from_edges(src, dst, out_deg, in_deg, shape))


@dataclass(frozen=True)
class SimpleGraph:
    """A digraph with self-loops and duplicate edges removed, and how many of each were dropped."""

    src: np.ndarray
    dst: np.ndarray
    n_nodes: int
    self_loops: int
    duplicates: int


def simplify(src: np.ndarray, dst: np.ndarray, n_nodes: int | None = None) -> SimpleGraph:
    """Drop self-loops and repeated ``(src, dst)`` pairs; node ids (and the node count) are kept.

    >>> g = simplify(np.array([0, 0, 1, 1]), np.array([1, 1, 1, 0]))
    >>> g.src.tolist(), g.dst.tolist(), g.self_loops, g.duplicates
    ([0, 1], [1, 0], 1, 1)
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    if n_nodes is None:
        n_nodes = int(max(src.max(initial=-1), dst.max(initial=-1)) + 1)
    loop = src == dst
    s, d = src[~loop], dst[~loop]
    key = np.unique(s * np.int64(n_nodes) + d)
    return SimpleGraph(key // n_nodes, key % n_nodes, n_nodes, int(loop.sum()), int(s.size - key.size))


def relabel(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map arbitrary node ids to dense ``0..n-1``; returns ``(src, dst, original_ids)``."""
    ids, inv = np.unique(np.concatenate([src, dst]), return_inverse=True)
    return inv[: len(src)].astype(np.int64), inv[len(src):].astype(np.int64), ids
