"""DSL's settings and initial masks: :class:`DSLConfig` (budget, schedule, growth signal, mask
layout) and :func:`shared_prefix_mask` (the structured initial mask); the training-time prune/grow
rounds are in :mod:`recsys.sparse_training`.

>>> DSLConfig(density=0.2, total_steps=1000).interval
10
>>> import torch
>>> m = shared_prefix_mask(3, 4, 6, 0.0, torch.arange(4), torch.Generator().manual_seed(0))
>>> m.sum(1).tolist()
[2, 2, 2]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

GROW_SIGNALS = ("last", "accumulated", "mean", "momentum")
INIT_MASKS = ("random", "shared")


@dataclass(frozen=True)
class DSLConfig:
    """Dynamic sparse training settings.

    Attributes:
        density: fraction of each masked tensor's weights that are non-zero (1 = dense).
        total_steps: optimiser steps of the whole run (drives ΔT and the cosine schedule).
        update_interval: ΔT in steps; ``None`` → ``max(1, total_steps // target_rounds)``.
        target_rounds: prune/grow rounds aimed for when ``update_interval`` is None.
        prune_start: update ratio p at step 0 (paper: 0.5).
        prune_end: update ratio p at the last step (paper: 0.005).
        min_ndim: only tensors with at least this many dimensions are masked.
        seed: seed of the initial masks and the random tie-breaking.
        remask: multiply the weights by their masks after every optimiser step (the paper's
            safety net). With Adam-type optimisers and no decoupled weight decay it is a no-op --
            inactive gradients are zeroed and their moments reset, so the update there is exactly
            0 -- and turning it off saves a pass per step (``check()`` still verifies the contract).
        grow_signal: ``"last"`` grows by |gradient of the last batch| (the paper); ``"accumulated"``
            by |sum of the gradients since the previous round| -- with sparse embedding gradients
            (MF) a last batch touches few rows, so most growth would otherwise be a random pick;
            ``"mean"`` by |that sum / the number of batches the row was in| (per-row mean, so rare
            rows compete with popular ones); ``"momentum"`` by |Adam's first moment of the raw
            gradient| (sparse momentum, Dettmers & Zettlemoyer 2019): the optimiser keeps moments
            of every weight and DSL masks its *update* instead of the gradient
            (``optimizer.step_masks``, see :class:`recsys.row_adam.RowAdam`), so no extra buffer or
            per-step accumulation is needed.
        grow_window: with ``accumulated``, sum only the gradients of the last ``grow_window``
            steps before each round (``None``: the whole interval); a window of a fraction of an
            epoch already covers most rows and makes the per-step accumulation that much rarer.
        min_row_active: pruning never takes a row (of a 2-D tensor) below this many active weights
            (each row's largest |w| are exempt); the budget stays per tensor. With the accumulated
            signal, magnitude pruning otherwise empties the rows of rare users, whose vector is then
            0 and whose ranking is arbitrary (0.7-10 % of Gowalla's users, see benchmarks/README.md).
        regrow_second_moment: Adam's ``exp_avg_sq`` of a regrown weight: ``"zero"`` (reset, as its
            first moment) or ``"row_mean"`` (the mean over its row's active weights). With a reset
            v and the optimiser's global bias correction, a regrown weight's first updates are
            up to ~6x lr ((1 - 0.9^k) / sqrt(1 - 0.999^k) after k updates); ``row_mean`` keeps them ~lr.
        init_mask: the initial masks. ``"random"`` (the paper): ``k`` positions drawn uniformly per
            tensor, independently across tensors. ``"shared"`` (structured): every row ``r`` of every
            masked tensor (rows = first dimension, columns = the rest flattened) keeps the first
            ``L_r`` columns of *one* column order shared by all tensors of that width, with
            ``Σ L_r = k`` exactly. In a factorisation ``<e_u, e_i>`` a user and an item row then
            share ``min(L_u, L_i)`` dimensions instead of ``ρ²·d`` for independent masks, and
            growth by gradient stays aligned (the gradient of an inactive ``e_u[c]`` is zero
            unless items are active at ``c``). Tensors with fewer than 2 dimensions use ``random``.
        init_spread: with ``shared``, ``L_r`` is drawn uniformly in ``ρ·d·[1 − s, 1 + s]`` (then
            rescaled and rounded to the exact budget). ``s = 0``: every row starts on the same
            ``ρ·d`` columns (an equal-size dense model); ``s > 0`` also activates columns beyond
            ``ρ·d`` in some rows, so the other table's rows receive a growth signal there (two rows
            regrown at zero in a column where nothing else is active would never get a gradient).
    """

    density: float
    total_steps: int
    update_interval: int | None = None
    target_rounds: int = 100
    prune_start: float = 0.5
    prune_end: float = 0.005
    min_ndim: int = 2
    seed: int = 0
    remask: bool = True
    grow_signal: str = "last"
    grow_window: int | None = None
    min_row_active: int = 0
    regrow_second_moment: str = "zero"
    init_mask: str = "random"
    init_spread: float = 0.0
    grow_zero_signal: str = "random"

    def __post_init__(self) -> None:
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        if self.update_interval is not None and self.update_interval < 1:
            raise ValueError(f"update_interval must be >= 1, got {self.update_interval}")
        if self.target_rounds < 1:
            raise ValueError("target_rounds must be >= 1")
        if self.regrow_second_moment not in ("zero", "row_mean"):
            raise ValueError("regrow_second_moment must be 'zero' or 'row_mean'")
        if self.min_row_active < 0:
            raise ValueError("min_row_active must be >= 0")
        if self.grow_window is not None and self.grow_window < 1:
            raise ValueError(f"grow_window must be >= 1, got {self.grow_window}")
        if self.grow_signal not in GROW_SIGNALS:
            raise ValueError(f"grow_signal must be one of {GROW_SIGNALS}, got {self.grow_signal!r}")
        if self.grow_zero_signal not in ("random", "skip"):
            raise ValueError(f"grow_zero_signal must be 'random' or 'skip', got {self.grow_zero_signal!r}")
        if self.init_mask not in INIT_MASKS:
            raise ValueError(f"init_mask must be one of {INIT_MASKS}, got {self.init_mask!r}")
        if not 0.0 <= self.init_spread <= 1.0:
            raise ValueError(f"init_spread must be in [0, 1], got {self.init_spread}")
        if not 0.0 <= self.prune_end <= self.prune_start <= 1.0:
            raise ValueError("need 0 <= prune_end <= prune_start <= 1")

    @property
    def interval(self) -> int:
        """ΔT actually used."""
        if self.update_interval is not None:
            return self.update_interval
        return max(1, self.total_steps // self.target_rounds)

    def prune_ratio(self, step: int) -> float:
        """Cosine-annealed update ratio ``p_t`` at ``step``."""
        t = min(max(step, 0), self.total_steps) / self.total_steps
        return self.prune_end + 0.5 * (self.prune_start - self.prune_end) * (1.0 + math.cos(math.pi * t))


def shared_prefix_mask(rows: int, width: int, k: int, spread: float, order: torch.Tensor,
                       gen: torch.Generator) -> torch.Tensor:
    """A ``rows × width`` bool mask with exactly ``k`` ones where row ``r`` holds the first ``L_r``
    columns of ``order``; ``L_r ∝ U(1 − spread, 1 + spread)``, rescaled to ``Σ L_r = k``, capped at
    ``width`` (floors first, the remainder one column at a time to random rows below the cap)."""
    if not 0 < k <= rows * width:
        raise ValueError(f"k={k} out of range for a {rows}x{width} mask")
    t = 1.0 + spread * (2.0 * torch.rand(rows, generator=gen, dtype=torch.float64) - 1.0)
    lengths = torch.clamp(torch.floor(t * (k / float(t.sum()))), 0, width).long()
    rem = k - int(lengths.sum())
    while rem > 0:  # floors and the cap only lower the sum: top up, never above ``width``
        open_rows = (lengths < width).nonzero().squeeze(1)
        pick = open_rows[torch.randperm(len(open_rows), generator=gen)[:rem]]
        lengths[pick] += 1
        rem -= len(pick)
    rank = torch.empty(width, dtype=torch.long)
    rank[order] = torch.arange(width)  # position of each column in the shared order
    return rank.unsqueeze(0) < lengths.unsqueeze(1)
