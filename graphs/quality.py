"""How well a sampled digraph keeps the degree structure of the original.

Distances (Yan & Jiang, KDD-UC 2022, arXiv 2507.23025, §5; docs/algorithms.md §2), all on graphs
with self-loops and duplicate edges removed:

* ``L1(P, Q) = sum_k |P(k) - Q(k)|`` (0..2) between probability mass functions of out-degree,
  in-degree and the joint (out, in) degree; the joint pmf is the normalised DCM, so ``dcm_l1``
  equals ``joint_l1``; ``jdm_l1`` is the same distance between the normalised JDMs.
* Kolmogorov–Smirnov ``KS = max_k |F_P(k) - F_Q(k)|`` on the CDFs; for the joint distribution the
  bivariate CDF ``F(i, j) = P(out <= i, in <= j)`` on the grid of observed degree values.
* Reciprocity: the fraction of edges ``u -> v`` whose reverse ``v -> u`` is also an edge.
* The rounding floor: the L1 of the best ``round(r N)``-node integer rounding of the original pmf
  (:func:`graphs.rescale.rounding_floor`) — no sample of that size can do better.

>>> import numpy as np
>>> round(pmf_l1(np.array([1, 1, 2]), np.array([1, 2, 2, 2])), 3)
0.833
>>> round(reciprocity(np.array([0, 1, 1]), np.array([1, 0, 2])), 3)
0.667
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from graphs.degree import DegreeMatrices
from graphs.rescale import rounding_floor


def _pmf(deg: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(deg, minlength=size) / max(deg.size, 1)


def pmf_l1(a: np.ndarray, b: np.ndarray) -> float:
    """L1 distance between the degree pmfs of two per-node degree arrays."""
    size = int(max(a.max(initial=0), b.max(initial=0))) + 1
    return float(np.abs(_pmf(a, size) - _pmf(b, size)).sum())


def pmf_ks(a: np.ndarray, b: np.ndarray) -> float:
    """Kolmogorov–Smirnov distance between the degree distributions of two degree arrays."""
    size = int(max(a.max(initial=0), b.max(initial=0))) + 1
    return float(np.abs(np.cumsum(_pmf(a, size)) - np.cumsum(_pmf(b, size))).max(initial=0.0))


def _joint_grid(m1: DegreeMatrices, m2: DegreeMatrices) -> tuple[np.ndarray, np.ndarray]:
    """Both joint pmfs on the grid of the degree values that occur in either graph."""
    ov = np.unique(np.concatenate([m1.out_deg, m2.out_deg]))
    iv = np.unique(np.concatenate([m1.in_deg, m2.in_deg]))
    grids = []
    for m in (m1, m2):
        g = np.zeros((ov.size, iv.size))
        np.add.at(g, (np.searchsorted(ov, m.out_deg), np.searchsorted(iv, m.in_deg)), 1.0)
        grids.append(g / max(m.n_nodes, 1))
    return grids[0], grids[1]


def joint_distances(m1: DegreeMatrices, m2: DegreeMatrices) -> tuple[float, float]:
    """``(L1, KS)`` between the joint (out, in) degree distributions."""
    g1, g2 = _joint_grid(m1, m2)
    diff = g1 - g2
    cdf = diff.cumsum(axis=0).cumsum(axis=1)
    return float(np.abs(diff).sum()), float(np.abs(cdf).max(initial=0.0))


def matrix_l1(a: sp.sparray, b: sp.sparray) -> float:
    """L1 between two non-negative matrices normalised to sum 1 (shapes padded to the larger)."""
    shape = (max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1]))
    pa, pb = sp.coo_array(a), sp.coo_array(b)
    ma = sp.csr_array((pa.data / max(pa.data.sum(), 1), (pa.row, pa.col)), shape=shape)
    mb = sp.csr_array((pb.data / max(pb.data.sum(), 1), (pb.row, pb.col)), shape=shape)
    return float(np.abs((ma - mb).data).sum())


def reciprocity(src: np.ndarray, dst: np.ndarray) -> float:
    """Fraction of edges whose reverse edge exists (``src``/``dst`` without duplicates)."""
    if len(src) == 0:
        return 0.0
    n = np.int64(max(src.max(), dst.max()) + 1)
    fwd = np.sort(src * n + dst)
    rev = dst * n + src
    pos = np.minimum(np.searchsorted(fwd, rev), fwd.size - 1)
    return float((fwd[pos] == rev).mean())


def quality_report(orig: DegreeMatrices, sample: DegreeMatrices, ratio: float,
                   orig_edges: tuple[np.ndarray, np.ndarray] | None = None,
                   sample_edges: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """All distances of :mod:`graphs.quality` for one sample, plus sizes and the rounding floor."""
    n_target = int(round(ratio * orig.n_nodes))
    joint_l1, joint_ks = joint_distances(orig, sample)
    rep = {
        "nodes": sample.n_nodes, "edges": sample.n_edges, "target_nodes": n_target,
        "orig_nodes": orig.n_nodes, "orig_edges": orig.n_edges,
        "in_l1": pmf_l1(orig.in_deg, sample.in_deg), "out_l1": pmf_l1(orig.out_deg, sample.out_deg),
        "in_ks": pmf_ks(orig.in_deg, sample.in_deg), "out_ks": pmf_ks(orig.out_deg, sample.out_deg),
        "joint_l1": joint_l1, "joint_ks": joint_ks,
        "jdm_l1": matrix_l1(orig.jdm, sample.jdm), "dcm_l1": matrix_l1(orig.dcm, sample.dcm),
        "floor_in": rounding_floor(np.bincount(orig.in_deg), max(n_target, 1)),
        "floor_out": rounding_floor(np.bincount(orig.out_deg), max(n_target, 1)),
    }
    if orig_edges is not None:
        rep["reciprocity_orig"] = reciprocity(*orig_edges)
    if sample_edges is not None:
        rep["reciprocity"] = reciprocity(*sample_edges)
    return rep


def plot_degree_distributions(orig: DegreeMatrices, samples: Mapping[str, DegreeMatrices], path: str | Path,
                              title: str = "") -> Path:
    """Log–log in- and out-degree distributions (fraction of nodes) of the original and each sample."""
    from graphs.figures import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, attr, label in ((axes[0], "in_deg", "in-degree"), (axes[1], "out_deg", "out-degree")):
        for name, m in {"original": orig, **samples}.items():
            deg = getattr(m, attr)
            pmf = np.bincount(deg) / max(deg.size, 1)
            k = np.flatnonzero(pmf[1:]) + 1
            ax.loglog(k, pmf[k], "o" if name == "original" else ".", ms=3 if name == "original" else 2,
                      label=name, alpha=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of nodes")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
