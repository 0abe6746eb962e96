"""Train a (DSL-sparse) MF-BPR or LightGCN recommender and export its vectors.

    python -m recsys.train --data DIR --model lightgcn|mf --density 0.2 --epochs N \
        --device auto --output OUT [--resume]

``DIR`` is an ``ingest_interactions`` output or a LightGCN split folder (``train.txt[.gz]``,
``test.txt[.gz]``). ``OUT`` is written atomically (see :mod:`recsys.export` for its tables) with
``metrics.json`` (``recall@20, ndcg@20, params, bytes, seconds_per_epoch, epochs, rounds, device``
and more) and ``_meta.json``. Checkpoints go to ``--checkpoint`` (default ``OUT.ckpt`` beside
``OUT``) after every epoch; ``--resume`` continues from it; it is removed after a successful run
unless ``--keep-checkpoint``. Exit code 0 on success, 1 on failure (2 for bad arguments).

>>> cfg = parse_args(["--data", "d", "--output", "o", "--model", "mf", "--density", "0.2"])
>>> (cfg.train.model, cfg.train.density, cfg.train.device)
('mf', 0.2, 'auto')
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from graphs.atomic import atomic_dir, write_json, write_meta
from recsys.data import load_interactions
from recsys.device import DEVICE_CHOICES
from recsys.export import export_model
from recsys.trainer import MODELS, BPRRecommender, TrainConfig

log = logging.getLogger("recsys.train")


@dataclass(frozen=True)
class RunConfig:
    """CLI-level settings around a :class:`TrainConfig`."""

    data: str
    output: str
    train: TrainConfig
    checkpoint: str | None = None
    resume: bool = False
    keep_checkpoint: bool = False
    test_fraction: float = 0.2
    threads: int = 0

    def __post_init__(self) -> None:
        if not self.data or not self.output:
            raise ValueError("--data and --output are required")
        if self.threads < 0:
            raise ValueError("--threads must be >= 0")

    @property
    def checkpoint_path(self) -> Path:
        if self.checkpoint:
            return Path(self.checkpoint)
        out = Path(self.output)
        return out.parent / f"{out.name}.ckpt"


def add_mask_options(p: argparse.ArgumentParser) -> None:
    """The DSL mask options (``--init-mask --init-spread --grow-zero-signal --prune-start``) with
    TrainConfig's defaults; ``benchmarks.recommender`` takes the same options and forwards them."""
    d = TrainConfig()
    p.add_argument("--init-mask", choices=("random", "shared"), default=d.init_mask,
                   help="DSL initial masks: shared (rows start on one shared column prefix) or random (paper)")
    p.add_argument("--init-spread", type=float, default=d.init_spread,
                   help="shared masks: row lengths drawn in density*dim*[1-s, 1+s]")
    p.add_argument("--grow-zero-signal", choices=("random", "skip"), default=d.grow_zero_signal,
                   help="DSL: move fewer weights when fewer have a gradient (skip) or fill at random (paper)")
    p.add_argument("--prune-start", type=float, default=d.prune_start, help="DSL update ratio at step 0 (paper 0.5)")


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m recsys.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="ingest_interactions output or LightGCN split folder")
    p.add_argument("--output", required=True, help="output folder (written atomically)")
    p.add_argument("--model", choices=MODELS, default=d.model)
    p.add_argument("--density", type=float, default=d.density, help="kept weight fraction (1 = dense)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--dim", type=int, default=d.dim)
    p.add_argument("--layers", type=int, default=d.layers, help="LightGCN layers")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-min", type=float, default=d.lr_min)
    p.add_argument("--reg", type=float, default=d.reg)
    p.add_argument("--rounds", type=int, default=d.target_rounds, help="DSL prune/grow rounds to aim for")
    p.add_argument("--grow-signal", choices=("auto", "last", "accumulated", "mean", "momentum"), default=d.grow_signal,
                   help="DSL growth criterion (auto: accumulated for mf, last batch for lightgcn)")
    p.add_argument("--grow-window", type=float, default=d.grow_window,
                   help="accumulated signal: sum the last N epochs of gradients before a round (0: all)")
    p.add_argument("--min-interval-epochs", type=float, default=d.min_interval_epochs,
                   help="MF: at least this many epochs between two DSL rounds")
    p.add_argument("--min-row-active", type=int, default=d.min_row_active,
                   help="DSL: never prune a row below this many active weights")
    add_mask_options(p)
    p.add_argument("--init-std", type=float, default=d.init_std, help="embedding init std (default: 0.01 mf, 0.1 lightgcn)")
    p.add_argument("--init-density-scale", action="store_true", help="init std / sqrt(density) for sparse runs")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="evaluate every N epochs (0: at the end)")
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--device", default=d.device, help=f"one of {DEVICE_CHOICES} or cuda:N")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--test-fraction", type=float, default=0.2, help="per-user test share (ingest input only)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (default OUTPUT.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--keep-checkpoint", action="store_true")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    return p


