"""Train a (DSL-sparse) MF-BPR or LightGCN recommender and export its vectors.

    python -m recsys.train --data DIR --model lightgcn|mf --density 0.2 --epochs N \
        --device auto --output OUT [--social-graph GRAPH --social-vectors EMBED] [--tune 8 | --settings F]

``DIR`` is an ``ingest_interactions`` output or a split folder (:data:`recsys.data.SPLITS`:
LightGCN ``train/test``, ``recdiff_train/val/test``, ``train_set/test_set``, ...). Without a
validation split a seeded per-user share of train is held out (``--valid-fraction``); training
evaluates on it every ``--eval-every`` epochs, stops after ``--patience`` evaluations without a
better validation Recall@20 and restores the best epoch (``--epochs`` is the ceiling). ``--tune N``
first searches lr, L2, init and schedule by successive halving on validation (:mod:`recsys.tuning`);
``--settings FILE`` reuses chosen settings. ``--social-graph`` (an ``ingest_graph`` output of the
user graph) and ``--social-vectors`` (the ``embed_graph`` output of it) add the social side
(:mod:`recsys.social`); users of the graph without interactions are exported too, scored from
their friends (``user_vectors.source = "social"``). ``OUT`` is written atomically (see
:mod:`recsys.export` for its tables) with ``metrics.json`` (``recall@20, ndcg@20`` and their
``_cold`` variants, the popularity baseline on the same users and the ratio, ``params, bytes,
seconds_per_epoch, epochs, best_epoch, settings, device`` and more) and ``_meta.json``. Checkpoints go to ``--checkpoint`` (default ``OUT.ckpt`` beside
``OUT``) after every epoch; ``--resume`` continues from it; it is removed after a successful run
unless ``--keep-checkpoint``. Exit code 0 on success, 1 on failure (2 for bad arguments).

>>> cfg = parse_args(["--data", "d", "--output", "o", "--model", "mf", "--density", "0.2"])
>>> (cfg.train.model, cfg.train.density, cfg.train.device)
('mf', 0.2, 'auto')
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

# torch's OpenMP threads spin-wait between parallel regions unless told otherwise: beside Spark tasks or another
# training (a DAG's side-by-side tasks, a shared worker) that made the demo's training 6x slower per epoch (3.2 ->
# 0.5 s). Read once, when torch loads its OpenMP runtime, so it is set before the first torch import; a
# value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

from graphs.atomic import atomic_dir, write_json, write_meta
from graphs.flags import add_flags, arg, config_from, opt
from graphs.flags import build_parser as flags_parser
from recsys.data import SPLITS, load_interactions
from recsys.device import DEVICE_CHOICES
from recsys.dsl_config import GROW_SIGNALS, INIT_MASKS
from recsys.export import export_model
from recsys.metrics import full_report
from recsys.social import SocialConfig, align, read_social_graph, read_social_vectors
from recsys.trainer import MODELS, BPRRecommender, TrainConfig
from recsys.trainer import refit as refit_model
from recsys.tuning import TuneConfig, apply_settings, chosen, read_settings, successive_halving
from recsys.validation import with_validation
from recsys.validation import seen as seen_interactions

log = logging.getLogger("recsys.train")


# TrainConfig's flags (it carries no flag metadata): help, name, choices; hidden ones are DSL research options whose
# defaults are the measured choices (docs/algorithms.md, benchmarks/HISTORY.md)
TRAIN_FLAGS = {
    "model": opt("mf (MF-BPR) or lightgcn", choices=MODELS),
    "density": opt("kept weight fraction (1 = dense)"),
    "epochs": opt("epoch ceiling (training stops early on validation)"),
    "dim": opt("embedding size"),
    "layers": opt("LightGCN layers"),
    "batch_size": opt("BPR triples per step"),
    "lr": opt("learning rate (--tune searches it)"),
    "lr_min": opt("cosine schedule's final learning rate"),
    "reg": opt("L2 weight (--tune searches it)"),
    "init_std": opt("embedding init std (default: 0.01 mf, 0.1 lightgcn)"),
    "target_rounds": opt("DSL prune/grow rounds over the run", flag="--rounds", hidden=True),
    "grow_signal": opt("DSL growth signal", choices=("auto", *GROW_SIGNALS), hidden=True),
    "grow_window": opt("accumulated signal: sum only the last N epochs of steps (0: the interval)", hidden=True),
    "min_interval_epochs": opt("MF: at least this many epochs between DSL rounds", hidden=True),
    "min_row_active": opt("DSL never prunes a row below this many active weights", hidden=True),
    "init_mask": opt("DSL initial masks: shared (rows start on one shared column prefix) or random (paper)",
                     choices=INIT_MASKS, hidden=True),
    "init_spread": opt("shared masks: row lengths drawn in density*dim*[1-s, 1+s]", hidden=True),
    "grow_zero_signal": opt("DSL: move fewer weights when fewer have a gradient (skip) or fill at random (paper)",
                            choices=("random", "skip"), hidden=True),
    "prune_start": opt("DSL update ratio at step 0 (paper 0.5)", hidden=True),
    "init_density_scale": opt("init std / sqrt(density)", hidden=True),
    "eval_every": opt("evaluate on validation every N epochs"),
    "patience": opt("stop after N evaluations without a better validation recall (0: never stop early)"),
    "k": opt("cut-off of Recall@k and NDCG@k"),
    "device": opt(f"one of {DEVICE_CHOICES} or cuda:N"),
    "seed": opt("seed of everything random"),
    "show_progress": opt("no tqdm bar", flag="--no-progress", negate=True),
}
SOCIAL_FLAGS = {
    "propagate": opt("weight of the friends' mean vector in a user's vector (0: off)", flag="--social-weight"),
    "mode": opt("hop: friends' mean added to the final user vector; layers: friend edges inside LightGCN's "
                "propagation (SocialLGN-style)", flag="--social-mode", choices=("hop", "layers")),
    "map": opt("a learned map W s_u of the social vectors (measured: no gain)", flag="--social-map", hidden=True),
}
MASK_OPTIONS = ("init_mask", "init_spread", "grow_zero_signal", "prune_start")


@dataclass(frozen=True)
class RunConfig:
    """CLI-level settings around a :class:`TrainConfig`; its fields and those of ``TRAIN_FLAGS``/``SOCIAL_FLAGS``
    are the flags (defaults: these fields', the nested ones' from their default instances)."""

    data: str = arg(help="ingest_interactions output or a split folder (train/valid/test files)")
    output: str = arg(help="output folder (written atomically)")
    train: TrainConfig = arg(TrainConfig(epochs=100, eval_every=5, patience=4), "training (TrainConfig)",
                             nested=TRAIN_FLAGS)
    checkpoint: str | None = arg(None, "checkpoint file (default OUTPUT.ckpt)")
    resume: bool = arg(False, "continue from the checkpoint")
    keep_checkpoint: bool = arg(False, "keep the checkpoint after a successful run")
    test_fraction: float = arg(0.2, "per-user test share (ingest input only)")
    threads: int = arg(0, "torch CPU threads (0: torch's default)")
    split: str = arg("auto", "split-folder layout", choices=("auto", *SPLITS))
    valid_fraction: float = arg(0.1, "per-user validation share held out of train when the data has no validation "
                                     "split (0: none)")
    social_graph: str | None = arg(None, "ingest_graph output of the user graph (friends)")
    social_vectors: str | None = arg(None, "embed_graph output of the user graph")
    social: SocialConfig = arg(SocialConfig(map=False), "social side (SocialConfig)", nested=SOCIAL_FLAGS)
    tune: int = arg(0, "tune lr/L2/init/schedule with N trials of successive halving")
    settings: str | None = arg(None, "JSON of tuned settings (a metrics.json with 'settings' works)")
    refit: bool = arg(True, "keep the model selected on the validation share carved out of train instead of "
                            "retraining on all training interactions for the selected number of epochs",
                      flag="--no-refit", negate=True)

    def __post_init__(self) -> None:
        if not self.data or not self.output:
            raise ValueError("--data and --output are required")
        if self.threads < 0 or self.tune < 0:
            raise ValueError("--threads and --tune must be >= 0")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ValueError(f"--valid-fraction must be in [0, 1), got {self.valid_fraction}")
        if self.tune and self.settings:
            raise ValueError("--tune and --settings exclude each other")

    @property
    def checkpoint_path(self) -> Path:
        if self.checkpoint:
            return Path(self.checkpoint)
        out = Path(self.output)
        return out.parent / f"{out.name}.ckpt"


def add_mask_options(p: argparse.ArgumentParser, hidden: bool = False) -> None:
    """The DSL mask options (``--init-mask --init-spread --grow-zero-signal --prune-start``) with
    TrainConfig's defaults; ``benchmarks.recommender`` takes the same options and forwards them."""
    add_flags(p, TrainConfig, meta={n: {**TRAIN_FLAGS[n], "hidden": hidden} for n in MASK_OPTIONS})


