"""Does ``recsys.train`` find a good model on the data it is given?

    python -m benchmarks.recommender_tuning [--datasets ciao lastfm generated gowalla yelp2018]
                                            [--densities 1.0 0.2] [--epochs 100] [--tune 8]

For MF at each density, side by side on the same split: (a) the fixed CLI settings trained to the
epoch ceiling with no validation (what a user got before), (b) validation + early stopping (the
CLI default now), (c) ``--tune N`` (successive halving on validation, then the final training), and
the most-popular baseline -- Recall@20 / NDCG@20 on test, wall time, the chosen settings, and
(c)'s cost as a multiple of (b)'s and of (a)'s (one training to the same ceiling). Where the validation share
is carved out of train, (b) and (c) are then refit on all training interactions for the selected epoch count,
as ``recsys.train`` does (``selected_recall``: the selected model before the refit). Validation: the data set's own split where it has one (Ciao's
``recdiff_val``, Gowalla's ``lightgcnpp_valid`` carved from its train split), else 10 % of each
user's training items. Writes ``benchmarks/results/recommender_tuning.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import torch

from graphs.generators import InteractionConfig, PlantedConfig, interactions_block
from recsys.data import Interactions, load_interactions, split_per_user
from recsys.metrics import full_report
from recsys.trainer import BPRRecommender, TrainConfig
from recsys.trainer import refit as refit_model
from recsys.tuning import TuneConfig, apply_settings, chosen, successive_halving
from recsys.validation import seen, with_validation

log = logging.getLogger("benchmarks.recommender_tuning")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
SETS = {"ciao": ("ciao_social", "recdiff"), "lastfm": ("lastfm_social", "sociallgn"),
        "gowalla": ("gowalla", "lightgcnpp"), "yelp2018": ("yelp2018", "lightgcn")}
K = 20


def generated(seed: int = 0) -> Interactions:
    """Planted-community interactions (5,000 users, 5,000 items), 80/20 per-user split."""
    g = PlantedConfig(nodes=5_000, communities=20, seed=seed)
    u, i = interactions_block(g, InteractionConfig(items=5_000, avg_items_per_user=15, seed=seed), 0, g.nodes, 0)
    is_test, _ = split_per_user(u, i, 0.2, seed)
    return Interactions.from_pairs(u[~is_test], i[~is_test], u[is_test], i[is_test], source="generated")


def load(name: str) -> Interactions | None:
    if name == "generated":
        return with_validation(generated(), 0.1, seed=1)
    folder, split = SETS[name]
    if not (DATA / folder).exists():
        return None
    return with_validation(load_interactions(DATA / folder, split=split), 0.1, seed=1)


def train(cfg: TrainConfig, data: Interactions) -> tuple[BPRRecommender, float]:
    t0 = time.perf_counter()
    rec = BPRRecommender(cfg).fit(data)
    return rec, time.perf_counter() - t0


def row(rec: BPRRecommender, data: Interactions, wall: float, **extra) -> dict:
    U, V = rec.embeddings()
    rep = full_report(U, V, seen(data), data.test, K)
    return {"recall": rep[f"recall@{K}"], "ndcg": rep[f"ndcg@{K}"], "popularity_recall": rep[f"popularity_recall@{K}"],
            "popularity_ndcg": rep[f"popularity_ndcg@{K}"], "vs_popularity": rep["vs_popularity"],
            "epochs": rec.result.epochs, "best_epoch": rec.result.best_epoch, "wall_s": wall,
            "settings": chosen(rec.config), **extra}


def refit(rec: BPRRecommender, data: Interactions, wall: float, **extra) -> dict:
    """What ``recsys.train`` exports: with a validation share carved out of train, the selected model retrained on
    all training interactions for its best epoch count (the row keeps the selected model's recall too)."""
    t0 = time.perf_counter()
    again = refit_model(rec.config, rec, data)
    if again is None:
        return row(rec, data, wall, **extra)
    out = row(*again, wall + time.perf_counter() - t0, **extra)
    selected = row(rec, data, wall)  # ranked with the carved share excluded too (it is training data)
    return {**out, "best_epoch": rec.result.best_epoch, "selected_recall": selected["recall"],
            "selected_ndcg": selected["ndcg"], "refit_s": out["wall_s"] - wall}


def bench(name: str, data: Interactions, density: float, args) -> dict:
    base = TrainConfig(model="mf", density=density, epochs=args.epochs, show_progress=False, seed=0)
    no_valid = Interactions(data.train + data.valid, data.test, data.user_ids, data.item_ids, data.source)
    rec, wall = train(base, no_valid)  # (a): the fixed settings, no validation, to the ceiling
    a = row(rec, no_valid, wall)
    es = replace(base, eval_every=args.eval_every, patience=args.patience)
    rec, wall = train(es, data)  # (b)
    b = refit(rec, data, wall)
    t0 = time.perf_counter()
    finals = {}

    def trial(cfg):
        rec = BPRRecommender(cfg).fit(data)
        if cfg.epochs == es.epochs:
            finals[str(chosen(cfg))] = rec
        return (rec.result.best_valid or 0.0), rec.result.epochs

    tuned = successive_halving(es, trial, TuneConfig(trials=args.tune, seed=0))
    tune_wall = time.perf_counter() - t0
    final_cfg = apply_settings(es, tuned.best)
    rec = finals.get(str(chosen(final_cfg)))  # (c): the last rung's winner is the final model
    wall = 0.0
    if rec is None:
        rec, wall = train(final_cfg, data)
    c = refit(rec, data, tune_wall + wall, tune_s=tune_wall, tune_epochs=tuned.epochs_spent)
    c.update(cost_vs_b=c["wall_s"] / b["wall_s"], cost_vs_a=c["wall_s"] / a["wall_s"])
    out = {"a_defaults": a, "b_early_stopping": b, "c_tuned": c}
    print(f"{name:9s} MF@{density:<4g} pop {a['popularity_recall']:.4f} | (a) {a['recall']:.4f} "
          f"({a['vs_popularity']:.2f}x) | (b) {b['recall']:.4f} ({b['vs_popularity']:.2f}x, {b['wall_s']:.0f}s) | "
          f"(c) {c['recall']:.4f} ({c['vs_popularity']:.2f}x, cost {c['cost_vs_b']:.1f}x (b), {c['cost_vs_a']:.1f}x (a)) "
          f"{c['settings']}",
          flush=True)
    return out


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(prog="python -m benchmarks.recommender_tuning", description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["ciao", "lastfm", "generated", "gowalla", "yelp2018"],
                    choices=[*SETS, "generated"])
    ap.add_argument("--densities", nargs="+", type=float, default=[1.0, 0.2])
    ap.add_argument("--epochs", type=int, default=100, help="epoch ceiling of every training")
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--tune", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--output", default=str(RESULTS / "recommender_tuning.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out_p = Path(args.output)
    results = json.loads(out_p.read_text()) if out_p.exists() else {}
    for name in args.datasets:
        data = load(name)
        if data is None:
            log.warning("%s: data not found, skipped", name)
            continue
        for density in args.densities:
            results[f"{name}/mf/{density:g}"] = {**bench(name, data, density, args),
                                                  "config": {k: v for k, v in vars(args).items() if k != "output"}}
            out_p.parent.mkdir(parents=True, exist_ok=True)
            out_p.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
