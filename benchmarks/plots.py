"""Figures of the committed benchmark results: ``python -m benchmarks.plots [--only NAME ...]``.

Each figure is drawn from its ``benchmarks/results/NAME.json`` (so it can be redrawn without re-running
anything) and written next to it as ``NAME.png``; the benchmarks also redraw theirs after each run.

* ``embedding.png`` — wall seconds against |E| on the R-MAT scaling graphs (log–log) for DistNE on Spark
  and single-machine ProNE on 1 and on all threads, with the DistNE / ProNE ratio at each size;
  peak memory of the DistNE driver, the whole DistNE process tree and ProNE.
* ``heavy_hitters.png`` — F1 of the top-k against ε, one panel per (dataset, parties), one line per
  method, error bars one standard deviation over the perturbation seeds.
* ``heavy_hitters_ideal.png`` — at ε = 4, 5 parties: fed. PEM and TAPS (committed paired run) beside
  the best idealised tree design per scoring mode (pooled, Bayes, party genie), and the issue's
  fed. PEM + 0.1 line.
* ``recommender.png`` — Recall@20 against epoch for dense MF, DSL MF and dense MF of a DSL run's size on
  the 200-epoch runs (mean over seeds, band = min..max), and DSL / dense Recall@20 against density, with
  the issue's "within 3 %" line.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
RESULTS = Path(__file__).resolve().parent / "results"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    log.info("wrote %s", path)
    return path


# --- embedding ---------------------------------------------------------------------------------
EMBED_METHODS = {"distne-spark": "DistNE (Spark, local[2])", "prone": "ProNE, 1 thread",
                 "prone-threads": "ProNE, all threads"}


def scaling_series(results: dict, method: str, key: str = "seconds") -> tuple[np.ndarray, np.ndarray]:
    """(|E|, value) of one method over the scaling graphs (``benchmarks.scaling_graphs.SCALING_GRAPHS``, the
    same series its scaling summary prints) that ran it successfully, sorted by |E|."""
    from benchmarks.scaling_graphs import SCALING_GRAPHS

    pts = sorted((g["_graph"]["edges"], g[method][key]) for name, g in results.items()
                 if name in SCALING_GRAPHS and g.get(method, {}).get("ok") and key in g[method])
    return np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)


def plot_embedding(results: dict, path: Path) -> Path:
    """R-MAT scaling: time and memory against |E| for DistNE and ProNE."""
    plt = _pyplot()
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, label in EMBED_METHODS.items():
        e, s = scaling_series(results, method)
        if e.size:
            ax_t.loglog(e, s, "o-", label=label)
    e_d, s_d = scaling_series(results, "distne-spark")
    e_p, s_p = scaling_series(results, "prone")
    for e, s in zip(e_d, s_d):
        hit = np.flatnonzero(e_p == e)
        if hit.size:
            ax_t.annotate(f"{s / s_p[hit[0]]:.2f}x", (e, s), textcoords="offset points", xytext=(-10, 6), fontsize=8)
    ax_t.set(xlabel="edges |E|", ylabel="wall seconds", title="R-MAT: time (label: DistNE / ProNE 1 thread)")
    ax_t.legend(fontsize=8)
    for method, key, label in (("distne-spark", "driver_peak_mb", "DistNE driver"),
                               ("distne-spark", "peak_mb", "DistNE, whole process tree"),
                               ("prone", "peak_mb", "ProNE")):
        e, m = scaling_series(results, method, key)
        if e.size:
            ax_m.loglog(e, m, "o-", label=label)
    ax_m.set(xlabel="edges |E|", ylabel="peak RSS, MB", title="R-MAT: memory")
    ax_m.legend(fontsize=8)
    return _save(fig, path)


# --- heavy hitters -----------------------------------------------------------------------------
HH_METHODS = {"taps": "TAPS", "tap": "TAP", "fedpem": "fed. PEM", "pem": "pooled PEM", "pureldp_pem": "pure-ldp PEM"}


def f1_series(cell: dict, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ε, F1 mean, F1 std) of one method in one {epsilon: {method: row}} cell, sorted by ε."""
    pts = sorted((float(eps), row[method]["f1_mean"], row[method].get("f1_std", 0.0))
                 for eps, row in cell.items() if method in row)
    return tuple(np.array([p[i] for p in pts], float) for i in range(3))


def plot_heavy_hitters(results: dict, path: Path) -> Path:
    """F1 against ε per (dataset, parties), one line per method."""
    plt = _pyplot()
    cells = [(ds, parties) for ds in sorted(results) for parties in sorted(results[ds], key=int)]
    ncol = 2
    nrow = -(-len(cells) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(10, 3.2 * nrow), squeeze=False)
    for ax, (ds, parties) in zip(axes.flat, cells):
        for method, label in HH_METHODS.items():
            if method == "fedpem" and parties == "1":
                continue  # with one party fed. PEM is pooled PEM (same computation, same figures)
            eps, mean, std = f1_series(results[ds][parties], method)
            if eps.size:
                ax.errorbar(eps, mean, yerr=std, marker="o", capsize=3, label=label)
        ax.set_xscale("log", base=2)
        ticks = sorted(float(e) for e in results[ds][parties])
        ax.set_xticks(ticks, [f"{e:g}" for e in ticks])
        ax.set(ylim=(0, 1), xlabel="ε", ylabel="F1 of the top-k",
               title=f"{ds}, {parties} part{'y' if parties == '1' else 'ies'}")
        ax.legend(fontsize=7)
    for ax in axes.flat[len(cells):]:
        ax.set_visible(False)
    return _save(fig, path)