def build_parser() -> argparse.ArgumentParser:
    hidden = [m["flag"] or "--" + n.replace("_", "-") for n, m in TRAIN_FLAGS.items() if m["hidden"]]
    return flags_parser(
        RunConfig, "python -m recsys.train", __doc__.split("\n\n")[0],
        epilog=f"DSL research options ({' '.join(hidden)}) and --social-map (a learned map of the social vectors) "
               "are accepted but not listed: their defaults are the measured choices (docs/algorithms.md, "
               "benchmarks/HISTORY.md).")


def parse_args(argv: list[str] | None = None) -> RunConfig:
    cfg = config_from(RunConfig, build_parser().parse_args(argv))
    if (cfg.social_graph or cfg.social_vectors) and cfg.social.propagate == 0 and not cfg.social.map:
        log.warning("social inputs given with --social-weight 0 and no --social-map: they only add cold users")
    return cfg


def load(cfg: RunConfig):
    """Interactions (with a validation split) and the aligned social inputs (or ``None``)."""
    data = load_interactions(cfg.data, test_fraction=cfg.test_fraction, seed=cfg.train.seed, split=cfg.split)
    if cfg.valid_fraction and not data.n_valid:
        data = with_validation(data, cfg.valid_fraction, seed=cfg.train.seed + 1)
    social = None
    if cfg.social_graph or cfg.social_vectors:
        graph = read_social_graph(cfg.social_graph) if cfg.social_graph else None
        vecs = read_social_vectors(cfg.social_vectors, cfg.social_graph) if cfg.social_vectors else None
        data, social = align(data, graph, vecs, cfg.social.max_friends)
    return data, social


