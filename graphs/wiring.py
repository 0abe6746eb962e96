"""Wire a simple digraph that realises a DCM/JDM pair exactly, class by class (vectorised, seeded).

Given a realisable pair (see :func:`graphs.rescale.check_realisable`): ``B[i, j]`` nodes get
out-degree ``i`` and in-degree ``j`` (node ids are allocated DCM cell by cell), and exactly
``A[i, j]`` edges go from out-class ``i`` (``p_i`` nodes) to in-class ``j`` (``q_j`` nodes).

Construction (a circulant version of the D2K stub assignment of Tillman et al., KDD 2017):

* Out-class ``i`` lays its ``i * p_i`` out-stubs in a row, stub ``s`` belonging to class member
  ``s mod p_i``; its JDM cells take consecutive ranges in a random order, so every member gets
  ``floor`` or ``ceil`` of ``A[i, j] / p_i`` stubs in cell ``(i, j)`` and exactly ``i`` in total.
  In-classes do the same with their in-stubs.
* Inside a cell with ``a`` edges the sources are grouped (each group of size ``<= ceil(a/p) <= q``)
  and edge ``t`` of the grouped order goes to in-stub ``(r + t) mod q``: a group's targets are
  distinct, and different cells never share a (source, target) pair, so there are no duplicate
  edges at all. Class members are permuted by seeded affine maps ``u -> (alpha u + beta) mod p``.
* Self-loops (a node in both classes of a cell) are removed by *target swaps*
  ``(w, w), (u, x) -> (w, x), (u, w)`` with a partner edge in the same cell, else the same
  in-class column or out-class row: every degree and every JDM cell is unchanged.

Every step is numpy over all cells at once; a cell depends only on small per-class metadata, so
:mod:`graphs.spark_sampling` generates disjoint sets of cells on different executors.

>>> import numpy as np
>>> from graphs.degree import degree_matrices
>>> m = degree_matrices(np.array([0, 0, 1, 2, 3, 3]), np.array([1, 2, 2, 0, 0, 1]))
>>> w = wire(m.dcm, m.jdm, seed=1)
>>> bool((w.src != w.dst).all()), len(set(zip(w.src.tolist(), w.dst.tolist())))
(True, 6)
>>> m2 = degree_matrices(w.src, w.dst, w.n_nodes)
>>> (m2.jdm != m.jdm).nnz, (m2.dcm != m.dcm).nnz
(0, 0)
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from graphs.loop_repair import _ranges, repair_loops, resolve_loops  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


def _stub_offsets(group: np.ndarray, counts: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Each cell's first stub within its group (row or column), the group's cells in the random order ``key``:
    the exclusive cumulative sum of ``counts`` per group."""
    o = np.lexsort((key, group))
    out = np.empty_like(counts)
    cum = np.cumsum(counts[o]) - counts[o]
    first = np.searchsorted(group[o], group[o], side="left")
    out[o] = cum - cum[first]
    return out


