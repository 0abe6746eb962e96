"""Federated LDP heavy hitters: TAPS, TAP, federated PEM, pooled PEM and pure-ldp's PEM.

    python -m benchmarks.heavy_hitters                 # quality grid (AOL, retail, BMS) + pure-ldp
    python -m benchmarks.heavy_hitters --scale         # Spark job on 1e6, 3e6, 1e7 Zipf users

Quality grid: data sets × {1, 5 non-IID parties} × ε ∈ {1, 2, 4}, k = 32, ``--seeds`` perturbation
seeds (data sampling and the Dirichlet(α=0.5) party split use seed 0). Every (data set, method)
runs in its own child process; the peak RSS of its process tree is sampled with psutil.
pure-ldp's PEM (benchmark-only, own venv ``.bench-venvs/pureldp``) aggregates each OLH report by a
Python loop over the whole 2^bits domain, so it is compared on the setting where it finishes:
``zipf12`` (Zipf 1.3 over a 12-bit domain, 20,000 users, k = 10, start 2, fragment 2 bits) against
our PEM with the same levels. Writes ``benchmarks/results/heavy_hitters.json`` shaped
``{dataset: {parties: {epsilon: {method: {f1_mean, f1_std, ncr_mean, seconds, ...}}}}}``;
``--scale`` writes ``benchmarks/results/heavy_hitters_scale.json``. ``--timing --seeds 1 --merge`` times one
seed per cell (meant to run alone, holding the shared timing lock) and stores it as ``seconds_locked``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "data"
PURELDP_PY = ROOT / ".bench-venvs" / "pureldp" / "bin" / "python"
METHODS = ("taps", "tap", "fedpem", "pem")


def run_child(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[float, float, int]:
    """Run ``cmd``; return (wall seconds, peak RSS of the process tree in MiB, return code)."""
    import psutil

    t = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})})
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    return time.time() - t, peak / 2**20, proc.returncode


# ---------------------------------------------------------------------------------------------
def load(dataset: str):
    """``(items, bits, k, pem_kw)`` of a benchmark data set (seed 0)."""
    from ldp.datasets import load_dataset

    if dataset == "zipf12":
        rng = np.random.default_rng(0)
        w = np.arange(1, 4097, dtype=np.float64) ** -1.3
        items = np.random.default_rng(1).permutation(4096)[rng.choice(4096, 20_000, p=w / w.sum())]
        return items.astype(np.int64), 12, 10, {"pem_step": 2, "start_bits": 2}
    items, bits = load_dataset(dataset, SHARED, seed=0)
    return items, bits, 32, {}


def worker(dataset: str, method: str, parties: list[int], eps: list[float], seeds: int, out: str) -> None:
    """Child process: every (parties, ε, seed) of one method on one data set."""
    from ldp.datasets import dirichlet_parties
    from ldp.federated import run_method
    from ldp.metrics import evaluate
    from ldp.pem import PEMConfig, pem
    from ldp.rounds import LocalPopulation

    items, bits, k, pem_kw = load(dataset)
    res = {}
    for P in parties:
        part = dirichlet_parties(items, P, alpha=0.5, seed=0)
        for e in eps:
            rows = []
            for s in range(seeds):
                pop = LocalPopulation(part, np.arange(items.size), items, bits, e, seed=1000 + s)
                t = time.time()
                if method == "pem" and "start_bits" in pem_kw:
                    hh = pem(pop, PEMConfig(k=k, step=pem_kw["pem_step"], start_bits=pem_kw["start_bits"], seed=1000 + s))
                else:
                    hh = run_method(method, pop, k=k, seed=1000 + s)
                m = evaluate(hh.items, hh.estimates, items, k)
                rows.append((m["f1"], m["ncr"], m["relative_error"], time.time() - t))
            a = np.array(rows)
            res.setdefault(str(P), {})[str(e)] = {
                "f1_mean": float(a[:, 0].mean()), "f1_std": float(a[:, 0].std()), "ncr_mean": float(a[:, 1].mean()),
                "ncr_std": float(a[:, 1].std()), "rel_error_mean": float(a[:, 2].mean()),
                "seconds": float(a[:, 3].mean()), "seeds": seeds, "users": int(items.size), "bits": bits, "k": k,
                "olh_pool": "adaptive"}
            print(f"  {dataset} P={P} eps={e} {method}: F1 {a[:, 0].mean():.3f}±{a[:, 0].std():.3f} "
                  f"NCR {a[:, 1].mean():.3f} {a[:, 3].mean():.1f}s", flush=True)
    Path(out).write_text(json.dumps(res))


def pureldp(eps: list[float], seeds: int) -> dict:
    """pure-ldp's PEM on zipf12, one child process per run (its own venv)."""
    from ldp.metrics import evaluate

    items, bits, k, kw = load("zipf12")
    res = {}
    with tempfile.TemporaryDirectory() as td:
        for e in eps:
            rows, peaks = [], []
            for s in range(seeds):
                inp, out = Path(td) / "in.npz", Path(td) / "out.json"
                np.savez(inp, items=items, bits=bits, epsilon=e, k=k, start=kw["start_bits"],
                         fragment=kw["pem_step"], seed=s)
                wall, peak, rc = run_child([str(PURELDP_PY), str(ROOT / "benchmarks" / "pureldp_pem.py"), str(inp), str(out)])
                if rc != 0:
                    raise RuntimeError("pure-ldp child failed")
                r = json.loads(out.read_text())
                m = evaluate(np.array(r["found"], dtype=np.int64), np.zeros(len(r["found"])), items, k)
                rows.append((m["f1"], m["ncr"], r["seconds"]))
                peaks.append(peak)
            a = np.array(rows)
            res[str(e)] = {"f1_mean": float(a[:, 0].mean()), "f1_std": float(a[:, 0].std()),
                           "ncr_mean": float(a[:, 1].mean()), "ncr_std": float(a[:, 1].std()),
                           "seconds": float(a[:, 2].mean()), "seeds": seeds, "peak_rss_mb": float(max(peaks)),
                           "users": int(items.size), "bits": bits, "k": k}
            print(f"  zipf12 P=1 eps={e} pureldp_pem: F1 {a[:, 0].mean():.3f}±{a[:, 0].std():.3f} "
                  f"NCR {a[:, 1].mean():.3f} {a[:, 2].mean():.1f}s", flush=True)
    return res


