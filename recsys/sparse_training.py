"""Dynamic Sparse Learning (DSL): train with a constant budget of non-zero weights throughout.

Follows Wang et al., "Dynamic Sparse Learning: A Novel Paradigm for Efficient Recommendation"
(WSDM 2024, arXiv 2402.02855) and its official code:

- every masked tensor ``W`` gets a 0/1 mask ``M`` with exactly ``round(density · |W|)`` ones, drawn
  uniformly at random; the model always uses ``W ⊙ M`` (weights are re-masked after every step);
- every ``ΔT`` steps, per tensor, with update ratio ``p_t``:
  **prune** the ``n = ⌈p_t · active⌉`` active weights of smallest ``|w|`` and **grow** the ``n``
  previously inactive weights of largest ``|∂L/∂w|`` (gradient of the last batch), regrown at 0;
- ``p_t = p_end + (p_start − p_end) · (1 + cos(π t / T)) / 2`` (cosine annealing 0.5 → 0.005 over
  the run's ``T`` total steps).

The budget is constant (asserted at every round). ``ΔT`` defaults to ``T / target_rounds`` so a
short run still makes ~``target_rounds`` rounds (the paper's ΔT = 3000 over 1000 epochs made
hundreds). ``grow_signal="accumulated"`` grows by the gradient summed since the previous round
instead of the last batch's (our default for MF, whose sparse gradients touch only a batch's
rows; see ``benchmarks/README.md``). Ties in ``|w|`` / ``|g|`` (e.g. zero gradients of rows absent from the last batch) are
broken at random, not by position. Optimiser moments of pruned/grown weights are reset, and the
gradients of inactive weights are zeroed before the optimiser step so Adam never moves them.
Density 1 is dense training through the same code (no masks, no rounds).

Works with dense gradients (LightGCN's propagation) and with sparse COO gradients
(``nn.Embedding(sparse=True)`` + ``SparseAdam`` for MF), touching only the batch's rows then.

Usage::

    dsl = DynamicSparsity(model.named_parameters(), DSLConfig(density=0.2, total_steps=T), optimizer)
    for batch in ...:
        loss.backward(); dsl.before_step(); optimizer.step(); dsl.after_step(); optimizer.zero_grad()

>>> import torch
>>> w = torch.nn.Parameter(torch.randn(10, 8))
>>> dsl = DynamicSparsity([("w", w)], DSLConfig(density=0.25, total_steps=10, update_interval=2))
>>> int((w != 0).sum()), dsl.budget["w"]
(20, 20)
>>> w.grad = torch.randn(10, 8); dsl.before_step(); dsl.before_step(); dsl.after_step()
>>> dsl.rounds, int(dsl.masks["w"].sum())
(1, 20)
"""
from __future__ import annotations

import logging
import math
from typing import Iterable

import torch

from recsys.dsl_config import GROW_SIGNALS, INIT_MASKS, DSLConfig, shared_prefix_mask

log = logging.getLogger(__name__)

__all__ = ["DSLConfig", "DynamicSparsity", "shared_prefix_mask", "GROW_SIGNALS", "INIT_MASKS"]


