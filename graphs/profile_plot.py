"""Figures of graph profiles: one 2×3 panel figure, several profiles overlaid (e.g. full graph and sample).

Panels: in- and out-degree CCDF, clustering by degree, k-core sizes (fraction of nodes with coreness
``>= k``), the distance distribution, the CCDF of ``n · PageRank``. Every axis is normalised (fractions,
``n · PR``), so a sample's curves overlay the full graph's directly.

>>> import tempfile, pathlib, numpy as np
>>> from graphs.profile import profile_graph
>>> p = profile_graph(np.array([0, 1, 2, 2]), np.array([1, 2, 0, 3]), 4).to_dict()
>>> out = plot_profiles({"g": p}, pathlib.Path(tempfile.mkdtemp()) / "p.png")
>>> out.stat().st_size > 0
True
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np


def _ccdf(pmf: dict) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(pmf["degree"], np.float64)
    c = np.asarray(pmf["count"], np.float64)
    tail = np.cumsum(c[::-1])[::-1] / max(c.sum(), 1)
    keep = k > 0
    return k[keep], tail[keep]


def plot_profiles(profiles: Mapping[str, dict], path: str | Path, title: str = "") -> Path:
    """Draw ``profiles`` (name → ``GraphProfile.to_dict()``) into one PNG at ``path``."""
    from graphs.figures import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(2, 3, figsize=(14, 8))
    for name, p in profiles.items():
        deg = p["degree"]
        for a, side in ((ax[0, 0], "in"), (ax[0, 1], "out")):
            k, t = _ccdf(deg[f"{side}_pmf"])
            a.loglog(k, t, ".-", ms=2, lw=0.8, label=name)
        if p.get("clustering"):
            bd = p["clustering"]["by_degree"]
            ax[0, 2].semilogx(bd["bin_lo"], bd["mean"], "o-", ms=3, label=name)
        if p.get("cores"):
            s = np.asarray(p["cores"]["sizes"], np.float64)
            ax[1, 0].semilogy(np.arange(s.size), s / max(deg["nodes"], 1), "-", label=name)
        if p.get("distances"):
            h = np.asarray(p["distances"]["hist"], np.float64)
            if h[1:].sum():
                ax[1, 1].plot(np.arange(h.size)[1:], h[1:] / h[1:].sum(), "o-", ms=3, label=name)
        if p.get("pagerank") and p["pagerank"]["ccdf"]:
            c = p["pagerank"]["ccdf"]
            ax[1, 2].loglog(c["x"], np.maximum(c["ccdf"], 1e-9), "-", label=name)
    labels = [("in-degree k", "P(in >= k)"), ("out-degree k", "P(out >= k)"),
              ("undirected degree (bin start)", "mean local clustering"), ("k", "fraction of nodes in the k-core"),
              ("distance (out-edges)", "fraction of reachable pairs"), ("n * PageRank", "CCDF")]
    for a, (xl, yl) in zip(ax.ravel(), labels):
        a.set_xlabel(xl)
        a.set_ylabel(yl)
        if a.lines:
            a.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