def _coprime_multipliers(sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random ``alpha`` in ``[1, size)`` with ``gcd(alpha, size) = 1`` per size (1 for size <= 2)."""
    alpha = np.ones(sizes.size, dtype=np.int64)
    todo = np.flatnonzero(sizes > 2)
    while todo.size:
        cand = rng.integers(1, sizes[todo])
        ok = np.gcd(cand, sizes[todo]) == 1
        alpha[todo[ok]] = cand[ok]
        todo = todo[~ok]
    return alpha


@dataclass(frozen=True)
class WiringPlan:
    """Small per-class and per-cell metadata from which any subset of JDM cells can be wired.

    Arrays indexed by out-class (row ``i``): ``p``, ``out_start`` (first node id of the class),
    ``alpha_o``, ``beta_o``; by in-class (column ``j``): ``q``, ``col_start`` (offset of the class
    in the column-major DCM order), ``alpha_i``, ``beta_i``; DCM cells in column-major order:
    ``cm_cum`` (cumulative class position) and ``cm_node`` (first node id); DCM cells in row-major
    order (= node id order): ``node_start``, ``node_i``, ``node_j``; JDM cells: ``ci``,
    ``cj``, ``ca`` (edge count), ``cc``/``cr`` (stub offsets in the row/column), ``cd`` (rotation),
    ``cell_start`` (first edge index).
    """

    n_nodes: int
    n_edges: int
    node_start: np.ndarray
    node_i: np.ndarray
    node_j: np.ndarray
    p: np.ndarray
    out_start: np.ndarray
    alpha_o: np.ndarray
    beta_o: np.ndarray
    q: np.ndarray
    col_start: np.ndarray
    alpha_i: np.ndarray
    beta_i: np.ndarray
    cm_cum: np.ndarray
    cm_node: np.ndarray
    ci: np.ndarray
    cj: np.ndarray
    ca: np.ndarray
    cc: np.ndarray
    cr: np.ndarray
    cd: np.ndarray
    cell_start: np.ndarray

    @staticmethod
    def build(dcm: sp.csr_array, jdm: sp.csr_array, seed: int = 0) -> "WiringPlan":
        """Lay out node ids, class permutations and stub ranges for a realisable ``(dcm, jdm)``."""
        rng = np.random.default_rng(seed)
        b = sp.coo_array(dcm)
        order = np.lexsort((b.col, b.row))  # row-major: out-classes are contiguous id ranges
        bi, bj, bv = b.row[order].astype(np.int64), b.col[order].astype(np.int64), b.data[order].astype(np.int64)
        node_start = np.concatenate([[0], np.cumsum(bv)[:-1]]).astype(np.int64)
        n_nodes = int(bv.sum())
        R, C = dcm.shape
        p = np.bincount(bi, bv, minlength=R).astype(np.int64)
        q = np.bincount(bj, bv, minlength=C).astype(np.int64)
        out_start = np.zeros(R, dtype=np.int64)
        first = np.unique(bi, return_index=True)
        out_start[first[0]] = node_start[first[1]]
        cm = np.lexsort((bi, bj))  # column-major: in-class members as a concatenation of blocks
        cm_cum = np.concatenate([[0], np.cumsum(bv[cm])[:-1]]).astype(np.int64)
        cm_node = node_start[cm]
        col_start = np.concatenate([[0], np.cumsum(q)[:-1]]).astype(np.int64)
        a = sp.coo_array(jdm)
        keep = a.data > 0
        ci, cj, ca = a.row[keep].astype(np.int64), a.col[keep].astype(np.int64), a.data[keep].astype(np.int64)
        # random order of cells inside each row and each column -> stub offsets
        cc = _stub_offsets(ci, ca, rng.random(ci.size))
        cr = _stub_offsets(cj, ca, rng.random(ci.size))
        cd = (rng.random(ci.size) * p[ci]).astype(np.int64)
        cell_start = np.concatenate([[0], np.cumsum(ca)[:-1]]).astype(np.int64)
        return WiringPlan(
            n_nodes=n_nodes, n_edges=int(ca.sum()), node_start=node_start, node_i=bi, node_j=bj,
            p=p, out_start=out_start, alpha_o=_coprime_multipliers(p, rng),
            beta_o=(rng.random(R) * np.maximum(p, 1)).astype(np.int64),
            q=q, col_start=col_start, alpha_i=_coprime_multipliers(q, rng),
            beta_i=(rng.random(C) * np.maximum(q, 1)).astype(np.int64),
            cm_cum=cm_cum, cm_node=cm_node, ci=ci, cj=cj, ca=ca, cc=cc, cr=cr, cd=cd, cell_start=cell_start,
        )

    _CACHED = ("_pos_node", "_node_deg", "_out_lut", "_in_lut")

    def __getstate__(self) -> dict:  # lookup tables are rebuilt where used, never shipped
        return {k: v for k, v in self.__dict__.items() if k not in self._CACHED}

    @cached_property
    def _pos_node(self) -> np.ndarray:
        """Node id at each position of the column-major in-class order (``cm_cum``/``cm_node`` expanded)."""
        size = np.diff(np.append(self.cm_cum, self.n_nodes))
        dt = np.int32 if self.n_nodes < 2**31 else np.int64
        return (np.repeat(self.cm_node - self.cm_cum, size) + np.arange(self.n_nodes)).astype(dt)

    @cached_property
    def _out_lut(self) -> np.ndarray:
        """Node id of member ``u`` of out-class ``i`` at index ``out_start[i] + u`` (seeded affine permutation)."""
        cls = np.repeat(np.arange(self.p.size), self.p)
        u = np.arange(self.n_nodes) - self.out_start[cls]
        return (self.out_start[cls] + (self.alpha_o[cls] * u + self.beta_o[cls]) % self.p[cls]).astype(self._pos_node.dtype)

    @cached_property
    def _in_lut(self) -> np.ndarray:
        """Node id of member ``v`` of in-class ``j`` at index ``col_start[j] + v``."""
        cls = np.repeat(np.arange(self.q.size), self.q)
        v = np.arange(self.n_nodes) - self.col_start[cls]
        return self._pos_node[self.col_start[cls] + (self.alpha_i[cls] * v + self.beta_i[cls]) % self.q[cls]]

    @cached_property
    def _node_deg(self) -> tuple[np.ndarray, np.ndarray]:
        cnt = np.diff(np.append(self.node_start, self.n_nodes))
        return np.repeat(self.node_i, cnt), np.repeat(self.node_j, cnt)

    def degrees(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(out-degree, in-degree)`` of node ids (from the DCM block each id falls in)."""
        out_deg, in_deg = self._node_deg
        return out_deg[nodes], in_deg[nodes]

    def node_degrees(self) -> tuple[np.ndarray, np.ndarray]:
        """Out- and in-degree of every node ``0..n_nodes-1``."""
        cnt = np.diff(np.append(self.node_start, self.n_nodes))
        return np.repeat(self.node_i, cnt), np.repeat(self.node_j, cnt)

    def generate(self, cells: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Edges of the given JDM cells (all by default) before loop repair: ``(src, dst, cell)``.

        Per-cell quantities are computed once and repeated per edge; the class permutations are
        lookup tables (:attr:`_out_lut`, :attr:`_in_lut`), and the few per-edge divisions are done in
        float64, exact here because every operand is far below 2**52.
        """
        cells = np.arange(self.ci.size) if cells is None else np.asarray(cells, dtype=np.int64)
        a = self.ca[cells]
        ci, cj = self.ci[cells], self.cj[cells]
        p, q = self.p[ci], self.q[cj]
        m, rho = a // p, a % p
        d0 = self.cd[cells]
        n_e = int(a.sum())
        first = np.cumsum(a) - a
        cell = np.repeat(cells, a)
        t = np.arange(n_e, dtype=np.int64) - np.repeat(first, a)
        # rotation of the grouped order, then the group (= class member offset) of each edge
        tt = t + np.repeat(d0 * m + np.minimum(d0, rho), a)
        aa = np.repeat(a, a)
        tt -= aa * (tt >= aa)
        m1 = np.repeat((m + 1).astype(np.float64), a)
        big = np.repeat(rho * (m + 1), a)
        lo = (tt / m1).astype(np.int64)
        hi = np.repeat(rho, a) + ((tt - big) / np.maximum(m1 - 1, 1)).astype(np.int64)
        d = np.where(tt < big, lo, hi)
        pe = np.repeat(p, a)
        u = np.repeat(self.cc[cells] % p, a) + d
        u -= pe * (u >= pe)
        src = self._out_lut[np.repeat(self.out_start[ci], a) + u].astype(np.int64)
        qe = np.repeat(q, a)
        x = np.repeat(self.cr[cells] % q, a) + t
        v = x - qe * (x / qe).astype(np.int64)
        v += qe * (v < 0) - qe * (v >= qe)  # guard the float quotient (never taken in exact range)
        dst = self._in_lut[np.repeat(self.col_start[cj], a) + v].astype(np.int64)
        return src, dst, cell

    def rerandomised(self, rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator) -> "WiringPlan":
        """A copy with fresh cell orders, permutations and rotations for out-classes ``rows`` / in-classes ``cols``."""
        cc, cr, cd = self.cc.copy(), self.cr.copy(), self.cd.copy()
        ao, bo, ai, bi = self.alpha_o.copy(), self.beta_o.copy(), self.alpha_i.copy(), self.beta_i.copy()
        for sel, grp, off in ((rows, self.ci, cc), (cols, self.cj, cr)):
            idx = np.flatnonzero(np.isin(grp, sel))
            o = idx[np.lexsort((rng.random(idx.size), grp[idx]))]
            cum = np.cumsum(self.ca[o]) - self.ca[o]
            off[o] = cum - cum[np.searchsorted(grp[o], grp[o], side="left")]
        ao[rows] = _coprime_multipliers(self.p[rows], rng)
        bo[rows] = (rng.random(rows.size) * np.maximum(self.p[rows], 1)).astype(np.int64)
        ai[cols] = _coprime_multipliers(self.q[cols], rng)
        bi[cols] = (rng.random(cols.size) * np.maximum(self.q[cols], 1)).astype(np.int64)
        touched = np.flatnonzero(np.isin(self.ci, rows))
        cd[touched] = (rng.random(touched.size) * self.p[self.ci[touched]]).astype(np.int64)
        return dataclasses.replace(self, cc=cc, cr=cr, cd=cd, alpha_o=ao, beta_o=bo, alpha_i=ai, beta_i=bi)


@dataclass(frozen=True)
class Wired:
    """The wired sample: edges ``src -> dst`` over node ids ``0..n_nodes-1`` and each node's degrees."""

    src: np.ndarray
    dst: np.ndarray
    n_nodes: int
    out_deg: np.ndarray
    in_deg: np.ndarray


def wire(dcm: sp.csr_array, jdm: sp.csr_array, seed: int = 0) -> Wired:
    """Build a simple digraph realising ``(dcm, jdm)`` exactly (raises if loops cannot be removed)."""
    plan = WiringPlan.build(dcm, jdm, seed)
    rng = np.random.default_rng([seed, 1])
    src, dst, cell = plan.generate()
    left = repair_loops(src, dst, cell, plan, rng, wide=False)
    if left.size:
        def fetch(cells):
            idx = _ranges(plan.cell_start[cells], plan.ca[cells])
            return src[idx].copy(), dst[idx].copy(), cell[idx]

        s2, d2, _, cells = resolve_loops(plan, np.unique(cell[left]), fetch, rng)
        redo = np.zeros(plan.ci.size, dtype=bool)
        redo[cells] = True
        redo = redo[cell]
        log.info("%d self-loops left after within-cell swaps; re-wired %d edges of %d cells",
                 left.size, s2.size, cells.size)
        src = np.concatenate([src[~redo], s2])
        dst = np.concatenate([dst[~redo], d2])
    return Wired(src, dst, plan.n_nodes, *plan.node_degrees())
