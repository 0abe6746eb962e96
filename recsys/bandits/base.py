"""The ``BanditPolicy`` contract: score candidates for sparse cluster contexts, learn from rewards.

A context is a user's top-K clusters and weights ``w_u`` (a sparse C-dimensional vector), given as
two ``(n, K)`` arrays — ``clusters`` (int, -1 pads) and ``weights`` (float). Candidates are an
``(n, M)`` (or broadcast ``(M,)``) array of item ids, -1 pads. Every policy returns
:class:`Scores` ``(mean, bonus, score)`` of shape ``(n, M)`` — padded slots score ``-inf`` — and
learns from events ``(context, item, reward)`` given as ``(m, K)``, ``(m, K)``, ``(m,)``, ``(m,)``
arrays. Everything is vectorised over candidates and events (no per-row Python loops).

>>> import numpy as np
>>> from recsys.bandits.random_policy import RandomPolicy
>>> pol = RandomPolicy(seed=0)
>>> s = pol.score(np.array([[0, 1, -1]]), np.array([[0.6, 0.4, 0.0]]), np.array([5, 6, -1]))
>>> s.score.shape, bool(np.isinf(s.score[0, 2]))
((1, 3), True)
>>> pol.select(np.array([[0, 1, -1]]), np.array([[0.6, 0.4, 0.0]]), np.array([5, 6, -1]), k=2).shape
(1, 2)
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

__all__ = ["BanditPolicy", "Scores", "as_context", "as_candidates", "as_events"]


@dataclass(frozen=True, eq=False)
class Scores:
    """Per-candidate scores, each ``(n, M)``: ``score = mean + bonus`` (``-inf`` on padding)."""

    mean: np.ndarray
    bonus: np.ndarray
    score: np.ndarray


def as_context(clusters: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise a ``(n, K)`` context; padded slots (cluster < 0) get weight 0."""
    c = np.atleast_2d(np.asarray(clusters, dtype=np.int64))
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if c.shape != w.shape:
        raise ValueError(f"context clusters {c.shape} and weights {w.shape} differ in shape")
    if not np.isfinite(w).all():
        raise ValueError("context weights must be finite")
    return c, np.where(c >= 0, w, 0.0)


def as_candidates(items: np.ndarray, n: int) -> np.ndarray:
    """Candidates as ``(n, M)`` int64 (a ``(M,)`` array is shared by all rows)."""
    it = np.asarray(items, dtype=np.int64)
    if it.ndim == 1:
        it = np.broadcast_to(it, (n, it.size))
    if it.ndim != 2 or it.shape[0] != n:
        raise ValueError(f"candidates must be (M,) or ({n}, M), got {it.shape}")
    return it


def as_events(clusters: np.ndarray, weights: np.ndarray, items: np.ndarray,
              rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate an event batch: ``(m, K)`` context, ``(m,)`` items and finite ``(m,)`` rewards."""
    c, w = as_context(clusters, weights)
    it = np.asarray(items, dtype=np.int64).ravel()
    r = np.asarray(rewards, dtype=np.float64).ravel()
    if not (c.shape[0] == it.size == r.size):
        raise ValueError(f"events: {c.shape[0]} contexts, {it.size} items, {r.size} rewards")
    if not np.isfinite(r).all():
        raise ValueError("rewards must be finite (NaN/inf rejected)")
    return c, w, it, r


class BanditPolicy(ABC):
    """Score candidates for contexts and update from rewarded events."""

    name: str = "policy"

    @abstractmethod
    def score(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray) -> Scores:
        """Scores of ``items`` (``(n, M)`` or ``(M,)``) for the contexts ``(n, K)``."""

    @abstractmethod
    def update(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> int:
        """Learn from ``m`` events; returns how many were applied."""

    @abstractmethod
    def memory_bytes(self) -> int:
        """Bytes held by the learned statistics."""

    def select(self, clusters: np.ndarray, weights: np.ndarray, items: np.ndarray, k: int,
               rng: np.random.Generator | None = None) -> np.ndarray:
        """Column indices ``(n, k)`` of the top-``k`` candidates per row (random tie-break).

        Rows with fewer than ``k`` real candidates return padded positions last; callers drop
        positions whose item is -1.
        """
        s = self.score(clusters, weights, items).score
        k = min(int(k), s.shape[1])
        if k <= 0:
            return np.zeros((s.shape[0], 0), dtype=np.int64)
        rng = rng or np.random.default_rng()
        # stable random tie-break: tiny noise below any meaningful score difference
        noisy = np.where(np.isfinite(s), s + rng.random(s.shape) * 1e-9, -np.inf)
        part = np.argpartition(-noisy, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(noisy, part, axis=1), axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1)


def padded_scores(mean: np.ndarray, bonus: np.ndarray, items: np.ndarray) -> Scores:
    """Assemble :class:`Scores`, putting ``-inf`` where the candidate is padding (item < 0)."""
    pad = items < 0
    score = np.where(pad, -np.inf, mean + bonus)
    return Scores(np.where(pad, 0.0, mean), np.where(pad, 0.0, bonus), score)
