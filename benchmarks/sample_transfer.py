"""Does the sample earn its place? Property transfer, tuning transfer and the profile's own scaling (issue 27).

    python -m benchmarks.sample_transfer                   # everything (tens of minutes on 2 cores)
    python -m benchmarks.sample_transfer --quick           # one graph, one seed: checks that it runs
    python -m benchmarks.sample_transfer --skip-transfer --scaling-sizes 1e6,4e6,1.6e7

1. **Property transfer.** soc-Slashdot0902, DBLP citations, CiaoDVD trust and an R-MAT graph (2^16 nodes,
   2^20 edges, isolated nodes dropped); every sampler (``rescaled`` and the baselines of
   :mod:`graphs.baselines`, called as in ``benchmarks/sampling.py``) at r = 0.1 and 0.25 with 3 seeds. The
   full graph and each sample are profiled by the same code (:func:`graphs.profile.profile_graph`); per
   property the relative error of the sample's estimate (:mod:`graphs.profile_compare`, scaling laws stated
   there).
2. **Tuning transfer.** :func:`embeddings.tuning.tune` scores the same grid of ProNE propagation settings on
   the full graph and on every r = 0.1 sample (link-prediction AUC, same protocol); Kendall's τ between the
   two rankings, the regret (best full AUC minus the full AUC of the sample's choice), and the wall time of
   tuning on the sample over tuning on the full graph (same run).
3. **Profile scaling.** :func:`graphs.profile.profile_graph` on R-MAT graphs of 10^6, 4·10^6, 1.6·10^7 edges,
   each in a child process: wall seconds and peak RSS; the fitted exponent of time ~ edges^k.

Results: ``benchmarks/results/sample_transfer.json`` (written after every graph) and
``benchmarks/results/sample_transfer.png``; tables are printed.
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmarks.proctree import run_call
from benchmarks.sampling import GRAPHS as SAMPLING_GRAPHS, exponent, load
from embeddings.tuning import TuningConfig, default_grid, kendall_tau, regret, tune
from graphs.baselines import BASELINES
from graphs.degree import degree_matrices, relabel, simplify
from graphs.profile import ProfileConfig, profile_graph
from graphs.profile_compare import PROPERTIES, comparison_report, estimate, relative_error

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GRAPHS = ("soc-Slashdot0902", "DBLP", "CiaoDVD", "R-MAT")
METHODS = ("rescaled",) + tuple(BASELINES)
RATIOS = (0.1, 0.25)
log = logging.getLogger("benchmarks.sample_transfer")


def load_graph(name: str):
    """A simple digraph ``(src, dst, n)`` without isolated nodes."""
    if name == "R-MAT":
        from graphs.generators import rmat_block

        s, d = rmat_block(16, 1 << 20, seed=1)
        g = simplify(s, d, 1 << 16)
        s, d, _ = relabel(g.src, g.dst)
        return s, d, int(max(s.max(), d.max()) + 1)
    g = load(name)
    return g.src, g.dst, g.n_nodes


def draw(method: str, src, dst, n: int, ratio: float, seed: int, matrices=None):
    """One sample ``(src, dst, n)`` of ``method`` at ``ratio`` (the calls of benchmarks/sampling.py)."""
    if method == "rescaled":
        from graphs.rescale import rescale
        from graphs.wiring import wire

        rs = rescale(matrices if matrices is not None else degree_matrices(src, dst, n), ratio)
        w = wire(rs.dcm, rs.jdm, seed=seed)
        return w.src, w.dst, w.n_nodes
    smp = BASELINES[method](src, dst, n, int(round(ratio * n)), np.random.default_rng(seed))
    return smp.src, smp.dst, smp.n_nodes


def adjacency(src, dst, n) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(src), np.float32), (src, dst)), shape=(n, n))


def run_graph(name: str, methods, ratios, seeds, tune_ratios, pcfg: ProfileConfig, tcfg: TuningConfig, grid) -> dict:
    """Everything of parts 1 and 2 for one graph."""
    src, dst, n = load_graph(name)
    t = time.perf_counter()
    full = profile_graph(src, dst, n, pcfg).to_dict()
    out = {"nodes": n, "edges": int(len(src)), "profile_s": time.perf_counter() - t,
           "full_scalars": {p.name: p.get(full) for p in PROPERTIES}, "runs": []}
    log.info("%s: %d nodes, %d edges, profiled in %.1fs", name, n, len(src), out["profile_s"])
    full_aucs = None
    if tune_ratios:
        t, c = time.perf_counter(), time.process_time()
        res = tune(adjacency(src, dst, n), grid, tcfg)
        full_aucs = res.aucs()
        out["tuning"] = {"aucs": full_aucs, "seconds": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                         "chosen": res.chosen.label,
                         "span": max(full_aucs.values()) - min(full_aucs.values())}
    mats = degree_matrices(src, dst, n)
    for ratio in ratios:
        for method in methods:
            for seed in seeds:
                t = time.perf_counter()
                s, d, k = draw(method, src, dst, n, ratio, seed, mats)
                row = {"method": method, "ratio": ratio, "seed": seed, "nodes": k, "edges": int(len(s)),
                       "sample_s": time.perf_counter() - t}
                prof = profile_graph(s, d, k, pcfg).to_dict()
                rep = comparison_report(full, prof, ratio)
                row.update(errors={p["name"]: p["rel_error"] for p in rep["properties"]},
                           scalars={p["name"]: p["sample"] for p in rep["properties"]},
                           median_rel_error=rep["median_rel_error"], distributions=rep["distributions"])
                if full_aucs is not None and ratio in tune_ratios:
                    t, c = time.perf_counter(), time.process_time()
                    try:
                        res = tune(adjacency(s, d, k), grid, tcfg)
                    except ValueError as e:  # e.g. a forest: nothing to hold out
                        row["tuning"] = {"error": str(e)}
                        out["runs"].append(row)
                        log.info("%s %s r=%s seed=%d: cannot tune: %s", name, method, ratio, seed, e)
                        continue
                    secs, cpu = time.perf_counter() - t, time.process_time() - c
                    aucs = res.aucs()
                    labels = list(full_aucs)
                    row["tuning"] = {"aucs": aucs, "seconds": secs, "chosen": res.chosen.label,
                                     "tau": kendall_tau([aucs[x] for x in labels], [full_aucs[x] for x in labels]),
                                     "regret": regret(full_aucs, res.chosen.label),
                                     "cost_ratio": secs / out["tuning"]["seconds"],
                                     "cpu_ratio": cpu / out["tuning"]["cpu_s"]}
                out["runs"].append(row)
                log.info("%s %s r=%s seed=%d: %d nodes, median rel. error %.3f%s", name, method, ratio, seed, k,
                         row["median_rel_error"], (f", tau {row['tuning']['tau']:.2f}, regret "
                                                   f"{row['tuning']['regret']:.4f}") if "tuning" in row else "")
    return out


def _tune_timed(src, dst, n, grid, dim: int) -> dict:
    t, c = time.perf_counter(), time.process_time()
    tune(adjacency(src, dst, n), grid, TuningConfig(dim=dim, threads=1))
    return {"wall": time.perf_counter() - t, "cpu": time.process_time() - c}


def run_cost(names, grid, dim: int, ratio: float = 0.1, repeats: int = 3, method: str = "rescaled") -> dict:
    """Tuning cost on the sample over tuning cost on the full graph: each tuning in a forked child (one thread,
    scikit-learn imported before the fork), full and sample alternated ``repeats`` times; the best wall and CPU
    seconds of each (the least disturbed by other load on a shared machine)."""
    import sklearn.linear_model  # noqa: F401  (imported once, before the children fork)

    out = {}
    for name in names:
        src, dst, n = load_graph(name)
        smp = draw(method, src, dst, n, ratio, 0)
        runs = {"full": [], "sample": []}
        for _ in range(repeats):
            for key, g in (("full", (src, dst, n)), ("sample", smp)):
                runs[key].append(run_call(_tune_timed, *g, grid, dim, timeout=3600).result)
        best = {k: {m: min(r[m] for r in v) for m in ("wall", "cpu")} for k, v in runs.items()}
        out[name] = {"method": method, "ratio": ratio, "full": best["full"], "sample": best["sample"],
                     "wall_ratio": best["sample"]["wall"] / best["full"]["wall"],
                     "cpu_ratio": best["sample"]["cpu"] / best["full"]["cpu"], "runs": runs}
        log.info("tuning cost %s: full %.1fs, %s r=%s sample %.1fs: %.3f (CPU %.3f)", name, best["full"]["wall"],
                 method, ratio, best["sample"]["wall"], out[name]["wall_ratio"], out[name]["cpu_ratio"])
    return out


def profile_figures(names, methods, ratio: float, pcfg: ProfileConfig) -> list[Path]:
    """For each graph, its profile overlaid with every sampler's (seed 0): ``sample_transfer_<graph>.png``."""
    from graphs.profile_plot import plot_profiles

    paths = []
    for name in names:
        src, dst, n = load_graph(name)
        mats = degree_matrices(src, dst, n)
        profiles = {name: profile_graph(src, dst, n, pcfg).to_dict()}
        for m in methods:
            profiles[m] = profile_graph(*draw(m, src, dst, n, ratio, 0, mats), pcfg).to_dict()
        paths.append(plot_profiles(profiles, RESULTS / f"sample_transfer_{name}.png", title=f"{name}, r = {ratio}"))
    return paths


