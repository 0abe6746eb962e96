"""Sparse recommenders side by side: MF-BPR dense vs DSL, LightGCN dense vs DSL, implicit ALS/BPR.

    python -m benchmarks.recommender [--datasets gowalla yelp2018] [--mf-epochs 15] [--lgcn-epochs 2]

Every method runs in its own child process (ours through the real CLI, ``python -m recsys.train``;
``implicit`` in its own environment ``.bench-venvs/implicit``, whose factors are then scored here
with the same full-ranking protocol), while the RSS of the child's process tree is sampled with
psutil. Results merge into ``benchmarks/results/recommender.json`` (the runs of record) as
``{"<dataset>/<budget>": {"<model>@<density>[ <variant>]": {metrics as in metrics.json, wall_s, peak_rss_mb}}}``
and a table is printed (ratios against the dense model of the same family). ``<budget>`` is ``--tag`` (default
``<mf-epochs>ep``, ``epoch-cost`` for ``--cost-only``); ``<variant>`` is what departs from recsys.train's defaults
(:func:`run_name`). Ad-hoc runs go elsewhere: ``--results benchmarks/results/adhoc/recommender_adhoc.json``.
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

from benchmarks import plots
from benchmarks.proctree import run_tree
from recsys.train import add_mask_options
from recsys.trainer import TrainConfig

DEFAULTS = TrainConfig()  # recsys.train's defaults: result keys name departures from them (run_name)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "recommender.json"  # runs of record; ad hoc: results/adhoc/
IMPLICIT_PY = ROOT / ".bench-venvs" / "implicit" / "bin" / "python"

IMPLICIT_SCRIPT = r"""
import gzip, sys, time, numpy as np, scipy.sparse as sp
import implicit
from threadpoolctl import threadpool_limits
folder, out, algo, factors, iters, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
u, i = [], []
with gzip.open(folder + "/train.txt.gz", "rt") as f:
    for line in f:
        p = line.split()
        if p:
            u += [int(p[0])] * (len(p) - 1); i += [int(x) for x in p[1:]]
n_u, n_i = int(sys.argv[7]), int(sys.argv[8])
m = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(n_u, n_i))
with threadpool_limits(1, "blas"):
    if algo == "als":
        model = implicit.cpu.als.AlternatingLeastSquares(factors=factors, iterations=iters, regularization=0.05,
                                                         alpha=1.0, num_threads=threads, random_state=0)
    else:
        model = implicit.cpu.bpr.BayesianPersonalizedRanking(factors=factors, iterations=iters, learning_rate=0.05,
                                                             regularization=0.01, num_threads=threads, random_state=0)
    t = time.perf_counter()
    model.fit(m, show_progress=False)
    fit_s = time.perf_counter() - t
