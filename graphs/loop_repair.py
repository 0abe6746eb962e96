"""Self-loop repair for :mod:`graphs.wiring`: degree- and JDM-preserving swaps, and re-wiring the
few cells that swaps cannot fix.

* :func:`repair_loops`: within-cell target swaps ``(w, w), (u, x) -> (w, x), (u, w)``, then partners
  from the same in-class column or out-class row (sources exchanged instead, so each edge slot
  keeps its JDM cell); a swap is done only if it creates neither a loop nor a duplicate.
* :func:`resolve_loops`: the cells still holding loops (and neighbours in their rows/columns) are
  re-wired from re-randomised class permutations (:func:`fix_cells`), then swapped again.

Every degree and every JDM cell is unchanged by construction (tests: ``tests/test_sampling_core.py``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from graphs.wiring import WiringPlan


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
