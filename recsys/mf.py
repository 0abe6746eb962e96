"""Matrix factorisation trained with BPR (Rendle et al., "BPR: Bayesian Personalized Ranking from
Implicit Feedback", UAI 2009).

``score(u, i) = <e_u, e_i>``; for a triple ``(u, i, j)`` (``i`` positive, ``j`` sampled negative)

    L = −mean log σ(<e_u, e_i> − <e_u, e_j>) + λ · ½ (‖e_u‖² + ‖e_i‖² + ‖e_j‖²) / B

(the L2 term on the batch's embeddings, as in the LightGCN code). The tables are
``nn.Embedding(sparse=True)`` so a step touches only the batch's rows (lazy Adam, :class:`recsys.row_adam.RowAdam`), which keeps
an epoch at a few seconds on CPU and makes DSL masking cost proportional to the batch.

>>> import torch
>>> m = MF(3, 4, dim=8)
>>> loss = m.loss(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 3]), reg=1e-4)
>>> loss.backward(); m.user.weight.grad.is_sparse
True
>>> [t.shape for t in m.final_embeddings()]
[torch.Size([3, 8]), torch.Size([4, 8])]
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recsys.row_adam import RowAdam


def bpr_loss(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, u0: torch.Tensor, i0: torch.Tensor,
             j0: torch.Tensor, reg: float) -> torch.Tensor:
    """BPR loss on scoring vectors ``u, i, j`` with L2 on the base (ego) vectors ``u0, i0, j0``."""
    x = (u * i).sum(1) - (u * j).sum(1)
    l2 = 0.5 * (u0.pow(2).sum() + i0.pow(2).sum() + j0.pow(2).sum()) / u.shape[0]
    return F.softplus(-x).mean() + reg * l2


class MF(nn.Module):
    """Dot-product matrix factorisation with sparse-gradient embedding tables."""

    sparse_grad = True

    def __init__(self, n_users: int, n_items: int, dim: int = 64, init_std: float = 0.1, seed: int = 0,
                 social: nn.Module | None = None, zero_users: torch.Tensor | None = None):
        super().__init__()
        self.social = social  # recsys.social.SocialUsers: friends and the social vectors' map
        if dim < 1 or n_users < 1 or n_items < 1:
            raise ValueError("n_users, n_items and dim must be positive")
        self.user = nn.Embedding(n_users, dim, sparse=True)
        self.item = nn.Embedding(n_items, dim, sparse=True)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.user.weight.copy_(torch.randn(n_users, dim, generator=gen) * init_std)
            self.item.weight.copy_(torch.randn(n_items, dim, generator=gen) * init_std)
            if zero_users is not None:  # users without interactions start at 0 (scored from the social side)
                self.user.weight[zero_users] = 0.0

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, reg: float) -> torch.Tensor:
        e, i, j = self.user(users), self.item(pos), self.item(neg)
        u = e if self.social is None else self.social.forward_batch(users, e, self.user.weight)
        return bpr_loss(u, i, j, e, i, j, reg)

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return RowAdam(self.parameters(), lr=lr)

    @torch.no_grad()
    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The vectors that score: ``(users, items)``."""
        w = self.user.weight.detach()
        if self.social is not None:
            w = self.social.forward_all(w)
        return w, self.item.weight.detach()

    def base_tables(self) -> dict[str, torch.Tensor]:
        """The trained (possibly sparse) tables, by export name."""
        return {"user_base": self.user.weight.detach(), "item_base": self.item.weight.detach()}
