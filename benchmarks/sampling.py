"""Benchmark of the JDM/DCM rescaled sampler (issue 4) against directed baselines and networkx.

    python -m benchmarks.sampling                 # everything (quality, wiring vs networkx, job scaling)
    python -m benchmarks.sampling --skip-job      # quality + networkx only (a few minutes)
    python -m benchmarks.sampling --skip-quality --skip-wiring --skip-job --core-sizes 1e6,4e6,1.6e7

1. Quality on FilmTrust, CiaoDVD, DBLP (KONECT) and soc-Slashdot0902 (SNAP) at r = 0.1, 0.25, 0.5:
   in/out-degree L1, the rounding floor, JDM L1, node count vs r N and seconds, for ``rescaled`` and
   the four baselines (same code as ``jobs/sample_graph.py``, run in-process on numpy arrays) ->
   ``benchmarks/results/sampling.json`` shaped ``{graph: {ratio: {method: {...}}}}``.
2. Wiring speed: :func:`graphs.wiring.wire` vs ``networkx.directed_joint_degree_graph`` on the same
   rescaled matrices, each in a child process (time, peak RSS of the process tree).
3. Job scaling: ``jobs/sample_graph.py --method rescaled --ratio 0.1`` on generated R-MAT graphs of
   1e6, 4e6, 1.6e7 edges (local[2]; wall time incl. Spark start-up, peak RSS of the tree incl. the
   JVM) and the numpy core alone; the fitted exponent of time ~ edges^k.
   Parts 2 and 3 go to ``benchmarks/results/sampling_speed.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmarks.proctree import run_call, run_tree
from graphs.baselines import BASELINES
from graphs.degree import degree_matrices, relabel, simplify
from graphs.quality import plot_degree_distributions, quality_report
from graphs.rescale import rescale
from graphs.wiring import WiringPlan, wire

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
GRAPHS = {
    "FilmTrust": ("konect_filmtrust_trust/out.librec-filmtrust-trust.gz", "konect"),
    "CiaoDVD": ("konect_ciaodvd_trust/out.librec-ciaodvd-trust.gz", "konect"),
    "DBLP": ("konect_dblp_cite/out.dblp-cite.gz", "konect"),
    "soc-Slashdot0902": ("soc-slashdot0902/soc-Slashdot0902.txt.gz", "snap"),
}
RATIOS = (0.1, 0.25, 0.5)
METHODS = ("rescaled",) + tuple(BASELINES)


def load(name: str):
    from graphs.readers import read_edges

    path, fmt = GRAPHS[name]
    e = read_edges(DATA / path, fmt)
    s, d, ids = relabel(np.asarray(e.src), np.asarray(e.dst))
    return simplify(s, d, ids.size)


# --- measuring in a child process -------------------------------------------------------------

def measure(fn, *args, timeout: float = 600.0) -> dict:
    """Run ``fn(*args)`` in a forked child; wall and CPU seconds inside the child and peak RSS of its tree."""
    run = run_call(fn, *args, timeout=timeout)
    if run.timed_out:
        return {"seconds": None, "cpu_s": None, "timeout": timeout, "peak_mb": run.peak_mb}
    return {"seconds": run.seconds, "cpu_s": run.cpu_s, "peak_mb": run.peak_mb, "out": run.result}


def measure_cmd(cmd: list[str], env: dict, timeout: float = 1800.0) -> dict:
    """Run a command; wall seconds and peak RSS of its process tree (the Spark JVM included)."""
    run = run_tree(cmd, env, timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{run.output}")
    return {"seconds": run.seconds, "peak_mb": run.peak_mb}


# --- 1. quality ------------------------------------------------------------------------------------

def run_quality(names, seed: int = 0) -> dict:
    res: dict = {}
    for name in names:
        g = load(name)
        m = degree_matrices(g.src, g.dst, g.n_nodes)
        res[name] = {}
        plots: dict = {}
        for r in RATIOS:
            row = res[name][str(r)] = {}
            n = int(round(r * g.n_nodes))
            for method in METHODS:
                t = time.perf_counter()
                if method == "rescaled":
                    rs = rescale(m, r)
                    w = wire(rs.dcm, rs.jdm, seed=seed)
                    s, d, k = w.src, w.dst, w.n_nodes
                else:
                    smp = BASELINES[method](g.src, g.dst, g.n_nodes, n, np.random.default_rng(seed))
                    s, d, k = smp.src, smp.dst, smp.n_nodes
                secs = time.perf_counter() - t
                sm = degree_matrices(s, d, k)
                if r == 0.25:
                    plots[method] = sm
                q = quality_report(m, sm, r)
                row[method] = {key: q[key] for key in ("in_l1", "out_l1", "floor_in", "floor_out", "jdm_l1",
                                                       "nodes", "target_nodes")}
                row[method]["seconds"] = secs
        plot_degree_distributions(m, plots, RESULTS / f"sampling_{name}.png", title=f"{name}, r = 0.25")
    return res


def print_quality(res: dict) -> str:
    lines = ["| graph | r | method | in L1 | out L1 | floor in/out | 1.5·floor+0.002 in/out | JDM L1 | nodes / r·N | s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for g, by_r in res.items():
        for r, by_m in by_r.items():
            for m, v in by_m.items():
                lim = (1.5 * v["floor_in"] + 0.002, 1.5 * v["floor_out"] + 0.002)
                lines.append(f"| {g} | {r} | {m} | {v['in_l1']:.4f} | {v['out_l1']:.4f} | "
                             f"{v['floor_in']:.4f} / {v['floor_out']:.4f} | {lim[0]:.4f} / {lim[1]:.4f} | "
                             f"{v['jdm_l1']:.3f} | {v['nodes']} / {v['target_nodes']} | {v['seconds']:.2f} |")
    return "\n".join(lines)


def check_targets(res: dict) -> list[str]:
    """The issue's targets for ``rescaled``; returns the violations (empty = all met)."""
    bad = []
    for g, by_r in res.items():
        for r, by_m in by_r.items():
            v = by_m["rescaled"]
            if v["in_l1"] > 1.5 * v["floor_in"] + 0.002 or v["out_l1"] > 1.5 * v["floor_out"] + 0.002:
                bad.append(f"{g} r={r}: L1 above 1.5 floor + 0.002")
            if abs(v["nodes"] - v["target_nodes"]) > 0.01 * v["target_nodes"]:
                bad.append(f"{g} r={r}: node count off by more than 1%")
            for m, b in by_m.items():
                if m != "rescaled" and not (v["in_l1"] < b["in_l1"] and v["out_l1"] < b["out_l1"]
                                            and v["jdm_l1"] < b["jdm_l1"]):
                    bad.append(f"{g} r={r}: not below {m}")
    return bad


