"""Integer matrices with exact row/column sums: capped IPF and max-flow rounding.

Used by :mod:`graphs.rescale` on the (small) degree matrices.

* **Capped iterative proportional fitting** (Deming & Stephan 1940; with upper bounds, the
  "raking with caps" variant): alternately ``x_ij <- min(cap_ij, x_ij * R_i / sum_j x_ij)`` and the
  same for columns, on a fixed sparse support.
* **Exact-margin rounding** (controlled rounding, Bacharach 1966; Cox 1987): with
  ``b = floor(x)``, route the residual row demands ``R_i - sum_j b_ij`` to the column demands through
  cells with spare capacity by a maximum flow; with unit capacities on fractional cells every entry
  ends at ``floor`` or ``ceil`` and the margins are met exactly whenever ``x`` met them.

>>> import numpy as np
>>> ri, ci = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
>>> x = ipf(ri, ci, np.ones(4), np.array([3., 1.]), np.array([2., 2.]), np.full(4, 9.))
>>> v, ok = round_to_margins(ri, ci, x, np.array([3, 1]), np.array([2, 2]), np.full(4, 9))
>>> ok, v.tolist()
(True, [2, 1, 0, 1])
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import maximum_flow


def ipf(ri: np.ndarray, ci: np.ndarray, x0: np.ndarray, R: np.ndarray, C: np.ndarray, cap: np.ndarray,
        iters: int = 500, tol: float = 1e-9) -> np.ndarray:
    """Fit ``x`` (cells ``(ri, ci)``) to row sums ``R`` and column sums ``C`` under ``x <= cap``.

    Rows/columns with no support keep a shortfall; the result is the last column-scaled iterate.
    """
    x = np.minimum(np.asarray(x0, dtype=np.float64), cap)
    R = np.asarray(R, dtype=np.float64)
    C = np.asarray(C, dtype=np.float64)
    for _ in range(iters):
        rs = np.bincount(ri, x, minlength=R.size)
        f = np.divide(R, rs, out=np.zeros_like(R), where=rs > 0)
        x = np.minimum(x * f[ri], cap)
        cs = np.bincount(ci, x, minlength=C.size)
        g = np.divide(C, cs, out=np.zeros_like(C), where=cs > 0)
        x = np.minimum(x * g[ci], cap)
        err = np.abs(np.bincount(ri, x, minlength=R.size) - R).max(initial=0.0)
        if err < tol:
            break
    return x


def _trim(idx: np.ndarray, base: np.ndarray, frac: np.ndarray, target: np.ndarray) -> None:
    """Lower ``base`` in place so that its group sums (groups ``idx``) do not exceed ``target``."""
    over = np.bincount(idx, base, minlength=target.size) - target
    for g in np.flatnonzero(over > 0):  # only when the fit did not converge: rare and small
        cells = np.flatnonzero((idx == g) & (base > 0))
        cells = cells[np.argsort(frac[cells], kind="stable")]
        need = int(over[g])
        while need > 0 and cells.size:
            take = np.minimum(base[cells], need)
            cum = np.cumsum(take)
            take = np.where(cum <= need, take, np.maximum(need - (cum - take), 0))
            base[cells] -= take
            need -= int(take.sum())
            cells = cells[base[cells] > 0]


def _max_flow(ri, ci, capacity, dR, dC) -> tuple[np.ndarray, int]:
    """Max flow source -> rows (dR) -> cells (capacity) -> cols (dC) -> sink; flow per cell."""
    nR, nC = dR.size, dC.size
    s, t = nR + nC, nR + nC + 1
    use = capacity > 0
    rows = np.concatenate([np.full(nR, s), ri[use], nR + np.arange(nC)])
    cols = np.concatenate([np.arange(nR), nR + ci[use], np.full(nC, t)])
    caps = np.concatenate([dR, capacity[use], dC]).astype(np.int32)
    g = sp.csr_array((caps, (rows, cols)), shape=(nR + nC + 2, nR + nC + 2))
    g.sum_duplicates()
    res = maximum_flow(g, s, t, method="dinic")
    flow = res.flow.tocsr()
    per_cell = np.zeros(ri.size, dtype=np.int64)
    if use.any():
        f = np.asarray(flow[ri[use], nR + ci[use]]).ravel()
        per_cell[use] = np.maximum(f, 0)
    return per_cell, int(res.flow_value)


def round_to_margins(ri: np.ndarray, ci: np.ndarray, x: np.ndarray, R: np.ndarray, C: np.ndarray,
                     cap: np.ndarray) -> tuple[np.ndarray, bool]:
    """Integer ``v`` on the cells with ``sum_j v_ij = R_i``, ``sum_i v_ij = C_j``, ``0 <= v <= cap``.

    Fractional cells are rounded first (each cell moves by less than one); if that cannot meet the
    margins, any spare capacity on the support is used. Returns ``(v, ok)``; ``ok`` is False when the
    support cannot carry the margins (``v`` then falls short on some rows/columns).
    """
    R = np.asarray(R, dtype=np.int64)
    C = np.asarray(C, dtype=np.int64)
    cap = np.asarray(cap, dtype=np.int64)
    base = np.minimum(np.floor(x + 1e-9).astype(np.int64), cap)
    frac = x - base
    _trim(ri, base, frac, R)
    _trim(ci, base, frac, C)
    dR = R - np.bincount(ri, base, minlength=R.size).astype(np.int64)
    dC = C - np.bincount(ci, base, minlength=C.size).astype(np.int64)
    need = int(dR.sum())
    if need == 0 and not dC.any():
        return base, True
    unit = ((frac > 1e-9) & (base < cap)).astype(np.int64)
    f, val = _max_flow(ri, ci, unit, dR, dC)
    if val < need or val < int(dC.sum()):
        f, val = _max_flow(ri, ci, cap - base, dR, dC)
    v = base + f
    ok = bool(np.array_equal(np.bincount(ri, v, minlength=R.size), R)
              and np.array_equal(np.bincount(ci, v, minlength=C.size), C))
    return v, ok