# --- summaries ---------------------------------------------------------------------------------------

def rescore(res: dict) -> None:
    """Recompute every run's errors (current scaling laws and floors) and τ / regret from the stored values."""
    for g in res["graphs"].values():
        for r in g["runs"]:
            r["errors"] = {p.name: relative_error(p, g["full_scalars"][p.name], estimate(p, r["scalars"][p.name],
                                                                                          r["ratio"]))
                           for p in PROPERTIES if p.name in r["scalars"] and p.name in g["full_scalars"]}
            r["median_rel_error"] = float(np.median(list(r["errors"].values())))
            t = r.get("tuning", {})
            if "aucs" in t and "tuning" in g:
                full = g["tuning"]["aucs"]
                t["tau"] = kendall_tau([t["aucs"][x] for x in full], list(full.values()))
                t["regret"] = regret(full, t["chosen"])


def property_table(res: dict, ratio: float) -> tuple[str, dict]:
    """Per property × method: the median over graphs and seeds of the relative error; last row: the median
    over properties. Returns the Markdown and ``{method: median over properties}``."""
    methods = [m for m in METHODS if any(r["method"] == m for g in res["graphs"].values() for r in g["runs"])]
    med: dict = {m: {} for m in methods}
    for p in PROPERTIES:
        for m in methods:
            v = [r["errors"][p.name] for g in res["graphs"].values() for r in g["runs"]
                 if r["method"] == m and r["ratio"] == ratio and p.name in r["errors"]]
            med[m][p.name] = float(np.median(v)) if v else float("nan")
    lines = [f"| property (r = {ratio}) | order | law | " + " | ".join(methods) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in methods) + " |"]
    for p in PROPERTIES:
        best = min(med[m][p.name] for m in methods)
        cells = [(f"**{med[m][p.name]:.3f}**" if med[m][p.name] == best else f"{med[m][p.name]:.3f}") for m in methods]
        lines.append(f"| {p.name} | {p.order} | {p.law} | " + " | ".join(cells) + " |")
    overall = {m: float(np.nanmedian(list(med[m].values()))) for m in methods}
    lines.append("| **median over properties** | | | " + " | ".join(f"**{overall[m]:.3f}**" for m in methods) + " |")
    return "\n".join(lines), {"per_property": med, "median": overall}


