"""What the social graph is worth to the recommender: interactions only vs with the social side.

    python -m benchmarks.social [--datasets ciao lastfm] [--models mf lightgcn] [--densities 1.0 0.2]
                                [--seeds 5] [--tune 6] [--epochs 100]

For every data set × model × DSL density, both arms -- ``interactions`` and ``social``
(:mod:`recsys.social`: the friends' mean vector, with the user graph's ProNE embedding as the
social vectors) -- are tuned the same way on the validation split (:mod:`recsys.tuning`,
successive halving with the same budget, seed 0), then trained with their chosen settings on
``--seeds`` seeds with early stopping on validation. Reported on test (full ranking, train items
excluded): Recall@20 / NDCG@20 overall and for cold users (≤ 5 training items), the popularity
baseline, the paired per-seed difference social − interactions with its standard error, and
seconds per epoch of each arm. A cold-start replay withholds 10 % of the users from training
entirely and serves them from their social side only, against popularity on the same users.
``--social-mode layers`` trains LightGCN's social arm with friend edges inside every layer
(:class:`recsys.social.SocialLightGCN`); ``both`` trains both designs and keeps, as the social arm,
the one with the better mean validation recall (the other is stored as ``social_<mode>``).

Data: ``../shared/data/ciao_social`` (RecDiff split: train/val/test) and
``../shared/data/lastfm_social`` (SocialLGN split: train/test; validation held out of train).
Writes ``benchmarks/results/social.json`` and the figure ``social.png``.
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from embeddings.prone import ProNE
from embeddings.knn import KnnConfig, Searcher
from recsys.data import Interactions, load_interactions
from recsys.metrics import evaluate, evaluate_popularity, full_report
from recsys.social import SocialConfig, SocialGraph, SocialVectors, align, cold_user_vectors
from recsys.trainer import BPRRecommender, TrainConfig
from recsys.tuning import TuneConfig, apply_settings, successive_halving
from recsys.validation import with_validation

log = logging.getLogger("benchmarks.social")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
SETS = {"ciao": ("ciao_social", "recdiff", "recdiff_trust.txt.gz"),
        "lastfm": ("lastfm_social", "sociallgn", "trust.txt.gz")}
K = 20


def load(name: str) -> tuple[Interactions, SocialGraph, SocialVectors]:
    """The split (with validation), the friend graph and its ProNE embedding (dim 64)."""
    folder, split, trust = SETS[name]
    data = with_validation(load_interactions(DATA / folder, split=split), 0.1, seed=1)
    with gzip.open(DATA / folder / trust, "rt") as f:
        lines = [ln.replace(",", " ").split() for ln in f]
    e = np.array([ln for ln in lines if ln and ln[0].isdigit()], dtype=np.int64)
    n = int(max(e.max() + 1, data.n_users))
    a = sp.csr_matrix((np.ones(len(e), np.float32), (e[:, 0], e[:, 1])), shape=(n, n))
    a = ((a + a.T) > 0).astype(np.float32).tocsr()
    x = ProNE(dim=64, seed=0).fit(a).transform()
    return data, SocialGraph(np.arange(n), e, directed=False), SocialVectors(np.arange(n), x)


def fit(cfg: TrainConfig, data: Interactions, social, scfg: SocialConfig | None) -> BPRRecommender:
    return BPRRecommender(cfg, social=social, social_config=scfg).fit(data)


def arm(data, graph, vecs, social: bool, scfg: SocialConfig):
    """``(data, social inputs)`` of one arm (the social arm adds the graph's users and friends)."""
    return align(data, graph, vecs, scfg.max_friends) if social else (data, None)


def cell(name, data, graph, vecs, model, density, social, args, mode: str | None = None) -> dict:
    """Tune one arm on validation, then train it on every seed; test figures per seed."""
    scfg = social_config(args, model, mode)
    d, s = arm(data, graph, vecs, social, scfg)
    base = TrainConfig(model=model, density=density, epochs=args.epochs, eval_every=5, patience=4,
                       show_progress=False, seed=0)
    t0 = time.perf_counter()
    tuned = successive_halving(base, lambda c: ((r := fit(c, d, s, scfg).result).best_valid or 0.0, r.epochs),
                               TuneConfig(trials=args.tune, eta=2, rungs=2, seed=0)) if args.tune and not args.settings else None
    tune_s = time.perf_counter() - t0
    fixed = json.loads(args.settings) if args.settings else None
    cfg = apply_settings(base, tuned.best) if tuned else apply_settings(base, fixed) if fixed else base
    runs = []
    for seed in range(args.seeds):
        rec = fit(replace(cfg, seed=seed), d, s, scfg)
        U, V = rec.embeddings()
        rep = full_report(U, V, d.train, d.test, K)
        runs.append({"seed": seed, **{k: rep[k] for k in (f"recall@{K}", f"ndcg@{K}", f"recall@{K}_cold",
                                                          f"ndcg@{K}_cold", "users_cold", f"popularity_recall@{K}",
                                                          f"popularity_recall@{K}_cold")},
                     "epochs": rec.result.epochs, "best_epoch": rec.result.best_epoch,
                     "seconds_per_epoch": rec.result.seconds_per_epoch, "valid": rec.result.best_valid})
        log.info("%s %s@%g %s seed %d: R %.4f cold %.4f (%d epochs, %.3fs/epoch)", name, model, density,
                 "social" if social else "interactions", seed, rep[f"recall@{K}"], rep[f"recall@{K}_cold"],
                 rec.result.epochs, rec.result.seconds_per_epoch)
    return {"settings": tuned.best if tuned else fixed, "tune_seconds": tune_s, "social_mode": scfg.mode if social else None,
            "tune_epochs": tuned.epochs_spent if tuned else 0, "runs": runs}


def social_config(args, model: str, mode: str | None = None) -> SocialConfig:
    """The social arm's design: ``--social-mode`` (``layers`` is LightGCN's; MF always takes the hop)."""
    mode = mode or (args.social_mode if args.social_mode != "both" else "hop")
    return SocialConfig(map=False, propagate=args.social_weight, mode=mode if model == "lightgcn" else "hop")


def paired(a: list[dict], b: list[dict], key: str) -> dict:
    """Mean of b − a over seeds, its standard error, and the relative gain of the means."""
    x = np.array([r[key] for r in a], float)
    y = np.array([r[key] for r in b], float)
    d = y - x
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"a": float(x.mean()), "b": float(y.mean()), "diff": float(d.mean()), "se": se,
            "gain": float(y.mean() / x.mean() - 1) if x.mean() else float("nan")}