# --- 2. wiring vs networkx -------------------------------------------------------------------------

def _ours(dcm, jdm, repeats: int = 5):
    """Best wall and CPU seconds of ``repeats`` wirings inside one child (warm caches)."""
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        wire(dcm, jdm, seed=0)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return {"wall": min(walls), "cpu": min(cpus)}


def _networkx(dcm, jdm):
    import networkx as nx

    a = sp.coo_array(jdm)
    nkk: dict = {}
    for i, j, v in zip(a.row.tolist(), a.col.tolist(), a.data.tolist()):
        nkk.setdefault(i, {})[j] = v
    out_deg, in_deg = WiringPlan.build(dcm, jdm).node_degrees()
    G = nx.directed_joint_degree_graph(in_deg.tolist(), out_deg.tolist(), nkk, seed=0)
    return G.number_of_edges()


def run_wiring(cases, nx_timeout: float) -> list[dict]:
    rows = []
    for name, r in cases:
        g = load(name)
        rs = rescale(degree_matrices(g.src, g.dst, g.n_nodes), r)
        run = measure(_ours, rs.dcm, rs.jdm)
        best = {"seconds": run["out"]["wall"], "peak_mb": run["peak_mb"]}
        best_cpu = run["out"]["cpu"]
        ref = measure(_networkx, rs.dcm, rs.jdm, timeout=nx_timeout)
        row = {"graph": name, "ratio": r, "edges": rs.n_edges, "ours_s": best["seconds"], "ours_cpu_s": best_cpu,
               "ours_mb": best["peak_mb"], "networkx_s": ref["seconds"], "networkx_cpu_s": ref["cpu_s"],
               "networkx_mb": ref["peak_mb"],
               "speedup": (ref["seconds"] / best["seconds"]) if ref["seconds"] else None,
               "speedup_cpu": (ref["cpu_s"] / best_cpu) if ref["cpu_s"] else None}
        rows.append(row)
        print(f"wiring {name} r={r}: {rs.n_edges} edges, ours {best['seconds']:.3f}s wall / {best_cpu:.3f}s cpu / "
              f"{best['peak_mb']:.0f} MB, networkx {ref['seconds'] or float('nan'):.2f}s wall / "
              f"{ref['cpu_s'] or float('nan'):.2f}s cpu / {ref['peak_mb']:.0f} MB", flush=True)
    return rows