def per_graph_table(res: dict) -> str:
    """Median over properties of the relative error (median over seeds), per graph × ratio × method."""
    methods = [m for m in METHODS if any(r["method"] == m for g in res["graphs"].values() for r in g["runs"])]
    lines = ["| graph | r | " + " | ".join(methods) + " |", "| --- | --- | " + " | ".join("---" for _ in methods) + " |"]
    for gname, g in res["graphs"].items():
        for ratio in sorted({r["ratio"] for r in g["runs"]}):
            cells = []
            for m in methods:
                runs = [r for r in g["runs"] if r["method"] == m and r["ratio"] == ratio]
                per_prop = {p.name: np.median([r["errors"][p.name] for r in runs if p.name in r["errors"]])
                            for p in PROPERTIES} if runs else {}
                cells.append(f"{np.median(list(per_prop.values())):.3f}" if per_prop else "")
            lines.append(f"| {gname} | {ratio} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tuning_table(res: dict, ratio: float = 0.1) -> tuple[str, dict]:
    """Per graph × method: mean τ, mean regret and the cost ratio over seeds."""
    lines = ["| graph | full AUC span | method | τ (mean, min) | regret (mean, max) | tuning wall / full | CPU / full |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    agg: dict = {}
    for gname, g in res["graphs"].items():
        if "tuning" not in g:
            continue
        for m in METHODS:
            rows = [r["tuning"] for r in g["runs"] if r["method"] == m and r["ratio"] == ratio and "tuning" in r]
            failed = sum("error" in x for x in rows)
            rows = [x for x in rows if "error" not in x]
            if failed:
                lines.append(f"| {gname} | {g['tuning']['span']:.3f} | {m} | {failed} of {failed + len(rows)} samples "
                             "cannot be tuned (a forest: no edge to hold out) | | |")
            if not rows:
                continue
            tau, reg, cost = ([x[k] for x in rows] for k in ("tau", "regret", "cost_ratio"))
            cpu = [x.get("cpu_ratio", np.nan) for x in rows]
            agg.setdefault(m, {"tau": [], "regret": [], "cost": [], "cpu": []})
            for k, v in (("tau", tau), ("regret", reg), ("cost", cost), ("cpu", cpu)):
                agg[m][k] += v
            lines.append(f"| {gname} | {g['tuning']['span']:.3f} | {m} | {np.mean(tau):.2f} ({min(tau):.2f}) | "
                         f"{np.mean(reg):.4f} ({max(reg):.4f}) | {np.mean(cost):.3f} | {np.mean(cpu):.3f} |")
    summary = {m: {"tau": float(np.mean(v["tau"])), "regret": float(np.mean(v["regret"])),
                   "cost_ratio": float(np.mean(v["cost"])), "cpu_ratio": float(np.mean(v["cpu"]))}
               for m, v in agg.items()}
    for m, v in summary.items():
        lines.append(f"| **all graphs** | | {m} | {v['tau']:.2f} | {v['regret']:.4f} | {v['cost_ratio']:.3f} | "
                     f"{v['cpu_ratio']:.3f} |")
    return "\n".join(lines), summary


# --- 3. scaling ----------------------------------------------------------------------------------------

def _profile_file(path: str, n: int) -> dict:
    e = np.load(path)
    t, c = time.perf_counter(), time.process_time()
    p = profile_graph(e[0], e[1], n)
    return {"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - c, "sections": p.seconds,
            "clustering_exact": p.clustering.exact}


def run_scaling(sizes) -> dict:
    from graphs.generators import rmat_block

    rows = []
    with tempfile.TemporaryDirectory(prefix="graphrec-profile-") as tmp:
        for m in sizes:
            scale = int(np.ceil(np.log2(m / 16)))
            s, d = rmat_block(scale, int(m), seed=1)
            g = simplify(s, d, 1 << scale)
            path = str(Path(tmp) / f"e{int(m)}.npy")
            np.save(path, np.stack([g.src, g.dst]))
            del s, d
            run = run_call(_profile_file, path, g.n_nodes, timeout=3600)
            rows.append({"target_edges": int(m), "edges": int(g.src.size), "nodes": g.n_nodes,
                         "profile_s": run.result["seconds"], "profile_cpu_s": run.result["cpu_s"],
                         "child_s": run.seconds, "peak_mb": run.peak_mb,
                         "sections": run.result["sections"], "clustering_exact": run.result["clustering_exact"]})
            log.info("profile R-MAT %d edges: %.1fs, %.0f MB", g.src.size, run.result["seconds"], run.peak_mb)
    out = {"rows": rows}
    if len(rows) > 1:
        out["exponent"] = exponent([r["edges"] for r in rows], [r["profile_s"] for r in rows])
        out["exponent_cpu"] = exponent([r["edges"] for r in rows], [r["profile_cpu_s"] for r in rows])
        out["exponent_memory"] = exponent([r["edges"] for r in rows], [r["peak_mb"] for r in rows])
    return out


def run_job_scaling(sizes, memory_mb: int = 6144) -> dict:
    """``jobs/graph_profile.py`` (embedded ``local[2]``, one task for the structure) on R-MAT graphs: wall seconds
    including Spark start-up and the peak RSS of the process tree (the JVM and the Python workers included)."""
    import os
    import sys

    from benchmarks.sampling import measure_cmd, write_rmat_graph

    rows = []
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT), "GRAPHREC_DRIVER_MEMORY": "4g"}
    with tempfile.TemporaryDirectory(prefix="graphrec-profile-job-") as tmp:
        for m in sizes:
            gdir = Path(tmp) / f"rmat_{int(m)}"
            info = write_rmat_graph(gdir, int(m))
            out = Path(tmp) / f"out_{int(m)}"
            run = measure_cmd([sys.executable, "-m", "jobs.graph_profile", "--edges", str(gdir), "--output", str(out),
                               "--memory-mb", str(memory_mb)], env)
            meta = json.loads((out / "_meta.json").read_text())
            rows.append({"edges": info["edges"], "nodes": info["nodes"], "job_s": run["seconds"],
                         "job_mb": run["peak_mb"], "mode": meta["mode"], "timings": meta["timings"]})
            log.info("graph_profile job R-MAT %d edges: %.1fs, %.0f MB (%s)", info["edges"], run["seconds"],
                     run["peak_mb"], meta["mode"])
    out = {"rows": rows}
    if len(rows) > 1:
        out["exponent"] = exponent([r["edges"] for r in rows], [r["job_s"] for r in rows])
    return out


