"""Which generated users have friends, interactions, both or neither: a seeded split by user id.

The demo's users are the planted graph's nodes, and every node gets generated interactions. To give
the serving paths of the scoring service real traffic, a seeded share of users is *social-only*
(their interactions are withheld from the observed data: friends, no interactions — served from
their friends' vectors) and another share is *isolated* (neither edges nor observed interactions —
unknown to the system, served the popular items). Everyone else has both (served personally).

The split is a pure function of ``(user id, seed)`` (a SplitMix64 hash mapped to ``[0, 1)``), so
a block of users, a Spark partition or the whole population give the same answer:
:mod:`jobs.demo.inputs` (numpy, one process) and :mod:`jobs.generate` (Spark, block by block) agree.

>>> kinds = user_kind(np.arange(10_000), social_only=0.1, isolated=0.05, seed=0)
>>> [round(float(np.mean(kinds == k)), 2) for k in (BOTH, SOCIAL, ISOLATED)]
[0.85, 0.1, 0.05]
>>> bool((user_kind(np.arange(5, 10), 0.1, 0.05, 0) == kinds[5:10]).all())
True
"""
from __future__ import annotations

import numpy as np

BOTH, SOCIAL, ISOLATED = 0, 1, 2  # friends and interactions | friends only | neither
KIND_NAMES = {BOTH: "both", SOCIAL: "social", ISOLATED: "isolated"}
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def check_shares(social_only: float, isolated: float) -> None:
    """Both shares in ``[0, 1)`` and their sum below 1 (some users must have both)."""
    if not (0 <= social_only < 1 and 0 <= isolated < 1 and social_only + isolated < 1):
        raise ValueError(f"need 0 <= social-only, isolated and their sum < 1, got {social_only}, {isolated}")


def uniform(ids: np.ndarray, seed: int) -> np.ndarray:
    """A uniform ``[0, 1)`` value per id: SplitMix64 of ``id + (seed + 1) · golden``."""
    with np.errstate(over="ignore"):
        z = np.asarray(ids, dtype=np.int64).astype(np.uint64) + np.uint64(seed + 1) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def user_kind(ids: np.ndarray, social_only: float, isolated: float, seed: int) -> np.ndarray:
    """:data:`BOTH`, :data:`SOCIAL` or :data:`ISOLATED` per user id (int8)."""
    check_shares(social_only, isolated)
    u = uniform(ids, seed)
    return np.where(u < isolated, ISOLATED, np.where(u < isolated + social_only, SOCIAL, BOTH)).astype(np.int8)
