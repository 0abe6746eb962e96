"""The recommender contract: ``fit(interactions)`` then ``recommend(user_ids, k)``.

Every recommender (popularity, MF-BPR, LightGCN, exported vectors) implements :class:`Recommender`;
one contract test suite runs against all of them. Ids in ``recommend`` are the *external* ids of
the data (``Interactions.user_ids`` / ``item_ids``); training items are excluded by default.

>>> import numpy as np
>>> from recsys.data import Interactions
>>> data = Interactions.from_pairs(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
>>> rec = PopularityRecommender().fit(data)
>>> rec.recommend(np.array([2]), k=2).items.tolist()
[[1, 0]]
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recsys.data import Interactions


@dataclass(frozen=True)
class Recommendations:
    """Top-k lists: ``items[r]`` (external ids, best first) and their ``scores`` for ``users[r]``."""

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        if self.items.shape != self.scores.shape or self.items.shape[0] != len(self.users):
            raise ValueError("users/items/scores shapes disagree")


class Recommender(ABC):
    """Base class: subclasses implement :meth:`fit` and :meth:`score` (internal indices)."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    seen: sp.csr_matrix | None = None

    @abstractmethod
    def fit(self, data: Interactions) -> "Recommender":
        """Train on ``data.train``; return ``self``."""

    @abstractmethod
    def score(self, users: np.ndarray) -> torch.Tensor:
        """Scores ``(len(users), n_items)`` for internal user indices."""

    def _set_ids(self, data: Interactions) -> None:
        self.user_ids, self.item_ids, self.seen = data.user_ids, data.item_ids, data.train

    def user_index(self, user_ids: np.ndarray) -> np.ndarray:
        """Internal indices of external ``user_ids`` (KeyError-style ValueError for unknown ids)."""
        user_ids = np.asarray(user_ids, dtype=np.int64)
        order = np.argsort(self.user_ids)
        pos = np.searchsorted(self.user_ids, user_ids, sorter=order)
        pos = np.minimum(pos, len(order) - 1)
        idx = order[pos]
        bad = self.user_ids[idx] != user_ids
        if bad.any():
            raise ValueError(f"unknown user ids: {user_ids[bad][:10].tolist()}")
        return idx

    def recommend(self, user_ids: np.ndarray, k: int = 20, exclude_seen: bool = True,
                  batch_size: int = 4096) -> Recommendations:
        """Top-``k`` items (external ids) per external user id, seen items excluded."""
        if k < 1:
            raise ValueError("k must be >= 1")
        idx = self.user_index(user_ids)
        k = min(k, len(self.item_ids))
        items, scores = [], []
        for s in range(0, len(idx), batch_size):
            rows = idx[s:s + batch_size]
            sc = self.score(rows).float().cpu()
            if exclude_seen and self.seen is not None:
                sub = self.seen[rows]
                r = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
                sc[torch.from_numpy(r), torch.from_numpy(sub.indices.astype(np.int64))] = -torch.inf
            top = torch.topk(sc, k, dim=1)
            items.append(self.item_ids[top.indices.numpy()])
            scores.append(top.values.numpy())
        if not items:
            return Recommendations(np.asarray(user_ids, dtype=np.int64), np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
        return Recommendations(np.asarray(user_ids, dtype=np.int64), np.concatenate(items), np.concatenate(scores))


class PopularityRecommender(Recommender):
    """Most-popular items (training counts): the floor every trained model must beat."""

    def fit(self, data: Interactions) -> "PopularityRecommender":
        self._set_ids(data)
        self.pop = torch.from_numpy(np.asarray(data.train.sum(axis=0)).ravel().astype(np.float32))
        return self

    def score(self, users: np.ndarray) -> torch.Tensor:
        return self.pop.repeat(len(users), 1)


class EmbeddingRecommender(Recommender):
    """Dot-product scoring from fixed user/item vectors (e.g. read back from an export)."""

    def __init__(self, user_vectors: torch.Tensor, item_vectors: torch.Tensor, user_ids: np.ndarray,
                 item_ids: np.ndarray, seen: sp.csr_matrix | None = None):
        if user_vectors.shape[1] != item_vectors.shape[1]:
            raise ValueError("user and item vectors differ in dimension")
        if len(user_ids) != user_vectors.shape[0] or len(item_ids) != item_vectors.shape[0]:
            raise ValueError("id arrays do not match the vector tables")
        self.U, self.V = user_vectors, item_vectors
        self.user_ids, self.item_ids, self.seen = np.asarray(user_ids), np.asarray(item_ids), seen

    def fit(self, data: Interactions) -> "EmbeddingRecommender":
        raise NotImplementedError("EmbeddingRecommender holds fixed vectors; train a BPRRecommender instead")

    def score(self, users: np.ndarray) -> torch.Tensor:
        return self.U[torch.from_numpy(np.asarray(users, dtype=np.int64)).to(self.U.device)] @ self.V.T
