"""Directed sampling baselines: random node, random edge, random walk, forest fire.

Written here for directed graphs (littleballoffur refuses them). Each takes a simple digraph
``src -> dst`` on ``n_nodes`` nodes and a target node count ``n`` and returns a :class:`Sample`
with dense new ids.

* **random-node** (induced): ``n`` nodes uniformly, all edges among them.
* **random-edge**: edges uniformly without replacement until their endpoints number ``n``;
  the sampled edges are the sample (Leskovec & Faloutsos, KDD 2006, "RE").
* **random-walk** (induced): ``n_walkers(n)`` walkers (about one per 50 target nodes) start at
  uniform random nodes and step together along out-edges, returning to their start with
  probability 0.15 per step and jumping to a fresh random node at sinks and every 100 steps; the
  induced subgraph of the first ``n`` distinct nodes visited (Leskovec & Faloutsos 2006, "RW", run
  as many independent walks so that it distributes: one join per step).
* **forest-fire** (induced): ``n_fires(n)`` fires (one per 500 target nodes) from random seeds burn
  in synchronous rounds: a node caught in round ``t`` burns ``Geom`` many unburnt out-neighbours
  (mean ``p_f / (1 - p_f)``, ``p_f = 0.7``) and in-neighbours (mean for ``r_b p_f``, ``r_b = 0.3``)
  in round ``t + 1``; new fires ignite when all are out (Leskovec et al., KDD 2005, level-synchronous).

Random-walk and forest-fire draw all randomness from :func:`hash_uniform` (a pure function of the
seed and node/walker/step ids), so the distributed versions in :mod:`graphs.spark_walks` give the
same samples as these numpy versions, which the benchmark and the tests use.

>>> import numpy as np
>>> src, dst = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
>>> s = random_node(src, dst, 4, 4, np.random.default_rng(0))
>>> s.n_nodes, len(s.src)
(4, 4)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Sample:
    """A sampled digraph on ids ``0..n_nodes-1``; ``nodes`` holds the original id of each new id."""

    src: np.ndarray
    dst: np.ndarray
    n_nodes: int
    nodes: np.ndarray


def induced(src: np.ndarray, dst: np.ndarray, n_nodes: int, nodes: np.ndarray) -> Sample:
    """The subgraph induced by ``nodes`` (original ids), relabelled to ``0..len(nodes)-1``."""
    nodes = np.asarray(nodes, dtype=np.int64)
    new = np.full(n_nodes, -1, dtype=np.int64)
    new[nodes] = np.arange(nodes.size)
    keep = (new[src] >= 0) & (new[dst] >= 0)
    return Sample(new[src[keep]], new[dst[keep]], int(nodes.size), nodes)


def random_node(src, dst, n_nodes: int, n: int, rng: np.random.Generator) -> Sample:
    """Induced subgraph on ``n`` uniformly chosen nodes."""
    return induced(src, dst, n_nodes, np.sort(rng.choice(n_nodes, size=n, replace=False)))


def random_edge(src, dst, n_nodes: int, n: int, rng: np.random.Generator) -> Sample:
    """Uniform edges (no replacement) until their endpoints number ``n`` (or ``n + 1``)."""
    order = rng.permutation(len(src))
    seq = np.stack([src[order], dst[order]], axis=1).ravel()
    _, first = np.unique(seq, return_index=True)
    is_new = np.zeros(seq.size, dtype=np.int64)
    is_new[first] = 1
    seen = np.cumsum(is_new)[1::2]  # distinct endpoints after each edge
    k = int(np.searchsorted(seen, n)) + 1
    k = min(k, len(src))
    s, d = src[order[:k]], dst[order[:k]]
    nodes, inv = np.unique(np.concatenate([s, d]), return_inverse=True)
    return Sample(inv[:k].astype(np.int64), inv[k:].astype(np.int64), int(nodes.size), nodes)


# --- counter-based randomness: the same numbers on the driver, on any executor, in any order -------

_GOLD = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on ``uint64`` arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_uniform(seed: int, stream: int, *keys) -> np.ndarray:
    """Uniforms in ``[0, 1)``, a pure function of ``(seed, stream, keys...)`` (integer arrays, broadcast).

    Samplers draw every random number this way, keyed by walker/step or node ids, so the
    distributed versions in :mod:`graphs.spark_walks` reproduce these numpy versions exactly.
    """
    arrs = [np.atleast_1d(np.asarray(k, dtype=np.int64)).astype(np.uint64) for k in keys]
    shape = np.broadcast_shapes(*(a.shape for a in arrs)) if arrs else (1,)
    h = np.full(shape, ((seed * _GOLD) ^ (stream * 0xD1B54A32D192ED03)) & _MASK, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for a in arrs:
            h = _mix(h + np.uint64(_GOLD) * (a + np.uint64(1)))
        return (_mix(h) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def hash_seed(rng: np.random.Generator) -> int:
    """The integer seed of the counter-based draws, taken from the caller's generator."""
    return int(rng.integers(1 << 62))


