"""ε-greedy over the same per-edge statistics as Diag-LinUCB (Sutton & Barto, §2.2).

Exploit: rank by the ridge mean ``Σ_c w_uc · b_jc / d_jc`` (Diag-LinUCB with α = 0). Explore:
with probability ε a row (one request) is ranked uniformly at random instead. Sharing the
statistics isolates the exploration rule in comparisons with Diag-LinUCB.

>>> import numpy as np
>>> pol = EpsilonGreedy.from_edges([0, 0], [1, 2], epsilon=0.0, seed=0)
>>> _ = pol.update(np.array([[0]]), np.array([[1.0]]), np.array([2]), np.array([1.0]))
>>> pol.select(np.array([[0]]), np.array([[1.0]]), np.array([1, 2]), k=1).tolist()
[[1]]
"""
from __future__ import annotations

import numpy as np

from recsys.bandits.base import BanditPolicy, Scores
from recsys.bandits.diag_linucb import DiagLinUCB

__all__ = ["EpsilonGreedy"]


class EpsilonGreedy(BanditPolicy):
    """ε-greedy; ``epsilon`` in [0, 1] is the per-request exploration probability."""

    name = "egreedy"

    def __init__(self, keys: np.ndarray, lam: float = 1.0, epsilon: float = 0.1, seed: int | None = None):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"EpsilonGreedy.epsilon must be in [0, 1], got {epsilon}")
        keys = np.asarray(keys, dtype=np.int64)
        self.stats = DiagLinUCB(keys, np.full(keys.size, lam), np.zeros(keys.size), lam=lam, alpha=0.0)
        self.epsilon = float(epsilon)
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_edges(cls, cluster, item, lam: float = 1.0, epsilon: float = 0.1, seed: int | None = None) -> "EpsilonGreedy":
        base = DiagLinUCB.from_edges(cluster, item, lam=lam)
        return cls(base.keys, lam=lam, epsilon=epsilon, seed=seed)

    def score(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray) -> Scores:
        s = self.stats.score(clusters, weights, items)
        explore = self.rng.random(s.score.shape[0]) < self.epsilon
        noise = self.rng.random(s.score.shape)
        score = np.where(np.isinf(s.score), -np.inf, np.where(explore[:, None], noise, s.mean))
        return Scores(s.mean, np.zeros_like(s.mean), score)

    def update(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> int:
        return self.stats.update(clusters, weights, items, rewards)

    def memory_bytes(self) -> int:
        return self.stats.memory_bytes()
