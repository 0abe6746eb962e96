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

log = logging.getLogger(__name__)


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
        key = rng.random(ci.size)
        o = np.lexsort((key, ci))
        cc = np.empty_like(ca)
        cum = np.cumsum(ca[o]) - ca[o]
        row_first = np.searchsorted(ci[o], ci[o], side="left")
        cc[o] = cum - cum[row_first]
        key = rng.random(ci.size)
        o = np.lexsort((key, cj))
        cr = np.empty_like(ca)
        cum = np.cumsum(ca[o]) - ca[o]
        col_first = np.searchsorted(cj[o], cj[o], side="left")
        cr[o] = cum - cum[col_first]
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


class _KeySet:
    """Sorted ``src * n + dst`` keys with O(E) insert/delete of small batches."""

    def __init__(self, keys: np.ndarray):
        self.k = np.sort(keys)

    def contains(self, x: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.k, x)
        return (pos < self.k.size) & (self.k[np.minimum(pos, self.k.size - 1)] == x)

    def replace(self, old: np.ndarray, new: np.ndarray) -> None:
        self.k = np.delete(self.k, np.searchsorted(self.k, old))
        new = np.sort(new)
        self.k = np.insert(self.k, np.searchsorted(self.k, new), new)


def _swap_round(src, dst, e, f, keys: _KeySet, n: int, by_source: bool = False) -> np.ndarray:
    """Try ``(w, v), (u, x) -> (w, x), (u, v)`` for edge pairs ``(e, f)``; returns which ones were done.

    ``f`` shares ``e``'s in-class (``by_source=False``: targets are exchanged, each edge slot keeps
    its JDM cell) or its out-class (``by_source=True``: sources are exchanged instead, so again each
    slot keeps its cell and the per-edge ``cell`` labels stay valid). A swap is done only if it
    creates neither a self-loop nor a duplicate, so it never adds loops and removes those of ``e``/``f``.
    """
    w, v, u, x = src[e], dst[e], src[f], dst[f]
    k1, k2 = w * n + x, u * n + v
    ok = (w != x) & (u != v) & (w != u) & (v != x) & (e != f)
    ok &= ~keys.contains(k1) & ~keys.contains(k2)
    idx = np.flatnonzero(ok)
    # the first workable candidate per edge; no edge in two swaps, no new key created twice per round
    for side in (e, f):
        _, first = np.unique(side[idx], return_index=True)
        idx = idx[np.sort(first)]
    busy = np.intersect1d(e[idx], f[idx])
    idx = idx[~(np.isin(e[idx], busy) | np.isin(f[idx], busy))]
    newk = np.concatenate([k1[idx], k2[idx]])
    uniq, cnt = np.unique(newk, return_counts=True)
    dup = uniq[cnt > 1]
    idx = idx[~(np.isin(k1[idx], dup) | np.isin(k2[idx], dup))]
    if idx.size:
        keys.replace(np.concatenate([w[idx] * n + v[idx], u[idx] * n + x[idx]]), np.concatenate([k1[idx], k2[idx]]))
        if by_source:
            src[e[idx]] = u[idx]
            src[f[idx]] = w[idx]
        else:
            dst[e[idx]] = x[idx]
            dst[f[idx]] = v[idx]
    done = np.zeros(e.size, dtype=bool)
    done[idx] = True
    return done


def _open(loops: np.ndarray, done: np.ndarray) -> np.ndarray:
    """Loops not fixed by any of their candidate swaps (``done`` is aligned with ``loops`` repeated)."""
    fixed = np.unique(loops[np.flatnonzero(done) % loops.size]) if done.size else loops[:0]
    return loops[~np.isin(loops, fixed)]