class DynamicSparsity:
    """Per-tensor masks with prune-by-|w| / grow-by-|grad| rounds at a constant budget.

    Args:
        named_params: ``(name, parameter)`` pairs (e.g. ``model.named_parameters()``); tensors with
            fewer than ``config.min_ndim`` dimensions stay dense.
        config: :class:`DSLConfig`.
        optimizer: optional; its per-parameter moment buffers are reset where masks change.
    """

    def __init__(self, named_params: Iterable[tuple[str, torch.nn.Parameter]], config: DSLConfig,
                 optimizer: torch.optim.Optimizer | None = None):
        self.config = config
        self.optimizer = optimizer
        self.params: dict[str, torch.nn.Parameter] = {}
        self.masks: dict[str, torch.Tensor] = {}
        self.budget: dict[str, int] = {}
        self.step_count = 0
        self.rounds = 0
        self._touched: dict[str, torch.Tensor] = {}
        self._acc: dict[str, torch.Tensor] = {}
        self._fmasks: dict[str, torch.Tensor] = {}
        self.dense = config.density >= 1.0
        all_params = list(named_params)
        self.dense_params = sum(p.numel() for _, p in all_params)
        if self.dense:
            return
        gen = torch.Generator().manual_seed(config.seed)
        self._gen = gen
        col_orders: dict[int, torch.Tensor] = {}
        for name, p in all_params:
            if p.dim() < config.min_ndim:
                continue
            k = int(round(config.density * p.numel()))
            if k < 1:
                raise ValueError(f"{name}: density {config.density} leaves no weight of {p.numel()}")
            if config.init_mask == "shared" and p.dim() >= 2:
                width = p.numel() // p.shape[0]
                if width not in col_orders:
                    col_orders[width] = torch.randperm(width, generator=gen)
                flat = shared_prefix_mask(p.shape[0], width, k, config.init_spread, col_orders[width], gen).view(-1)
            else:
                flat = torch.zeros(p.numel(), dtype=torch.bool)
                flat[torch.randperm(p.numel(), generator=gen)[:k]] = True
            mask = flat.view_as(p).to(p.device)
            with torch.no_grad():
                p.mul_(mask)
            self.params[name], self.masks[name], self.budget[name] = p, mask, k
        if not self.params:
            raise ValueError("no tensor to sparsify (check min_ndim)")
        if config.grow_signal == "momentum":
            if optimizer is None or not hasattr(optimizer, "step_masks"):
                raise ValueError("grow_signal='momentum' needs an optimiser with step_masks (RowAdam)")
            for name, p in self.params.items():
                optimizer.step_masks[p] = self._fmask(name)

    # -- accounting -------------------------------------------------------------------------
    @property
    def active_params(self) -> int:
        """Non-zero weights kept (masked tensors' budgets + unmasked tensors' sizes)."""
        if self.dense:
            return self.dense_params
        masked = sum(p.numel() for p in self.params.values())
        return self.dense_params - masked + sum(self.budget.values())

    def check(self) -> None:
        """Assert the contract: mask sizes equal the budgets and masked weights are zero."""
        for name, p in self.params.items():
            m = self.masks[name]
            n = int(m.sum())
            assert n == self.budget[name], f"{name}: {n} active weights, budget {self.budget[name]}"
            assert not bool(p.detach()[~m].any()), f"{name}: a masked weight is non-zero"

    # -- training hooks ---------------------------------------------------------------------
    @torch.no_grad()
    def before_step(self) -> None:
        """Call after ``backward()`` and before ``optimizer.step()``: maybe a prune/grow round,
        then zero the inactive weights' gradients (``momentum``: the optimiser masks the update).

        A sparse gradient is coalesced here (the optimiser would coalesce it anyway; a coalesced
        tensor is returned as is there), so the grow-signal accumulation and the mask gather touch
        each of the batch's rows once: the per-step cost is proportional to the batch's distinct
        rows, not to the table."""
        self.step_count += 1
        if self.dense:
            return
        cfg = self.config
        to_round = -self.step_count % cfg.interval  # steps until the next round (0: this one)
        due = to_round == 0 and self.step_count < cfg.total_steps
        accumulate = cfg.grow_signal in ("accumulated", "mean") and (cfg.grow_window is None or to_round < cfg.grow_window)
        for name, p in self.params.items():
            g = p.grad
            if g is None:
                continue
            if g.is_sparse and not g.is_coalesced():
                g = p.grad = g.coalesce()
            if accumulate:
                acc = self._acc.get(name)
                if acc is None:
                    acc = self._acc[name] = torch.zeros_like(p)
                if g.is_sparse:
                    rows = g._indices()[0]
                    acc.index_add_(0, rows, g._values())
                    if cfg.grow_signal == "mean":
                        cnt = self._acc.get(name + "#count")
                        if cnt is None:
                            cnt = self._acc[name + "#count"] = torch.zeros(p.shape[0], dtype=p.dtype, device=p.device)
                        cnt.index_add_(0, rows, torch.ones(len(rows), dtype=p.dtype, device=p.device))
                else:
                    acc.add_(g)
        if due:
            self._round(cfg.prune_ratio(self.step_count))
            self._acc.clear()
        if cfg.grow_signal == "momentum":
            return
        for name, p in self.params.items():
            g = p.grad
            if g is None:
                continue
            fm = self._fmask(name)
            if g.is_sparse:
                rows = g._indices()[0]
                g._values().mul_(fm.index_select(0, rows))
                self._touched[name] = rows
            else:
                g.mul_(fm)

    def _fmask(self, name: str) -> torch.Tensor:
        """The mask in the parameter's dtype (cached; a float gather is ~2x cheaper than bool)."""
        fm = self._fmasks.get(name)
        if fm is None:
            fm = self._fmasks[name] = self.masks[name].to(self.params[name].dtype)
        return fm

    @torch.no_grad()
    def after_step(self) -> None:
        """Call after ``optimizer.step()``: re-apply the masks (only touched rows for sparse grads)."""
        if self.dense or not self.config.remask:
            self._touched.clear()
            return
        for name, p in self.params.items():
            m = self.masks[name]
            rows = self._touched.pop(name, None)
            if rows is not None:
                p[rows] = p[rows] * m[rows]
            else:
                p.mul_(m)

    # -- prune / grow -----------------------------------------------------------------------
    def _tiebreak(self, like: torch.Tensor) -> torch.Tensor:
        return torch.rand(like.shape, generator=self._gen).to(like.device) * 1e-30

    @torch.no_grad()
    def _round(self, ratio: float) -> None:
        changed_total = 0
        for name, p in self.params.items():
            m = self.masks[name]
            g = self._grow_signal(name, p)
            if g is None:
                continue
            k = self.budget[name]
            n = min(math.ceil(ratio * k), p.numel() - k)
            if n <= 0:
                continue
            flat_m, flat_w = m.view(-1), p.detach().view(-1)
            grow_idx = self._grow_candidates(flat_m, g, n, fill=self.config.grow_zero_signal == "random")
            n = len(grow_idx)
            if n == 0:
                continue
            active = flat_m.nonzero().squeeze(1)
            w_score = flat_w[active].abs() + self._tiebreak(active)
            if self.config.min_row_active and p.dim() == 2:
                w_score[self._row_protected(m, p)[active]] = math.inf
            prune_idx = active[torch.topk(w_score, n, largest=False, sorted=False).indices]
            flat_m[prune_idx] = False
            flat_m[grow_idx] = True
            fm = self._fmasks.get(name)
            if fm is not None:
                fm.view(-1)[prune_idx] = 0.0
                fm.view(-1)[grow_idx] = 1.0
            changed = torch.cat([prune_idx, grow_idx])
            flat_w[changed] = 0.0  # pruned weights vanish, regrown weights start at zero
            self._reset_state(p, changed, grow_idx if self.config.regrow_second_moment == "row_mean" else None)
            n_active = int(flat_m.sum())
            assert n_active == k, f"{name}: budget changed {k} -> {n_active}"
            changed_total += n
        self.rounds += 1
        log.debug("DSL round %d at step %d: ratio %.4f, %d weights moved", self.rounds, self.step_count,
                  ratio, changed_total)

    def _name_of(self, p: torch.nn.Parameter) -> str:
        return next(n for n, q in self.params.items() if q is p)

    def _row_protected(self, m: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Flat bool: each row's ``min_row_active`` active weights of largest |w| (never pruned)."""
        score = p.detach().abs().masked_fill(~m, -1.0)
        top = torch.topk(score, min(self.config.min_row_active, p.shape[1]), dim=1).indices
        prot = torch.zeros_like(m)
        prot.scatter_(1, top, True)
        return (prot & m).view(-1)

    def _grow_signal(self, name: str, p: torch.nn.Parameter) -> torch.Tensor | None:
        """The tensor whose |.| ranks the inactive weights for growth (see ``DSLConfig.grow_signal``)."""
        sig = self.config.grow_signal
        if sig == "last":
            return p.grad
        if sig == "momentum":
            return self.optimizer.state.get(p, {}).get("exp_avg")
        acc = self._acc.get(name)
        cnt = self._acc.get(name + "#count")
        if acc is None or cnt is None or acc.dim() < 2:
            return acc
        return acc / cnt.clamp(min=1.0).view(-1, *([1] * (acc.dim() - 1)))

    def _grow_candidates(self, flat_m: torch.Tensor, grad: torch.Tensor, n: int, fill: bool = True) -> torch.Tensor:
        """Flat indices of ``n`` inactive weights with the largest |grad| (zero-gradient ties random;
        ``fill=False``: only those with a non-zero |grad|, possibly fewer than ``n``)."""
        if grad.is_sparse:
            g = grad.coalesce()
            rows, vals = g.indices()[0], g.values().abs()
            width = vals.shape[1] if vals.dim() > 1 else 1
            cols = torch.arange(width, device=rows.device)
            flat_idx = (rows.unsqueeze(1) * width + cols).reshape(-1)
            score = vals.reshape(-1)
        else:
            score = grad.reshape(-1).abs()
            flat_idx = None
        # Active weights cannot be grown: score 0. Exact ties among non-zero |g| have probability ~0.
        score = score.masked_fill(flat_m[flat_idx] if flat_idx is not None else flat_m, 0.0)
        top = torch.topk(score, min(n, score.numel()), sorted=False)
        chosen = top.indices[top.values > 0]
        chosen = flat_idx[chosen] if flat_idx is not None else chosen
        if len(chosen) >= n or not fill:
            return chosen
        # Not enough non-zero gradients: the rest are ties at |g| = 0, chosen uniformly at random.
        taken = flat_m.clone()
        taken[chosen] = True
        extra = [chosen]
        need = n - len(chosen)
        numel = flat_m.numel()
        while need > 0:
            draw = torch.randint(0, numel, (2 * need + 16,), generator=self._gen).to(flat_m.device)
            draw = torch.unique(draw[~taken[draw]])
            draw = draw[torch.randperm(len(draw), generator=self._gen).to(flat_m.device)][:need]
            taken[draw] = True
            extra.append(draw)
            need -= len(draw)
        return torch.cat(extra)

    def _reset_state(self, p: torch.nn.Parameter, flat_idx: torch.Tensor, grown: torch.Tensor | None = None) -> None:
        """Zero the optimiser moments at ``flat_idx``; with ``grown`` (``regrow_second_moment="row_mean"``)
        the regrown weights' ``exp_avg_sq`` starts at the mean of their row's active weights instead."""
        if self.optimizer is None:
            return
        state = self.optimizer.state.get(p, {})
        for key, buf in state.items():
            if torch.is_tensor(buf) and buf.shape == p.shape:
                buf.view(-1)[flat_idx] = 0.0
                if grown is not None and key == "exp_avg_sq" and p.dim() == 2:
                    live = self.masks[self._name_of(p)] & (buf > 0)  # active, excluding the just-reset
                    row_mean = (buf * live).sum(1) / live.sum(1).clamp(min=1)
                    buf.view(-1)[grown] = row_mean[grown // p.shape[1]]

    # -- checkpointing ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"masks": {k: v.cpu() for k, v in self.masks.items()}, "budget": dict(self.budget),
                "step_count": self.step_count, "rounds": self.rounds, "rng": self._gen.get_state() if not self.dense else None}

    def load_state_dict(self, state: dict) -> None:
        self.step_count, self.rounds = int(state["step_count"]), int(state["rounds"])
        if self.dense:
            return
        if set(state["masks"]) != set(self.masks):
            raise ValueError(f"checkpoint masks {sorted(state['masks'])} != model tensors {sorted(self.masks)}")
        for k, v in state["masks"].items():
            self.masks[k] = v.to(self.masks[k].device)
        self._fmasks.clear()
        self.budget = dict(state["budget"])
        if state.get("rng") is not None:
            self._gen.set_state(state["rng"])
