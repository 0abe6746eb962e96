"""DistNE's part stage: every part subgraph embedded (ProNE + alignment) in the task slot that holds its edges.

Part ``p`` lives in task slot ``p mod slots`` (:func:`part_key`): its packed edges are placed there once
(:func:`~embeddings.spark.codec.arc_chunks`) and every later grouping by part — the part tasks, each fusion
round — shuffles only the rows and messages sent to it (:func:`per_part`). A part task emits its first
fusion messages (:func:`messages`): its own nodes' vectors, and each border node's vector once to every
other part that reads it (:func:`subscribers`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from embeddings.distne import DistNEConfig
from embeddings.spark.codec import ARC, arcs_of, member, pack_rows, unpack_edges, unpack_rows
from embeddings.spark.rows import PartInput
from graphs.spark_helpers import key_col, partition_keys


def part_key(slots: int):
    """The shuffle key of part ``p``: :func:`partition_keys` ``[p mod slots]``, so part ``p`` is in task slot
    ``p mod slots`` (hash partitioning of a few small ints can put 3 of 4 parts in one task, and range
    partitioning costs a sampling job per exchange)."""
    return key_col(F.col("part") % slots, partition_keys(slots))


def per_part(arcs: DataFrame, rows: DataFrame, slots: int):
    """One cogroup per part of the placed packed edges ``arcs`` and ``rows``: with
    ``spark.sql.requireAllClusterKeysForCoPartition`` off (as inside :func:`embeddings.spark.embed.embed`) only
    ``rows`` is shuffled, onto the edges' placement by ``pk``."""
    return arcs.groupBy("pk", "part").cogroup(rows.withColumn("pk", part_key(slots)).groupBy("pk", "part"))


def messages(part: int, ids: np.ndarray, cur: np.ndarray, state: np.ndarray | None, subs: tuple) -> pd.DataFrame:
    """Own rows ``(part, id, True, cur, state)`` + one halo row ``(q, v, False, cur_v)`` per subscriber pair."""
    sv, sq = subs
    ix = np.searchsorted(ids, sv)
    packed = pack_rows(cur)
    st = pack_rows(state) if state is not None and state.size else [b""] * len(ids)
    return pd.DataFrame({"part": np.r_[np.full(len(ids), part, np.int32), sq.astype(np.int32)],
                         "id": np.r_[ids, sv].astype(np.int64),
                         "own": np.r_[np.ones(len(ids), bool), np.zeros(len(sv), bool)],
                         "cur": packed + [packed[i] for i in ix], "state": st + [b""] * len(sv)})


def subscribers(src: np.ndarray, other_part: np.ndarray, part: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique ``(node, other part)`` pairs over the cut edges of a part: who must receive a node's vector."""
    m = other_part != part
    if not m.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    k = int(other_part.max()) + 1
    key = np.unique(src[m].astype(np.int64) * k + other_part[m])
    return key // k, key % k


def part_task(cfg: DistNEConfig, emit_halo: bool):
    """Embed ``H_i`` (ProNE + alignment) and emit the part's first fusion messages (or its final vectors).
    Input: the part's packed edges (:func:`~embeddings.spark.codec.arc_chunks`) and its rows by
    :class:`~embeddings.spark.rows.PartInput`: nodes, pieces of the quotient's edges, anchors (outside clusters)."""
    def run(arcs: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        part = int((rows if len(rows) else arcs)["part"].iloc[0])
        return one_part(part, arcs_of(arcs).get(part, np.zeros(0, ARC)), rows)

    def one_part(part: int, arcs: np.ndarray, rows: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings.distne import embed_part
        from embeddings.partition import build_part_subgraph, fit_coarse
        from embeddings.prone import blas_threads

        role = rows["role"].to_numpy()
        nodes = np.unique(rows["x"].to_numpy()[role == PartInput.NODE])
        anchors = rows[role == PartInput.ANCHOR].sort_values("x")
        proxies = anchors["x"].to_numpy(np.int64)
        inner, cut = (arcs["pd"] == part) & (arcs["src"] < arcs["dst"]), arcs["pd"] != part
        trip = [(arcs["src"][inner], arcs["dst"][inner], arcs["w"][inner]),
                (arcs["src"][cut], arcs["cd"][cut], arcs["w"][cut])]
        chunks = rows[role == PartInput.COARSE].sort_values("x")["z"]  # the quotient's edges, in pieces
        qa, qb, qw = unpack_edges(b"".join(chunks.to_numpy()))
        outside = member(proxies, qa) & member(proxies, qb)  # quotient edges among the outside clusters
        coarse = fit_coarse((qa[outside], qb[outside], qw[outside]), len(trip[0][0]) + len(trip[1][0]),
                            cfg.max_subgraph_edges)
        sub = build_part_subgraph(part, nodes, proxies, *trip, coarse)
        zp = unpack_rows(anchors["z"], cfg.dim) if len(proxies) else np.zeros((0, cfg.dim), np.float32)
        with blas_threads(1):
            vec = embed_part(sub, zp, cfg)
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        subs = subscribers(arcs["src"][cut], arcs["pd"][cut].astype(np.int64), part) if emit_halo else none
        out = messages(part, nodes, vec, None, subs)
        out["h_nodes"] = np.int64(sub.adjacency.shape[0])
        out["h_edges"] = np.int64(sp.triu(sub.adjacency, k=1).nnz)
        out["cut_rows"] = np.int64(cut.sum())
        out["border"] = np.int64(len(np.unique(arcs["src"][cut])))
        return out
    return run