def cold_start_replay(name, data, graph, vecs, model, args, settings) -> dict:
    """Withhold 10 % of the users (all their training items) and serve them from the social side.

    Served (a vector, what the export writes and the candidate graph clusters): ``model`` -- the
    trained model's vector (the friends' mean) -- and ``blend`` -- :func:`recsys.social.cold_user_vectors`
    (the model's vector blended with the vectors of the friends' items), α chosen on the withheld
    users' *validation* items. Reference, not servable as a vector: ``friend_items``, items ranked by
    how many friends have them. All against popularity on the same users (test items)."""
    scfg = social_config(args, model)
    out = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(100 + seed)
        has_test = np.diff(data.test.indptr) > 0
        cand = np.flatnonzero(has_test)
        held = rng.choice(cand, size=max(1, len(data.user_ids) // 10), replace=False)
        keep = np.ones(data.n_users, np.float32)
        keep[held] = 0
        dk = sp.diags(keep)
        train, valid = (dk @ data.train).tocsr(), (dk @ data.valid).tocsr()
        only = sp.diags((1 - keep).astype(np.float32))
        d = Interactions(train, (only @ data.test).tocsr(), data.user_ids, data.item_ids, data.source, {}, valid)
        held_valid = (only @ data.valid).tocsr()  # the withheld users' validation items: α is chosen here
        d, s = align(d, graph, vecs, scfg.max_friends)
        held_valid.resize(d.test.shape)
        cfg = apply_settings(TrainConfig(model=model, epochs=args.epochs, eval_every=5, patience=4,
                                         show_progress=False, seed=seed), settings or {})
        U, V = fit(cfg, d, s, scfg).embeddings()
        r = d.train.copy()
        r.data[:] = 1
        counts = torch.from_numpy((s.friends @ r).toarray())
        pop = torch.from_numpy(np.asarray(r.sum(0)).ravel().astype(np.float32))
        vec = lambda W: (lambda u: W[u] @ V.T)  # noqa: E731
        score = {"friend_items": lambda u: counts[u] + 1e-6 * pop / pop.max()}  # ties: popularity
        grid = {a: evaluate(vec(cold_user_vectors(U, V, s.friends, d.train, a)), d.train, held_valid, K)[f"recall@{K}"]
                for a in (1.0, 0.75, 0.5, 0.25, 0.0)}
        alpha = max(grid, key=lambda a: (grid[a], a))
        row = {"seed": seed, "users": int(has_test[held].sum()), "alpha": alpha, "valid_grid": grid,
               "popularity_recall": evaluate_popularity(d.train, d.test, K)[f"recall@{K}"],
               "recall": evaluate(vec(U), d.train, d.test, K)[f"recall@{K}"],
               "recall_blend": evaluate(vec(cold_user_vectors(U, V, s.friends, d.train, alpha)), d.train, d.test, K)[f"recall@{K}"],
               "recall_friend_items": evaluate(score["friend_items"], d.train, d.test, K)[f"recall@{K}"]}
        out.append(row)
        log.info("%s cold-start replay seed %d: %d withheld users, R model %.4f, blend(α=%.2f) %.4f, friend items %.4f, "
                 "popularity %.4f", name, seed, row["users"], row["recall"], alpha, row["recall_blend"],
                 row["recall_friend_items"], row["popularity_recall"])
    m = {k: float(np.mean([o[k] for o in out])) for k in ("recall", "recall_blend", "recall_friend_items", "popularity_recall")}
    p = m["popularity_recall"] or float("nan")
    return {"model": model, "runs": out, **m, "ratio": m["recall"] / p, "ratio_blend": m["recall_blend"] / p,
            "ratio_friend_items": m["recall_friend_items"] / p}


def friend_source(name, data, graph, vecs, model, args, settings) -> dict:
    """Do the items of a user's kNN friends (faiss over the social vectors, what ``jobs/knn`` writes)
    help as an extra source at scoring? ``s'(u, i) = s(u, i) + β · σ_u · c_ui / max_i c_ui`` with
    ``c = F_knn · R`` (friends' item counts) and σ_u the spread of u's model scores; β is chosen
    on validation from a small grid (0 = the source is off)."""
    scfg = social_config(args, model)
    d, s = align(data, graph, vecs, scfg.max_friends)
    pos = np.searchsorted(vecs.orig_ids, d.user_ids).clip(max=len(vecs.orig_ids) - 1)
    x = vecs.vectors[pos] * (vecs.orig_ids[pos] == d.user_ids)[:, None]
    ids, _ = Searcher(x.astype(np.float32), KnnConfig(k=args.knn, index="exact")).search(np.arange(d.n_users))
    rows = np.repeat(np.arange(d.n_users), ids.shape[1])
    ok = ids.ravel() >= 0
    f = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (rows[ok], ids.ravel()[ok])), shape=(d.n_users,) * 2)
    c = (f @ (d.train + d.valid)).tocsr()  # friends' items (their validation items are theirs too)
    c_valid = (f @ d.train).tocsr()  # for choosing beta: nothing of the validation split leaks in
    out = []
    for seed in range(args.seeds):
        cfg = apply_settings(TrainConfig(model=model, epochs=args.epochs, eval_every=5, patience=4,
                                         show_progress=False, seed=seed), settings or {})
        U, V = fit(cfg, d, s, scfg).embeddings()

        def scorer(beta, counts):
            def fn(u):
                m = U[u] @ V.T
                cc = torch.from_numpy(counts[u.numpy()].toarray())
                return m + beta * m.std(1, keepdim=True) * cc / cc.amax(1, keepdim=True).clamp(min=1)
            return fn

        grid = {b: evaluate(scorer(b, c_valid), d.train, d.valid, K)[f"recall@{K}"] for b in (0.0, 0.25, 0.5, 1.0, 2.0)}
        beta = max(grid, key=lambda b: (grid[b], -b))
        base = evaluate(scorer(0.0, c), d.train, d.test, K)[f"recall@{K}"]
        blend = evaluate(scorer(beta, c), d.train, d.test, K)[f"recall@{K}"]
        out.append({"seed": seed, "beta": beta, "recall": base, "recall_with_friend_items": blend, "valid_grid": grid})
        log.info("%s friend items seed %d: beta %.2f, R %.4f -> %.4f", name, seed, beta, base, blend)
    a, b = np.array([o["recall"] for o in out]), np.array([o["recall_with_friend_items"] for o in out])
    dd = b - a
    return {"model": model, "knn": args.knn, "runs": out, "recall": float(a.mean()),
            "recall_with_friend_items": float(b.mean()), "diff": float(dd.mean()),
            "se": float(dd.std(ddof=1) / np.sqrt(len(dd))) if len(dd) > 1 else float("nan")}


