"""k-nearest-neighbour search over node vectors (friend recommendations) with faiss or torch.

Scores are inner products of L2-normalised vectors (cosine similarity). Index kinds:

* ``exact`` — ``faiss.IndexFlatIP`` (brute force); on a CUDA device exact search runs as torch
  matrix products + ``topk`` instead (faiss-gpu does not support every card, e.g. Hopper);
* ``ivf`` — ``faiss.IndexIVFFlat`` with ``nlist ≈ 4√n`` inverted lists, ``nprobe`` probed;
* ``hnsw`` — ``faiss.IndexHNSWFlat`` (Malkov & Yashunin 2018), ``efSearch`` candidates;
* ``auto`` — exact up to ``exact_threshold`` vectors, HNSW above.

Quality of an approximate index: ``recall@k = |approx ∩ exact| / k`` averaged over sampled queries.
Existing neighbours (and the node itself) can be excluded: the search asks for ``k + e`` results,
``e`` = the largest number of exclusions in the batch, and drops the excluded ids.

>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((500, 16)).astype(np.float32)
>>> s = Searcher(x, KnnConfig(k=5, index="hnsw"))
>>> ids, scores = s.search(np.arange(20))
>>> ids.shape, bool((ids != np.arange(20)[:, None]).all())
((20, 5), True)
>>> exact_ids, _ = Searcher(x, KnnConfig(k=5, index="exact")).search(np.arange(20))
>>> recall_at_k(ids, exact_ids) > 0.9
True
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

INDEX_KINDS = ("auto", "exact", "ivf", "hnsw")


@dataclass(frozen=True)
class KnnConfig:
    """Search parameters."""

    k: int = 20
    index: str = "auto"
    exact_threshold: int = 200_000
    nprobe: int = 16
    hnsw_m: int = 32
    ef_search: int = 128
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.index not in INDEX_KINDS:
            raise ValueError(f"index must be one of {INDEX_KINDS}, got {self.index!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def kind(self, n: int) -> str:
        return ("exact" if n <= self.exact_threshold else "hnsw") if self.index == "auto" else self.index


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False


class Searcher:
    """Index over the rows of ``x`` (row number = node id); ``search(query_ids)`` → ``(ids, scores)``."""

    def __init__(self, x: np.ndarray, config: KnnConfig | None = None) -> None:
        self.config = config or KnnConfig()
        self.x = normalize(x)
        self.zero = ~np.any(self.x != 0, axis=1)  # vertices without a vector (no edges): no neighbours, nobody's
        n, d = self.x.shape
        self.kind = self.config.kind(n)
        dev = self.config.device
        self.use_torch = self.kind == "exact" and (dev == "cuda" or (dev == "auto" and cuda_available()))
        self.index = None if self.use_torch else self._build(self.kind)
        log.info("kNN index %s over %d × %d (%s)", self.kind, n, d, "torch-cuda" if self.use_torch else "faiss-cpu")

    def _build(self, kind: str):
        import faiss

        n, d = self.x.shape
        if kind == "exact":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = self.config.ef_search
        else:
            nlist = max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(self.config.seed)
            train = self.x[rng.choice(n, min(n, 256 * nlist), replace=False)]
            index.train(train)
            index.nprobe = min(self.config.nprobe, nlist)
        index.add(self.x)
        return index

    def _raw(self, q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        kk = min(kk, self.x.shape[0])
        if self.use_torch:
            import torch

            xs = torch.from_numpy(self.x).cuda()
            s, i = torch.topk(torch.from_numpy(q).cuda() @ xs.T, kk, dim=1)
            return i.cpu().numpy().astype(np.int64), s.cpu().numpy()
        s, i = self.index.search(q, kk)
        return i.astype(np.int64), s

    def search(self, query_ids: np.ndarray, exclude: list[np.ndarray] | None = None,
               k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` neighbours of the given rows, never the row itself nor its ``exclude`` ids.

        Missing results (fewer than ``k`` candidates) are ``-1`` with score ``-inf``. A zero vector (a vertex
        without edges) has no neighbours and is nobody's: every score against it is 0, so any "top-k" of it
        would be an arbitrary tie order.
        """
        k = k or self.config.k
        query_ids = np.asarray(query_ids, np.int64)
        excl = exclude if exclude is not None else [np.empty(0, np.int64)] * len(query_ids)
        extra = 1 + max((len(e) for e in excl), default=0)
        ids, scores = self._raw(self.x[query_ids], k + extra)
        bad = ids == query_ids[:, None]
        bad |= ids < 0
        bad |= self.zero[np.maximum(ids, 0)] | self.zero[query_ids][:, None]
        bad |= _excluded(ids, excl, len(self.x))
        out_i = np.full((len(query_ids), k), -1, np.int64)
        out_s = np.full((len(query_ids), k), -np.inf, np.float32)
        order = np.argsort(bad, axis=1, kind="stable")[:, :k]  # good results first, in score order
        sel_i = np.take_along_axis(ids, order, 1)
        sel_s = np.take_along_axis(scores, order, 1)
        sel_bad = np.take_along_axis(bad, order, 1)
        out_i[:, : sel_i.shape[1]] = np.where(sel_bad, -1, sel_i)
        out_s[:, : sel_s.shape[1]] = np.where(sel_bad, -np.inf, sel_s)
        return out_i, out_s


def _excluded(ids: np.ndarray, exclude: list[np.ndarray], n: int) -> np.ndarray:
    """``mask[r, j]``: ``ids[r, j]`` is in ``exclude[r]``; one ``isin`` over keys ``r·m + id`` (no loop per row).

    >>> _excluded(np.array([[0, 2], [1, 2]]), [np.array([-1]), np.array([-1, 2])], 3).tolist()
    [[False, False], [False, True]]
    """
    lens = np.fromiter(map(len, exclude), np.int64, len(exclude))
    if not lens.sum():
        return np.zeros(ids.shape, bool)
    flat = np.concatenate(exclude).astype(np.int64)
    m = max(n, int(flat.max()) + 1, int(ids.max()) + 1)
    owner = np.repeat(np.arange(len(exclude), dtype=np.int64), lens)
    keys = (owner * m + flat)[flat >= 0]  # a negative id names no vertex (and would alias the row before)
    rows = np.arange(ids.shape[0], dtype=np.int64)[:, None] * m
    return np.isin(rows + ids, keys) & (ids >= 0)


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of ``|approx ∩ exact| / |exact|`` (``-1`` padding ignored)."""
    hits, total = 0, 0
    for a, e in zip(approx, exact):
        e = e[e >= 0]
        hits += len(np.intersect1d(a[a >= 0], e))
        total += len(e)
    return hits / max(total, 1)


@functools.lru_cache(maxsize=2)
def cached_searchers(path: str, config: KnnConfig) -> tuple[Searcher, Searcher | None]:
    """``(index, exact or None)`` over the vectors table at ``path``, built once per Python process."""
    from embeddings.evaluate import dense_vectors

    x = dense_vectors(path)
    s = Searcher(x, config)
    exact = None if s.kind == "exact" else Searcher(x, KnnConfig(k=config.k, index="exact", device=config.device))
    return s, exact