def scaling_table(sc: dict) -> str:
    lines = ["| edges | nodes | profile s (wall) | CPU s | peak MB | clustering | slowest sections |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in sc["rows"]:
        top = sorted(((k, v) for k, v in r["sections"].items() if k != "total"), key=lambda kv: -kv[1])[:3]
        lines.append(f"| {r['edges']:,} | {r['nodes']:,} | {r['profile_s']:.1f} | {r.get('profile_cpu_s', 0):.1f} | "
                     f"{r['peak_mb']:.0f} | "
                     f"{'exact' if r['clustering_exact'] else 'sampled'} | "
                     + ", ".join(f"{k} {v:.1f}s" for k, v in top) + " |")
    if "exponent" in sc:
        lines.append(f"\nfitted exponents (~ edges^k): wall {sc['exponent']:.2f}, CPU {sc.get('exponent_cpu', 0):.2f}, "
                     f"peak memory {sc.get('exponent_memory', 0):.2f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graphs", default=",".join(GRAPHS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--ratios", default=",".join(map(str, RATIOS)))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--tune-ratios", default="0.1", help="ratios whose samples are tuned ('' = no tuning)")
    p.add_argument("--dim", type=int, default=64, help="embedding dimension of the tuning runs")
    p.add_argument("--skip-transfer", action="store_true")
    p.add_argument("--scaling-sizes", default="1e6,4e6,1.6e7", help="R-MAT edge counts ('' = skip)")
    p.add_argument("--job-sizes", default="", help="R-MAT edge counts for the graph_profile job ('' = skip)")
    p.add_argument("--cost", action="store_true", help="tuning cost, sample vs full (best of 3, child processes)")
    p.add_argument("--profile-figures", action="store_true",
                   help="draw each graph's profile against every sampler's (r = the last ratio, seed 0)")
    p.add_argument("--quick", action="store_true", help="CiaoDVD, one seed, no scaling")
    p.add_argument("--out", default=str(RESULTS / "sample_transfer.json"))
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("embeddings.tuning").setLevel(logging.WARNING)
    if a.quick:
        a.graphs, a.seeds, a.scaling_sizes = "CiaoDVD", 1, ""
    out_path = Path(a.out)
    res = json.loads(out_path.read_text()) if out_path.exists() else {}
    res.setdefault("graphs", {})
    ratios = [float(x) for x in a.ratios.split(",")]
    tune_ratios = [float(x) for x in a.tune_ratios.split(",") if x]
    grid = default_grid()
    pcfg, tcfg = ProfileConfig(), TuningConfig(dim=a.dim, threads=0)
    res["config"] = {"ratios": ratios, "seeds": a.seeds, "tune_ratios": tune_ratios, "dim": a.dim,
                     "grid": [s.label for s in grid], "profile": pcfg.__dict__ | {"skip": list(pcfg.skip)}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not a.skip_transfer:
        for name in a.graphs.split(","):
            if name not in GRAPHS and name not in SAMPLING_GRAPHS:
                raise SystemExit(f"unknown graph {name!r}")
            res["graphs"][name] = run_graph(name, a.methods.split(","), ratios, range(a.seeds), tune_ratios, pcfg,
                                            tcfg, grid)
            out_path.write_text(json.dumps(res, indent=1))
    if a.cost:
        res["tuning_cost"] = run_cost(a.graphs.split(","), grid, a.dim)
        out_path.write_text(json.dumps(res, indent=1))
    if a.profile_figures:
        profile_figures(a.graphs.split(","), a.methods.split(","), ratios[-1], pcfg)
    if a.scaling_sizes:
        res["scaling"] = run_scaling([float(x) for x in a.scaling_sizes.split(",")])
        out_path.write_text(json.dumps(res, indent=1))
    if a.job_sizes:
        res["job_scaling"] = run_job_scaling([float(x) for x in a.job_sizes.split(",")])
        out_path.write_text(json.dumps(res, indent=1))
    rescore(res)
    summary = {}
    for r in ratios:
        if res["graphs"]:
            table, summary[str(r)] = property_table(res, r)
            print(table, "\n")
    if res["graphs"]:
        print(per_graph_table(res), "\n")
    if any("tuning" in g for g in res["graphs"].values()):
        table, summary["tuning"] = tuning_table(res)
        print(table, "\n")
    if "scaling" in res:
        print(scaling_table(res["scaling"]))
    for g, c in res.get("tuning_cost", {}).items():
        print(f"tuning cost {g}: full {c['full']['wall']:.1f} s wall / {c['full']['cpu']:.1f} s CPU, {c['method']} "
              f"r = {c['ratio']} sample {c['sample']['wall']:.1f} / {c['sample']['cpu']:.1f}: "
              f"{c['wall_ratio']:.3f} wall, {c['cpu_ratio']:.3f} CPU")
    for r in res.get("job_scaling", {}).get("rows", []):
        print(f"graph_profile job, R-MAT {r['edges']:,} edges: {r['job_s']:.1f} s, {r['job_mb']:.0f} MB ({r['mode']})")
    res["summary"] = summary
    out_path.write_text(json.dumps(res, indent=1))
    if res["graphs"]:
        from benchmarks.sample_transfer_plot import plot

        plot(res, out_path.with_suffix(".png"))


if __name__ == "__main__":
    main()