def timing(name, data, graph, vecs, model, density, args) -> dict:
    """Seconds per epoch of both arms, interleaved (a b b a) at a fixed epoch count, same settings."""
    scfg = social_config(args, model)
    arms = {False: arm(data, graph, vecs, False, scfg), True: arm(data, graph, vecs, True, scfg)}
    cfg = TrainConfig(model=model, density=density, epochs=args.timing_epochs, show_progress=False, seed=0)
    t = {False: [], True: []}
    for social in (False, True, True, False):
        d, s = arms[social]
        t[social].append(fit(cfg, d, s, scfg).result.seconds_per_epoch)
    a, b = float(np.median(t[False])), float(np.median(t[True]))
    print(f"{name:7s} {model:8s}@{density:<4g} s/epoch interactions {a:.3f}  social {b:.3f}  x{b / a:.2f}", flush=True)
    return {"interactions": t[False], "social": t[True], "ratio": b / a}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(prog="python -m benchmarks.social", description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--models", nargs="+", default=["mf", "lightgcn"])
    ap.add_argument("--densities", nargs="+", type=float, default=[1.0, 0.2])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--tune", type=int, default=6, help="successive-halving trials per arm (0: CLI defaults)")
    ap.add_argument("--epochs", type=int, default=100, help="epoch ceiling (early stopping on validation)")
    ap.add_argument("--social-weight", type=float, default=SocialConfig.propagate)
    ap.add_argument("--social-mode", choices=("hop", "layers", "both"), default="hop",
                    help="LightGCN's social design: friends' mean hop, friend edges in every layer, or both "
                         "(the social arm is the one with the better mean validation recall)")
    ap.add_argument("--settings", default=None,
                    help="JSON of training settings for both arms instead of tuning (e.g. tuned on another cell)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--knn", type=int, default=20, help="kNN friends per user for the friend-items source")
    ap.add_argument("--timing-epochs", type=int, default=5)
    ap.add_argument("--only", choices=("cells", "extras", "replay", "timing"), default=None,
                    help="run only the arm comparison, or only the cold-start replay and friend-items source")
    ap.add_argument("--output", default=str(RESULTS / "social.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out_p = Path(args.output)
    results = json.loads(out_p.read_text()) if out_p.exists() else {}
    results["config"] = {k: v for k, v in vars(args).items() if k != "output"}
    for name in args.datasets:
        if not (DATA / SETS[name][0]).exists():
            log.warning("%s: data not found, skipped", name)
            continue
        data, graph, vecs = load(name)
        if args.only == "timing":
            for model in args.models:
                for density in args.densities:
                    results[f"{name}/{model}/{density:g}/timing"] = timing(name, data, graph, vecs, model, density, args)
            out_p.write_text(json.dumps(results, indent=1))
            continue
        for model in args.models if args.only not in ("extras", "replay") else []:
            for density in args.densities:
                key = f"{name}/{model}/{density:g}"
                modes = ("hop", "layers") if args.social_mode == "both" and model == "lightgcn" else (None,)
                arms = {"interactions": cell(name, data, graph, vecs, model, density, False, args)}
                designs = {m: cell(name, data, graph, vecs, model, density, True, args, m) for m in modes}
                # with several designs, the social arm is the one with the best mean *validation* recall
                pick = max(designs, key=lambda m: np.mean([r["valid"] or 0.0 for r in designs[m]["runs"]]))
                arms["social"] = designs.pop(pick)
                arms.update({f"social_{m}": v for m, v in designs.items()})
                arms["paired"] = {m: paired(arms["interactions"]["runs"], arms["social"]["runs"], m)
                                  for m in (f"recall@{K}", f"ndcg@{K}", f"recall@{K}_cold", f"ndcg@{K}_cold",
                                            "seconds_per_epoch")}
                results[key] = arms
                p = arms["paired"]
                print(f"{key:22s} R {p[f'recall@{K}']['a']:.4f} -> {p[f'recall@{K}']['b']:.4f} "
                      f"({p[f'recall@{K}']['gain']:+.1%}, diff {p[f'recall@{K}']['diff']:+.4f} ± {p[f'recall@{K}']['se']:.4f})"
                      f"  cold {p[f'recall@{K}_cold']['gain']:+.1%}  time x{p['seconds_per_epoch']['b'] / p['seconds_per_epoch']['a']:.2f}",
                      flush=True)
                out_p.parent.mkdir(parents=True, exist_ok=True)
                out_p.write_text(json.dumps(results, indent=1))
        if args.only == "cells":
            continue
        best = max(args.models, key=lambda m: results.get(f"{name}/{m}/1", {}).get("paired", {}).get(f"recall@{K}", {}).get("b", 0))
        settings = json.loads(args.settings) if args.settings else results.get(f"{name}/{best}/1", {}).get("social", {}).get("settings")
        results[f"{name}/cold_start_replay"] = rep = cold_start_replay(name, data, graph, vecs, best, args, settings)
        print(f"{name} cold-start replay ({best}): R {rep['recall']:.4f} (x{rep['ratio']:.2f}), blend {rep['recall_blend']:.4f} "
              f"(x{rep['ratio_blend']:.2f}), friend items {rep['recall_friend_items']:.4f} (x{rep['ratio_friend_items']:.2f}) "
              f"vs popularity {rep['popularity_recall']:.4f}", flush=True)
        out_p.write_text(json.dumps(results, indent=1))
        if args.only == "replay":
            continue
        results[f"{name}/friend_items"] = fr = friend_source(name, data, graph, vecs, best, args, settings)
        print(f"{name} kNN-friend items at scoring ({best}): R {fr['recall']:.4f} -> {fr['recall_with_friend_items']:.4f} "
              f"(diff {fr['diff']:+.4f} ± {fr['se']:.4f})", flush=True)
        out_p.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