# --- 3. job scaling on R-MAT -------------------------------------------------------------------------

def write_rmat_graph(root: Path, n_edges: int, seed: int = 1) -> dict:
    from graphs.generators import rmat_block

    scale = int(np.ceil(np.log2(n_edges / 16)))
    s, d = rmat_block(scale, n_edges, seed)
    g = simplify(s, d, 1 << scale)
    root.mkdir(parents=True, exist_ok=True)
    (root / "edges").mkdir(exist_ok=True)
    pd.DataFrame({"src": g.src, "dst": g.dst, "weight": np.ones(g.src.size, np.float32)}).to_parquet(
        root / "edges" / "part-0.parquet", index=False)
    (root / "vertices").mkdir(exist_ok=True)
    pd.DataFrame({"id": np.arange(g.n_nodes, dtype=np.int64), "orig_id": np.arange(g.n_nodes, dtype=np.int64)}
                 ).to_parquet(root / "vertices" / "part-0.parquet", index=False)
    stats = {"directed": True, "nodes": g.n_nodes, "edges": int(g.src.size)}
    (root / "stats.json").write_text(json.dumps(stats))
    return {"scale": scale, **stats}


def _core(root: str, ratio: float):
    e = pd.read_parquet(Path(root) / "edges")
    n = json.loads((Path(root) / "stats.json").read_text())["nodes"]
    m = degree_matrices(e["src"].to_numpy(), e["dst"].to_numpy(), n)
    rs = rescale(m, ratio)
    w = wire(rs.dcm, rs.jdm, seed=0)
    return int(w.src.size)


def run_scaling(sizes, ratio: float, workdir: Path, on_row=None) -> list[dict]:
    rows = []
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    for n_edges in sizes:
        n_edges = int(n_edges)
        gdir = workdir / f"rmat_{n_edges}"
        info = write_rmat_graph(gdir, n_edges)
        core = measure(_core, str(gdir), ratio, timeout=1800)
        job = measure_cmd([sys.executable, "-m", "jobs.sample_graph", "--edges", str(gdir), "--ratio", str(ratio),
                           "--method", "rescaled", "--output", str(workdir / f"out_{n_edges}")], env)
        rep = json.loads((workdir / f"out_{n_edges}" / "report.json").read_text())
        rows.append({"target_edges": n_edges, "edges": info["edges"], "nodes": info["nodes"], "scale": info["scale"], "ratio": ratio,
                     "job_s": job["seconds"], "job_mb": job["peak_mb"], "job_phases": rep["seconds"],
                     "core_s": core["seconds"], "core_mb": core["peak_mb"], "sample_edges": rep["edges"],
                     "exact": rep.get("exact_realisation"), "in_l1": rep["in_l1"], "out_l1": rep["out_l1"],
                     "floor_in": rep["floor_in"], "floor_out": rep["floor_out"]})
        print(f"job R-MAT {info['edges']} edges: job {job['seconds']:.1f}s / {job['peak_mb']:.0f} MB, "
              f"core {core['seconds']:.1f}s / {core['peak_mb']:.0f} MB, exact={rep.get('exact_realisation')}",
              flush=True)
        if on_row is not None:
            on_row(rows)
    return rows


