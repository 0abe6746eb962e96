"""Offline bandit comparison: Diag-LinUCB vs full LinUCB (C ≤ 64) vs ε-greedy vs random.

    python -m benchmarks.bandits [--datasets gowalla yelp2018] [--clusters 16 32 64] [--k 3]

Replay on the LightGCN test splits (``../shared/data/<dataset>``; a user's held-out test items reward
1), contexts from a truncated SVD of the train matrix (or ``--user-vectors/--item-vectors`` from the
recommender). Each seed gives its own candidate graph (k-means seed) and user sequence; every policy
uses one exploration value for all seeds (the best mean) and is compared with LinUCB seed by seed
(paired ratios: mean ± std and the worst seed). Every policy runs in its own child process on the same user sequence; the parent
samples the RSS of the child's process tree (psutil) for the peak memory. Prints the table, writes
``benchmarks/results/bandits.json`` and one learning-curve PNG per dataset (largest C).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from benchmarks.proctree import run_call
from recsys.candidates import CandidateConfig, build_params

ROOT = Path(__file__).resolve().parents[1]


def _repo_relative(path: str) -> str:
    """Record paths relative to the project root, so results name no machine's folders."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name
DATA = Path("../shared/data")
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "out" / "bench_cache"


TUNED = {"diag_linucb": "alpha", "diag_linucb_prior": "alpha", "linucb": "alpha", "egreedy": "epsilon", "random": None}


def _child(data_dir, params_dirs, policy, values, cfg_kw):
    """Replay one policy for each (seed, exploration value), one at a time; ``params_dirs[seed]`` per seed."""
    from recsys.bandits.params import load_params
    from recsys.bandits.simulate import SimConfig, load_lightgcn_split, make_policies, replay

    split = load_lightgcn_split(data_dir)
    out = []
    for seed, params_dir in params_dirs.items():
        params = load_params(params_dir)
        for val in values:
            kw = dict(cfg_kw, seed=seed, **({TUNED[policy]: val} if TUNED[policy] else {}))
            cfg = SimConfig(**kw)
            pol = make_policies(params, cfg, linucb=(policy == "linucb"))[policy]
            t0 = time.perf_counter()
            res = replay(params, split, {policy: pol}, cfg)
            out.append({"seed": seed, "param": val, "curve": res.curves[policy].tolist(),
                        "stats_bytes": res.memory_bytes[policy], "policy_seconds": res.seconds[policy],
                        "replay_seconds": time.perf_counter() - t0})
            del pol, res
    return out


def _measure(data_dir, params_dirs, policy, values, cfg_kw):
    try:
        run = run_call(_child, str(data_dir), {k: str(v) for k, v in params_dirs.items()}, policy, values, cfg_kw,
                       start="spawn")
    except RuntimeError as e:
        raise RuntimeError(f"{policy}: {e}") from e
    for o in run.result:
        o["peak_rss_mb"] = run.peak_mb
    return run.result


def _vectors(name, split, dim, user_vectors, item_vectors):
    from recsys.bandits.simulate import svd_vectors
    from recsys.candidates import read_vectors

    if user_vectors and item_vectors:
        uid, u = read_vectors(user_vectors)
        iid, v = read_vectors(item_vectors)
        return uid, u, iid, v, "recommender"
    CACHE.mkdir(parents=True, exist_ok=True)
    f = CACHE / f"{name}_svd{dim}.npz"
    if f.exists():
        z = np.load(f)
        u, v = z["u"], z["v"]
    else:
        u, v = svd_vectors(split.train, dim)
        np.savez(f, u=u, v=v)
    return np.arange(u.shape[0]), u, np.arange(v.shape[0]), v, f"svd{dim}"


def _ratios(rows) -> None:
    """Per-seed ratios to LinUCB and random on the same replay (paired), then their mean, std and min."""
    by = {(r["dataset"], r["C"], r["policy"]): r for r in rows}
    for r in rows:
        for ref in ("linucb", "random"):
            other = by.get((r["dataset"], r["C"], ref))
            q = (np.asarray(r["rewards"]) / np.asarray(other["rewards"])) if other else np.array([np.nan])
            r[f"vs_{ref}"], r[f"vs_{ref}_std"], r[f"vs_{ref}_min"] = float(q.mean()), float(q.std()), float(q.min())


def _report(rows, a, curves_png, obd, final=False) -> None:
    """Ratios, the table and the JSON (rewritten after every configuration, so partial runs keep results)."""
    _ratios(rows)
    hdr = ("| dataset | C | policy | best param | cum. reward (mean ± std) | vs LinUCB (mean ± std, min) | vs random | "
           "stats MB | peak RSS MB | policy s |")
    lines = [hdr, "|" + "---|" * 10]
    for r in rows:
        par = "—" if r["tuned"] is None else f"{r['tuned']}={r['best_param']}"
        lines.append(f"| {r['dataset']} | {r['C']} | {r['policy']} | {par} | {r['reward']:.0f} ± {r['reward_std']:.0f} | "
                     f"{r['vs_linucb']:.3f} ± {r['vs_linucb_std']:.3f} ({r['vs_linucb_min']:.3f}) | "
                     f"{r['vs_random']:.2f} | {r['stats_bytes'] / 2**20:.2f} | {r['peak_rss_mb']:.0f} | "
                     f"{r['policy_seconds']:.1f} |")
    if final:
        print("\n".join(lines))
        print("\nOpen Bandit random/all replay (smoke only):", json.dumps(obd))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    config = {k: (_repo_relative(v) if k in ("out", "user_vectors", "item_vectors") and v else v) for k, v in vars(a).items()}
    Path(a.out).write_text(json.dumps({"config": config, "complete": final, "rows": rows, "table": lines,
                                       "open_bandit_smoke": obd, "curves": curves_png,
                                       "machine": {"cpus": psutil.cpu_count(), "mem_gb": psutil.virtual_memory().total / 2**30}},
                                      indent=2, default=float))


