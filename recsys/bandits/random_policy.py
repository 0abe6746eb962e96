"""Uniformly random ranking: the floor every learning policy must clear.

Each candidate gets an independent ``U(0, 1)`` score (mean and bonus are reported as 0 and the
score); updates are accepted and ignored.

>>> import numpy as np
>>> pol = RandomPolicy(seed=1)
>>> pol.update(np.array([[0]]), np.array([[1.0]]), np.array([3]), np.array([1.0]))
0
>>> pol.memory_bytes()
0
"""
from __future__ import annotations

import numpy as np

from recsys.bandits.base import BanditPolicy, Scores, as_candidates, as_context, as_events, padded_scores

__all__ = ["RandomPolicy"]


class RandomPolicy(BanditPolicy):
    """Random scores in ``[0, 1)``; learns nothing."""

    name = "random"

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def score(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray) -> Scores:
        c, _ = as_context(clusters, weights)
        it = as_candidates(items, c.shape[0])
        return padded_scores(np.zeros(it.shape), self.rng.random(it.shape), it)

    def update(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> int:
        as_events(clusters, weights, items, rewards)
        return 0

    def memory_bytes(self) -> int:
        return 0