def table(results: dict) -> str:
    """Markdown table: F1 (mean ± std) per method, TAPS − fedpem."""
    lines = ["| data | parties | ε | " + " | ".join(["TAPS", "TAP", "fed. PEM", "pooled PEM", "pure-ldp PEM"])
             + " | TAPS − fedPEM | s/run TAPS / PEM |", "|" + " --- |" * 10]
    for ds, byp in results.items():
        for P, bye in byp.items():
            for e, bym in bye.items():
                def cell(m):  # † = measured before the adaptive OLH pool (fixed 1,024 keys)
                    r = bym.get(m)
                    old = "†" if r and m != "pureldp_pem" and r.get("olh_pool") != "adaptive" else ""
                    return f"{r['f1_mean']:.3f} ± {r['f1_std']:.3f}{old}" if r else "—"
                same = "taps" in bym and "fedpem" in bym and bym["taps"].get("olh_pool") == bym["fedpem"].get("olh_pool")
                diff = f"{bym['taps']['f1_mean'] - bym['fedpem']['f1_mean']:+.3f}" if same else "—"
                key = "seconds_locked" if "seconds_locked" in bym.get("taps", {}) else "seconds"  # timed alone (--timing)
                sec = (f"{bym['taps'][key]:.1f} / {bym['pem'][key]:.1f}"
                       if "taps" in bym and key in bym.get("pem", {}) else "—")
                lines.append(f"| {ds} | {P} | {e} | " + " | ".join(cell(m) for m in (*METHODS, "pureldp_pem"))
                             + f" | {diff} | {sec} |")
    return "\n".join(lines)


def quality(args) -> None:
    path = Path(args.out)
    results: dict = json.loads(path.read_text()) if path.exists() and args.merge else {}
    with tempfile.TemporaryDirectory() as td:
        for ds in args.datasets:
            parties = [1] if ds == "zipf12" else args.parties
            for method in args.methods:
                out = Path(td) / f"{ds}_{method}.json"
                cmd = [sys.executable, "-m", "benchmarks.heavy_hitters", "--worker", ds, method, str(out),
                       "--seeds", str(args.seeds), "--eps", ",".join(map(str, args.eps)),
                       "--parties", ",".join(map(str, parties))]
                load = [round(x, 2) for x in os.getloadavg()]
                wall, peak, rc = run_child(cmd)
                if rc != 0:
                    raise RuntimeError(f"worker {ds}/{method} failed")
                load = [load, [round(x, 2) for x in os.getloadavg()]]  # 1/5/15-min load before and after
                for P, bye in json.loads(out.read_text()).items():
                    for e, r in bye.items():
                        cell = results.setdefault(ds, {}).setdefault(P, {}).setdefault(e, {})
                        if args.timing:  # keep the quality figures, add the time of one seed run alone
                            cell.setdefault(method, {}).update(seconds_locked=r["seconds"], timing_load=load)
                            continue
                        r["peak_rss_mb"] = round(peak, 1)
                        cell[method] = r
            if ds == "zipf12" and args.pureldp:
                for e, r in pureldp(args.eps, args.seeds).items():
                    results[ds]["1"].setdefault(e, {})["pureldp_pem"] = r
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(table(results))