def exponent(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graphs", default=",".join(GRAPHS))
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--skip-wiring", action="store_true")
    p.add_argument("--skip-job", action="store_true")
    p.add_argument("--sizes", default="1e6,4e6,1.6e7")
    p.add_argument("--nx-timeout", type=float, default=300.0)
    p.add_argument("--core-sizes", default="", help="R-MAT sizes for the numpy core alone (rescale + wire), e.g. 1e6,4e6,1.6e7")
    a = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not a.skip_quality:
        res = run_quality(a.graphs.split(","))
        (RESULTS / "sampling.json").write_text(json.dumps(res, indent=1))
        print(print_quality(res))
        bad = check_targets(res)
        print("targets met" if not bad else "TARGETS MISSED:\n  " + "\n  ".join(bad))
    speed_path = RESULTS / "sampling_speed.json"
    speed = json.loads(speed_path.read_text()) if speed_path.exists() else {}

    def update(key: str, value) -> None:  # re-read first: another run may have written other keys
        cur = json.loads(speed_path.read_text()) if speed_path.exists() else {}
        cur[key] = speed[key] = value
        speed_path.write_text(json.dumps(cur, indent=1))

    if not a.skip_wiring:
        cases = [("FilmTrust", 1.0), ("CiaoDVD", 0.25), ("DBLP", 0.25), ("CiaoDVD", 1.0), ("DBLP", 1.0),
                 ("soc-Slashdot0902", 0.1), ("soc-Slashdot0902", 0.25), ("soc-Slashdot0902", 0.5)]
        update("wiring_vs_networkx", run_wiring(cases, a.nx_timeout))
    if a.core_sizes:
        rows = []
        with tempfile.TemporaryDirectory(prefix="graphrec-sampling-core-") as tmp:
            for n_edges in [int(float(x)) for x in a.core_sizes.split(",")]:
                info = write_rmat_graph(Path(tmp) / f"rmat_{n_edges}", n_edges)
                core = measure(_core, str(Path(tmp) / f"rmat_{n_edges}"), 0.1, timeout=1800)
                rows.append({"target_edges": n_edges, "edges": info["edges"], "nodes": info["nodes"],
                             "core_s": core["seconds"], "core_mb": core["peak_mb"]})
                print(f"core R-MAT {info['edges']} edges: {core['seconds']:.1f}s / {core['peak_mb']:.0f} MB", flush=True)
        update("core_scaling", {"rows": rows, "exponent": exponent([r["edges"] for r in rows],
                                                                   [r["core_s"] for r in rows]) if len(rows) > 1 else None})
    if not a.skip_job:
        sizes = [float(s) for s in a.sizes.split(",")]
        earlier = [r for r in speed.get("job_scaling", {}).get("rows", [])
                   if r.get("target_edges") not in {int(x) for x in sizes}]

        def save(rows):  # keeps the rows of other sizes measured by earlier runs
            rows = sorted(earlier + rows, key=lambda r: r["edges"])
            sc = {"rows": rows}
            if len(rows) >= 2:
                sc["job_exponent"] = exponent([r["edges"] for r in rows], [r["job_s"] for r in rows])
                sc["core_exponent"] = exponent([r["edges"] for r in rows], [r["core_s"] for r in rows])
            update("job_scaling", sc)

        with tempfile.TemporaryDirectory(prefix="graphrec-sampling-") as tmp:
            rows = run_scaling(sizes, 0.1, Path(tmp), on_row=save)
        sc = speed.get("job_scaling", {})
        if "job_exponent" in sc:
            print(f"fitted exponent: job {sc['job_exponent']:.2f}, core {sc['core_exponent']:.2f}")


if __name__ == "__main__":
    main()