def _csr(src, dst, n_nodes):
    """``indptr, indices`` of the adjacency (row = source; targets sorted inside a row)."""
    g = sp.csr_array((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n_nodes, n_nodes))
    g.sort_indices()
    return g.indptr.astype(np.int64), g.indices.astype(np.int64)


def _segments(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row in ``rows``: the positions of its entries in ``indices``; returns ``(row index, position)``."""
    lo, cnt = indptr[rows], indptr[rows + 1] - indptr[rows]
    owner = np.repeat(np.arange(rows.size), cnt)
    pos = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
    return owner, pos


# --- random walk: many independent walkers advanced in lock-step -------------------------------------

def n_walkers(n: int, per_walker: int = 50) -> int:
    """Walkers for a target of ``n`` nodes: about ``per_walker`` new nodes each."""
    return max(1, -(-n // per_walker))


def walk_decide(seed: int, step: int, w: np.ndarray, start: np.ndarray, cur: np.ndarray, deg: np.ndarray,
                n_nodes: int, restart: float = 0.15, life: int = 100):
    """One step of every walker ``w`` at ``cur`` (out-degree ``deg``): ``(start, cur, k)``.

    A walker jumps to a uniformly random node (which becomes its start) at step 0, every ``life``
    steps, and at sinks; otherwise it returns to its start with probability ``restart`` or moves to
    its ``k``-th out-neighbour (``k`` uniform in ``[0, deg)``; ``cur = -1`` marks those moves: the
    caller looks the neighbour up).
    """
    w = np.asarray(w, dtype=np.int64)
    jump = np.full(w.shape, step % life == 0) | (deg == 0)
    back = ~jump & (hash_uniform(seed, 2, w, step) < restart)
    move = ~(jump | back)
    j = (hash_uniform(seed, 1, w, step) * n_nodes).astype(np.int64)
    k = np.where(move, (hash_uniform(seed, 3, w, step) * deg).astype(np.int64), -1)
    return np.where(jump, j, start), np.where(jump, j, np.where(back, start, -1)), k


def random_walk(src, dst, n_nodes: int, n: int, rng: np.random.Generator, restart: float = 0.15,
                life: int = 100, per_walker: int = 50) -> Sample:
    """Induced subgraph of the first ``n`` nodes visited by restarting random walkers on out-edges.

    ``n_walkers(n)`` walkers start at uniform random nodes and step together; a node's visit key
    is ``step * walkers + walker`` and the sample is the ``n`` nodes with the smallest first keys.
    """
    seed = hash_seed(rng)
    indptr, indices = _csr(src, dst, n_nodes)
    outdeg = np.diff(indptr)
    k = n_walkers(n, per_walker)
    w = np.arange(k, dtype=np.int64)
    start = cur = np.zeros(k, dtype=np.int64)
    seen = np.zeros(n_nodes, dtype=bool)
    order: list[np.ndarray] = []
    count, step = 0, 0
    while count < n:
        start, nxt, kk = walk_decide(seed, step, w, start, cur, outdeg[cur], n_nodes, restart, life)
        mv = kk >= 0
        nxt[mv] = indices[indptr[cur[mv]] + kk[mv]]
        cur = nxt
        _, first = np.unique(cur, return_index=True)
        new = cur[np.sort(first)]  # in walker order
        new = new[~seen[new]][: n - count]
        seen[new] = True
        order.append(new)
        count += new.size
        step += 1
    return induced(src, dst, n_nodes, np.sort(np.concatenate(order)))


# --- forest fire: fires burn in synchronous rounds ------------------------------------------------------

def n_fires(n: int, per_fire: int = 500) -> int:
    """Simultaneous fires for a target of ``n`` nodes."""
    return max(1, -(-n // per_fire))


def burn_counts(seed: int, v: np.ndarray, p_forward: float = 0.7, r_backward: float = 0.3):
    """Out- and in-links node ``v`` burns: geometric, means ``p/(1-p)`` for ``p = p_f`` and ``r_b p_f``."""
    x = np.floor(np.log1p(-hash_uniform(seed, 11, v)) / np.log(p_forward)).astype(np.int64)
    y = np.floor(np.log1p(-hash_uniform(seed, 12, v)) / np.log(r_backward * p_forward)).astype(np.int64)
    return x, y


def fire_seeds(seed: int, restart: int, fires: int, n_nodes: int) -> np.ndarray:
    """Uniform random seed nodes of the ``restart``-th ignition (may repeat or be burnt already)."""
    return (hash_uniform(seed, 10, restart, np.arange(fires)) * n_nodes).astype(np.int64)


def _spread(seed: int, stream: int, v: np.ndarray, u: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Of candidate links ``v -> u`` keep, per ``v``, the ``budget[v]`` with the smallest keys."""
    key = hash_uniform(seed, stream, v, u)
    o = np.lexsort((u, key, v))
    vs = v[o]
    rank = np.arange(vs.size) - np.searchsorted(vs, vs, side="left")
    return u[o][rank < budget[o]]


def forest_fire(src, dst, n_nodes: int, n: int, rng: np.random.Generator,
                p_forward: float = 0.7, r_backward: float = 0.3, per_fire: int = 500) -> Sample:
    """Induced subgraph of the first ``n`` nodes burnt by directed forest fires in synchronous rounds.

    ``n_fires(n)`` fires ignite at uniform random nodes. In each round every node that caught fire in
    the previous round burns ``x`` of its unburnt out-neighbours and ``y`` of its unburnt
    in-neighbours (``x, y`` from :func:`burn_counts`, neighbours in a random order); when all fires
    are out, new ones ignite. Nodes are ordered by round, then by a random key inside a round.
    """
    seed = hash_seed(rng)
    out_ptr, out_idx = _csr(src, dst, n_nodes)
    in_ptr, in_idx = _csr(dst, src, n_nodes)
    k = n_fires(n, per_fire)
    burnt = np.zeros(n_nodes, dtype=bool)
    order: list[np.ndarray] = []
    frontier = np.zeros(0, dtype=np.int64)
    count, ignitions = 0, 0
    while count < n:
        if frontier.size == 0:
            new = fire_seeds(seed, ignitions, k, n_nodes)
            ignitions += 1
        else:
            x, y = burn_counts(seed, frontier, p_forward, r_backward)
            picked = []
            for ptr, idx, budget, stream in ((out_ptr, out_idx, x, 13), (in_ptr, in_idx, y, 14)):
                owner, pos = _segments(ptr, frontier)
                u = idx[pos]
                keep = ~burnt[u]
                picked.append(_spread(seed, stream, frontier[owner[keep]], u[keep], budget[owner[keep]]))
            new = np.concatenate(picked)
        new = np.unique(new)
        new = new[~burnt[new]]
        new = new[np.argsort(hash_uniform(seed, 15, new), kind="stable")][: n - count]
        burnt[new] = True
        order.append(new)
        count += new.size
        frontier = new
    return induced(src, dst, n_nodes, np.sort(np.concatenate(order)))


BASELINES: dict[str, Callable[..., Sample]] = {
    "random-node": random_node,
    "random-edge": random_edge,
    "random-walk": random_walk,
    "forest-fire": forest_fire,
}
