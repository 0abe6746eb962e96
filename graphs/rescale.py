"""Rescale a digraph's DCM/JDM by a ratio ``r`` to a *realisable* integer pair.

Yan & Jiang (KDD-UC 2022, arXiv 2507.23025) scale the DCM ``B`` and JDM ``A`` by ``r`` and round;
as written that never balances out-stubs and in-stubs (node counts scale, degree values do not).
This module implements the repair of ``docs/algorithms.md`` §2, tightened to the rounding floor:

1. **Degree marginals.** With ``n = round(r N)`` nodes, the out-degree class sizes ``y_i`` start as the
   largest-remainder rounding of ``x_i = n * N_i / N`` (L1-optimal: the *rounding floor*). Then a
   common stub total ``T`` is chosen and each side is moved to ``sum_i i * y_i = T`` by greedy
   cheapest-per-stub unit moves between classes (mostly one high-degree node added or removed),
   keeping ``sum_i y_i = n``. Degrees above ``n - 1`` are not allowed.
2. **DCM.** ``r B`` on its support is fitted to the margins ``(y_out, y_in)`` by IPF and rounded with
   exact margins (max-flow controlled rounding, :mod:`graphs.margins`).
3. **JDM.** ``(T / E) A`` is fitted by IPF to rows ``i * y_out[i]`` and columns ``j * y_in[j]``, capped
   by the simple-digraph bound ``A'[i, j] <= y_out[i] * y_in[j] - B'[i, j]`` (pairs ``u != v``),
   and rounded with exact margins under the same cap. If the support cannot carry a class's stubs,
   cells between the short rows and columns are added; if even that fails the offending class
   loses a node and the marginals are recomputed.

The result satisfies the D2K conditions (Tillman et al., KDD 2017): equal stub totals, row sums
``i * |V_out=i|``, column sums ``j * |V_in=j|`` and every cell within the simple-graph bound. At
``r = 1`` every step is the identity, so the original (simple) matrices come back unchanged.

>>> import numpy as np
>>> from graphs.degree import degree_matrices
>>> src, dst = np.array([0, 0, 1, 2, 3, 3]), np.array([1, 2, 2, 0, 0, 1])
>>> m = degree_matrices(src, dst)
>>> res = rescale(m, 1.0)
>>> (res.dcm != m.dcm).nnz, (res.jdm != m.jdm).nnz
(0, 0)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from graphs.degree import DegreeMatrices, cells_to_csr
from graphs.margins import ipf, round_to_margins

log = logging.getLogger(__name__)


def largest_remainder(x: np.ndarray, total: int, upper: np.ndarray | None = None) -> np.ndarray:
    """Round ``x >= 0`` to integers summing to ``total`` (Hamilton's method), with optional upper bounds.

    >>> largest_remainder(np.array([0.4, 1.3, 1.3]), 3).tolist()
    [1, 1, 1]
    """
    x = np.asarray(x, dtype=np.float64)
    u = np.full(x.size, np.iinfo(np.int64).max) if upper is None else np.asarray(upper, dtype=np.int64)
    y = np.minimum(np.floor(x).astype(np.int64), u)
    left = int(total - y.sum())
    while left > 0:
        free = np.flatnonzero(y < u)
        if free.size == 0:
            raise ValueError(f"cannot place {total} units under the upper bounds")
        rem = (x - y)[free]
        take = free[np.argsort(-rem, kind="stable")[:left]]
        y[take] += 1
        left -= take.size
    return y


def rounding_floor(counts: np.ndarray, n: int) -> float:
    """L1 distance between the pmf ``counts / N`` and the best pmf with ``n`` integer counts.

    >>> round(rounding_floor(np.array([5, 3, 2]), 4), 3)
    0.1
    """
    counts = np.asarray(counts, dtype=np.float64)
    p = counts / counts.sum()
    y = largest_remainder(n * p, n)
    return float(np.abs(y / n - p).sum())


def _shift_stubs(x: np.ndarray, y: np.ndarray, upper: np.ndarray, delta: int, pool: int = 48) -> np.ndarray | None:
    """Move units between classes (class index = degree) until ``sum_k k y_k`` changed by ``delta``.

    Each step takes the move ``a -> b`` with the least added L1 per stub moved, never overshooting.
    Returns the new ``y`` or None when no move is possible.
    """
    y = y.copy()
    deg = np.arange(y.size)
    while delta != 0:
        cur = np.abs(y - x)
        inc = np.where(y < upper, np.abs(y + 1 - x) - cur, np.inf)
        dec = np.where(y > 0, np.abs(y - 1 - x) - cur, np.inf)
        m = min(pool, y.size)
        best_a = np.argpartition(dec, m - 1)[:m]
        best_b = np.argpartition(inc, m - 1)[:m]
        choice = None
        for a, b in ((best_a[:, None], deg[None, :]), (deg[:, None], best_b[None, :])):
            d = b - a
            c = dec[a] + inc[b]
            ok = (np.sign(d) == np.sign(delta)) & (np.abs(d) <= abs(delta)) & np.isfinite(c)
            if not ok.any():
                continue
            score = np.where(ok, (c + 1e-9) / np.maximum(np.abs(d), 1), np.inf)
            flat = int(np.argmin(score))
            k = np.unravel_index(flat, score.shape)
            aa, bb = int(np.broadcast_to(a, score.shape)[k]), int(np.broadcast_to(b, score.shape)[k])
            if choice is None or score[k] < choice[0]:
                choice = (float(score[k]), aa, bb)
        if choice is None:
            return None
        _, aa, bb = choice
        y[aa] -= 1
        y[bb] += 1
        delta -= bb - aa
    return y


@dataclass(frozen=True)
class Marginals:
    """Integer class sizes of the sample: ``y_out[i]`` nodes of out-degree ``i``, ``y_in[j]`` of in-degree ``j``."""

    y_out: np.ndarray
    y_in: np.ndarray
    stubs: int
    l1_out: float
    l1_in: float


def balanced_marginals(n_out: np.ndarray, n_in: np.ndarray, n: int, n_edges: int,
                       up_out: np.ndarray | None = None, up_in: np.ndarray | None = None) -> Marginals:
    """Class sizes for ``n`` nodes, closest in L1 to the scaled originals, with equal stub totals."""
    N = float(n_out.sum())
    x_out, x_in = n * n_out / N, n * n_in / N
    u_out = np.where(np.arange(n_out.size) <= n - 1, n, 0) if up_out is None else up_out
    u_in = np.where(np.arange(n_in.size) <= n - 1, n, 0) if up_in is None else up_in
    y_out = largest_remainder(x_out, n, u_out)
    y_in = largest_remainder(x_in, n, u_in)
    s_out = int(y_out @ np.arange(y_out.size))
    s_in = int(y_in @ np.arange(y_in.size))
    cands = sorted({s_out, s_in, (s_out + s_in) // 2, int(round(n_edges * n / N))})
    best = None
    for T in cands:
        yo = _shift_stubs(x_out, y_out, u_out, T - s_out)
        yi = _shift_stubs(x_in, y_in, u_in, T - s_in)
        if yo is None or yi is None:
            continue
        cost = np.abs(yo - x_out).sum() + np.abs(yi - x_in).sum()
        if best is None or cost < best[0]:
            best = (cost, yo, yi, T)
    if best is None:
        raise ValueError("no stub-balanced rounding of the degree classes exists")
    _, yo, yi, T = best
    return Marginals(yo, yi, T, float(np.abs(yo - x_out).sum() / n), float(np.abs(yi - x_in).sum() / n))


@dataclass(frozen=True)
class Rescaled:
    """A realisable (DCM, JDM) pair for the sample and how it was reached."""

    dcm: sp.csr_array
    jdm: sp.csr_array
    n_nodes: int
    n_edges: int
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_realisable(self.dcm, self.jdm)


def check_realisable(dcm: sp.csr_array, jdm: sp.csr_array) -> None:
    """Raise ValueError unless ``(dcm, jdm)`` meets the D2K conditions with the loop-free cell bound."""
    if dcm.shape != jdm.shape:
        raise ValueError(f"shape mismatch {dcm.shape} vs {jdm.shape}")
    if (dcm.data < 0).any() or (jdm.data < 0).any():
        raise ValueError("negative entries")
    p = np.asarray(dcm.sum(axis=1)).ravel()
    q = np.asarray(dcm.sum(axis=0)).ravel()
    rows = np.asarray(jdm.sum(axis=1)).ravel()
    cols = np.asarray(jdm.sum(axis=0)).ravel()
    if not np.array_equal(rows, np.arange(p.size) * p):
        raise ValueError("JDM row sums differ from out-degree * class size")
    if not np.array_equal(cols, np.arange(q.size) * q):
        raise ValueError("JDM column sums differ from in-degree * class size")
    a = jdm.tocoo()
    b = np.asarray(dcm[a.row, a.col]).ravel()
    if (a.data > p[a.row] * q[a.col] - b).any():
        raise ValueError("a JDM cell exceeds the simple-digraph bound |V_out=i| * |V_in=j| - B[i, j]")


def _fit(ri, ci, x0, R, C, cap_fn, shape):
    """IPF + exact rounding on a support; adds cells between short rows/columns when needed."""
    cap = cap_fn(ri, ci)
    x = ipf(ri, ci, x0, R, C, cap)
    v, ok = round_to_margins(ri, ci, x, R, C, cap)
    if ok:
        return ri, ci, v, True
    short_r = np.flatnonzero(np.bincount(ri, v, minlength=R.size) < R)
    short_c = np.flatnonzero(np.bincount(ci, v, minlength=C.size) < C)
    live_r = np.flatnonzero(R > 0)
    live_c = np.flatnonzero(C > 0)
    er = np.concatenate([np.repeat(short_r, live_c.size), np.repeat(live_r, short_c.size)])
    ec = np.concatenate([np.tile(live_c, short_r.size), np.tile(short_c, live_r.size)])
    have = set((ri * shape[1] + ci).tolist())
    key = np.unique(er * shape[1] + ec)
    key = key[~np.isin(key, np.fromiter(have, dtype=np.int64, count=len(have)))]
    ri2 = np.concatenate([ri, key // shape[1]])
    ci2 = np.concatenate([ci, key % shape[1]])
    x0b = np.concatenate([x, np.full(key.size, 1e-3)])
    cap2 = cap_fn(ri2, ci2)
    x2 = ipf(ri2, ci2, x0b, R, C, cap2)
    v2, ok2 = round_to_margins(ri2, ci2, x2, R, C, cap2)
    return ri2, ci2, v2, ok2


def rescale(m: DegreeMatrices, ratio: float, max_attempts: int = 30) -> Rescaled:
    """Rescale the matrices of a *simple* digraph to ``n = round(ratio * N)`` nodes (see module doc)."""
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    N, E = m.n_nodes, m.n_edges
    if N == 0 or E == 0:
        raise ValueError("cannot rescale an empty graph")
    n = max(int(round(ratio * N)), 2)
    shape = m.dcm.shape
    n_out = np.asarray(m.dcm.sum(axis=1)).ravel().astype(np.float64)
    n_in = np.asarray(m.dcm.sum(axis=0)).ravel().astype(np.float64)
    up_out = np.where(np.arange(shape[0]) <= n - 1, n, 0)
    up_in = np.where(np.arange(shape[1]) <= n - 1, n, 0)
    b0, a0 = m.dcm.tocoo(), m.jdm.tocoo()
    for attempt in range(max_attempts):
        for _ in range(20):  # a node of out-degree i needs i distinct targets among the nodes with in-degree > 0
            mg = balanced_marginals(n_out, n_in, n, E, up_out, up_in)
            n_dst, n_src = n - int(mg.y_in[0]), n - int(mg.y_out[0])
            too_out = (np.arange(shape[0]) > max(n_dst - 1, 0)) & (up_out > 0)
            too_in = (np.arange(shape[1]) > max(n_src - 1, 0)) & (up_in > 0)
            if not (too_out.any() or too_in.any()):
                break
            up_out[too_out], up_in[too_in] = 0, 0
        yo, yi = mg.y_out, mg.y_in
        # DCM: fit r*B to the class sizes (no cap beyond the margins)
        keep = (yo[b0.row] > 0) & (yi[b0.col] > 0)
        ri, ci = b0.row[keep], b0.col[keep]
        x0 = b0.data[keep] * (n / N)
        big = lambda r_, c_: np.minimum(yo[r_], yi[c_])  # noqa: E731
        ri, ci, bv, ok = _fit(ri, ci, x0, yo, yi, big, shape)
        if not ok:
            raise RuntimeError("DCM rounding failed although the class sizes sum to n on both sides")
        dcm = cells_to_csr(ri, ci, bv, shape)
        R, C = np.arange(shape[0]) * yo, np.arange(shape[1]) * yi
        keep = (R[a0.row] > 0) & (C[a0.col] > 0)
        ari, aci = a0.row[keep], a0.col[keep]
        ax0 = a0.data[keep] * (mg.stubs / E)

        def cap(r_, c_):
            return yo[r_] * yi[c_] - np.asarray(dcm[r_, c_]).ravel()

        ari, aci, av, ok = _fit(ari, aci, ax0, R, C, cap, shape)
        if ok:
            jdm = cells_to_csr(ari, aci, av, shape)
            info = {"attempts": attempt + 1, "l1_out_marginal": mg.l1_out, "l1_in_marginal": mg.l1_in,
                    "stubs": mg.stubs, "target_nodes": n}
            return Rescaled(dcm, jdm, n, mg.stubs, info)
        short_r = np.flatnonzero(np.bincount(ari, av, minlength=shape[0]) < R)
        short_c = np.flatnonzero(np.bincount(aci, av, minlength=shape[1]) < C)
        log.info("JDM not realisable (short out-classes %s, in-classes %s); shrinking the largest",
                 short_r[-3:].tolist(), short_c[-3:].tolist())
        if short_r.size:
            k = short_r.max()
            up_out[k] = yo[k] - 1
        if short_c.size:
            k = short_c.max()
            up_in[k] = yi[k] - 1
    raise RuntimeError(f"no realisable rescaled JDM after {max_attempts} attempts")
