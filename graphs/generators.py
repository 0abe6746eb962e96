"""Seeded, block-wise graph and interaction generators (pure numpy).

Every generator produces one *block* at a time from ``SeedSequence([seed, block])``, so a Spark
task can generate its own block and the union over blocks is the same whatever the cluster:
10⁸ edges never pass through one machine.

* :func:`rmat_block` — R-MAT (Chakrabarti et al., SDM 2004) with Graph500 parameters
  a=.57, b=.19, c=.19 (d = 1−a−b−c): each edge picks one quadrant per bit of the node id.
* :func:`planted_block` — a directed planted-community graph: nodes are split into communities
  of contiguous ids; out-degrees are power-law (Pareto, exponent ``gamma``); each edge stays in the
  source's community with probability ``1 − mu`` (else goes to a uniformly chosen node's community)
  and picks its target by a power-law *attractiveness* of its rank there (in-degrees power-law too).
* :func:`interactions_block` — users are graph nodes; items have a Zipf popularity and a home
  community; a user's items come from its own community with probability ``p_in``.

>>> s, d = rmat_block(scale=10, n_edges=1000, seed=1, block=0)
>>> int(s.max()) < 1024 and len(s) == 1000
True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRAPH500 = (0.57, 0.19, 0.19)


def _rng(seed: int, block: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, block, stream]))


def rmat_block(scale: int, n_edges: int, seed: int, block: int = 0,
               abc: tuple[float, float, float] = GRAPH500) -> tuple[np.ndarray, np.ndarray]:
    """``n_edges`` R-MAT edges over ``2**scale`` nodes; vectorised over edges, one pass per bit."""
    a, b, c = abc
    if not (0 < a and 0 <= b and 0 <= c and a + b + c < 1):
        raise ValueError(f"R-MAT probabilities must be positive and sum below 1, got {abc}")
    rng = _rng(seed, block)
    src = np.zeros(n_edges, np.int64)
    dst = np.zeros(n_edges, np.int64)
    for bit in range(scale):
        u = rng.random(n_edges, dtype=np.float32)
        right = (u >= a) & (u < a + b) | (u >= a + b + c)   # quadrants b, d: dst bit set
        down = u >= a + b                                    # quadrants c, d: src bit set
        src |= down.astype(np.int64) << bit
        dst |= right.astype(np.int64) << bit
    # scramble ids so high-degree nodes are not all small ids (Graph500 does the same)
    perm = np.random.default_rng(seed).permutation(1 << scale)
    return perm[src], perm[dst]


@dataclass(frozen=True)
class PlantedConfig:
    """Parameters of the planted-community digraph (see :func:`planted_block`)."""

    nodes: int = 10_000
    communities: int = 10
    avg_degree: float = 10.0
    mu: float = 0.2          # fraction of edges leaving the community
    gamma: float = 2.5       # power-law exponent of out-degree and attractiveness
    seed: int = 0

    def __post_init__(self):
        if self.nodes < 2 or not (1 <= self.communities <= self.nodes):
            raise ValueError(f"need nodes >= 2 and 1 <= communities <= nodes, got {self.nodes}, {self.communities}")
        if not 0 <= self.mu <= 1:
            raise ValueError(f"mu must be in [0, 1], got {self.mu}")
        if self.avg_degree <= 0 or self.gamma <= 1:
            raise ValueError("avg_degree must be > 0 and gamma > 1")

    def community_bounds(self) -> np.ndarray:
        """Start id of each community (contiguous id ranges) plus the end: length C+1."""
        return np.linspace(0, self.nodes, self.communities + 1).astype(np.int64)

    def labels(self, ids: np.ndarray) -> np.ndarray:
        return (np.searchsorted(self.community_bounds(), ids, side="right") - 1).astype(np.int32)

    @property
    def alpha(self) -> float:
        """Attractiveness exponent: rank-k weight (k+1)^-alpha gives a power-law with ``gamma``."""
        return 1.0 / (self.gamma - 1.0)


def _powerlaw_rank(u: np.ndarray, length: np.ndarray, alpha: float) -> np.ndarray:
    """Inverse CDF of the continuous weight x^-alpha on [1, L+1): a rank in ``0..L-1`` (O(1) memory)."""
    a1 = 1.0 - alpha
    if abs(a1) < 1e-9:
        x = np.exp(u * np.log(length + 1.0))
    else:
        x = (1.0 + u * ((length + 1.0) ** a1 - 1.0)) ** (1.0 / a1)
    return np.minimum(np.floor(x).astype(np.int64) - 1, length - 1)


def planted_block(cfg: PlantedConfig, lo: int, hi: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-edges of source nodes ``lo..hi-1``; duplicates and self-loops are left to ingest.

    Targets are drawn by rank inside a community (rank k has weight (k+1)^-alpha), so no array
    of size ``nodes`` is ever built: memory is O(block).
    """
    rng = _rng(cfg.seed, block)
    shape = cfg.gamma - 1.0
    out_w = np.minimum(rng.pareto(shape, hi - lo) + 1.0, np.sqrt(cfg.nodes) * 4)
    deg = rng.poisson(out_w * cfg.avg_degree * (shape - 1) / shape if shape > 1 else out_w * cfg.avg_degree / 3)
    src = np.repeat(np.arange(lo, hi, dtype=np.int64), deg)
    bounds = cfg.community_bounds()
    comm = cfg.labels(src)
    outside = rng.random(len(src)) < cfg.mu
    comm = np.where(outside, cfg.labels(rng.integers(0, cfg.nodes, len(src))), comm)
    start, length = bounds[comm], bounds[comm + 1] - bounds[comm]
    dst = start + _powerlaw_rank(rng.random(len(src)), length, cfg.alpha)
    return src, dst


