"""Directed sampling baselines: random node, random edge, random walk, forest fire.

Written here for directed graphs (littleballoffur refuses them). Each takes a simple digraph
``src -> dst`` on ``n_nodes`` nodes and a target node count ``n`` and returns a :class:`Sample`
with dense new ids.

* **random-node** (induced): ``n`` nodes uniformly, all edges among them.
* **random-edge**: edges uniformly without replacement until their endpoints number ``n``;
  the sampled edges are the sample (Leskovec & Faloutsos, KDD 2006, "RE").
* **random-walk** (induced): a walk along out-edges restarting at its start node with probability
  0.15 per step, jumping to a fresh random node at sinks or after 1000 steps without a new
  node; the visited set's induced subgraph (Leskovec & Faloutsos 2006, "RW").
* **forest-fire** (induced): from a random seed, burn ``Geom`` many unburnt out-neighbours (mean
  ``p_f / (1 - p_f)``, ``p_f = 0.7``) and in-neighbours (mean for ``r_b p_f``, ``r_b = 0.3``),
  recursively; restart at a random unburnt node when the fire dies (Leskovec et al., KDD 2005).

>>> import numpy as np
>>> src, dst = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
>>> s = random_node(src, dst, 4, 4, np.random.default_rng(0))
>>> s.n_nodes, len(s.src)
(4, 4)
"""
from __future__ import annotations

from collections import deque
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


def _csr(src, dst, n_nodes):
    g = sp.csr_array((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n_nodes, n_nodes))
    return g.indptr, g.indices


def random_walk(src, dst, n_nodes: int, n: int, rng: np.random.Generator, restart: float = 0.15,
                stall_limit: int = 1000) -> Sample:
    """Induced subgraph of the nodes visited by a restarting random walk on out-edges."""
    indptr, indices = _csr(src, dst, n_nodes)
    visited = np.zeros(n_nodes, dtype=bool)
    order: list[int] = []
    start = cur = int(rng.integers(n_nodes))
    stall, batch, bi = 0, rng.random((4096, 2)), 0
    while len(order) < n:
        if not visited[cur]:
            visited[cur] = True
            order.append(cur)
            stall = 0
        else:
            stall += 1
        if bi == batch.shape[0]:
            batch, bi = rng.random((4096, 2)), 0
        u, v = batch[bi]
        bi += 1
        deg = indptr[cur + 1] - indptr[cur]
        if deg == 0 or stall > stall_limit:
            unvisited = np.flatnonzero(~visited)
            start = cur = int(unvisited[int(v * unvisited.size)])
            stall = 0
        elif u < restart:
            cur = start
        else:
            cur = int(indices[indptr[cur] + int(v * deg)])
    return induced(src, dst, n_nodes, np.sort(np.asarray(order, dtype=np.int64)))


def forest_fire(src, dst, n_nodes: int, n: int, rng: np.random.Generator,
                p_forward: float = 0.7, r_backward: float = 0.3) -> Sample:
    """Induced subgraph of the nodes burnt by a directed forest fire."""
    out_ptr, out_idx = _csr(src, dst, n_nodes)
    in_ptr, in_idx = _csr(dst, src, n_nodes)
    burnt = np.zeros(n_nodes, dtype=bool)
    order: list[int] = []
    p_back = r_backward * p_forward
    while len(order) < n:
        seed = int(rng.choice(np.flatnonzero(~burnt)))
        burnt[seed] = True
        order.append(seed)
        queue = deque([seed])
        while queue and len(order) < n:
            v = queue.popleft()
            fresh_out = out_idx[out_ptr[v]:out_ptr[v + 1]]
            fresh_out = fresh_out[~burnt[fresh_out]]
            fresh_in = in_idx[in_ptr[v]:in_ptr[v + 1]]
            fresh_in = fresh_in[~burnt[fresh_in]]
            x = rng.geometric(1 - p_forward) - 1
            y = rng.geometric(1 - p_back) - 1
            pick = np.concatenate([rng.permutation(fresh_out)[:x], rng.permutation(fresh_in)[:y]])
            pick = np.unique(pick)[: n - len(order)]
            burnt[pick] = True
            order.extend(pick.tolist())
            queue.extend(pick.tolist())
    return induced(src, dst, n_nodes, np.sort(np.asarray(order, dtype=np.int64)))


BASELINES: dict[str, Callable[..., Sample]] = {
    "random-node": random_node,
    "random-edge": random_edge,
    "random-walk": random_walk,
    "forest-fire": forest_fire,
}
