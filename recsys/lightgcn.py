"""LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020).

With the symmetric-normalised bipartite adjacency ``Â = D^{-1/2} A D^{-1/2}`` over users+items,

    E^{(l+1)} = Â E^{(l)},    E = 1/(L+1) Σ_{l=0..L} E^{(l)},    score(u, i) = <E_u, E_i>

trained with BPR (:func:`recsys.mf.bpr_loss`, L2 on the ego embeddings ``E^{(0)}``).

Propagation backends: ``"sparse"`` is ``torch.sparse.mm`` with a CSR ``Â`` (the default: faster
on CPU, see ``benchmarks/README.md``); ``"pyg"`` uses ``torch_geometric.nn.conv.LGConv`` (what
``torch_geometric.nn.models.LightGCN`` runs), kept for the measurement.

>>> import numpy as np, scipy.sparse as sp, torch
>>> train = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
>>> m = LightGCN(train, dim=4, layers=2)
>>> loss = m.loss(torch.tensor([0]), torch.tensor([0]), torch.tensor([1]), reg=1e-4); loss.backward()
>>> [t.shape for t in m.final_embeddings()]
[torch.Size([2, 4]), torch.Size([3, 4])]
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys.mf import bpr_loss


def normalized_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """``D^{-1/2} A D^{-1/2}`` of the bipartite graph ``A = [[0, R], [R^T, 0]]`` (users first)."""
    r = sp.csr_matrix(train, dtype=np.float32)
    r.data[:] = 1.0
    a = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    d = sp.diags(inv.astype(np.float32))
    out = (d @ a @ d).tocsr()
    out.sort_indices()
    return out


class LightGCN(nn.Module):
    """LightGCN with user and item ego-embedding tables (each masked separately by DSL)."""

    sparse_grad = False

    def __init__(self, train: sp.csr_matrix, dim: int = 64, layers: int = 3, init_std: float = 0.1,
                 seed: int = 0, backend: str = "sparse", social: nn.Module | None = None,
                 zero_users: torch.Tensor | None = None):
        super().__init__()
        self.social = social  # recsys.social.SocialUsers: friends and the social vectors' map
        if layers < 0 or dim < 1:
            raise ValueError("layers must be >= 0 and dim >= 1")
        if backend not in ("sparse", "pyg"):
            raise ValueError(f"backend must be 'sparse' or 'pyg', got {backend!r}")
        self.n_users, self.n_items = train.shape
        self.layers, self.backend = layers, backend
        gen = torch.Generator().manual_seed(seed)
        self.user = nn.Parameter(torch.randn(self.n_users, dim, generator=gen) * init_std)
        self.item = nn.Parameter(torch.randn(self.n_items, dim, generator=gen) * init_std)
        if zero_users is not None:  # users without interactions start at 0 (scored from the social side)
            with torch.no_grad():
                self.user[zero_users] = 0.0
        adj = normalized_adjacency(train)
        if backend == "sparse":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                csr = torch.sparse_csr_tensor(
                    torch.from_numpy(adj.indptr.astype(np.int64)), torch.from_numpy(adj.indices.astype(np.int64)),
                    torch.from_numpy(adj.data), size=adj.shape, check_invariants=False)
            self.register_buffer("adj", csr, persistent=False)
        else:
            from torch_geometric.nn.conv import LGConv

            coo = adj.tocoo()
            # LGConv aggregates messages src -> dst; Â is symmetric so either orientation works.
            self.register_buffer("edge_index", torch.from_numpy(np.vstack([coo.col, coo.row]).astype(np.int64)),
                                 persistent=False)
            self.register_buffer("edge_weight", torch.from_numpy(coo.data), persistent=False)
            self.conv = LGConv(normalize=False)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-averaged embeddings ``(users, items)``."""
        x = torch.cat([self.user, self.item], 0)
        acc = x
        for _ in range(self.layers):
            if self.backend == "sparse":
                x = torch.sparse.mm(self.adj, x)
            else:
                x = self.conv(x, self.edge_index, self.edge_weight)
            acc = acc + x
        acc = acc / (self.layers + 1)
        return acc[: self.n_users], acc[self.n_users:]

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, reg: float) -> torch.Tensor:
        eu, ei = self.propagate()
        u = (eu if self.social is None else self.social.forward_all(eu))[users]
        return bpr_loss(u, ei[pos], ei[neg], self.user[users], self.item[pos], self.item[neg], reg)

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=lr)

    @torch.no_grad()
    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The propagated vectors that score: ``(users, items)``."""
        u, i = self.propagate()
        if self.social is not None:
            u = self.social.forward_all(u)
        return u.detach(), i.detach()

    def base_tables(self) -> dict[str, torch.Tensor]:
        return {"user_base": self.user.detach(), "item_base": self.item.detach()}
