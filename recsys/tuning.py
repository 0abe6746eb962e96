"""Automatic tuning of the training settings that matter, by successive halving on validation data.

Successive halving (Jamieson & Talwalkar, AISTATS 2016; the inner loop of Hyperband, Li et al.,
JMLR 2018): draw ``n`` settings, train each with an epoch ceiling of ``E / η^(R-1)``, keep the best
``1/η`` by validation Recall@K, multiply the ceiling by ``η``, repeat for ``R`` rungs (default
``n = 8, η = 3, R = 3``: 8 settings at ``E/9``, 3 at ``E/3``, 1 at ``E``). The last rung trains the
winner exactly as the final run would (same settings, seed and ceiling), so a caller can keep that
model instead of training it again. The first
setting is always the current one, so tuning never picks something worse on validation than the
defaults it started from. Every training stops early on its own validation curve
(:class:`recsys.validation.EarlyStopping`), so the budget -- ``n · E · Σ_r η^{r-R+1} / η^r`` epochs,
at most ``n · E · R / η^{R-1}`` -- is an upper bound.

The searched settings (:data:`SPACE`) are those that moved validation Recall@20 by measurement:
learning rate, L2 weight, initialisation scale and whether the learning rate decays (cosine to
1 % or constant). Test data are never looked at.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> s = sample_settings(3, rng)
>>> s[0], sorted(s[1])
({}, ['init_std', 'lr', 'lr_min_ratio', 'reg'])
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from recsys.trainer import TrainConfig

log = logging.getLogger(__name__)

#: name -> (kind, low/choices, high): log-uniform ranges and discrete choices.
SPACE = {
    "lr": ("log", 1e-3, 3e-2),
    "reg": ("log", 1e-6, 1e-2),
    "init_std": ("choice", (0.01, 0.03, 0.1)),
    "lr_min_ratio": ("choice", (0.01, 1.0)),
}
SETTING_KEYS = ("lr", "reg", "init_std", "lr_min")


def sample_settings(n: int, rng: np.random.Generator) -> list[dict]:
    """``n`` settings: ``{}`` (the current ones) then ``n - 1`` random draws from :data:`SPACE`."""
    out: list[dict] = [{}]
    for _ in range(n - 1):
        s = {}
        for name, spec in SPACE.items():
            if spec[0] == "log":
                s[name] = float(math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2]))))
            else:
                s[name] = spec[1][int(rng.integers(len(spec[1])))]
        out.append(s)
    return out


def apply_settings(cfg: TrainConfig, settings: dict) -> TrainConfig:
    """``cfg`` with tuned settings (``lr_min_ratio`` becomes ``lr_min = ratio · lr``)."""
    s = dict(settings)
    ratio = s.pop("lr_min_ratio", None)
    unknown = set(s) - set(SETTING_KEYS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)} (known: {SETTING_KEYS + ('lr_min_ratio',)})")
    cfg = replace(cfg, **s)
    if ratio is not None:
        cfg = replace(cfg, lr_min=cfg.lr * float(ratio))
    elif cfg.lr_min > cfg.lr:
        cfg = replace(cfg, lr_min=cfg.lr)
    return cfg


def chosen(cfg: TrainConfig) -> dict:
    """The settings of ``cfg`` that tuning controls, as written to ``metrics.json`` / ``--settings``."""
    d = asdict(cfg)
    return {k: d[k] for k in SETTING_KEYS}


def read_settings(path: str | Path) -> dict:
    """A ``--settings`` file: a JSON object of :data:`SETTING_KEYS` (or a ``metrics.json`` holding one
    under ``"settings"``)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON settings file ({e})") from None
    d = d.get("settings", d) if isinstance(d, dict) else d
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a JSON object of settings")
    return {k: v for k, v in d.items() if k in SETTING_KEYS}


@dataclass(frozen=True)
class TuneConfig:
    """``trials`` settings, ``rungs`` rounds, keep ``1/eta`` per round."""

    trials: int = 8
    eta: int = 3
    rungs: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.trials < 1 or self.eta < 2 or self.rungs < 1:
            raise ValueError("need trials >= 1, eta >= 2, rungs >= 1")


@dataclass
class TuneResult:
    """The winning settings, every trial's record, and the epochs spent."""

    best: dict
    best_valid: float
    trials: list = field(default_factory=list)
    epochs_spent: int = 0


#: train(cfg) -> (best validation recall, epochs run)
TrainFn = Callable[[TrainConfig], tuple[float, int]]


def successive_halving(base: TrainConfig, train: TrainFn, tune: TuneConfig = TuneConfig()) -> TuneResult:
    """Tune ``base``'s :data:`SETTING_KEYS` with ``train`` on validation data (see module docstring)."""
    rng = np.random.default_rng(tune.seed)
    alive = list(enumerate(sample_settings(tune.trials, rng)))
    records: list[dict] = []
    spent = 0
    scores: dict[int, float] = {}
    for rung in range(tune.rungs):
        ceiling = max(1, base.epochs // tune.eta ** (tune.rungs - 1 - rung))
        for i, s in alive:
            cfg = apply_settings(replace(base, epochs=ceiling), s)
            valid, epochs = train(cfg)
            spent += epochs
            scores[i] = valid
            records.append({"trial": i, "rung": rung, "ceiling": ceiling, "epochs": epochs, "valid": valid,
                            **chosen(cfg)})
            log.info("tune rung %d trial %d: valid %.4f after %d epochs %s", rung, i, valid, epochs, chosen(cfg))
        alive.sort(key=lambda t: -scores[t[0]])
        if rung < tune.rungs - 1:
            alive = alive[: max(1, math.ceil(len(alive) / tune.eta))]
    best_i, best_s = alive[0]
    return TuneResult(chosen(apply_settings(base, best_s)), scores[best_i], records, spent)