def _summarise(runs: list[dict]) -> dict:
    """One exploration value for all seeds: the one with the best mean cumulative reward."""
    by_val: dict = {}
    for m in runs:
        by_val.setdefault(m["param"], []).append(m)
    best_val = max(by_val, key=lambda v: np.mean([m["curve"][-1] for m in by_val[v]]))
    best = sorted(by_val[best_val], key=lambda m: m["seed"])
    rewards = np.array([m["curve"][-1] for m in best])
    return {"best_param": best_val, "seeds": [m["seed"] for m in best], "rewards": rewards.tolist(),
            "reward": float(rewards.mean()), "reward_std": float(rewards.std()),
            "curve": np.mean([m["curve"] for m in best], axis=0),
            "grid": {str(v): float(np.mean([m["curve"][-1] for m in ms])) for v, ms in by_val.items()},
            "stats_bytes": float(np.mean([m["stats_bytes"] for m in best])),
            "policy_seconds": float(np.mean([m["policy_seconds"] for m in best])),
            "replay_seconds": float(np.mean([m["replay_seconds"] for m in best])),
            "peak_rss_mb": best[0]["peak_rss_mb"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["gowalla", "yelp2018"])
    ap.add_argument("--clusters", nargs="+", type=int, default=[16, 32, 64])
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--w", type=int, default=100)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--slate", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                    help="one replay per seed: the k-means of the candidate graph and the user sequence")
    ap.add_argument("--alpha", type=float, nargs="+", default=[0.03, 0.1, 0.3, 1.0], help="grid for both UCB policies")
    ap.add_argument("--epsilon", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4], help="grid for ε-greedy")
    ap.add_argument("--weighting", default=CandidateConfig.weighting, choices=["inverse_distance", "softmax"])
    ap.add_argument("--power", type=float, default=CandidateConfig.power, help="inverse_distance: w ∝ δ^-power")
    ap.add_argument("--temperature", type=float, default=CandidateConfig.temperature, help="softmax temperature")
    ap.add_argument("--user-vectors")
    ap.add_argument("--item-vectors")
    ap.add_argument("--policies", nargs="+", default=list(TUNED), choices=list(TUNED))
    ap.add_argument("--no-plot", action="store_true", help="do not (over)write the learning-curve PNGs")
    ap.add_argument("--no-smoke", action="store_true", help="skip the Open Bandit smoke replay")
    ap.add_argument("--out", default=str(RESULTS / "bandits.json"))
    a = ap.parse_args(argv)

    from recsys.bandits.publish import publish_params
    from recsys.bandits.simulate import SimResult, load_lightgcn_split, open_bandit_replay, plot_curves

    rows, curves_png = [], {}
    cfg_kw = dict(steps=a.steps, batch=a.batch, slate=a.slate)
    grids = {"diag_linucb": a.alpha, "diag_linucb_prior": a.alpha, "linucb": a.alpha, "egreedy": a.epsilon,
             "random": [None]}
    for ds in a.datasets:
        data_dir = DATA / ds
        split = load_lightgcn_split(data_dir)
        uid, u, iid, v, source = _vectors(ds, split, a.dim, a.user_vectors, a.item_vectors)
        for C in a.clusters:
            with tempfile.TemporaryDirectory() as tmp:
                dirs, edges, items, build_s = {}, [], [], []
                for seed in a.seeds:
                    t0 = time.perf_counter()
                    params, _ = build_params(uid, u, iid, v, CandidateConfig(
                        n_clusters=C, k=a.k, w=a.w, weighting=a.weighting, power=a.power,
                        temperature=a.temperature, seed=seed))
                    build_s.append(time.perf_counter() - t0)
                    dirs[seed] = Path(tmp) / f"seed={seed}"
                    publish_params(dirs[seed], params)
                    edges.append(params.num_edges)
                    items.append(int(np.unique(params.edge_item).size))
                res = SimResult()
                for pol in a.policies:
                    runs = _measure(data_dir, dirs, pol, grids[pol], cfg_kw)
                    for m in runs:
                        print(f"  {ds} C={C} seed={m['seed']} {pol} {TUNED[pol]}={m['param']}: reward "
                              f"{m['curve'][-1]:.0f} ({m['replay_seconds']:.1f} s)", flush=True)
                    summ = _summarise(runs)
                    res.curves[pol] = summ.pop("curve")
                    rows.append({"dataset": ds, "vectors": source, "C": C, "K": a.k, "W": a.w,
                                 "edges": float(np.mean(edges)), "items": float(np.mean(items)),
                                 "policy": pol, "tuned": TUNED[pol], "build_s": float(np.mean(build_s)), **summ})
            if C == max(a.clusters) and not a.no_plot:
                png = RESULTS / f"bandits_{ds}.png"
                plot_curves(res, png, f"{ds}: C={C}, K={a.k}, W={a.w}, {a.steps}x{a.batch} users, slate {a.slate}, "
                                      f"mean of {len(a.seeds)} seeds")
                curves_png[ds] = str(png.relative_to(ROOT))
            _report(rows, a, curves_png, None)
    obd = None if a.no_smoke else open_bandit_replay(DATA / "open_bandit_sample" / "random_all.csv.gz")
    _report(rows, a, curves_png, obd, final=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