def run(cfg: RunConfig) -> dict:
    """Load, (tune,) train, export; return the metrics written to ``metrics.json``."""
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    data, social = load(cfg)
    t_load = time.perf_counter() - t0
    train_cfg, tuning, rec = cfg.train, None, None
    if cfg.settings:
        train_cfg = apply_settings(train_cfg, read_settings(cfg.settings))
    elif cfg.tune:
        if not data.n_valid:
            raise ValueError("--tune needs validation data (a validation split or --valid-fraction > 0)")
        quiet = replace(train_cfg, show_progress=False)
        finals: dict[str, BPRRecommender] = {}

        def trial(c):
            fitted = BPRRecommender(c, social=social, social_config=cfg.social).fit(data)
            if c.epochs == quiet.epochs:  # a last-rung run: the final model if it wins
                finals[json.dumps(chosen(c), sort_keys=True)] = fitted
            r = fitted.result
            return (r.best_valid if r.best_valid is not None else float("nan")), r.epochs

        tuning = successive_halving(quiet, trial, TuneConfig(trials=cfg.tune, seed=cfg.train.seed))
        train_cfg = apply_settings(train_cfg, tuning.best)
        rec = finals.get(json.dumps(chosen(train_cfg), sort_keys=True))
        log.info("tuned settings %s (validation recall@%d %.4f, %d epochs spent)", tuning.best, cfg.train.k,
                 tuning.best_valid, tuning.epochs_spent)
    t_tune = time.perf_counter() - t0 - t_load
    ckpt = cfg.checkpoint_path
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    if rec is None:  # (tuning's last rung already trained the winner exactly like this)
        rec = BPRRecommender(train_cfg, checkpoint=ckpt, resume=cfg.resume, social=social,
                             social_config=cfg.social).fit(data)
    res, refit, t1 = rec.result, None, time.perf_counter()
    n_valid = data.n_valid  # the rows that selected the model (a refit then learns from them too)
    again = refit_model(train_cfg, rec, data, social=social, social_config=cfg.social) if cfg.refit else None
    if again is not None:  # the carved validation share is training data: relearnt for the selected epochs
        rec, data = again
        log.info("refit on all %d training interactions for the selected %d epochs", data.n_train, res.best_epoch)
        refit = {"epochs": res.best_epoch, "seconds": time.perf_counter() - t1}
    U, V = rec.embeddings()
    k = train_cfg.k
    seen = seen_interactions(data)
    report = full_report(U, V, seen, data.test, k) if data.n_test else {f"recall@{k}": None, f"ndcg@{k}": None}
    if data.n_test and report.get("vs_popularity") is not None and report["vs_popularity"] <= 1.0:
        log.warning("the model does not beat the most-popular baseline on test: recall@%d %.4f vs %.4f -- "
                    "try --tune", k, report[f"recall@{k}"], report[f"popularity_recall@{k}"])
    source = np.where(np.diff(seen.indptr) > 0, "personal", "social")
    with atomic_dir(cfg.output) as tmp:
        sizes = export_model(tmp, data.user_ids, data.item_ids, U, V, rec.model.base_tables(), seen,
                             user_source=source)
        metrics = {
            **report, **sizes, "seconds_per_epoch": res.seconds_per_epoch, "epochs": res.epochs, "rounds": res.rounds,
            "best_epoch": res.best_epoch, f"valid_recall@{k}": res.best_valid, "stopped_early": res.stopped_early,
            "device": res.device, "model": train_cfg.model, "density": train_cfg.density,
            "train_seconds": res.train_seconds, "tune_seconds": t_tune if tuning else 0.0,
            "cpu_seconds_per_epoch": res.train_cpu_seconds / max(res.epochs, 1), "final_loss": res.losses[-1] if res.losses else None,
            "settings": chosen(train_cfg), "tuning": asdict(tuning) if tuning else None, "refit": refit,
            "social": {**asdict(cfg.social), **social.coverage(), "users_without_interactions": int((source == "social").sum())}
            if social is not None else None,
            "history": res.history,
        }
        write_json(tmp / "metrics.json", metrics)
        write_meta(tmp, "recsys.train", {**asdict(train_cfg), "data": cfg.data, "test_fraction": cfg.test_fraction,
                                         "social_graph": cfg.social_graph, "social_vectors": cfg.social_vectors},
                   rows={"users": data.n_users, "items": data.n_items, "train": data.n_train, "valid": n_valid,
                         "test": data.n_test},
                   timings={"load_s": t_load, "total_s": time.perf_counter() - t0}, dim=train_cfg.dim,
                   method=f"{train_cfg.model}-bpr-dsl" if train_cfg.density < 1 else f"{train_cfg.model}-bpr")
    if not cfg.keep_checkpoint and ckpt.exists():
        ckpt.unlink()
    return metrics


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)  # exits with 2 on bad arguments
    try:
        m = run(cfg)
    except Exception:
        log.exception("training failed; %s not written", cfg.output)
        return 1
    log.info("done: recall@%d=%s ndcg@%d=%s params=%d bytes=%d (%.2fs/epoch, %d rounds, %s)", cfg.train.k,
             m[f"recall@{cfg.train.k}"], cfg.train.k, m[f"ndcg@{cfg.train.k}"], m["params"], m["bytes"],
             m["seconds_per_epoch"], m["rounds"], m["device"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