IDEAL_LABELS = {"fedpem": "fed. PEM", "taps": "TAPS", "pooled": "ideal tree, pooled",
                "bayes": "ideal tree, Bayes scores", "party": "ideal tree, party genie"}


def ideal_bars(results: dict, eps: str = "4") -> dict[str, dict[str, tuple[float, float]]]:
    """Per data set: ``{label: (F1, se)}`` of fed. PEM and TAPS (committed paired run) and the best
    idealised design per mode (its fresh-seed mean; the best of the re-run top designs)."""
    out = {}
    for ds in sorted(results):
        by_mode = results[ds].get(eps, {})
        if not by_mode:
            continue
        ref = next(iter(by_mode.values())).get("reference", {})
        bars = {IDEAL_LABELS[m]: (r["f1_mean"], r.get("f1_se", 0.0)) for m, r in ref.items()}
        for mode, cell in sorted(by_mode.items(), key=lambda kv: list(IDEAL_LABELS).index(kv[0])):
            best = max(cell["best"].values(), key=lambda r: r["f1_mean"])
            bars[IDEAL_LABELS[mode]] = (best["f1_mean"], best["f1_se"])
        out[ds] = bars
    return out


def plot_heavy_hitters_ideal(results: dict, path: Path) -> Path:
    """fed. PEM, TAPS and the best idealised designs at ε = 4, with the fed. PEM + 0.1 target."""
    plt = _pyplot()
    bars = ideal_bars(results)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(IDEAL_LABELS)
    for j, label in enumerate(IDEAL_LABELS.values()):
        xs = [i for i, ds in enumerate(bars) if label in bars[ds]]
        vals = [bars[ds][label] for ds in bars if label in bars[ds]]
        offset = (j - (len(IDEAL_LABELS) - 1) / 2) * width
        ax.bar([x + offset for x in xs], [v[0] for v in vals], width, yerr=[v[1] for v in vals], capsize=3,
               label=label)
    for i, ds in enumerate(bars):
        if "fed. PEM" in bars[ds]:
            ax.hlines(bars[ds]["fed. PEM"][0] + 0.1, i - 0.45, i + 0.45, colors="k", linestyles="--",
                      label="fed. PEM + 0.1 (target)" if i == 0 else None)
    ax.set_xticks(range(len(bars)), list(bars))
    ax.set(ylim=(0, 1), ylabel="F1 of the top-32", title="5 non-IID parties, ε = 4")
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


# --- recommender -------------------------------------------------------------------------------
def seed_runs(group: dict, method: str) -> list[dict]:
    """The runs of one method in a result group: ``method`` and its ``method seedN`` repeats."""
    return [r for k, r in group.items() if isinstance(r, dict) and re.fullmatch(re.escape(method) + r"( seed\d+)?", k)]


def curve(runs: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, min, max) of Recall@20 over runs that share an evaluation history."""
    hists = [{h["epoch"]: h["recall@20"] for h in r.get("history") or []} for r in runs]
    epochs = sorted(set.intersection(*(set(h) for h in hists))) if hists else []
    if not epochs:
        return (np.empty(0),) * 4
    vals = np.array([[h[e] for e in epochs] for h in hists])
    return np.array(epochs, float), vals.mean(0), vals.min(0), vals.max(0)


def density_ratios(group: dict, model: str = "mf") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(density, mean DSL/dense Recall@20, std over seeds) of the default DSL runs in one group."""
    dense_runs = seed_runs(group, f"{model}@1")
    if not dense_runs:
        return (np.empty(0),) * 3
    dense = np.mean([r["recall@20"] for r in dense_runs])
    pts = []
    for k in group:
        m = re.fullmatch(re.escape(model) + r"@([0-9.]+)", k)
        if m and float(m.group(1)) < 1:
            rec = np.array([r["recall@20"] for r in seed_runs(group, k)]) / dense
            pts.append((float(m.group(1)), rec.mean(), rec.std()))
    pts.sort()
    return tuple(np.array([p[i] for p in pts], float) for i in range(3))


# result keys of recommender.json (<dataset>/<budget>; benchmarks/README.md, recommender)
RECSYS_CURVES = (("gowalla/200ep", "Gowalla, 200 epochs"), ("yelp2018/200ep", "Yelp2018, 200 epochs"))
RECSYS_DENSITY = (("gowalla/200ep", "Gowalla, 200 epochs"), ("yelp2018/200ep", "Yelp2018, 200 epochs"),
                  ("gowalla/20ep", "Gowalla, 20 epochs (3 seeds)"), ("yelp2018/12ep", "Yelp2018, 12 epochs (3 seeds)"))