@dataclass(frozen=True)
class InteractionConfig:
    """User–item interactions following the planted communities."""

    items: int = 5_000
    avg_items_per_user: float = 20.0
    p_in: float = 0.8        # probability an interaction is with an item of the user's community
    zipf: float = 1.1        # item popularity exponent
    seed: int = 0

    def __post_init__(self):
        if self.items < 1 or self.avg_items_per_user <= 0 or not 0 <= self.p_in <= 1:
            raise ValueError("need items >= 1, avg_items_per_user > 0, 0 <= p_in <= 1")


def interactions_block(graph: PlantedConfig, cfg: InteractionConfig, lo: int, hi: int,
                       block: int) -> tuple[np.ndarray, np.ndarray]:
    """Interactions ``(user, item)`` of users ``lo..hi-1`` (deduplicated within the block)."""
    rng = _rng(cfg.seed, block, 7)
    pop = 1.0 / np.arange(1, cfg.items + 1) ** cfg.zipf
    pop = pop[np.random.default_rng(cfg.seed).permutation(cfg.items)]
    home = np.arange(cfg.items) % graph.communities              # item i belongs to community i % C
    order = np.argsort(home, kind="stable")                         # items grouped by community
    cum = np.concatenate([[0.0], np.cumsum(pop[order])])
    ib = np.searchsorted(home[order], np.arange(graph.communities + 1))
    n = rng.geometric(1.0 / cfg.avg_items_per_user, hi - lo)
    user = np.repeat(np.arange(lo, hi, dtype=np.int64), n)
    comm = graph.labels(user)
    inside = rng.random(len(user)) < cfg.p_in
    start = np.where(inside, ib[comm], 0)
    end = np.where(inside, ib[comm + 1], cfg.items)
    target = cum[start] + rng.random(len(user)) * (cum[end] - cum[start])
    pos = np.clip(np.searchsorted(cum, target, side="right") - 1, start, np.maximum(end - 1, start))
    item = order[pos].astype(np.int64)
    key = np.unique(user * cfg.items + item)
    return key // cfg.items, key % cfg.items