def _group_partners(group: np.ndarray, loops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random edge with the same ``group`` value as each loop edge."""
    order = np.argsort(group, kind="stable")
    sg = group[order]
    lo = np.searchsorted(sg, group[loops], side="left")
    hi = np.searchsorted(sg, group[loops], side="right")
    return order[lo + (rng.random(loops.size) * (hi - lo)).astype(np.int64)]


def repair_loops(src: np.ndarray, dst: np.ndarray, cell: np.ndarray, plan: WiringPlan, rng: np.random.Generator,
                 cell_rounds: int = 20, wide_rounds: int = 16, wide: bool = True, tries: int = 8) -> np.ndarray:
    """Remove self-loops in place by degree- and JDM-preserving target swaps; returns loops left.

    ``cell`` holds each edge's JDM cell; edges of one cell must be contiguous (as generated).
    Partners come from the loop's cell first, then (``wide``) from its in-class column or out-class row;
    each round tries ``tries`` random partners per loop and applies the first that works.
    """
    n = plan.n_nodes
    loops = np.flatnonzero(src == dst)
    if loops.size == 0:
        return loops
    # a swap keeps every edge in its cell, so duplicates can only arise inside the cells it touches
    lc = np.unique(cell[loops])
    lo, hi = np.searchsorted(cell, lc, side="left"), np.searchsorted(cell, lc, side="right")
    span = hi - lo
    keys = _KeySet(src[_ranges(lo, span)] * n + dst[_ranges(lo, span)])
    # within a cell of a single edge, a single source or a single target no swap can help
    lc_loop = cell[loops]
    hopeless = (plan.ca[lc_loop] < 2) | (plan.p[plan.ci[lc_loop]] < 2) | (plan.q[plan.cj[lc_loop]] < 2)
    todo, rest = loops[~hopeless], loops[hopeless]
    stuck = 0
    for _ in range(cell_rounds):
        if todo.size == 0 or stuck >= 3:
            break
        before = todo.size
        first = np.searchsorted(cell, cell[todo], side="left")
        last = np.searchsorted(cell, cell[todo], side="right")
        cand = np.tile(todo, tries)
        partner = np.tile(first, tries) + (rng.random(cand.size) * np.tile(last - first, tries)).astype(np.int64)
        todo = _open(todo, _swap_round(src, dst, cand, partner, keys, n))
        stuck = stuck + 1 if todo.size == before else 0
    loops = np.sort(np.concatenate([todo, rest]))
    if not wide or loops.size == 0:
        return loops
    # wide swaps stay inside the rows and columns of the loop cells
    lc = np.unique(cell[loops])
    sub = np.flatnonzero(np.isin(plan.ci[cell], plan.ci[lc]) | np.isin(plan.cj[cell], plan.cj[lc]))
    keys = _KeySet(src[sub] * n + dst[sub])
    for r in range(wide_rounds):
        if loops.size == 0:
            break
        by_source = r % 2 == 1
        group = plan.degrees(src[sub])[0] if by_source else plan.degrees(dst[sub])[1]
        cand = np.tile(loops, tries)
        partner = sub[_group_partners(group, np.searchsorted(sub, cand), rng)]
        loops = _open(loops, _swap_round(src, dst, cand, partner, keys, n, by_source))
    return loops


def _ranges(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start[k], start[k] + length[k])``."""
    return np.repeat(start - (np.cumsum(length) - length), length) + np.arange(int(length.sum()))


def mix(src: np.ndarray, dst: np.ndarray, plan: WiringPlan, rng: np.random.Generator, rounds: int = 8) -> None:
    """Random JDM-preserving swaps of all edges (alternately by in-class and by out-class), in place.

    Swaps never create loops or duplicates; they move the graph to another realisation of the same
    matrices, from which remaining loops can often be swapped away (dense, tiny classes).
    """
    n = plan.n_nodes
    keys = _KeySet(src * n + dst)
    e = np.arange(src.size)
    for r in range(rounds):
        by_source = r % 2 == 1
        group = plan.degrees(src)[0] if by_source else plan.degrees(dst)[1]
        _swap_round(src, dst, e, _group_partners(group, e, rng), keys, n, by_source)


def fix_cells(plan: WiringPlan, rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator,
              attempts: int = 100, mix_rounds: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Re-wire every cell of out-classes ``rows`` and in-classes ``cols`` until none has a self-loop.

    The cells of whole rows and columns form a closed set: regenerating them (first with the
    original layout, then with re-randomised stub layouts and permutations of the rows/columns that
    still hold loops; between swap passes the set is shuffled by :func:`mix`) changes no other cell,
    provided the other cells only saw within-cell swaps.
    When a loop is left in a cell whose row or column is outside the set, the set grows by it.
    Returns ``(src, dst, cell, cells)``: the new edges of ``cells``.
    """
    rows, cols = np.unique(rows).astype(np.int64), np.unique(cols).astype(np.int64)
    bad_r, bad_c = rows[:0], cols[:0]
    for _ in range(attempts):
        cells = np.flatnonzero(np.isin(plan.ci, rows) | np.isin(plan.cj, cols))
        plan = plan.rerandomised(bad_r, bad_c, rng)
        src, dst, cell = plan.generate(cells)
        left = repair_loops(src, dst, cell, plan, rng)
        for _ in range(mix_rounds if left.size else 0):
            mix(src, dst, plan, rng)
            left = repair_loops(src, dst, cell, plan, rng, cell_rounds=4)
            if left.size == 0:
                break
        if left.size == 0:
            return src, dst, cell, cells
        bad_r, bad_c = loop_classes(plan, cell, left)
        rows, cols = np.union1d(rows, bad_r), np.union1d(cols, bad_c)
    raise RuntimeError(f"self-loops left in out-classes {rows.tolist()} / in-classes {cols.tolist()}")


def neighbour_cells(plan: WiringPlan, cells: np.ndarray, rng: np.random.Generator, per_class: int = 512) -> np.ndarray:
    """``cells`` plus up to ``per_class`` random cells of each one's row and of its column."""
    cells = np.asarray(cells, dtype=np.int64)
    out = [cells]
    for grp in (plan.ci, plan.cj):
        mine = np.flatnonzero(np.isin(grp, grp[cells]))
        mine = mine[np.lexsort((rng.random(mine.size), grp[mine]))]  # random order inside each class
        rank = np.arange(mine.size) - np.searchsorted(grp[mine], grp[mine], side="left")
        out.append(mine[rank < per_class])
    return np.unique(np.concatenate(out))


def resolve_loops(plan: WiringPlan, loop_cells: np.ndarray, fetch, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Second stage after within-cell repair: clear the loops left in ``loop_cells``.

    ``fetch(cells)`` returns the current ``(src, dst, cell)`` of those cells (cell-contiguous).

    1. The loop cells and a sample of their row/column neighbours are swapped together (on copies).
    2. If some loops resist (a saturated cell of two tiny classes whose layout is wrong), only the
       rows/columns of those are re-wired from scratch (:func:`fix_cells`); then the other loops are
       swapped away with partners from their neighbours *and* the re-wired cells. Re-wiring comes
       before any cross-cell swap it could contradict, so the result stays consistent.
    3. Failing that, every row and column of the loop cells is re-wired.

    Returns ``(src, dst, cell, cells)``: replacement edges for ``cells``.
    """
    cells = neighbour_cells(plan, loop_cells, rng)
    src, dst, cell = fetch(cells)
    left = repair_loops(src, dst, cell, plan, rng, cell_rounds=0, wide_rounds=32)
    if left.size == 0:
        return src, dst, cell, cells
    rows, cols = loop_classes(plan, cell, left)
    s1, d1, c1, cells1 = fix_cells(plan, rows, cols, rng)
    rest = np.setdiff1d(loop_cells, cells1)
    if rest.size == 0:
        return s1, d1, c1, cells1
    cells2 = np.setdiff1d(neighbour_cells(plan, rest, rng), cells1)
    s2, d2, c2 = fetch(cells2)
    order = np.argsort(np.concatenate([c2, c1]), kind="stable")
    src, dst, cell = (np.concatenate([s2, s1])[order], np.concatenate([d2, d1])[order],
                      np.concatenate([c2, c1])[order])
    left = repair_loops(src, dst, cell, plan, rng, cell_rounds=0, wide_rounds=32)
    if left.size == 0:
        return src, dst, cell, np.union1d(cells1, cells2)
    rows = np.union1d(rows, plan.ci[loop_cells])
    cols = np.union1d(cols, plan.cj[loop_cells])
    return fix_cells(plan, rows, cols, rng)


def loop_classes(plan: WiringPlan, cell: np.ndarray, loops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The out-classes (rows) and in-classes (columns) of the cells that still hold a self-loop."""
    return np.unique(plan.ci[cell[loops]]), np.unique(plan.cj[cell[loops]])


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