np.savez(out, users=model.user_factors, items=model.item_factors, fit_s=fit_s)
"""


def run_child(cmd: list[str], env: dict | None = None, timeout: float = 3600) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak RSS of its process tree in MiB, output tail); raise if it fails."""
    run = run_tree(cmd, env, timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({run.returncode}):\n{run.output}")
    return run.seconds, run.peak_mb, run.output


def run_ours(folder: Path, model: str, density: float, epochs: int, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        batch = args.mf_batch if model == "mf" else args.lgcn_batch
        rounds = args.mf_rounds if model == "mf" else args.lgcn_rounds
        cmd = [sys.executable, "-m", "recsys.train", "--data", str(folder), "--model", model, "--density", str(density),
               "--epochs", str(epochs), "--batch-size", str(batch), "--lr", str(args.lr), "--rounds", str(rounds),
               "--eval-every", str(args.eval_every if model == "mf" else args.lgcn_eval_every), "--device", args.device,
               "--threads", str(args.threads), "--output", str(out), "--no-progress",
               "--reg", str(args.mf_reg if model == "mf" else args.lgcn_reg), "--seed", str(args.seed)]
        if args.init_density_scale:
            cmd.append("--init-density-scale")
        if density < 1:
            cmd += ["--init-mask", args.init_mask, "--init-spread", str(args.init_spread),
                    "--prune-start", str(args.prune_start), "--grow-zero-signal", args.grow_zero_signal]
        if model == "mf":
            cmd += ["--grow-signal", args.grow_signal, "--min-interval-epochs", str(args.mf_interval_epochs),
                    "--min-row-active", str(args.min_row_active)]
            if args.mf_lr is not None:
                cmd += ["--lr", str(args.mf_lr)]
            if args.mf_lr_min is not None:
                cmd += ["--lr-min", str(args.mf_lr_min)]
            cmd += ["--dim", str(args.mf_dim)]
        wall, peak, _ = run_child(cmd)
        m = json.loads((out / "metrics.json").read_text())
    m.update(wall_s=wall, peak_rss_mb=peak, batch_size=batch)
    return m


def run_implicit(folder: Path, algo: str, data, args) -> dict:
    from recsys.metrics import evaluate_embeddings
    import torch

    iters = args.als_iters if algo == "als" else args.implicit_bpr_iters
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "fit.py"
        script.write_text(IMPLICIT_SCRIPT)
        out = Path(tmp) / "factors.npz"
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        wall, peak, _ = run_child([str(IMPLICIT_PY), str(script), str(folder), str(out), algo, "64", str(iters),
                                   str(args.threads), str(data.n_users), str(data.n_items)], env=env)
        f = np.load(out)
        U, V, fit_s = torch.from_numpy(f["users"]).float(), torch.from_numpy(f["items"]).float(), float(f["fit_s"])
    m = evaluate_embeddings(U, V, data.train, data.test)
    params = int(U.numel() + V.numel())
    return {"recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"], "params": params, "bytes": 4 * params,
            "seconds_per_epoch": fit_s / iters, "cpu_seconds_per_epoch": None, "epochs": iters, "rounds": 0, "device": f"cpu ({args.threads} threads)",
            "train_seconds": fit_s, "wall_s": wall, "peak_rss_mb": peak}


def measure_propagation(data, repeats: int = 3) -> dict:
    """Seconds per LightGCN forward+backward (3 layers, d=64, full graph): torch.sparse CSR vs PyG LGConv."""
    import torch

    from recsys.lightgcn import LightGCN

    out = {}
    u = torch.randint(0, data.n_users, (8192,))
    i = torch.randint(0, data.n_items, (8192,))
    for backend in ("sparse", "pyg"):
        model = LightGCN(data.train, backend=backend)
        model.loss(u, i, i, 1e-4).backward()  # warm-up
        times = []
        for _ in range(repeats):
            t = time.process_time()
            model.loss(u, i, i, 1e-4).backward()
            times.append(time.process_time() - t)
        out[backend] = {"cpu_s_fwd_bwd": float(np.median(times))}
    out["pyg_over_sparse"] = out["pyg"]["cpu_s_fwd_bwd"] / out["sparse"]["cpu_s_fwd_bwd"]
    return out


def measure_epoch_cost(data, densities: list[float], epochs: int = 4, repeats: int = 2, batch: int = 4096,
                       grow_signal: str = "auto", interval_epochs: float = 1.0, min_row_active: int = 0,
                       init_mask: str = DEFAULTS.init_mask, grow_zero_signal: str = DEFAULTS.grow_zero_signal) -> dict:
    """CPU seconds per MF epoch at each density, measured in one process with the runs interleaved
    (dense, DSL, dense, DSL, ...) so that every density sees the same load; no evaluation.

    Each run trains ``epochs`` epochs through :class:`recsys.trainer.BPRRecommender` (so DSL makes
    its ``epochs - 1`` prune/grow rounds, one per epoch as in a full run); the median over
    ``repeats`` is reported, with the ratio to density 1.
    """
    import scipy.sparse as sp
    import torch

    from recsys.data import Interactions
    from recsys.trainer import BPRRecommender, TrainConfig

    torch.set_num_threads(1)
    train_only = Interactions(data.train, sp.csr_matrix(data.train.shape, dtype=np.float32), data.user_ids,
                              data.item_ids, "train only")
    cpu = {d: [] for d in densities}
    rounds = {}
    for _ in range(repeats):
        for d in densities:
            rec = BPRRecommender(TrainConfig(model="mf", density=d, epochs=epochs, batch_size=batch, device="cpu",
                                             grow_signal=grow_signal, min_interval_epochs=interval_epochs,
                                             min_row_active=min_row_active, init_mask=init_mask,
                                             grow_zero_signal=grow_zero_signal, show_progress=False)).fit(train_only)
            cpu[d].append(rec.result.train_cpu_seconds / epochs)
            rounds[d] = rec.result.rounds
    med = {d: float(np.median(v)) for d, v in cpu.items()}
    return {f"mf@{d:g}": {"cpu_s_per_epoch": med[d], "runs": cpu[d], "rounds": rounds[d], "epochs": epochs,
                          "grow_signal": grow_signal, "min_row_active": min_row_active, "init_mask": init_mask,
                          "grow_zero_signal": grow_zero_signal,
                          "load_avg_1m": os.getloadavg()[0],
                          "vs_dense": med[d] / med[1.0] if 1.0 in med else None} for d in densities}


def mask_stats(rec, data) -> dict:
    """Where a DSL run's budget went: empty rows, active weights per row by degree quintile
    (cut at the 25/50/75/95 % degree quantiles) and the mean number of dimensions a training
    (user, item) pair shares (``|M_u ∧ M_i|``; 64·ρ² ≈ 2.6 for independent random masks at ρ = 0.2)."""
    deg = {"user.weight": np.diff(data.train.indptr), "item.weight": np.bincount(data.train.indices, minlength=data.n_items)}
    out = {}
    for name, d in deg.items():
        active = rec.dsl.masks[name].sum(1).numpy()
        bins = np.digitize(d, np.quantile(d, [0.25, 0.5, 0.75, 0.95]))
        out[name] = {"empty_rows": float((active == 0).mean()),
                     "active_by_degree": [float(active[bins == b].mean()) for b in range(5)]}
    users = np.repeat(np.arange(data.n_users), deg["user.weight"])
    pick = np.random.default_rng(0).choice(len(users), min(20000, len(users)), replace=False)
    mu, mi = rec.dsl.masks["user.weight"].float(), rec.dsl.masks["item.weight"].float()
    out["shared_dims_train_pairs"] = float((mu[users[pick]] * mi[data.train.indices[pick]]).sum(1).mean())
    return out


def run_variants(data, variants: dict, epochs: int, batch: int) -> dict:
    """In-process MF runs, one per ``{name: TrainConfig overrides}`` (default: DSL@0.2), each with
    Recall@20, final training loss and, for DSL, :func:`mask_stats` -- the diagnosis runs."""
    import torch

    from recsys.trainer import BPRRecommender, TrainConfig

    torch.set_num_threads(1)
    out = {}
    for name, over in variants.items():
        kw = dict(model="mf", density=0.2, epochs=epochs, batch_size=batch, device="cpu", show_progress=False)
        kw.update(over)
        c = time.process_time()
        rec = BPRRecommender(TrainConfig(**kw)).fit(data)
        r = {"config": over, "recall@20": rec.result.metrics["recall@20"], "ndcg@20": rec.result.metrics["ndcg@20"],
             "final_loss": rec.result.losses[-1], "rounds": rec.result.rounds, "epochs": epochs,
             "cpu_s": time.process_time() - c}
        if not rec.dsl.dense:
            r.update(mask_stats(rec, data))
        out[name] = r
        print(f"variant {name}: {json.dumps(r)}", flush=True)
    return out


def write_slice(src: Path, dst: Path, n_users: int) -> None:
    """A LightGCN-format folder with the first ``n_users`` users of ``src`` (same item ids)."""
    import gzip

    dst.mkdir(parents=True, exist_ok=True)
    for name in ("train", "test"):
        with gzip.open(src / f"{name}.txt.gz", "rt") as f, open(dst / f"{name}.txt", "w") as g:
            for line in f:
                parts = line.split()
                if parts and int(parts[0]) < n_users:
                    g.write(line)


def run_name(model: str, density: float, a) -> str:
    """``<model>@<density>``, plus what departs from recsys.train's DSL defaults: ``random`` for the
    paper's procedure (random initial masks, random fill of the growth quota; every DSL run before round 5),
    else ``random-mask`` / ``fill-random`` / ``s<spread>`` / ``p<prune_start>``; ``seed<N>`` off the default seed."""
    name = f"{model}@{density:g}"
    seed = [f"seed{a.seed}"] * (a.seed != DEFAULTS.seed)
    dim = [f"d{a.mf_dim}"] * (model == "mf" and a.mf_dim != DEFAULTS.dim)
    if density >= 1:
        return " ".join([name, *dim, *seed])
    tags = []
    if (a.init_mask, a.grow_zero_signal) == ("random", "random"):
        tags.append("random")
    else:
        tags += ["random-mask"] * (a.init_mask != DEFAULTS.init_mask)
        tags += ["fill-random"] * (a.grow_zero_signal != DEFAULTS.grow_zero_signal)
    tags += [f"s{a.init_spread:g}"] * (a.init_spread != DEFAULTS.init_spread)
    tags += [f"p{a.prune_start:g}"] * (a.prune_start != DEFAULTS.prune_start)
    return " ".join([name, *dim, *tags, *seed])


def _normalised(results: dict) -> dict:
    """``bytes`` counts each table in its cheaper layout (runs before that rule counted dense tables as CSR)."""
    for runs in results.values():
        for m in runs.values():
            if isinstance(m, dict) and m.get("dense_bytes"):
                m["bytes"] = min(m["bytes"], m["dense_bytes"])
    return results


def table(results: dict) -> str:
    """Markdown table; "vs dense" ratios are against ``<family>@1`` of the same dataset."""
    lines = ["| dataset | method | Recall@20 | NDCG@20 | R@20 vs dense | params | bytes | s/epoch (wall) | "
             "CPU s/epoch | CPU vs dense | epochs | rounds | wall s | peak MiB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for ds, runs in results.items():
        for name, m in runs.items():
            if not isinstance(m, dict) or "recall@20" not in m:
                continue
            dense = runs.get(f"{name.split('@')[0]}@1") if "@" in name else None
            rr = f"{m['recall@20'] / dense['recall@20']:.3f}" if dense else ""
            cpu = m.get("cpu_seconds_per_epoch")
            tr = f"{cpu / dense['cpu_seconds_per_epoch']:.2f}" if dense and cpu and dense.get("cpu_seconds_per_epoch") else ""
            lines.append(f"| {ds} | {name} | {m['recall@20']:.4f} | {m['ndcg@20']:.4f} | {rr} | {m['params']:,} | "
                         f"{m['bytes']:,} | {m['seconds_per_epoch']:.1f} | {'' if cpu is None else f'{cpu:.1f}'} | {tr} | "
                         f"{m['epochs']} | {m['rounds']} | {m.get('wall_s', 0):.0f} | {m.get('peak_rss_mb', 0):.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["gowalla", "yelp2018"])
    p.add_argument("--densities", nargs="+", type=float, default=[1.0, 0.5, 0.2, 0.1])
    p.add_argument("--mf-epochs", type=int, default=12)
    p.add_argument("--mf-batch", type=int, default=4096)
    p.add_argument("--mf-rounds", type=int, default=100)
    p.add_argument("--lgcn-epochs", type=int, default=2)
    p.add_argument("--lgcn-batch", type=int, default=8192)
    p.add_argument("--lgcn-rounds", type=int, default=20)
    p.add_argument("--lgcn-densities", nargs="+", type=float, default=[1.0, 0.2])
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--mf-lr", type=float, default=None, help="MF learning rate (default: --lr)")
    p.add_argument("--mf-lr-min", type=float, default=None, help="MF cosine floor (default: recsys.train's)")
    p.add_argument("--mf-dim", type=int, default=DEFAULTS.dim,
                   help="MF embedding size (another size is keyed 'd<dim>', e.g. dense d = 13 = DSL@0.2's parameter count)")
    add_mask_options(p)  # recsys.train's DSL mask options, forwarded; runs off their defaults are keyed by run_name
    p.add_argument("--grow-signal", default="auto", help="MF DSL growth criterion (recsys.train --grow-signal)")
    p.add_argument("--min-row-active", type=int, default=0,
                   help="MF DSL: never prune a row below this many active weights (recsys.train --min-row-active)")
    p.add_argument("--mf-interval-epochs", type=float, default=1.0,
                   help="MF DSL: at least this many epochs between prune/grow rounds (recsys.train --min-interval-epochs)")
    p.add_argument("--mf-reg", type=float, default=1e-4, help="MF L2 weight (recsys.train --reg)")
    p.add_argument("--lgcn-reg", type=float, default=1e-4, help="LightGCN L2 weight (the paper's 1e-4)")
    p.add_argument("--init-density-scale", action="store_true", help="sparse init std / sqrt(density)")
    p.add_argument("--eval-every", type=int, default=4)
    p.add_argument("--lgcn-eval-every", type=int, default=0,
                   help="LightGCN: evaluate every N epochs (0: only at the end; full ranking is costly on CPU)")
    p.add_argument("--als-iters", type=int, default=15)
    p.add_argument("--implicit-bpr-iters", type=int, default=60)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help="training seed (result keys name other seeds)")
    p.add_argument("--skip", nargs="*", default=[], help="families to skip: mf lightgcn implicit")
    p.add_argument("--tag", default="", help="budget part of the result key <dataset>/<tag> (default: <mf-epochs>ep, "
                   "or epoch-cost with --cost-only)")
    p.add_argument("--results", type=Path, default=RESULTS,
                   help="results JSON (default: the runs of record; ad hoc: results/adhoc/recommender_adhoc.json)")
    p.add_argument("--users", type=int, default=0, help="only the first N users of each dataset (0: all)")
    p.add_argument("--table-only", action="store_true", help="print the table of the saved results")
    p.add_argument("--cost-only", action="store_true",
                   help="only the interleaved in-process CPU s/epoch comparison of MF at --densities (into _epoch_cost)")
    p.add_argument("--variants", default=None,
                   help='JSON {name: TrainConfig overrides}: in-process MF diagnosis runs (into _variants)')
    p.add_argument("--cost-epochs", type=int, default=4)
    p.add_argument("--cost-repeats", type=int, default=2)
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if a.table_only:
        print(table(_normalised(json.loads(a.results.read_text()))))
        return 0
    from recsys.data import load_interactions
    from recsys.metrics import evaluate_popularity

    results_path = a.results
    results = _normalised(json.loads(results_path.read_text())) if results_path.exists() else {}
    slice_dir = tempfile.TemporaryDirectory()
    for ds in a.datasets:
        folder, key = DATA / ds, ds
        if a.users:
            folder, key = Path(slice_dir.name) / ds, f"{ds}[:{a.users} users]"
            write_slice(DATA / ds, folder, a.users)
        key += "/" + (a.tag or ("epoch-cost" if a.cost_only else f"{a.mf_epochs}ep"))
        data = load_interactions(folder)
        runs = {}
        pop = evaluate_popularity(data.train, data.test)
        runs["popularity"] = {"recall@20": pop["recall@20"], "ndcg@20": pop["ndcg@20"], "params": 0, "bytes": 0,
                              "seconds_per_epoch": 0.0, "epochs": 0, "rounds": 0, "device": "cpu"}

        def save():
            """Merge this run's entries into the file as it is now (other runs may have written)."""
            results_path.parent.mkdir(parents=True, exist_ok=True)
            current = _normalised(json.loads(results_path.read_text())) if results_path.exists() else {}
            current.setdefault(key, {}).update(runs)
            results.update(current)
            tmp = results_path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(current, indent=2, sort_keys=True))
            os.replace(tmp, results_path)

        if a.variants:
            runs.pop("popularity")
            runs["_variants"] = {**results.get(key, {}).get("_variants", {}),
                                 **run_variants(data, json.loads(a.variants), a.mf_epochs, a.mf_batch)}
            save()
            continue
        if a.cost_only:
            runs.pop("popularity")
            runs["_epoch_cost"] = measure_epoch_cost(data, a.densities, a.cost_epochs, a.cost_repeats, a.mf_batch,
                                                   a.grow_signal, a.mf_interval_epochs, a.min_row_active,
                                                   a.init_mask, a.grow_zero_signal)
            print(f"[{key}] CPU s/epoch, interleaved: {json.dumps(runs['_epoch_cost'], indent=1)}", flush=True)
            save()
            continue
        todo = []
        if "mf" not in a.skip:
            todo += [("mf", d, a.mf_epochs) for d in a.densities]
        if "lightgcn" not in a.skip:
            todo += [("lightgcn", d, a.lgcn_epochs) for d in a.lgcn_densities]
        for model, density, epochs in todo:
            print(f"[{key}] {model}@{density:g} x{epochs} ...", flush=True)
            name = run_name(model, density, a)
            runs[name] = run_ours(folder, model, density, epochs, a)
            save()
        if "lightgcn" not in a.skip:
            import torch

            torch.set_num_threads(a.threads)
            runs["_propagation"] = measure_propagation(data)
            print(f"[{ds}] LightGCN propagation fwd+bwd CPU s: {runs['_propagation']}", flush=True)
            save()
        if "implicit" not in a.skip and IMPLICIT_PY.exists():
            for algo in ("als", "bpr"):
                print(f"[{ds}] implicit-{algo} ...", flush=True)
                runs[f"implicit-{algo}"] = run_implicit(folder, algo, data, a)
                save()
        save()
    print(table(results))
    if results_path == RESULTS and RESULTS.exists():  # the figure of record
        plots.draw("recommender", RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
