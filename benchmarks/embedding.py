"""Benchmark: graphrec DistNE (local Spark) and ProNE vs nodevectors ProNE and pecanpy node2vec.

    python -m benchmarks.embedding [--graphs blogcatalog slashdot rmat16 rmat18 rmat20]
        [--methods distne-spark prone prone-threads nodevectors-prone pecanpy-node2vec] [--baseline-python PY]

Every method runs in its own child process (wall time including start-up, peak RSS of the whole
process tree sampled with psutil); vectors come back as ``.npy`` and are scored here with the
protocols of :mod:`embeddings.evaluate` (node classification on BlogCatalog at 10/50/90%, link
prediction AUC with 10% of edges held out). Baselines run with ``--baseline-python`` (default
``.bench-venvs/embed/bin/python``, a venv with nodevectors 0.1.23 and pecanpy 2.0.9). R-MAT graphs
(Graph500 parameters, ``2**scale`` nodes, 16 edges per node) measure time and memory growth only.
Prints a table and writes ``benchmarks/results/embedding.json``:
``{graph: {method: {"seconds", "peak_mb", "micro_f1": {...}, "macro_f1": {...}, "auc", ...}}}``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from benchmarks.scaling_graphs import SCALING_GRAPHS

if TYPE_CHECKING:
    from benchmarks.proctree import TreeRun

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "embedding.json"
DIM = 128


# ----------------------------------------------------------------------------- child side
def _child(method: str, graph: str, out: str, extra: str) -> None:
    """Run one method on the graph saved at ``graph`` (``.npz``) and save vectors to ``out``."""
    a = sp.load_npz(graph).tocsr()
    t = time.perf_counter()
    if method in ("prone", "prone-threads"):  # one thread (as in a Spark task) / every core
        sys.path.insert(0, str(ROOT))
        from embeddings.prone import ProNE

        x = ProNE(DIM, seed=0, threads=1 if method == "prone" else 0).fit_transform(a)
    elif method == "nodevectors-prone":
        import csrgraph
        import nodevectors

        x = nodevectors.ProNE(n_components=DIM, verbose=False).fit_transform(csrgraph.csrgraph(a))
    elif method == "pecanpy-node2vec":
        from pecanpy import pecanpy as node2vec

        edg = Path(out).with_suffix(".edg")
        u = sp.triu(a, 1).tocoo()
        np.savetxt(edg, np.c_[u.row, u.col], fmt="%d", delimiter="\t")
        g = node2vec.SparseOTF(p=1, q=1, workers=2, verbose=False)
        g.read_edg(str(edg), weighted=False, directed=False)
        emb = g.embed(dim=DIM, num_walks=10, walk_length=80, window_size=10)
        x = np.zeros((a.shape[0], DIM), np.float32)
        x[np.array(g.nodes).astype(np.int64)] = emb  # pecanpy orders rows by its node list
    else:
        raise SystemExit(f"unknown child method {method}")
    np.save(out, np.asarray(x, np.float32))
    Path(out + ".json").write_text(json.dumps({"fit_s": time.perf_counter() - t}))


# ----------------------------------------------------------------------------- parent side
def _run_tree(cmd: list[str], env: dict) -> TreeRun:
    """Run ``cmd`` from the project root, its output discarded unless it fails (then its tail is printed)."""
    from benchmarks.proctree import run_tree  # parent side only: a baseline's child has no ``benchmarks``

    run = run_tree(cmd, env)
    if run.returncode:
        print(run.output, file=sys.stderr)
    return run


def _write_graph_dir(a: sp.csr_matrix, gdir: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    u = sp.triu(a, 1).tocoo()
    (gdir / "edges").mkdir(parents=True)
    (gdir / "vertices").mkdir()
    order = np.lexsort((u.col, u.row))
    pq.write_table(pa.table({"src": u.row[order].astype(np.int64), "dst": u.col[order].astype(np.int64),
                             "weight": np.ones(u.nnz, np.float32)}), gdir / "edges" / "part-0.parquet")
    pq.write_table(pa.table({"id": np.arange(a.shape[0], dtype=np.int64), "orig_id": np.arange(a.shape[0], dtype=np.int64)}),
                   gdir / "vertices" / "part-0.parquet")
    (gdir / "stats.json").write_text(json.dumps({"directed": False, "nodes": a.shape[0], "edges": int(u.nnz)}))


def run_method(method: str, a: sp.csr_matrix, work: Path, tag: str, args) -> dict:
    """Embed ``a`` with ``method`` in a child process; return timings, memory and the vectors."""
    npz = work / f"{tag}.npz"
    if not npz.exists():
        sp.save_npz(npz, a)
    out = str(work / f"{tag}-{method}.npy")
    env = {"OPENBLAS_NUM_THREADS": "2", "SPARK_LOCAL_IP": "127.0.0.1"}
    meta: dict = {}
    if method in ("distne-spark", "distne-spark-auto"):
        gdir = work / f"{tag}-graph"
        if not gdir.exists():
            _write_graph_dir(a, gdir)
        m = args.max_part_nodes or int(0.51 * (np.diff(a.indptr) > 0).sum())
        odir = work / f"{tag}-{method}"
        cmd = [sys.executable, "jobs/embed_graph.py", "--edges", str(gdir), "--output", str(odir), "--dim", str(DIM)]
        if method == "distne-spark":  # the auto variant lets the job choose M from its memory budget
            cmd += ["--max-part-nodes", str(m)]
        if args.memory_mb:  # the task budget: with a forced M it only decides where the coarsening runs
            cmd += ["--memory-mb", str(args.memory_mb)]
            meta["memory_mb"] = args.memory_mb
        if args.coarse_edges_per_cluster:
            cmd += ["--coarse-edges-per-cluster", str(args.coarse_edges_per_cluster)]
            meta["coarse_edges_per_cluster"] = args.coarse_edges_per_cluster
        if args.top_edges_per_cluster:
            cmd += ["--top-edges-per-cluster", str(args.top_edges_per_cluster)]
            meta["top_edges_per_cluster"] = args.top_edges_per_cluster
        run = _run_tree(cmd, env)
        meta["driver_peak_mb"] = round(run.python_peak_mb, 1)
        if run.returncode == 0:
            sys.path.insert(0, str(ROOT))
            from embeddings.evaluate import dense_vectors

            np.save(out, dense_vectors(odir, a.shape[0]))
            jm = json.loads((odir / "_meta.json").read_text())
            meta |= {k: jm.get(k) for k in ("parts", "levels", "largest_subgraph_nodes", "max_subgraph_nodes",
                                           "edge_cut_fraction", "border_nodes_fraction", "embedded_edges_multiple",
                                           "per_level", "timings", "coarsening", "largest_subgraph_edges",
                                           "max_subgraph_edges")}
    else:
        py = args.baseline_python if method in ("nodevectors-prone", "pecanpy-node2vec") else sys.executable
        cmd = [py, str(Path(__file__).resolve()), "--child", method, str(npz), out]
        run = _run_tree(cmd, env)
        if run.returncode == 0:
            meta = json.loads(Path(out + ".json").read_text())
    ok = run.returncode == 0
    res = {"seconds": round(run.seconds, 2), "cpu_s": round(run.cpu_s, 1), "peak_mb": round(run.peak_mb, 1), "ok": ok,
           "load_avg_1m": round(os.getloadavg()[0], 1), **meta}
    return res, (np.load(out) if ok else None)


def load_graph(name: str, data_root: Path):
    sys.path.insert(0, str(ROOT))
    from embeddings import datasets

    if name == "blogcatalog":
        return datasets.blogcatalog(data_root)
    if name == "slashdot":
        return datasets.slashdot(data_root), None
    if name.startswith("rmat"):
        from graphs.generators import rmat_block

        scale = int(name[4:])
        s, d = rmat_block(scale, 16 * 2**scale, seed=1)
        a = datasets.symmetric_adjacency(s, d, 2**scale)
        live = np.flatnonzero(np.diff(a.indptr))
        return a[live][:, live].tocsr(), None
    raise SystemExit(f"unknown graph {name}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "NPZ", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--graphs", nargs="+", default=["blogcatalog", "slashdot", "rmat16", "rmat18"])
    ap.add_argument("--methods", nargs="+",
                    default=["distne-spark", "prone", "prone-threads", "nodevectors-prone", "pecanpy-node2vec"])
    ap.add_argument("--skip", nargs="*", default=["slashdot:pecanpy-node2vec"],
                    help="graph:method pairs not run (e.g. slashdot:pecanpy-node2vec takes ~10 min)")
    ap.add_argument("--baseline-python", default=str(ROOT / ".bench-venvs" / "embed" / "bin" / "python"))
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--max-part-nodes", type=int, default=None, help="M for DistNE (default 0.51·n: 4 parts)")
    ap.add_argument("--coarse-edges-per-cluster", type=int, default=None,
                    help="DistNE: part subgraphs keep only the K heaviest quotient edges of each outside cluster")
    ap.add_argument("--top-edges-per-cluster", type=int, default=None,
                    help="DistNE: the top level embeds only the K heaviest quotient edges of each cluster")
    ap.add_argument("--memory-mb", type=int, default=None,
                    help="DistNE: the job's --memory-mb (task budget; default the job's 2048)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--results", default=str(RESULTS), help="JSON file to update (merged per graph and method)")
    ap.add_argument("--report", action="store_true", help="only print the table and R-MAT scaling of --results")
    args = ap.parse_args(argv)
    if args.report:
        final = json.loads(Path(args.results).read_text())
        print_table(final)
        print_scaling(final)
        return 0
    if args.child:
        _child(*args.child, extra="")
        return 0
    sys.path.insert(0, str(ROOT))
    from embeddings.evaluate import link_prediction_auc, node_classification, split_edges

    out_file = Path(args.results)
    results = json.loads(out_file.read_text()) if out_file.exists() else {}
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        work = Path(tmp)
        for gname in args.graphs:
            a, labels = load_graph(gname, Path(args.data_root))
            res = results.setdefault(gname, {})
            res["_graph"] = {"nodes": int(a.shape[0]), "edges": int(sp.triu(a, 1).nnz)}
            split = split_edges(a, 0.1, seed=0) if not gname.startswith("rmat") else None
            for method in args.methods:
                if f"{gname}:{method}" in args.skip or (gname.startswith("rmat") and method not in ("distne-spark", "distne-spark-auto", "prone", "prone-threads")):
                    continue
                row: dict = {}
                if labels is not None:  # node classification on the full graph
                    r, x = run_method(method, a, work, gname, args)
                    row.update(r)
                    if x is not None:
                        row.update(node_classification(x, labels, repeats=args.repeats))
                if split is not None:  # link prediction on the 90% training graph
                    r, x = run_method(method, split.train, work, gname + "-lp", args)
                    if labels is None:
                        row.update(r)
                    else:
                        row["lp_seconds"], row["lp_peak_mb"] = r["seconds"], r["peak_mb"]
                    if x is not None:
                        row["auc"] = link_prediction_auc(x, split)
                if gname.startswith("rmat"):
                    r, _ = run_method(method, a, work, gname, args)
                    row.update(r)
                res[method] = row
                print(f"{gname:12s} {method:18s} {json.dumps({k: v for k, v in row.items() if k not in ('per_level', 'timings')})}",
                      flush=True)
                out_file.parent.mkdir(parents=True, exist_ok=True)
                merged = json.loads(out_file.read_text()) if out_file.exists() else {}
                merged.setdefault(gname, {}).update(res)
                out_file.write_text(json.dumps(merged, indent=2, sort_keys=True, default=float))
                results = merged
    final = json.loads(out_file.read_text()) if out_file.exists() else results
    print_table(final)
    print_scaling(final)
    if out_file.exists():
        from benchmarks import plots  # parent side only (matplotlib)

        plots.draw("embedding", out_file)
    return 0




def scaling(results: dict, graphs=SCALING_GRAPHS) -> dict:
    """Per method over the R-MAT graphs: (edges, seconds, peak MB, driver MB) rows sorted by edges, the
    least-squares exponent ``b`` of ``seconds ∝ edges^b`` (and of CPU seconds), and DistNE/ProNE time at
    the largest graph both ran on."""
    out: dict = {}
    for g, methods in results.items():
        if g not in graphs or "_graph" not in methods:
            continue
        for m, r in methods.items():
            if not m.startswith("_") and r.get("ok"):
                out.setdefault(m, {"rows": []})["rows"].append(
                    (methods["_graph"]["edges"], r["seconds"], r.get("cpu_s"), r.get("peak_mb"), r.get("driver_peak_mb"), g))
    for m, v in out.items():
        v["rows"].sort()
        e = np.log([r[0] for r in v["rows"]])
        if len(e) >= 2:
            v["time_exponent"] = float(np.polyfit(e, np.log([r[1] for r in v["rows"]]), 1)[0])
            if all(r[2] for r in v["rows"]):
                v["cpu_exponent"] = float(np.polyfit(e, np.log([r[2] for r in v["rows"]]), 1)[0])
    for base in ("prone", "prone-threads"):
        if "distne-spark" in out and base in out:
            common = {r[5]: r for r in out["distne-spark"]["rows"]}, {r[5]: r for r in out[base]["rows"]}
            both = [g for g in common[0] if g in common[1]]
            if both:
                g = max(both, key=lambda k: common[0][k][0])
                out[f"distne_over_{base.replace('-', '_')}"] = {"graph": g, "edges": common[0][g][0], "base": base,
                                                                 "ratio": common[0][g][1] / common[1][g][1]}
    return out


def print_scaling(results: dict) -> None:
    """R-MAT scaling: time/memory per size, fitted exponents, driver memory, DistNE vs ProNE at the largest."""
    sc = scaling(results)
    if not sc:
        return
    print("\nR-MAT scaling (seconds ∝ edges^b)")
    for m, v in sc.items():
        if m.startswith("distne_over_"):
            continue
        rows = "; ".join(f"{r[5]} {r[0]:,} edges: {r[1]:.1f} s, {r[2]} CPU s, peak {r[3]} MB, driver {r[4]} MB"
                         for r in v["rows"])
        exps = "".join(f", {k} {v[k]:.2f}" for k in ("time_exponent", "cpu_exponent") if k in v)
        print(f"  {m}: {rows}{exps}")
    for key in ("distne_over_prone", "distne_over_prone_threads"):
        if key in sc:
            d = sc[key]
            print(f"  DistNE / {d['base']} wall time at {d['graph']} ({d['edges']:,} edges): {d['ratio']:.2f}x")


def print_table(results: dict) -> None:
    """Markdown table of all graphs and methods, with time ratios against pecanpy / our ProNE."""
    cols = ["graph", "method", "seconds", "peak MB", "micro-F1 .1/.5/.9", "macro-F1 .1/.5/.9", "AUC", "parts", "largest subgraph", "edges ×"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for g, methods in results.items():
        for m, r in methods.items():
            if m.startswith("_"):
                continue
            f1 = lambda k: "/".join(f"{r[k][s]:.3f}" for s in ("0.1", "0.5", "0.9")) if k in r else ""
            auc = f"{r['auc']:.3f}" if r.get("auc") is not None else ""
            mult = f"{r['embedded_edges_multiple']:.2f}" if r.get("embedded_edges_multiple") else ""
            print(f"| {g} | {m} | {r.get('seconds', '')} | {r.get('peak_mb', '')} | {f1('micro_f1')} | {f1('macro_f1')} | {auc} "
                  f"| {r.get('parts', '')} | {r.get('largest_subgraph_nodes', '')} | {mult} |")


if __name__ == "__main__":
    sys.exit(main())
