"""DistNE's one-task stages: the top level (the last coarsening levels, ProNE of the final quotient, the parts)
and, for a graph of at most M nodes, the whole embedding.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from embeddings.distne import DistNEConfig
from embeddings.spark.codec import CHUNK_EDGES, pack_chunks, pack_rows
from embeddings.spark.rows import TopRow


def top_task(cfg: DistNEConfig, max_part: int, budget: int, whole_graph: bool = False,
              chunk_edges: int = CHUNK_EDGES):
    """One task over the Spark-coarsened quotient ``Q₁`` (≤ M nodes): the remaining coarsening levels
    (:func:`embeddings.distne.coarsen`), ProNE of the final quotient ``Q`` and the parts of its clusters.
    ``whole_graph``: ``Q₁`` is the graph itself (``a, b`` node ids, no size rows; every level runs here,
    :meth:`DistNEConfig.coarsens_locally`).

    Rows (:data:`~embeddings.spark.rows.TOP`) by :class:`~embeddings.spark.rows.TopRow`: ``NODE_MAP`` — Q₁'s
    clusters (node ids with ``whole_graph``) to final clusters and parts; ``CLUSTER`` — each final cluster's part
    and top-level vector; ``QUOTIENT`` — the final quotient's edges ``a < b`` packed by
    :func:`~embeddings.spark.codec.pack_chunks` (the coarse edges of the part subgraphs: only the heaviest ones
    with ``coarse_edges_per_cluster``; a few binary rows per part instead of a row per edge and part); ``LEVEL`` —
    the clusters of the levels run here, and the embedded quotient's edges.
    """
    def run(qdf: pd.DataFrame, sdf: pd.DataFrame | None = None) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings.distne import coarsen as coarsen_local, top_level
        from embeddings.partition import keep_heaviest_edges, quotient_graph
        from embeddings.prone import blas_threads

        a, b, w = qdf["a"].to_numpy(np.int64), qdf["b"].to_numpy(np.int64), qdf["w"].to_numpy(np.float32)
        if whole_graph:  # rows are the graph's nodes (ids, as the first level's label propagation needs)
            ids1 = np.unique(np.r_[a, b])
            a, b = np.searchsorted(ids1, a), np.searchsorted(ids1, b)
            sizes1 = np.ones(len(ids1), np.int64)
        else:  # rows are Q₁'s clusters 0..n1-1
            ids1 = np.arange(len(sdf), dtype=np.int64)
            sizes1 = np.zeros(len(ids1), np.int64)
            sizes1[sdf["cluster"].to_numpy()] = sdf["size"].to_numpy()
        n1 = len(ids1)
        q1 = sp.coo_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(n1, n1)).tocsr()
        del a, b, w
        with blas_threads(1):
            lab, counts = coarsen_local(q1, budget, cfg.lpa_cap, cfg.lpa_rounds, ids=ids1 if whole_graph else None)
            q = quotient_graph(q1, lab)[0] if counts else q1
            sizes = np.bincount(lab, weights=sizes1, minlength=int(lab.max()) + 1).astype(np.int64)
            z, part, q_nnz = top_level(q, sizes, cfg, max_part)
        # the parts get Q's coarse edges (their heaviest with coarse_edges_per_cluster)
        nc, qu = len(sizes), keep_heaviest_edges(sp.triu(q, k=1).tocoo(), cfg.coarse_edges_per_cluster)
        i32, i64, f32 = np.int32, np.int64, np.float32
        chunks = pack_chunks(qu.row, qu.col, qu.data, chunk_edges)
        nk, nl = len(chunks), len(counts) + 1
        kinds = [np.full(n1, TopRow.NODE_MAP, i32), np.full(nc, TopRow.CLUSTER, i32), np.full(nk, TopRow.QUOTIENT, i32),
                 np.full(nl, TopRow.LEVEL, i32)]
        return pd.DataFrame({
            "kind": np.concatenate(kinds),
            "a": np.r_[ids1, np.arange(nc, dtype=i64), np.arange(nk, dtype=i64), np.arange(nl - 1, dtype=i64), -1],
            "b": np.r_[lab.astype(i64), np.full(nc, -1, i64), np.full(nk, qu.nnz, i64), np.asarray(counts, i64), q_nnz],
            "w": np.zeros(n1 + nc + nk + nl, f32),
            "part": np.r_[part[lab], part, np.full(nk + nl, -1)].astype(i32),
            "z": [b""] * n1 + pack_rows(z) + chunks + [b""] * nl})
    return run


def single_task(cfg: DistNEConfig):
    """``applyInPandas`` body embedding a whole graph ``(a, b, w)`` with ProNE in one task: ``(id, cur)``."""
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        ids = np.unique(np.r_[pdf["a"].to_numpy(), pdf["b"].to_numpy()])
        a, b = np.searchsorted(ids, pdf["a"].to_numpy()), np.searchsorted(ids, pdf["b"].to_numpy())
        w = pdf["w"].to_numpy(np.float32)
        adj = sp.coo_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(len(ids), len(ids))).tocsr()
        return pd.DataFrame({"id": ids, "cur": pack_rows(cfg.prone(cfg.top_threads).fit_transform(adj))})
    return run
