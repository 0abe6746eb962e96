"""The BPR training loop shared by MF and LightGCN, with Dynamic Sparse Learning built in.

One loop for every backbone and density: per step ``loss.backward() → DSL.before_step()
(prune/grow round every ΔT, inactive gradients zeroed) → optimiser step → DSL.after_step()
(re-mask) → cosine learning-rate step`` (lr → ``lr_min`` over the run, as in the DSL code).
Density 1 is plain dense training through the same loop. Checkpoints (model, optimiser, masks,
sampler state) are written atomically after every epoch; ``resume`` continues from them.

>>> import numpy as np
>>> from recsys.data import Interactions
>>> rng = np.random.default_rng(0)
>>> data = Interactions.from_pairs(rng.integers(0, 30, 300), rng.integers(0, 40, 300))
>>> rec = BPRRecommender(TrainConfig(model="mf", density=0.5, epochs=2, dim=8, batch_size=64)).fit(data)
>>> rec.result.rounds > 0, rec.recommend(np.array([0, 1]), k=5).items.shape
(True, (2, 5))
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from recsys.base import Recommender
from recsys.data import BPRSampler, Interactions
from recsys.device import device_name, resolve_device
from recsys.lightgcn import LightGCN
from recsys.metrics import evaluate_embeddings
from recsys.mf import MF
from recsys.social import SocialConfig, SocialInputs, SocialLightGCN, SocialUsers
from recsys.validation import EarlyStopping, refit_data
from recsys.sparse_training import DSLConfig, DynamicSparsity

log = logging.getLogger(__name__)

MODELS = ("mf", "lightgcn")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (defaults: the LightGCN/DSL papers' where they fit a CPU budget).

    Attributes:
        model: ``mf`` or ``lightgcn``.
        density: kept fraction of every embedding table (1 = dense).
        epochs: passes over the training positives.
        dim: embedding size. layers: LightGCN propagation depth.
        batch_size: BPR triples per step. lr / lr_min: cosine-decayed learning rate.
        reg: L2 weight on the batch's ego embeddings.
        target_rounds: DSL prune/grow rounds aimed for over the run (ΔT = steps / rounds; for MF
            at least one epoch, so every row has been trained between two rounds).
        grow_signal: ``last`` (paper) / ``accumulated`` / ``auto`` (accumulated for MF, whose
            sparse gradients touch only the batch's rows; last for LightGCN).
        grow_window: with the accumulated signal, sum the gradients of only the last
            ``grow_window`` epoch(s) of steps before each round (0: the whole interval). A quarter
            epoch makes the per-step accumulation 4x rarer but cost ~10 % Recall@20 on a Gowalla
            slice (0.041 vs 0.046 at density 0.2), so the default sums the whole interval.
        init_std: std of the N(0, σ²) embedding initialisation (``None``: 0.01 for MF, 0.1 for
            LightGCN as in its code). For MF 0.1 was far too large: on a 3,000-user Gowalla slice
            (20 epochs) dense Recall@20 0.062 at σ=0.1 vs 0.075 at 0.03, DSL@0.2 0.046 vs 0.058 at 0.01 --
            with small initial weights |w| pruning ranks what was learned, not the initial noise.
        init_density_scale: at density ρ < 1 initialise with σ/sqrt(ρ), so that a row's norm (and
            the variance of a dot product over the kept weights) matches the dense model's. Off by
            default: it lowered DSL@0.2 MF on the slice (0.036 vs 0.041 at σ=0.1).
        min_interval_epochs: for MF (sparse gradients), ΔT is at least this many epochs.
        prune_start: DSL update ratio p at step 0 (cosine-annealed to 0.005; the paper's 0.5).
        min_row_active: DSL never prunes a table row below this many active weights.
        regrow_second_moment: ``zero`` / ``row_mean``: Adam's v of regrown weights (see DSLConfig).
        init_mask / init_spread: DSL's initial masks, ``shared`` (default: every row of both tables
            starts on a prefix of one shared column order; see DSLConfig) or ``random`` (the paper).
        grow_zero_signal: ``skip`` (default) / ``random`` (the paper): growth among zero-signal weights
            (see DSLConfig). Shared + skip against the paper's choices, DSL@0.2 Recall@20: MF Gowalla
            0.1135 vs 0.0946 (20 epochs; dense 0.1217), Yelp2018 0.0378 vs 0.0297 (12; dense 0.0385),
            LightGCN Gowalla 0.0971 vs 0.0706 (2; dense 0.1113) -- benchmarks/README.md, round 5.
            With init_spread 0, shared + skip never grows outside the first ceil(ρ·d) columns (a column
            no partner row uses has zero gradient), so the model is an equal-size dense one in effect
            (benchmarks/README.md, round 6); the paper's choices are the truly dynamic variant.
        eval_every: evaluate every N epochs (0: only at the end). k: the metrics' cut-off.
        patience: with a validation split, stop after this many evaluations without a better
            validation Recall@k and restore the best epoch's model (0: never stop early; the best
            epoch is still restored). ``epochs`` is then a ceiling.
        device: ``auto`` / ``cpu`` / ``cuda``. seed: everything random.
    """

    model: str = "mf"
    density: float = 1.0
    epochs: int = 20
    dim: int = 64
    layers: int = 3
    batch_size: int = 2048
    lr: float = 1e-2
    lr_min: float = 1e-4
    reg: float = 1e-4
    target_rounds: int = 100
    grow_signal: str = "auto"
    grow_window: float = 0.0
    init_std: float | None = None
    init_density_scale: bool = False
    min_interval_epochs: float = 1.0
    prune_start: float = 0.5
    min_row_active: int = 0
    regrow_second_moment: str = "zero"
    init_mask: str = "shared"
    init_spread: float = 0.0
    grow_zero_signal: str = "skip"
    eval_every: int = 0
    patience: int = 0
    k: int = 20
    device: str = "auto"
    seed: int = 0
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        for name in ("epochs", "dim", "batch_size", "k", "target_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.layers < 0 or self.eval_every < 0 or self.patience < 0:
            raise ValueError("layers, eval_every and patience must be >= 0")
        if not 0.0 < self.lr_min <= self.lr:
            raise ValueError("need 0 < lr_min <= lr")
        if self.reg < 0:
            raise ValueError("reg must be >= 0")
        if self.min_interval_epochs < 0:
            raise ValueError("min_interval_epochs must be >= 0")
        if self.grow_window < 0 or (self.init_std is not None and self.init_std <= 0):
            raise ValueError("need grow_window >= 0 and init_std > 0")
        if self.grow_signal not in ("auto", "last", "accumulated", "mean", "momentum"):
            raise ValueError(f"grow_signal must be auto, last, accumulated, mean or momentum, got {self.grow_signal!r}")


@dataclass
class TrainResult:
    """What a run produced besides the model: timings, DSL accounting, metrics history."""

    epochs: int = 0
    rounds: int = 0
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0
    losses: list = field(default_factory=list)
    history: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    params: int = 0
    dense_params: int = 0
    device: str = ""
    best_epoch: int = 0
    best_valid: float | None = None
    stopped_early: bool = False

    @property
    def seconds_per_epoch(self) -> float:
        return self.train_seconds / max(self.epochs, 1)


def build_model(config: TrainConfig, data: Interactions, social: SocialInputs | None = None,
                social_config: SocialConfig | None = None) -> torch.nn.Module:
    std = config.init_std if config.init_std is not None else (0.01 if config.model == "mf" else 0.1)
    if config.init_density_scale:
        std /= math.sqrt(config.density)
    tower, zero = None, None
    if social is not None:
        tower = SocialUsers(social, config.dim, social_config or SocialConfig())
        zero = torch.from_numpy(np.flatnonzero(np.diff(data.train.indptr) == 0))
    if config.model == "mf":
        if tower is not None and tower.config.mode == "layers":
            raise ValueError("social mode 'layers' is for LightGCN (MF has no propagation); use 'hop'")
        return MF(data.n_users, data.n_items, config.dim, init_std=std, seed=config.seed, social=tower, zero_users=zero)
    if social is not None and tower.config.mode == "layers":  # friend edges inside the propagation
        return SocialLightGCN(data.train, social, tower.config.propagate, dim=config.dim, layers=config.layers,
                              init_std=std, seed=config.seed, zero_users=zero)
    return LightGCN(data.train, config.dim, config.layers, init_std=std, seed=config.seed, social=tower,
                    zero_users=zero)


def _copy(state):
    """A deep copy of a (nested) state dict's tensors."""
    if isinstance(state, dict):
        return {k: _copy(v) for k, v in state.items()}
    return state.detach().clone() if torch.is_tensor(state) else state


def _snapshot(model: torch.nn.Module, dsl: DynamicSparsity) -> dict:
    """The model's and DSL's state at the best validation epoch (restored after training)."""
    return {"model": _copy(model.state_dict()), "dsl": _copy(dsl.state_dict())}


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


class BPRRecommender(Recommender):
    """MF-BPR or LightGCN, dense or DSL-sparse, behind the :class:`Recommender` contract.

    Args:
        config: :class:`TrainConfig`.
        checkpoint: optional file written atomically after every epoch.
        resume: continue from ``checkpoint`` when it exists.
    """

    def __init__(self, config: TrainConfig, checkpoint: str | Path | None = None, resume: bool = False,
                 social: SocialInputs | None = None, social_config: SocialConfig | None = None):
        self.config = config
        self.social, self.social_config = social, social_config
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.resume = resume
        self.device = resolve_device(config.device)
        self.model: torch.nn.Module | None = None
        self.dsl: DynamicSparsity | None = None
        self.result = TrainResult()
        self._U: torch.Tensor | None = None
        self._V: torch.Tensor | None = None

    def fit(self, data: Interactions) -> "BPRRecommender":
        cfg, dev = self.config, self.device
        self._set_ids(data)
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, data, self.social, self.social_config).to(dev)
        opt = model.make_optimizer(cfg.lr)
        sampler = BPRSampler(data.train, seed=cfg.seed)
        steps_per_epoch = sampler.n_batches(cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        gamma = cfg.lr_min / cfg.lr
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: gamma + (1 - gamma) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        interval = max(1, total // cfg.target_rounds)
        if model.sparse_grad:
            interval = max(interval, int(cfg.min_interval_epochs * steps_per_epoch))
        signal = cfg.grow_signal if cfg.grow_signal != "auto" else ("accumulated" if model.sparse_grad else "last")
        window = max(1, int(cfg.grow_window * steps_per_epoch)) if cfg.grow_window else None
        tables = [(n, p) for n, p in model.named_parameters() if not n.startswith("social.")]
        dsl = DynamicSparsity(tables, DSLConfig(
            cfg.density, total, update_interval=interval, seed=cfg.seed, remask=False, grow_signal=signal,
            prune_start=cfg.prune_start, prune_end=min(0.005, cfg.prune_start), min_row_active=cfg.min_row_active,
            regrow_second_moment=cfg.regrow_second_moment, init_mask=cfg.init_mask, init_spread=cfg.init_spread,
            grow_zero_signal=cfg.grow_zero_signal,
            grow_window=window), opt)
        res = TrainResult(dense_params=dsl.dense_params, device=device_name(dev))
        start = 0
        stop = EarlyStopping(cfg.patience)
        best_state = None
        if self.resume and self.checkpoint is not None and self.checkpoint.exists():
            state = torch.load(self.checkpoint, map_location=dev, weights_only=False)
            if state["config"] != asdict(cfg):
                raise ValueError(f"{self.checkpoint}: checkpoint was made with a different config")
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            dsl.load_state_dict(state["dsl"])
            sampler.rng.bit_generator.state = state["sampler_rng"]
            res = state["result"]
            stop, best_state = state.get("stop", stop), state.get("best_state")
            start = res.epochs
            log.info("resumed from %s at epoch %d", self.checkpoint, start)
        bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc=f"{cfg.model}@{cfg.density:g}",
                   disable=not cfg.show_progress, unit="epoch")
        for epoch in bar:
            model.train()
            t0, c0 = time.perf_counter(), time.process_time()
            loss_sum = torch.zeros((), device=dev)
            for u, i, j in sampler.batches(cfg.batch_size):
                u, i, j = (torch.from_numpy(a).to(dev, non_blocking=True) for a in (u, i, j))
                loss = model.loss(u, i, j, cfg.reg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                dsl.before_step()
                opt.step()
                dsl.after_step()
                sched.step()
                loss_sum += loss.detach()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            res.train_seconds += time.perf_counter() - t0
            res.train_cpu_seconds += time.process_time() - c0
            res.epochs = epoch + 1
            res.losses.append(float(loss_sum) / steps_per_epoch)
            res.rounds = dsl.rounds
            post = {"loss": f"{res.losses[-1]:.4f}"}
            last = res.epochs == cfg.epochs
            due = bool(cfg.eval_every) and res.epochs % cfg.eval_every == 0
            if data.n_valid and (due or last):
                m = self._evaluate(model, data, data.valid)
                res.history.append({"epoch": res.epochs, **{f"valid_{k}": v for k, v in m.items()}})
                post[f"valid_recall@{cfg.k}"] = f"{m[f'recall@{cfg.k}']:.4f}"
                halt = stop.update(res.epochs, m[f"recall@{cfg.k}"])
                if stop.improved:
                    best_state = _snapshot(model, dsl)
                if halt and not last:
                    res.stopped_early = True
            elif data.n_test and due and not last:
                m = self._evaluate(model, data)
                res.history.append({"epoch": res.epochs, **m})
                post[f"recall@{cfg.k}"] = f"{m[f'recall@{cfg.k}']:.4f}"
            bar.set_postfix(post)
            log.info("epoch %d/%d loss %.4f (%.1fs)%s", res.epochs, cfg.epochs, res.losses[-1], res.train_seconds,
                     f" recall@{cfg.k} {post[f'recall@{cfg.k}']}" if f"recall@{cfg.k}" in post else "")
            if self.checkpoint is not None:
                _save_checkpoint(self.checkpoint, {
                    "config": asdict(cfg), "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "dsl": dsl.state_dict(),
                    "sampler_rng": sampler.rng.bit_generator.state, "result": res, "stop": stop,
                    "best_state": best_state})
            if res.stopped_early:
                log.info("early stop at epoch %d: best validation recall@%d %.4f at epoch %d", res.epochs, cfg.k,
                         stop.best, stop.best_epoch)
                break
        bar.close()
        if best_state is not None:
            model.load_state_dict(best_state["model"])
            dsl.load_state_dict(best_state["dsl"])
            res.best_epoch, res.best_valid = stop.best_epoch, stop.best
        dsl.check()
        res.params = dsl.active_params
        if data.n_test:
            res.metrics = self._evaluate(model, data)
            res.history.append({"epoch": res.epochs, **res.metrics})
        self.model, self.dsl, self.result = model, dsl, res
        self._U, self._V = model.final_embeddings()
        return self

    def _evaluate(self, model: torch.nn.Module, data: Interactions, target=None) -> dict:
        model.eval()
        U, V = model.final_embeddings()
        m = evaluate_embeddings(U, V, data.train, data.test if target is None else target, k=self.config.k)
        return {k: v for k, v in m.items() if k != "users"}

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user, item)`` scoring vectors (propagated ones for LightGCN)."""
        if self._U is None:
            raise RuntimeError("fit() first")
        return self._U, self._V

    def score(self, users: np.ndarray) -> torch.Tensor:
        U, V = self.embeddings()
        return U[torch.from_numpy(np.asarray(users, dtype=np.int64)).to(U.device)] @ V.T


def refit(config: TrainConfig, selected: BPRRecommender, data: Interactions,
          **kwargs) -> tuple[BPRRecommender, Interactions] | None:
    """Once model selection on a validation share carved out of train is done, that share is training data:
    retrain ``config`` on train ∪ share for the selected model's best epoch count (no early stopping). Returns
    ``(model, data it learnt from)``, or ``None`` when nothing was carved or no epoch was selected. ``kwargs``
    go to :class:`BPRRecommender` (e.g. ``social=``)."""
    full = refit_data(data)
    if full is None or not selected.result.best_epoch:
        return None
    cfg = replace(config, epochs=selected.result.best_epoch, patience=0)
    return BPRRecommender(cfg, **kwargs).fit(full), full