def scale(args) -> None:
    """Spark job (spark-submit, local[2]) on generated Zipf users: wall time and peak RSS."""
    from ldp.datasets import dirichlet_parties, report_table, zipf_items

    rows = []
    spark_submit = str(Path(sys.executable).parent / "spark-submit")
    with tempfile.TemporaryDirectory() as td:
        for n in args.sizes:
            inp, out = Path(td) / f"in_{n}", Path(td) / f"out_{n}"
            inp.mkdir()
            t = time.time()
            for c, a in enumerate(range(0, n, 2_000_000)):  # written in chunks to bound memory
                m = min(n, a + 2_000_000) - a
                items = zipf_items(m, bits=48, s=1.1, distinct=1_000_000, seed=c)
                df = report_table(items, dirichlet_parties(items, 5, alpha=0.5, seed=c), seed=c)
                df["user"] += a
                df.to_parquet(inp / f"part-{c:03d}.parquet")
            gen = time.time() - t
            cmd = [spark_submit, "--master", "local[2]", "--conf", "spark.driver.memory=3g",
               "--conf", "spark.sql.shuffle.partitions=8", "--conf", "spark.ui.enabled=false",
                   str(ROOT / "jobs" / "heavy_hitters.py"), "--input", str(inp), "--output", str(out),
                   "--bits", "48", "--epsilon", "4", "--k", "32", "--method", args.scale_method, "--seed", "1"]
            wall, peak, rc = run_child(cmd, env={"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable})
            if rc != 0:
                raise RuntimeError(f"spark job failed at n={n}")
            meta = json.loads((out / "_meta.json").read_text())
            rows.append({"users": n, "method": args.scale_method, "wall_s": round(wall, 1),
                         "protocol_s": meta["timings"]["protocol_s"], "read_validate_s": meta["timings"]["read_validate_s"],
                         "rounds": meta["rounds"], "peak_rss_mb": round(peak, 1), "generate_s": round(gen, 1)})
            print(rows[-1], flush=True)
    base = rows[0]
    for r in rows:
        r["time_ratio"] = round(r["wall_s"] / base["wall_s"], 2)
        r["size_ratio"] = round(r["users"] / base["users"], 2)
    (RESULTS / "heavy_hitters_scale.json").write_text(json.dumps(rows, indent=2))
    print("| users | method | wall s | protocol s | rounds | peak RSS MiB | time ratio | size ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['users']:,} | {r['method']} | {r['wall_s']} | {r['protocol_s']} | {r['rounds']} | "
              f"{r['peak_rss_mb']} | {r['time_ratio']} | {r['size_ratio']} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--datasets", type=lambda s: s.split(","), default=["aol", "retail", "bms", "zipf12"])
    ap.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS))
    ap.add_argument("--eps", type=lambda s: [float(x) for x in s.split(",")], default=[1.0, 2.0, 4.0])
    ap.add_argument("--parties", type=lambda s: [int(x) for x in s.split(",")], default=[1, 5])
    ap.add_argument("--no-pureldp", dest="pureldp", action="store_false")
    ap.add_argument("--merge", action="store_true", help="update the existing results file instead of replacing it")
    ap.add_argument("--out", default=str(RESULTS / "heavy_hitters.json"))
    ap.add_argument("--timing", action="store_true",
                    help="time one seed per cell (run under the shared timing lock) and add it to --out as seconds_locked")
    ap.add_argument("--scale", action="store_true", help="Spark scale run instead of the quality grid")
    ap.add_argument("--sizes", type=lambda s: [int(float(x)) for x in s.split(",")], default=[10**6, 3 * 10**6, 10**7])
    ap.add_argument("--scale-method", default="taps")
    ap.add_argument("--worker", nargs=3, metavar=("DATASET", "METHOD", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.worker:
        ds, method, out = args.worker
        worker(ds, method, args.parties, args.eps, args.seeds, out)
    elif args.scale:
        scale(args)
    else:
        quality(args)


if __name__ == "__main__":
    main()
