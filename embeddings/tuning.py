"""Tune the embedding's settings on a (small) graph by link-prediction AUC, and measure how a ranking transfers.

What is tuned are the settings of ProNE's spectral propagation that DistNE applies at every level
(:class:`embeddings.distne.DistNEConfig` ``order``, ``mu``, ``theta``; Zhang et al., IJCAI 2019): the band-pass
filter ``g(λ) = exp(-θ (λ - μ)² / 2)`` and the number ``order`` of Chebyshev terms that expand it. The sparse
matrix factorisation (stage 1) does not depend on them, so one factorisation per split serves every setting;
each setting then costs one propagation (``2(order - 1)`` sparse products) and one logistic regression.

Protocol (docs/algorithms.md §1): hold out ``test_frac`` of the undirected edges outside a random spanning
forest, as many non-edges, embed the training graph, score pairs by a logistic regression on the Hadamard
product, ROC-AUC (:mod:`embeddings.evaluate`). All settings are scored on the same splits (paired), averaged
over ``repeats`` splits. AutoNE (Tu et al., KDD 2019) tunes on sampled subgraphs the same way; the transfer
is measured by Kendall's τ between the rankings on the sample and on the full graph and by the *regret*:
the full-graph AUC of the best setting minus that of the setting chosen on the sample.

>>> import scipy.sparse as sp
>>> g = sp.random(300, 300, density=0.04, random_state=2); g = ((g + g.T) > 0).astype(np.float32).tocsr()
>>> res = tune(g, (Setting(2, 0.2, 0.5), Setting(5, 0.2, 0.5)), TuningConfig(dim=16))
>>> len(res.scores), res.chosen in res.settings()
(2, True)
>>> round(kendall_tau([0.1, 0.2, 0.3], [0.15, 0.25, 0.2]), 4), round(regret({"a": 0.9, "b": 0.8}, "b"), 4)
(0.3333, 0.1)
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from embeddings.evaluate import link_prediction_auc, split_edges
from embeddings.prone import blas_threads, check_adjacency, cores, smf_embedding, spectral_propagation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """One point of the grid: Chebyshev terms, the filter's centre μ and width θ (DistNEConfig's names)."""

    order: int = 5
    mu: float = 0.2
    theta: float = 0.5

    def __post_init__(self) -> None:
        if self.order < 2:
            raise ValueError(f"order must be >= 2 (order 1 makes the filter the identity), got {self.order}")
        if self.theta <= 0:
            raise ValueError(f"theta must be > 0, got {self.theta}")

    @property
    def label(self) -> str:
        return f"order={self.order},mu={self.mu:g},theta={self.theta:g}"


def default_grid() -> tuple[Setting, ...]:
    """18 settings: μ ∈ {-1, -0.5, 0, 0.2, 0.6, 1} × (order, θ) ∈ {(2, 0.5), (5, 0.5), (5, 2)}.

    μ moves link-prediction AUC most (72-setting scan, d = 64: CiaoDVD 0.84–0.97, soc-Slashdot0902
    0.63–0.94, mostly along μ); order and θ matter at the extreme μ and little near the default.
    """
    return tuple(Setting(o, m, t) for m, (o, t) in itertools.product((-1.0, -0.5, 0.0, 0.2, 0.6, 1.0),
                                                                     ((2, 0.5), (5, 0.5), (5, 2.0))))


@dataclass(frozen=True)
class TuningConfig:
    """Embedding dimension, split and repeats of the tuning run; ``threads`` 0 = every core."""

    dim: int = 128
    test_frac: float = 0.1
    repeats: int = 1
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2, got {self.dim}")
        if not 0 < self.test_frac < 0.5:
            raise ValueError(f"test_frac must be in (0, 0.5), got {self.test_frac}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")


@dataclass(frozen=True)
class SettingScore:
    """A setting's mean AUC over the repeats (and each repeat's), and its seconds (propagation + scoring)."""

    setting: Setting
    auc: float
    aucs: tuple
    seconds: float


@dataclass(frozen=True)
class TuningResult:
    """Every setting's score, the chosen (highest-AUC) setting and where the time went."""

    scores: tuple
    chosen: Setting
    nodes: int
    edges: int
    seconds: dict = field(default_factory=dict)

    def settings(self) -> tuple[Setting, ...]:
        return tuple(s.setting for s in self.scores)

    def aucs(self) -> dict:
        """``{label: mean AUC}``."""
        return {s.setting.label: s.auc for s in self.scores}

    def to_dict(self) -> dict:
        return asdict(self)

    def write_chosen(self, path: str | Path, dim: int | None = None) -> dict:
        """``chosen.json``: the settings ``embed_graph --settings`` applies, with the AUC that chose them."""
        best = max(self.scores, key=lambda s: s.auc)
        obj = {**asdict(self.chosen), "auc": best.auc, "source": "tune_embedding",
               **({"dim": dim} if dim is not None else {})}
        Path(path).write_text(json.dumps(obj, indent=1, sort_keys=True))
        return obj