def parse_args(argv: list[str] | None = None) -> RunConfig:
    a = build_parser().parse_args(argv)
    train = TrainConfig(model=a.model, density=a.density, epochs=a.epochs, dim=a.dim, layers=a.layers,
                        batch_size=a.batch_size, lr=a.lr, lr_min=a.lr_min, reg=a.reg, target_rounds=a.rounds,
                        grow_signal=a.grow_signal, grow_window=a.grow_window, init_std=a.init_std,
                        init_density_scale=a.init_density_scale,
                        min_interval_epochs=a.min_interval_epochs, prune_start=a.prune_start,
                        min_row_active=a.min_row_active, init_mask=a.init_mask, init_spread=a.init_spread,
                        grow_zero_signal=a.grow_zero_signal,
                        eval_every=a.eval_every, k=a.k, device=a.device, seed=a.seed,
                        show_progress=not a.no_progress)
    return RunConfig(a.data, a.output, train, a.checkpoint, a.resume, a.keep_checkpoint, a.test_fraction, a.threads)


def run(cfg: RunConfig) -> dict:
    """Load, train, export; return the metrics written to ``metrics.json``."""
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    data = load_interactions(cfg.data, test_fraction=cfg.test_fraction, seed=cfg.train.seed)
    t_load = time.perf_counter() - t0
    ckpt = cfg.checkpoint_path
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    rec = BPRRecommender(cfg.train, checkpoint=ckpt, resume=cfg.resume).fit(data)
    res = rec.result
    U, V = rec.embeddings()
    k = cfg.train.k
    with atomic_dir(cfg.output) as tmp:
        sizes = export_model(tmp, data.user_ids, data.item_ids, U, V, rec.model.base_tables(), data.train)
        metrics = {
            f"recall@{k}": res.metrics.get(f"recall@{k}"), f"ndcg@{k}": res.metrics.get(f"ndcg@{k}"),
            **sizes, "seconds_per_epoch": res.seconds_per_epoch, "epochs": res.epochs, "rounds": res.rounds,
            "device": res.device, "model": cfg.train.model, "density": cfg.train.density,
            "train_seconds": res.train_seconds,
            "cpu_seconds_per_epoch": res.train_cpu_seconds / max(res.epochs, 1), "final_loss": res.losses[-1] if res.losses else None,
            "history": res.history,
        }
        write_json(tmp / "metrics.json", metrics)
        write_meta(tmp, "recsys.train", {**asdict(cfg.train), "data": cfg.data, "test_fraction": cfg.test_fraction},
                   rows={"users": data.n_users, "items": data.n_items, "train": data.n_train, "test": data.n_test},
                   timings={"load_s": t_load, "total_s": time.perf_counter() - t0}, dim=cfg.train.dim,
                   method=f"{cfg.train.model}-bpr-dsl" if cfg.train.density < 1 else f"{cfg.train.model}-bpr")
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
