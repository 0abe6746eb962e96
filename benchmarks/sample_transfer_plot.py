"""Figure of ``benchmarks.sample_transfer``: per-property errors by sampler, tuning transfer, profile scaling."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from graphs.profile_compare import PROPERTIES


def plot(res: dict, path: str | Path) -> Path:
    """Draw ``res`` (the benchmark's JSON) into ``path``: two property panels (one per ratio), τ, regret, scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = res["config"]["ratios"][:2]
    fig = plt.figure(figsize=(16, 11))
    axes = [fig.add_subplot(2, 3, i + 1) for i in range(6)]
    runs = [r for g in res["graphs"].values() for r in g["runs"]]
    methods = list(dict.fromkeys(r["method"] for r in runs))
    names = [p.name for p in PROPERTIES]
    y = np.arange(len(names))
    for ax, ratio in zip(axes[:2], ratios):
        for k, m in enumerate(methods):
            med = [np.median([r["errors"][p] for r in runs if r["method"] == m and r["ratio"] == ratio
                              and p in r["errors"]] or [np.nan]) for p in names]
            ax.plot(np.maximum(med, 1e-4), y + (k - len(methods) / 2) * 0.12, "o", ms=4, label=m)
        ax.set_xscale("log")
        ax.axvline(0.1, color="grey", lw=0.8, ls="--")
        ax.set_yticks(y, names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"median relative error, r = {ratio}")
        ax.legend(fontsize=7)
    graphs = [g for g, v in res["graphs"].items() if "tuning" in v]
    width = 0.8 / max(len(methods), 1)
    for ax, key, target, label in ((axes[2], "tau", 0.7, "Kendall τ (sample vs full ranking)"),
                                   (axes[3], "regret", 0.005, "regret (full AUC)")):
        for k, m in enumerate(methods):
            vals = [np.mean([r["tuning"][key] for r in res["graphs"][g]["runs"]
                             if r["method"] == m and key in r.get("tuning", {})] or [np.nan]) for g in graphs]
            ax.bar(np.arange(len(graphs)) + k * width, vals, width, label=m)
        ax.axhline(target, color="grey", lw=0.8, ls="--")
        if key == "regret":
            ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xticks(np.arange(len(graphs)) + 0.4 - width / 2, graphs, fontsize=8)
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    sc = res.get("scaling")
    if sc and sc.get("rows"):
        e = np.array([r["edges"] for r in sc["rows"]], float)
        t = np.array([r["profile_s"] for r in sc["rows"]], float)
        axes[4].loglog(e, t, "o-", label=f"profile (k = {sc.get('exponent', float('nan')):.2f})")
        axes[4].loglog(e, t[0] * e / e[0], ":", color="grey", label="linear")
        axes[4].set_xlabel("R-MAT edges")
        axes[4].set_ylabel("seconds")
        axes[4].legend(fontsize=7)
    names_g = list(res["graphs"])
    last = ratios[-1]
    for k, m in enumerate(methods):
        vals = []
        for g in names_g:
            rs = [r for r in res["graphs"][g]["runs"] if r["method"] == m and r["ratio"] == last]
            vals.append(np.median([np.median([r["errors"][p] for r in rs if p in r["errors"]]) for p in names])
                        if rs else np.nan)
        axes[5].bar(np.arange(len(names_g)) + k * width, vals, width, label=m)
    axes[5].axhline(0.1, color="grey", lw=0.8, ls="--")
    axes[5].set_xticks(np.arange(len(names_g)) + 0.4 - width / 2, names_g, fontsize=8)
    axes[5].set_ylabel(f"median relative error over properties, r = {last}")
    axes[5].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