RECSYS_LINES = {"mf@1": "dense MF, d = 64", "mf@0.5": "DSL@0.5", "mf@1 d32": "dense MF, d = 32 (DSL@0.5's size)",
                "mf@0.2": "DSL@0.2", "mf@1 d13": "dense MF, d = 13 (DSL@0.2's size)", "mf@0.1": "DSL@0.1",
                "mf@0.2 random": "DSL@0.2, paper's random masks"}


def plot_recommender(results: dict, path: Path) -> Path:
    """Training curves of dense vs DSL MF, and DSL / dense against density."""
    plt = _pyplot()
    panels = [g for g in RECSYS_CURVES if g[0] in results]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4.6 * (len(panels) + 1), 4.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        for method, label in RECSYS_LINES.items():
            ep, mean, lo, hi = curve(seed_runs(results[key], method))
            if ep.size:
                n = len(seed_runs(results[key], method))
                style = "s--" if " d" in method else "o-"  # dense models of a DSL run's size: dashed
                line, = ax.plot(ep, mean, style, ms=3, label=f"{label} ({mean[-1]:.4f}, {n} seed{'s' * (n > 1)})")
                ax.fill_between(ep, lo, hi, color=line.get_color(), alpha=0.2)
        ax.set(xlabel="epoch", ylabel="Recall@20", title=title)
        ax.legend(fontsize=7)
    ax = axes[0, -1]
    for key, title in RECSYS_DENSITY:
        if key in results:
            d, mean, std = density_ratios(results[key])
            if d.size:
                ax.errorbar(d, mean, yerr=std, marker="o", capsize=3, label=title)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.axhline(0.97, color="red", ls="--", lw=0.8, label="target: within 3 %")
    ax.set(xlabel="density", ylabel="DSL / dense Recall@20", title="MF-BPR: DSL against dense")
    ax.legend(fontsize=7)
    return _save(fig, path)


# --- social recommender and tuning ------------------------------------------------------------
def social_cells(results: dict) -> list[tuple[str, dict]]:
    """The ``data/model/density`` cells of ``social.json`` that hold both arms, in file order."""
    return [(k, v) for k, v in results.items() if isinstance(v, dict) and "paired" in v]


def plot_social(results: dict, path: Path) -> Path:
    """Recall@20 overall and for cold users, interactions only vs social, mean ± se over seeds."""
    plt = _pyplot()
    cells = social_cells(results)
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.3 * len(cells) + 2), 3.6))
    x = np.arange(len(cells))
    for ax, key, title in zip(axes, ("recall@20", "recall@20_cold"), ("all test users", "cold users (≤ 5)")):
        for j, (arm, colour) in enumerate((("interactions", "#9aa5b1"), ("social", "#2f6fb0"))):
            vals = [[r[key] for r in c[arm]["runs"]] for _, c in cells]
            mean = [float(np.mean(v)) for v in vals]
            se = [float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0 for v in vals]
            ax.bar(x + (j - 0.5) * 0.38, mean, 0.38, yerr=se, color=colour, label=arm, capsize=2)
        ax.set_xticks(x, [k.replace("/", "\n") for k, _ in cells], fontsize=8)
        ax.set_title(f"Recall@20, {title}")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_recommender_tuning(results: dict, path: Path) -> Path:
    """Test Recall@20 of popularity, (a) fixed settings, (b) early stopping, (c) tuned, per data set."""
    plt = _pyplot()
    cells = [(k, v) for k, v in results.items() if isinstance(v, dict) and "c_tuned" in v]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(cells) + 2), 3.6))
    x = np.arange(len(cells))
    bars = (("popularity", lambda c: c["a_defaults"]["popularity_recall"], "#cccccc"),
            ("(a) fixed settings", lambda c: c["a_defaults"]["recall"], "#9aa5b1"),
            ("(b) early stopping", lambda c: c["b_early_stopping"]["recall"], "#6b8fb8"),
            ("(c) --tune", lambda c: c["c_tuned"]["recall"], "#2f6fb0"))
    for j, (label, get, colour) in enumerate(bars):
        ax.bar(x + (j - 1.5) * 0.2, [get(c) for _, c in cells], 0.2, label=label, color=colour)
    ax.set_xticks(x, [k.replace("/", "\n") for k, _ in cells], fontsize=8)
    ax.set_ylabel("Recall@20 (test)")
    ax.legend(fontsize=8)
    return _save(fig, path)


FIGURES = {"embedding": plot_embedding, "heavy_hitters": plot_heavy_hitters,
           "heavy_hitters_ideal": plot_heavy_hitters_ideal, "recommender": plot_recommender,
           "social": plot_social, "recommender_tuning": plot_recommender_tuning}


def draw(name: str, results_json: Path) -> Path:
    """Redraw one benchmark's figure from its results JSON, as the same name with ``.png``."""
    return FIGURES[name](json.loads(Path(results_json).read_text()), Path(results_json).with_suffix(".png"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=sorted(FIGURES), default=sorted(FIGURES))
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder of the results JSON files")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in a.only:
        draw(name, a.results / f"{name}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
