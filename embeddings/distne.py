"""DistNE-style recursive-partition embedding (Lin, KDD 2021, arXiv 2106.10620) — the shared steps and a
single-process reference of the pipeline that :mod:`embeddings.spark` runs on Spark.

Levels (our design, measured in benchmarks/README.md ``## embedding``; see docs/algorithms.md §1):

* **Coarsening** — size-capped label propagation (:func:`embeddings.partition.label_propagation`),
  repeated on the quotient graph until at most ``B = M − max_part_nodes`` clusters remain.
* **Top level** — ProNE on the quotient graph ``Q`` (≤ B nodes) gives the global frame ``Z``; the
  clusters are split into parts of ≤ ``max_part_nodes`` nodes by recursive bisection of ``Z``.
* **Part level** — ProNE on every ``H_i`` (the part at full resolution + the rest of the graph
  contracted into its clusters, ≤ M nodes), mapped into ``Z``'s frame on the shared super-nodes.
* **Fusion by propagation** — ProNE's spectral filter over the whole graph
  (:mod:`embeddings.fusion`), ``2(order−1)+1`` neighbour exchanges; ``order = 0`` skips it.

Invariant: every embedded subgraph has at most ``M`` nodes; the edges embedded over all subgraphs
and levels are reported as a multiple of ``|E|``.

>>> from embeddings.partition import label_propagation
>>> import scipy.sparse as sp
>>> g = sp.random(200, 200, density=0.05, random_state=1); g = ((g + g.T) > 0).astype(np.float32).tocsr()
>>> model = DistNE(DistNEConfig(dim=16, max_subgraph_nodes=160, seed=0)).fit(g)
>>> model.transform().shape, model.stats_["parts"] >= 2, model.stats_["largest_subgraph_nodes"] <= 160
((200, 16), True, True)
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.sparse as sp

from embeddings import fusion, partition
from embeddings.prone import Embedder, ProNE, blas_threads, check_adjacency

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistNEConfig:
    """Parameters; ``max_subgraph_nodes`` (M) bounds every embedded subgraph.

    ``part_fraction`` of M goes to a part's own nodes, the rest to the contracted outside clusters.
    ``max_subgraph_nodes=None`` derives M from ``memory_mb`` and the graph (:meth:`for_graph`): a subgraph
    of ``n`` nodes and ``e`` edges costs ≈ ``NODE_BYTES·d/128·n + EDGE_BYTES·e`` in its task.
    ``order = 5`` Chebyshev terms for the per-subgraph ProNE: with θ = 0.5 the coefficients ``I_k(θ)`` for
    ``k ≥ 5`` are below 10⁻⁵ (I_5 = 8·10⁻⁶), so 5 terms equal the paper's 10 in float32 (BlogCatalog
    ProNE vectors differ by ≤ 8·10⁻⁴, median cosine 1.0; DistNE micro-F1 identical) at half the products.
    ``coarse_edges_per_cluster = k`` keeps, in the part subgraphs, only the quotient edges among the ``k``
    heaviest of one of their outside clusters (``None``: all; see benchmarks/README.md for its measurements);
    ``top_edges_per_cluster = k`` likewise for the quotient the top level embeds. Both cut the embedded edges on
    sparse graphs at ≤ 0.003 link-prediction AUC (R-MAT, Slashdot: K = 4 and 8 halve them) but cost BlogCatalog's
    classification, so both are off by default (docs/algorithms.md §1).
    ``max_subgraph_edges`` bounds the edges of every embedded subgraph: the top level keeps the heaviest
    quotient edges, a part subgraph its own edges and then the heaviest coarse edges that fit. :meth:`for_graph`
    sets it with M from the memory budget (the edges a task of M nodes holds, ``2.5 · |E|/|V| · M``): the
    coarse edges grow with the part count (R-MAT 2^18: 4.1 / 5.9 / 6.8 |E| embedded at 4 / 8 / 16 parts), and
    without it a part task could outgrow its budget. ``None`` (M from the flag): no bound.
    ``local_coarsen_edges``: a graph of at most this many edges is coarsened inside the top-level task
    (the same levels as on Spark, :meth:`coarsens_locally`); ``None``: half the task budget at
    ``COARSEN_EDGE_BYTES`` per edge; ``0``: always on Spark.
    ``top_threads``: threads of the ProNE in a stage of one task (the top level, or the whole graph when it fits
    one task), whose executor's other cores would otherwise idle; the part tasks use one thread each (one core
    per task). ``0``: on Spark the cores of one executor (:func:`embeddings.spark.executor_cores`), in process
    this machine's. ProNE's result does not depend on it.
    """

    dim: int = 128
    max_subgraph_nodes: int | None = None
    memory_mb: int = 2048
    part_fraction: float = 0.5
    lpa_rounds: int = 4
    refine_order: int = 2
    align: str = "lstsq"
    order: int = 5
    mu: float = 0.2
    theta: float = 0.5
    seed: int = 0
    coarse_edges_per_cluster: int | None = None
    top_edges_per_cluster: int | None = None
    max_subgraph_edges: int | None = None
    local_coarsen_edges: int | None = None
    top_threads: int = 0

    def __post_init__(self) -> None:
        for name in ("coarse_edges_per_cluster", "top_edges_per_cluster"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.local_coarsen_edges is not None and self.local_coarsen_edges < 0:
            raise ValueError(f"local_coarsen_edges must be >= 0, got {self.local_coarsen_edges}")
        if self.max_subgraph_edges is not None and self.max_subgraph_edges < 1:
            raise ValueError(f"max_subgraph_edges must be >= 1, got {self.max_subgraph_edges}")
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {self.dim}")
        if self.max_subgraph_nodes is not None and self.max_subgraph_nodes < 4:
            raise ValueError(f"max_subgraph_nodes must be >= 4, got {self.max_subgraph_nodes}")
        if not 0.1 <= self.part_fraction <= 0.9:
            raise ValueError(f"part_fraction must be in [0.1, 0.9], got {self.part_fraction}")
        if self.refine_order == 1 or self.refine_order < 0:
            raise ValueError(f"refine_order must be 0 (off) or >= 2, got {self.refine_order}")
        if self.align not in ("lstsq", "orthogonal"):
            raise ValueError(f"align must be 'lstsq' or 'orthogonal', got {self.align!r}")
        if self.lpa_rounds < 0:
            raise ValueError(f"lpa_rounds must be >= 0, got {self.lpa_rounds}")
        if self.top_threads < 0:
            raise ValueError(f"top_threads must be >= 0, got {self.top_threads}")

    # Task memory model (tracemalloc peaks of ProNE, d = 128, R-MAT with 13-88 edges per node, fit
    # 4,656 B/node + 48 B/edge within 2 %; tests/test_embeddings_jobs.py checks it bounds the peak):
    # per node ProNE's n × (d+10) float32/float64 blocks; per edge its CSR matrices (48 B) plus the
    # task's Arrow/pandas edge rows (src, dst, weight, both directions, one copy each: 80 B).
    NODE_BYTES = 4864
    EDGE_BYTES = 128
    # Part subgraphs carry their own edges plus the coarse edges among their outside clusters: 2.1-2.5x
    # the graph's edges per node (measured over all parts: Slashdot 13.0 vs 6.1, R-MAT 2^18 50 vs 22, 2^20 60 vs 24).
    SUBGRAPH_DENSITY = 2.5
    # Coarsening a whole graph in one task (label propagation + quotient, tracemalloc peak): 205-213 B per
    # undirected edge on Slashdot and R-MAT 2^16 / 2^18, plus the task's input rows.
    COARSEN_EDGE_BYTES = 256

    def coarsens_locally(self, n_edges: int) -> bool:
        """Whether a graph of ``n_edges`` undirected edges is coarsened in one task instead of on Spark: its
        label-propagation rounds then cost one pass each instead of a Spark job each (Slashdot: 1.1 s vs ≈ 12 s)."""
        limit = self.local_coarsen_edges
        if limit is None:
            limit = int(self.memory_mb * 2**20 / 2 / self.COARSEN_EDGE_BYTES)
        return n_edges <= limit

    def resolved_m(self, edges_per_node: float = 0.0) -> int:
        """M: the flag, or the memory budget over the per-node footprint of a subgraph whose nodes
        carry ``edges_per_node`` edges each in the whole graph (see :meth:`for_graph`)."""
        if self.max_subgraph_nodes is not None:
            return self.max_subgraph_nodes
        per_node = (self.NODE_BYTES * max(self.dim, 16) / 128
                    + self.EDGE_BYTES * self.SUBGRAPH_DENSITY * edges_per_node)
        return max(1000, int(self.memory_mb * 2**20 / per_node))

    def for_graph(self, n_nodes: int, n_edges: int) -> "DistNEConfig":
        """This config with M (and, unless set, the subgraph edge bound) fixed for a graph of ``n_nodes`` and
        ``n_edges`` undirected edges; an M from the flag is kept as it is."""
        if self.max_subgraph_nodes is not None:
            return self
        m = self.resolved_m(n_edges / max(n_nodes, 1))
        edges = (self.memory_mb * 2**20 - self.NODE_BYTES * max(self.dim, 16) / 128 * m) / self.EDGE_BYTES
        return replace(self, max_subgraph_nodes=m, max_subgraph_edges=self.max_subgraph_edges or max(1, int(edges)))

    def sizes(self, n: int) -> tuple[int, int]:
        """``(max_part_nodes, coarse_budget)`` for a graph of ``n`` nodes; M must be fixed (the flag or
        :meth:`for_graph`), since a node-only estimate would ignore the edges and overshoot the budget."""
        if self.max_subgraph_nodes is None:
            raise ValueError("M is not fixed: call for_graph(n_nodes, n_edges) first or set max_subgraph_nodes")
        m = self.max_subgraph_nodes
        part = max(1, int(self.part_fraction * m))
        return part, m - part

    def lpa_cap(self, n: int, budget: int) -> int:
        """Label-propagation cluster cap aiming at ≤ ``budget`` clusters (average size ≈ 0.55·cap, measured)."""
        return max(2, math.ceil(2.0 * n / max(budget, 1)))

    def prone(self, threads: int = 1) -> ProNE:
        return ProNE(self.dim, order=self.order, mu=self.mu, theta=self.theta, seed=self.seed, threads=threads)


def coarsen(adj: sp.csr_matrix, budget: int, cap_of, rounds: int,
            ids: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
    """Repeat capped label propagation on the quotient until ≤ ``budget`` clusters; return node→cluster.

    ``ids``: the global ids of ``adj``'s rows (used by the first level, see ``label_propagation``).
    """
    labels = np.arange(adj.shape[0], dtype=np.int64)
    q = adj
    counts: list[int] = []
    while q.shape[0] > budget:
        lab = partition.label_propagation(q, cap=cap_of(q.shape[0], budget), rounds=rounds,
                                          ids=ids if not counts else None)
        if lab.max() + 1 >= q.shape[0]:  # no progress (e.g. no edges): merge by id blocks
            lab = np.arange(q.shape[0]) // cap_of(q.shape[0], budget)
        labels = lab[labels]
        q, _ = partition.quotient_graph(q, lab)
        counts.append(int(q.shape[0]))
    return labels, counts


def top_level(q: sp.csr_matrix, sizes: np.ndarray, cfg: DistNEConfig,
              max_part_nodes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """ProNE of the quotient graph (the global frame ``Z``; with ``top_edges_per_cluster`` only the heaviest edges
    of each cluster, and at most the heaviest ``max_subgraph_edges``), the part of every cluster, and the number of
    edges embedded."""
    u = partition.keep_heaviest_edges(sp.triu(q, k=1).tocoo(), cfg.top_edges_per_cluster)
    z = cfg.prone(cfg.top_threads).fit_transform(bounded_quotient(u, cfg.max_subgraph_edges))
    return z, partition.bisect_parts(z, sizes, max_part_nodes), min(u.nnz, cfg.max_subgraph_edges or u.nnz)


def bounded_quotient(u: sp.coo_matrix, max_edges: int | None) -> sp.csr_matrix:
    """The symmetric quotient of the upper-triangle edges ``u`` with only its ``max_edges`` heaviest edges (all when
    ``None`` or fewer)."""
    if max_edges is None or u.nnz <= max_edges:
        keep = np.ones(u.nnz, bool)
    else:
        keep = partition.heaviest(u.data, max_edges)
    r, c, w = u.row[keep], u.col[keep], u.data[keep]
    return sp.coo_matrix((np.r_[w, w], (np.r_[r, c], np.r_[c, r])), shape=u.shape).tocsr()


def embed_part(sub: partition.PartSubgraph, z_proxies: np.ndarray, cfg: DistNEConfig) -> np.ndarray:
    """ProNE of ``H_i`` mapped into the global frame on its super-nodes; rows follow ``sub.nodes``."""
    e = cfg.prone().fit_transform(sub.adjacency)
    k = len(sub.nodes)
    if len(sub.proxies) == 0:
        return e[:k]
    r = fusion.align_map(e[k:], z_proxies, cfg.align)
    return (e[:k] @ r).astype(np.float32)


class DistNE(Embedder):
    """Single-process run of the DistNE pipeline (the Spark job runs the same steps distributed)."""

    def __init__(self, config: DistNEConfig | None = None) -> None:
        self.config = config or DistNEConfig()
        self.dim = self.config.dim
        self.embedding_: np.ndarray | None = None
        self.stats_: dict = {}

    def fit(self, adjacency: sp.spmatrix) -> "DistNE":
        with blas_threads(1):
            return self._fit(adjacency)

    def _fit(self, adjacency: sp.spmatrix) -> "DistNE":
        cfg, t0 = self.config, time.perf_counter()
        a = check_adjacency(adjacency)
        a = sp.csr_matrix(a.maximum(a.T))
        n = a.shape[0]
        active = np.flatnonzero(np.diff(a.indptr) > 0)
        g = a[active][:, active]
        cfg = cfg.for_graph(len(active), g.nnz // 2)
        max_part, budget = cfg.sizes(len(active))
        timings = {}
        if len(active) <= cfg.resolved_m():  # fits one task: plain ProNE, one level
            out = np.zeros((n, cfg.dim), np.float32)
            out[active] = cfg.prone(cfg.top_threads).fit_transform(g)
            self.embedding_ = out
            self.stats_ = {"parts": 1, "levels": 1, "largest_subgraph_nodes": len(active), "edge_cut_fraction": 0.0,
                           "embedded_edges_multiple": 1.0, "config": asdict(cfg),
                           "timings": {"parts_s": time.perf_counter() - t0}}
            return self
        labels, counts = coarsen(g, budget, cfg.lpa_cap, cfg.lpa_rounds, ids=active)
        q, sizes = partition.quotient_graph(g, labels)
        timings["partition_s"] = time.perf_counter() - t0
        z, cpart, top_edges = top_level(q, sizes, cfg, max_part)
        subs = partition.part_subgraphs(g, labels, cpart, cfg.coarse_edges_per_cluster, cfg.max_subgraph_edges)
        timings["top_s"] = time.perf_counter() - t0 - timings["partition_s"]
        x = np.zeros((len(active), cfg.dim), np.float32)
        for s in subs:
            x[s.nodes] = embed_part(s, z[s.proxies], cfg)
        timings["parts_s"] = time.perf_counter() - t0 - sum(timings.values())
        if cfg.refine_order >= 2:
            x = fusion.propagate(g, x, order=cfg.refine_order, mu=cfg.mu, theta=cfg.theta)
        timings["fusion_s"] = time.perf_counter() - t0 - sum(timings.values())
        out = np.zeros((n, cfg.dim), np.float32)
        out[active] = x
        self.embedding_ = out
        st = partition.partition_stats(g, labels, cpart, subs)
        e = max(sp.triu(g, k=1).nnz, 1)
        q_edges = sp.triu(q, k=1).nnz
        embedded = st["subgraph_edges"] + top_edges
        st["largest_subgraph_edges"] = max(st["largest_subgraph_edges"], int(top_edges))
        self.stats_ = {**st, "levels": len(counts) + 1, "coarsening_clusters": counts,
                       "quotient_nodes": int(q.shape[0]), "quotient_edges": int(q_edges),
                       "embedded_edges_multiple": embedded / e, "max_subgraph_nodes": cfg.resolved_m(),
                       "max_subgraph_edges": cfg.max_subgraph_edges, "config": asdict(cfg), "timings": timings}
        log.info("DistNE: %s", {k: v for k, v in self.stats_.items() if k != "config"})
        return self

    def transform(self) -> np.ndarray:
        if self.embedding_ is None:
            raise RuntimeError("call fit() before transform()")
        return self.embedding_