def read_settings(path: str | Path) -> Setting:
    """The :class:`Setting` of a ``chosen.json`` (unknown keys such as ``auc`` are ignored)."""
    obj = json.loads(Path(path).read_text())
    return Setting(int(obj["order"]), float(obj["mu"]), float(obj["theta"]))


def tune(adjacency: sp.spmatrix, grid: tuple[Setting, ...] | None = None,
         cfg: TuningConfig = TuningConfig()) -> TuningResult:
    """Score every setting of ``grid`` (default :func:`default_grid`) by link-prediction AUC on ``adjacency``."""
    grid = tuple(grid or default_grid())
    if not grid:
        raise ValueError("the grid is empty")
    threads = cfg.threads or cores()
    t0 = time.perf_counter()
    a = check_adjacency(adjacency)
    a = sp.csr_matrix(a.maximum(a.T))
    spare = spare_edges(a)
    if spare < 1:
        raise ValueError("every edge lies on a spanning forest (the graph is a forest): no edge can be held out "
                         "for link prediction")
    secs = {"split": 0.0, "smf": 0.0, "settings": 0.0}
    aucs = np.zeros((cfg.repeats, len(grid)))
    per = np.zeros(len(grid))
    with blas_threads(threads):
        for rep in range(cfg.repeats):
            t = time.perf_counter()
            split = split_edges(a, cfg.test_frac, seed=cfg.seed + rep)
            secs["split"] += time.perf_counter() - t
            t = time.perf_counter()
            x0 = smf_embedding(split.train, cfg.dim, seed=cfg.seed + rep, threads=threads)
            secs["smf"] += time.perf_counter() - t
            for k, s in enumerate(grid):
                t = time.perf_counter()
                x = spectral_propagation(split.train, x0, s.order, s.mu, s.theta, threads=threads)
                aucs[rep, k] = link_prediction_auc(x, split, seed=cfg.seed + rep)
                per[k] += time.perf_counter() - t
    secs["settings"] = float(per.sum())
    secs["total"] = time.perf_counter() - t0
    scores = tuple(SettingScore(s, float(aucs[:, k].mean()), tuple(aucs[:, k].tolist()), float(per[k]))
                   for k, s in enumerate(grid))
    chosen = max(scores, key=lambda s: s.auc).setting
    log.info("tuned %d settings on %d nodes / %d edges in %.1fs: %s (AUC %.4f)", len(grid), a.shape[0], a.nnz // 2,
             secs["total"], chosen.label, max(s.auc for s in scores))
    return TuningResult(scores, chosen, int(a.shape[0]), int(a.nnz // 2), secs)


def spare_edges(a: sp.csr_matrix) -> int:
    """Undirected edges outside a spanning forest of the symmetric ``a``: those the split may hold out."""
    from scipy.sparse.csgraph import connected_components

    active = np.diff(a.indptr) > 0
    k, lab = connected_components(a, directed=False)
    return int(a.nnz // 2 - (active.sum() - np.unique(lab[active]).size))


def kendall_tau(a, b) -> float:
    """Kendall's τ-b between two score vectors over the same settings; 0 when either is constant (no ranking)."""
    from scipy.stats import kendalltau

    tau = float(kendalltau(np.asarray(a, np.float64), np.asarray(b, np.float64)).statistic)
    return 0.0 if np.isnan(tau) else tau


def regret(full_aucs: dict, chosen_label: str) -> float:
    """Best full-graph AUC minus the full-graph AUC of the setting chosen elsewhere (``label → AUC``)."""
    return float(max(full_aucs.values()) - full_aucs[chosen_label])
