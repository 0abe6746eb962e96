"""DistNE on Spark DataFrames: capped label propagation, quotient graph, part subgraphs embedded in
``applyInPandas`` tasks, alignment, and fusion by propagation with neighbour exchanges between parts.

Label-propagation rounds and fusion rounds are message passing: one ``applyInPandas`` per node bucket
(or task slot of parts) over its edges and the messages addressed to it, emitting the next round's
messages — one shuffle per round. Buckets and slots are keyed by :func:`partition_keys`, so bucket ``i``
is shuffle partition ``i`` (small ints collide under Spark's hash partitioning). Imported only by ``jobs/``. The driver never collects edges: it only sums ``d × d``
Gram matrices (one per task) and reads a few counts. The per-task numerics are the pure functions of
:mod:`embeddings.distne`, :mod:`embeddings.partition` and :mod:`embeddings.fusion`, so the Spark run
and :class:`embeddings.distne.DistNE` follow the same steps (see those modules for the design).
"""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from embeddings.distne import DistNEConfig
from graphs.spark_helpers import input_rows

log = logging.getLogger(__name__)

VEC = "array<float>"


def undirected_edges(edges: DataFrame, dedup: bool = True) -> DataFrame:
    """``(a, b, w)`` with ``a < b``: each unordered pair once, self-loops dropped, weight = max over directions.

    ``dedup=False`` trusts an undirected ingest output (each pair stored once) and skips the shuffle.
    """
    missing = {"src", "dst"} - set(edges.columns)
    if missing:
        raise ValueError(f"edges table lacks column(s) {sorted(missing)} (expected src, dst[, weight])")
    w = F.col("weight").cast("float") if "weight" in edges.columns else F.lit(1.0).cast("float")
    e = edges.select(F.col("src").cast("long").alias("s"), F.col("dst").cast("long").alias("d"), w.alias("w"))
    e = e.where(F.col("s") != F.col("d"))
    if not dedup:
        return e.select(F.least("s", "d").alias("a"), F.greatest("s", "d").alias("b"), "w")
    return (e.select(F.least("s", "d").alias("a"), F.greatest("s", "d").alias("b"), "w")
            .groupBy("a", "b").agg(F.max("w").alias("w")))


def both_directions(und: DataFrame) -> DataFrame:
    """``(src, dst, w)`` holding each undirected edge in both directions."""
    return und.select(F.col("a").alias("src"), F.col("b").alias("dst"), "w").unionByName(
        und.select(F.col("b").alias("src"), F.col("a").alias("dst"), "w"))


def _murmur3_int(x: int, seed: int = 42) -> int:
    """Spark's ``hash()`` of an ``int`` column (Murmur3 x86 32-bit, seed 42): what ``HashPartitioning`` uses."""
    m = 0xFFFFFFFF

    def rotl(v: int, r: int) -> int:
        return ((v << r) | (v >> (32 - r))) & m

    k = rotl((x & m) * 0xCC9E2D51 & m, 15) * 0x1B873593 & m
    h = (rotl(seed ^ k, 13) * 5 + 0xE6546B64) & m
    h ^= 4
    h ^= h >> 16
    h = h * 0x85EBCA6B & m
    h ^= h >> 13
    h = h * 0xC2B2AE35 & m
    h ^= h >> 16
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_keys(n: int) -> list[int]:
    """``keys[i]``: the smallest non-negative int that hash partitioning into ``n`` partitions sends to
    partition ``i`` (``pmod(hash(k), n) = i``). Small ints as partition keys collide: with 2 partitions,
    0 and 1 both land in partition 1 and one core does all the work; keyed by ``keys[i]`` they do not."""
    keys: list[int | None] = [None] * n
    k, left = 0, n
    while left:
        i = _murmur3_int(k) % n
        if keys[i] is None:
            keys[i], left = k, left - 1
        k += 1
    return keys


def _key_col(index, keys: list[int]):
    """Column ``keys[index]`` (``index`` an int column in ``0..len(keys)−1``)."""
    return F.element_at(F.array(*[F.lit(k) for k in keys]), (index + 1).cast("int")).cast("int")


def _bucket_round_task(cap: int, r: int, buckets: int, last: bool):
    """``applyInPandas`` body of one label-propagation round over one bucket of nodes (message passing).

    Input: the bucket's edges ``(src, dst, w)`` and the messages addressed to it: ``(id, label)`` of every
    node it reads and partial label sizes ``(label, cnt)`` from every bucket (``id = −1``). Output: the
    messages of the next round — each own node's new label to its own bucket and to the buckets of its
    neighbours, and the bucket's label counts to all buckets — or, after the ``last`` round, ``(id, label)``.
    One shuffle per round instead of a join pipeline (:func:`embeddings.partition.lpa_local_round`).
    """
    keys = np.asarray(partition_keys(buckets), np.int32)  # bucket index -> its shuffle key

    def run(edges: pd.DataFrame, msgs: pd.DataFrame | None = None) -> pd.DataFrame:
        from embeddings.partition import lpa_local_round

        src, dst = edges["src"].to_numpy(np.int64), edges["dst"].to_numpy(np.int64)
        w = edges["w"].to_numpy(np.float64)
        if msgs is None:  # first round: every node is its own label of size 1
            lab_ids = np.unique(np.r_[src, dst])
            lab, size_labels, size_counts = lab_ids, lab_ids, np.ones(len(lab_ids), np.int64)
        else:
            is_cnt = msgs["id"].to_numpy() < 0
            m = msgs[~is_cnt]
            lab_ids, ix = np.unique(m["id"].to_numpy(np.int64), return_index=True)
            lab = m["label"].to_numpy(np.int64)[ix]
            c = msgs[is_cnt]
            size_labels, inv = np.unique(c["label"].to_numpy(np.int64), return_inverse=True)
            size_counts = np.bincount(inv.ravel(), weights=c["cnt"].to_numpy(np.float64)).astype(np.int64)
        own, new = lpa_local_round(src, dst, w, lab_ids, lab, size_labels, size_counts, cap, r)
        b = int(np.flatnonzero(keys == int(edges["bucket"].iloc[0]))[0])  # the bucket's index
        if last:
            return pd.DataFrame({"bucket": keys[b], "id": own, "label": new, "cnt": np.int64(-1)})
        # label messages: own bucket + the buckets of the neighbours
        v = np.searchsorted(own, src)
        key = np.unique(np.r_[np.arange(len(own), dtype=np.int64) * buckets + b,
                              v.astype(np.int64) * buckets + dst % buckets])
        who, tgt = key // buckets, key % buckets
        labs, cnts = np.unique(new, return_counts=True)
        return pd.DataFrame({
            "bucket": keys[np.r_[tgt, np.repeat(np.arange(buckets), len(labs))]],
            "id": np.r_[own[who], np.full(len(labs) * buckets, -1, np.int64)],
            "label": np.r_[new[who], np.tile(labs, buckets)],
            "cnt": np.r_[np.full(len(who), -1, np.int64), np.tile(cnts, buckets)]})
    return run


def _one_arg(fn):
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        return fn(pdf)
    return run


def lpa(sym: DataFrame, cap: int, rounds: int, buckets: int) -> DataFrame:
    """Capped label propagation (:func:`embeddings.partition.label_propagation`'s rule) as ``rounds``
    message-passing rounds over ``buckets`` node buckets (``id mod buckets``, keyed by :func:`partition_keys`
    so that bucket ``i`` is shuffle partition ``i``); returns ``(id, label)``."""
    schema = "bucket int, id long, label long, cnt long"
    e = (sym.withColumn("bucket", _key_col(F.col("src") % buckets, partition_keys(buckets)))
         .repartition(buckets, "bucket").localCheckpoint())
    if rounds == 0:
        return e.select(F.col("src").alias("id")).distinct().withColumn("label", F.col("id"))
    msgs = None
    for r in range(rounds):
        task = _bucket_round_task(cap, r, buckets, last=r == rounds - 1)
        if msgs is None:
            out = e.groupBy("bucket").applyInPandas(_one_arg(task), schema)
        else:
            out = e.groupBy("bucket").cogroup(msgs.groupBy("bucket")).applyInPandas(task, schema)
        msgs = out.localCheckpoint()
    return msgs.select("id", "label")


def split_and_renumber(labels: DataFrame, cap: int) -> DataFrame:
    """Split labels above ``cap`` by rank of id and renumber ``0..n_c-1`` by (label, sub) order
    (:func:`embeddings.partition.split_oversized` in one task over the ``(id, label)`` rows: the global
    renumbering is one ordered pass anyway, and one grouping is a single job instead of two windows and a join)."""
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        from embeddings.partition import split_oversized

        ids = pdf["id"].to_numpy(np.int64)
        return pd.DataFrame({"id": ids, "cluster": split_oversized(pdf["label"].to_numpy(np.int64), cap, ids)})
    return labels.withColumn("g", F.lit(0)).groupBy("g").applyInPandas(run, "id long, cluster long")


def quotient(sym: DataFrame, node_cluster: DataFrame, broadcast: bool = False) -> DataFrame:
    """Quotient edges ``(a, b, w)``, ``a < b`` clusters, summed weights (``broadcast``: the node table is small)."""
    s_ = node_cluster.select(F.col("id").alias("src"), F.col("cluster").alias("a"))
    t_ = node_cluster.select(F.col("id").alias("dst"), F.col("cluster").alias("b"))
    if broadcast:
        s_, t_ = F.broadcast(s_), F.broadcast(t_)
    q = (sym.join(s_, "src").join(t_, "dst")
         .where(F.col("a") < F.col("b")).groupBy("a", "b").agg(F.sum("w").cast("float").alias("w")))
    return q


def coarsen(spark: SparkSession, und: DataFrame, n: int, cfg: DistNEConfig,
            stop: int, buckets: int = 2) -> tuple[DataFrame, list[int], DataFrame]:
    """Levels of capped label propagation on Spark while the quotient has more than ``stop`` nodes
    (``stop`` = M: a quotient of ≤ M nodes fits one task, where :func:`embeddings.distne.coarsen` finishes
    it); returns ``(id, cluster)``, the cluster counts per level and the last quotient graph ``(a, b, w)``.

    The caps follow the overall budget ``B`` (``cfg.sizes``), so the levels equal the reference's."""
    _, budget = cfg.sizes(n)
    node_cluster = None
    cur_und, cur_n, counts = und, n, []
    while cur_n > stop:
        cap = cfg.lpa_cap(cur_n, budget)
        sym = both_directions(cur_und)
        labels = lpa(sym, cap, cfg.lpa_rounds, buckets)
        level = split_and_renumber(labels, cap).localCheckpoint()
        new_n = level.agg(F.max("cluster")).first()[0] + 1
        if new_n >= cur_n:
            raise RuntimeError(f"coarsening made no progress at {cur_n} clusters (cap {cap})")
        if node_cluster is None:  # first level: nodes are their own clusters, no join needed
            node_cluster = level
        else:
            node_cluster = (node_cluster.join(level.select(F.col("id").alias("cluster"), F.col("cluster").alias("c2")),
                                              "cluster").select("id", F.col("c2").alias("cluster")).localCheckpoint())
        cur_und = quotient(sym, level, 16 * cur_n <= broadcast_limit(spark)).localCheckpoint()
        cur_n = new_n
        counts.append(int(new_n))
    if node_cluster is None:
        node_cluster = both_directions(und).select(F.col("src").alias("id")).distinct().withColumn("cluster", F.col("id"))
    return node_cluster, counts, cur_und


TOP = "kind int, a long, b long, w float, part int, z binary"
CHUNK_EDGES = 1 << 18  # 5 MiB of quotient edges, 8 MiB of ARC records per binary value: a JVM row of
# hundreds of MB cannot be sorted or spilled


def _top_task(cfg: DistNEConfig, max_part: int, budget: int, whole_graph: bool = False,
              chunk_edges: int = CHUNK_EDGES):
    """One task over the Spark-coarsened quotient ``Q₁`` (≤ M nodes): the remaining coarsening levels
    (:func:`embeddings.distne.coarsen`), ProNE of the final quotient ``Q`` and the parts of its clusters.
    ``whole_graph``: ``Q₁`` is the graph itself (``a, b`` node ids, no size rows; every level runs here,
    :meth:`DistNEConfig.coarsens_locally`).

    Rows by ``kind``: 0 — ``(a = Q₁ cluster (node id with whole_graph), b = final cluster, part)``; 1 — ``(a = final cluster, part, z)``;
    2 — ``z`` = the final quotient's edges ``a < b`` packed by :func:`pack_chunks`, ``a`` = piece (the coarse
    edges of the part subgraphs: only the heaviest ones with ``coarse_edges_per_cluster``; a few binary rows per
    part instead of a row per edge and part); 3 — ``(a = level, b = clusters)`` of the levels run here, and
    ``(a = −1, b = |E(Q)|)``.
    """
    def run(qdf: pd.DataFrame, sdf: pd.DataFrame | None = None) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings.distne import coarsen as coarsen_local, top_level
        from embeddings.partition import heaviest_edges, quotient_graph
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
            z, part = top_level(q, sizes, cfg, max_part)
        nc, qu = len(sizes), sp.triu(q, k=1).tocoo()
        # the top level embeds Q (its heaviest max_subgraph_edges edges); the parts get its coarse edges
        q_nnz = min(qu.nnz, cfg.max_subgraph_edges or qu.nnz)
        if cfg.coarse_edges_per_cluster is not None:
            keep = heaviest_edges(qu.row, qu.col, qu.data, cfg.coarse_edges_per_cluster)
            qu = sp.coo_matrix((qu.data[keep], (qu.row[keep], qu.col[keep])), shape=qu.shape)
        i32, i64, f32 = np.int32, np.int64, np.float32
        chunks = pack_chunks(qu.row, qu.col, qu.data, chunk_edges)
        nk = len(chunks)
        kinds = [np.zeros(n1, i32), np.ones(nc, i32), np.full(nk, 2, i32), np.full(len(counts) + 1, 3, i32)]
        return pd.DataFrame({
            "kind": np.concatenate(kinds),
            "a": np.r_[ids1, np.arange(nc, dtype=i64), np.arange(nk, dtype=i64), np.arange(len(counts), dtype=i64), -1],
            "b": np.r_[lab.astype(i64), np.full(nc, -1, i64), np.full(nk, qu.nnz, i64), np.asarray(counts, i64), q_nnz],
            "w": np.zeros(n1 + nc + nk + len(counts) + 1, f32),
            "part": np.r_[part[lab], part, np.full(nk + len(counts) + 1, -1)].astype(i32),
            "z": [b""] * n1 + _pack(z) + chunks + [b""] * (len(counts) + 1)})
    return run


EDGE = np.dtype([("a", "<i8"), ("b", "<i8"), ("w", "<f4")])


def pack_edges(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> bytes:
    """An edge list as one binary value (records ``(a int64, b int64, w float32)``)."""
    rec = np.empty(len(a), EDGE)
    rec["a"], rec["b"], rec["w"] = a, b, w
    return rec.tobytes()


def unpack_edges(blob: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rec = np.frombuffer(blob, EDGE)
    return rec["a"].astype(np.int64), rec["b"].astype(np.int64), rec["w"].astype(np.float32)


def pack_chunks(a: np.ndarray, b: np.ndarray, w: np.ndarray, chunk_edges: int = CHUNK_EDGES) -> list[bytes]:
    """:func:`pack_edges` in pieces of at most ``chunk_edges`` edges (at least one piece, maybe empty);
    concatenated in order they are the whole list (R-MAT 2^19's quotient: 6M edges, 120 MB as one value,
    ran the local JVM out of heap when four copies were sorted for the part tasks)."""
    starts = range(0, max(len(a), 1), chunk_edges)
    return [pack_edges(a[i:i + chunk_edges], b[i:i + chunk_edges], w[i:i + chunk_edges]) for i in starts]


ARC = np.dtype([("src", "<i8"), ("dst", "<i8"), ("w", "<f4"), ("pd", "<i4"), ("cd", "<i8")])
ARCS = "part int, z binary"


def _arc_chunks(chunk_edges: int = CHUNK_EDGES):
    """``mapInPandas`` over the annotated edges ``(a, b, w, pa, pb, ca, cb)``: both directions of every edge as
    :data:`ARC` records ``(src, dst, w, part of dst, cluster of dst)``, packed per part of ``src`` in pieces of
    about ``chunk_edges``. The part tasks and every fusion round read a part's edges from a few binary rows:
    31M directed edge rows (R-MAT 2^20) are never sorted or converted to Arrow row by row."""
    def run(batches):
        buf: dict[int, list] = {}
        held: dict[int, int] = {}
        for pdf in batches:
            a, b, w = pdf["a"].to_numpy(np.int64), pdf["b"].to_numpy(np.int64), pdf["w"].to_numpy(np.float32)
            pa, pb = pdf["pa"].to_numpy(np.int32), pdf["pb"].to_numpy(np.int32)
            ca, cb = pdf["ca"].to_numpy(np.int64), pdf["cb"].to_numpy(np.int64)
            rec = np.empty(2 * len(a), ARC)
            rec["src"], rec["dst"], rec["w"], rec["pd"], rec["cd"] = np.r_[a, b], np.r_[b, a], np.r_[w, w], \
                np.r_[pb, pa], np.r_[cb, ca]
            part = np.r_[pa, pb]
            order = np.argsort(part, kind="stable")
            ordered = part[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            for p, seg in zip(ordered[starts].tolist(), np.split(rec[order], starts[1:])):
                buf.setdefault(p, []).append(seg)
                held[p] = held.get(p, 0) + len(seg)
                if held[p] >= chunk_edges:
                    yield pd.DataFrame({"part": [np.int32(p)], "z": [np.concatenate(buf.pop(p)).tobytes()]})
                    held[p] = 0
        for p, segs in buf.items():
            yield pd.DataFrame({"part": [np.int32(p)], "z": [np.concatenate(segs).tobytes()]})
    return run


def _arcs_of(pdf: pd.DataFrame) -> dict[int, np.ndarray]:
    """The :data:`ARC` records of each part in a group of :func:`_arc_chunks` rows."""
    if len(pdf) == 0:
        return {}
    part = pdf["part"].to_numpy()
    return {int(p): np.frombuffer(b"".join(pdf["z"].to_numpy()[part == p]), ARC) for p in np.unique(part)}


def _pack(m: np.ndarray) -> list[bytes]:
    """Rows of a float32 matrix as bytes (a binary column: no per-element Arrow/JVM array cost)."""
    m = np.ascontiguousarray(m, np.float32).reshape(len(m), -1)
    return [r.tobytes() for r in m]


def _unpack(col: pd.Series, width: int) -> np.ndarray:
    if len(col) == 0 or width == 0:
        return np.zeros((len(col), width), np.float32)
    return np.frombuffer(b"".join(col.to_numpy()), np.float32).reshape(len(col), width).copy()


MSG = "part int, id long, own boolean, cur binary, state binary"
MSG_COLS = ("part", "id", "own", "cur", "state")


def _messages(part: int, ids: np.ndarray, cur: np.ndarray, state: np.ndarray | None, subs: tuple) -> pd.DataFrame:
    """Own rows ``(part, id, True, cur, state)`` + one halo row ``(q, v, False, cur_v)`` per subscriber pair."""
    sv, sq = subs
    ix = np.searchsorted(ids, sv)
    packed = _pack(cur)
    st = _pack(state) if state is not None and state.size else [b""] * len(ids)
    return pd.DataFrame({"part": np.r_[np.full(len(ids), part, np.int32), sq.astype(np.int32)],
                         "id": np.r_[ids, sv].astype(np.int64),
                         "own": np.r_[np.ones(len(ids), bool), np.zeros(len(sv), bool)],
                         "cur": packed + [packed[i] for i in ix], "state": st + [b""] * len(sv)})


def _subscribers(src: np.ndarray, other_part: np.ndarray, part: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique ``(node, other part)`` pairs over the cut edges of a part: who must receive a node's vector."""
    m = other_part != part
    if not m.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    k = int(other_part.max()) + 1
    key = np.unique(src[m].astype(np.int64) * k + other_part[m])
    return key // k, key % k


def _part_task(cfg: DistNEConfig, emit_halo: bool):
    """Embed ``H_i`` (ProNE + alignment) and emit the part's first fusion messages (or its final vectors).
    Input: the part's packed edges (:func:`_arc_chunks`) and its node, coarse-edge and anchor rows."""
    def run(arcs: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        part = int((rows if len(rows) else arcs)["part"].iloc[0])
        return one_part(part, _arcs_of(arcs).get(part, np.zeros(0, ARC)), rows)

    def one_part(part: int, arcs: np.ndarray, rows: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings.distne import embed_part
        from embeddings.partition import build_part_subgraph, fit_coarse
        from embeddings.prone import blas_threads

        kind = rows["kind"].to_numpy()
        nodes = np.unique(rows["x"].to_numpy()[kind == 3])
        anchors = rows[kind == 4].sort_values("x")
        proxies = anchors["x"].to_numpy(np.int64)
        inner, cut = (arcs["pd"] == part) & (arcs["src"] < arcs["dst"]), arcs["pd"] != part
        trip = [(arcs["src"][inner], arcs["dst"][inner], arcs["w"][inner]),
                (arcs["src"][cut], arcs["cd"][cut], arcs["w"][cut])]
        chunks = rows[kind == 2].sort_values("x")["z"]  # the quotient's edges, packed in pieces (pack_chunks)
        qa, qb, qw = unpack_edges(b"".join(chunks.to_numpy()))
        outside = _member(proxies, qa) & _member(proxies, qb)  # quotient edges among the outside clusters
        coarse = fit_coarse((qa[outside], qb[outside], qw[outside]), len(trip[0][0]) + len(trip[1][0]),
                            cfg.max_subgraph_edges)
        sub = build_part_subgraph(part, nodes, proxies, *trip, coarse)
        zp = _unpack(anchors["z"], cfg.dim) if len(proxies) else np.zeros((0, cfg.dim), np.float32)
        with blas_threads(1):
            vec = embed_part(sub, zp, cfg)
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        subs = _subscribers(arcs["src"][cut], arcs["pd"][cut].astype(np.int64), part) if emit_halo else none
        out = _messages(part, nodes, vec, None, subs)
        out["h_nodes"] = np.int64(sub.adjacency.shape[0])
        out["h_edges"] = np.int64(sp.triu(sub.adjacency, k=1).nnz)
        out["cut_rows"] = np.int64(cut.sum())
        out["border"] = np.int64(len(np.unique(arcs["src"][cut])))
        return out
    return run


def _member(sorted_keys: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v ∈ sorted_keys``, element-wise."""
    if len(sorted_keys) == 0:
        return np.zeros(len(v), bool)
    i = np.minimum(np.searchsorted(sorted_keys, v), len(sorted_keys) - 1)
    return sorted_keys[i] == v


def _round_task(k: int, cfg: DistNEConfig):
    """Fusion product ``k`` for the parts of one task slot: ``Ã·cur`` over each part's edges and its halo,
    the node-local step, and the next round's messages (:func:`embeddings.fusion.step`; only the live
    state slots are carried). Input: the slot's edges (pre-partitioned once) and the messages sent to it."""
    def run(arcs: pd.DataFrame, msgs: pd.DataFrame) -> pd.DataFrame:
        by_part, m_part = _arcs_of(arcs), msgs["part"].to_numpy()
        none = np.zeros(0, ARC)
        outs = [one_part(int(p), by_part.get(int(p), none), msgs[m_part == p]) for p in np.unique(m_part)]
        if not outs:
            return pd.DataFrame({"part": np.zeros(0, np.int32), "id": np.zeros(0, np.int64),
                                 "own": np.zeros(0, bool), "cur": [], "state": []})
        return pd.concat(outs, ignore_index=True)

    def one_part(part: int, arcs: np.ndarray, msgs: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings import fusion

        order, d = cfg.refine_order, cfg.dim
        own_m = msgs["own"].to_numpy(bool)
        own = msgs[own_m].sort_values("id")
        halo = msgs[~own_m].drop_duplicates("id")
        ids = own["id"].to_numpy(np.int64)
        all_ids = np.r_[ids, halo["id"].to_numpy(np.int64)]
        order_ix = np.argsort(all_ids, kind="stable")
        cur = np.r_[_unpack(own["cur"], d), _unpack(halo["cur"], d)]
        src, dst = arcs["src"], arcs["dst"]
        rows = np.searchsorted(ids, src)
        cols = order_ix[np.searchsorted(all_ids[order_ix], dst)]
        w = arcs["w"]
        a = sp.csr_matrix((w, (rows, cols)), shape=(len(ids), len(all_ids)))
        deg = 1.0 + np.asarray(a.sum(axis=1)).ravel().astype(np.float32)
        ay = ((cur[: len(ids)] + a @ cur) / deg[:, None]).astype(np.float32)
        slots = fusion.live_slots(k - 1, order) if k else ()
        packed = _unpack(own["state"], len(slots) * d) if slots else None
        state = fusion.unpack_state(packed, len(ids), d, k, order, cur[: len(ids)])
        state, nxt = fusion.step(k, state, ay, deg, order, cfg.mu, cfg.theta)
        keep = fusion.live_slots(k, order)
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        last = k == fusion.n_products(order) - 1
        subs = none if last else _subscribers(src, arcs["pd"].astype(np.int64), part)
        out = _messages(part, ids, nxt, state[:, list(keep)] if keep else None, subs)
        if last:  # this part's share of the global Gram matrix of the final map
            g = nxt.astype(np.float64)
            out = pd.concat([out, pd.DataFrame({"part": [np.int32(part)], "id": [np.int64(-2)], "own": [False],
                                                "cur": [b""], "state": [(g.T @ g).tobytes()]})], ignore_index=True)
        return out
    return run


def _single_task(cfg: DistNEConfig):
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        ids = np.unique(np.r_[pdf["a"].to_numpy(), pdf["b"].to_numpy()])
        a, b = np.searchsorted(ids, pdf["a"].to_numpy()), np.searchsorted(ids, pdf["b"].to_numpy())
        w = pdf["w"].to_numpy(np.float32)
        adj = sp.coo_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(len(ids), len(ids))).tocsr()
        return pd.DataFrame({"id": ids, "cur": _pack(cfg.prone(cfg.top_threads).fit_transform(adj))})
    return run


def shuffle_partitions(spark: SparkSession, sym_rows: int, rows_per_partition: int = 4_000_000) -> int:
    """Shuffle partitions sized to the data: the cores, or more when one would exceed
    ``rows_per_partition`` directed edge rows."""
    return max(task_slots(spark), -(-sym_rows // rows_per_partition))


def task_slots(spark: SparkSession) -> int:
    """Tasks the cluster runs at once: ``N`` of ``local[N]`` (``local[*]``: the machine's cores), else
    the executors' default parallelism (``spark.default.parallelism`` may be set higher locally)."""
    import os
    import re

    sc = spark.sparkContext
    m = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", sc.master)
    if m:
        n = m.group(1)
        return 1 if n is None else (os.cpu_count() or 1) if n == "*" else int(n)
    return max(1, sc.defaultParallelism)


def executor_cores(spark: SparkSession) -> int:
    """Cores of one executor: ``spark.executor.cores`` when set, ``N`` of ``local[N]``, else 1."""
    conf = spark.sparkContext.getConf()
    if conf.contains("spark.executor.cores"):
        return max(1, int(conf.get("spark.executor.cores")))
    return task_slots(spark) if spark.sparkContext.master.startswith("local") else 1


def embed(spark: SparkSession, edges: DataFrame, vertices: DataFrame, cfg: DistNEConfig,
          directed: bool = True, out_partitions: int | None = None) -> tuple[DataFrame, dict]:
    """Run DistNE; return ``(vectors(id, vector), meta)`` — ``vectors`` covers every vertex id.

    ``directed=False`` declares the input an undirected ingest output (pairs stored once); ``out_partitions``
    hash-places the output by id into that many partitions (default: the shuffle partitions, i.e. the task
    slots), sorted by id (see :func:`output_vectors`). Spark jobs:
    read (1, +1 de-duplication for directed input); unless the graph is coarsened in the top-level task
    (:meth:`DistNEConfig.coarsens_locally`), per Spark coarsening level (while > M clusters)
    ``lpa_rounds`` message rounds + renumbering + quotient; one top-level task (the remaining levels, ProNE of
    the quotient, parts); the edges annotated and packed per part (1, :func:`_arc_chunks`); parts (1); one
    aggregate of the metadata;
    ``2(order−1)+1`` fusion rounds (the last also emits the Gram matrices); the output rows placed by id (1);
    the write. The whole embedding runs non-adaptive (no AQE), so each query is one job.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if cfg.top_threads == 0:  # the single-task stages may use their executor's cores
        cfg = dataclasses.replace(cfg, top_threads=executor_cores(spark))
    keys = ("spark.sql.shuffle.partitions", "spark.sql.adaptive.coalescePartitions.enabled", "spark.sql.adaptive.enabled",
            "spark.sql.requireAllClusterKeysForCoPartition")
    saved = {k: spark.conf.get(k, None) for k in keys}
    # non-adaptive: every shuffle of a query in one job (AQE submits each shuffle stage and broadcast as a job
    # of its own — Slashdot: 69 → 32 jobs); small tables are broadcast explicitly
    spark.conf.set(keys[2], "false")
    spark.conf.set(keys[1], "false")  # keep one task per core for the per-part numpy work
    # a grouping by (pk, part) may reuse the packed edges' placement by pk (one group per part, no reshuffle)
    spark.conf.set(keys[3], "false")
    try:
        rows = input_rows(edges)  # the Parquet footers: the read's shuffle is sized before any count
        if rows is not None:
            spark.conf.set(keys[0], str(shuffle_partitions(spark, 2 * rows)))
        und = undirected_edges(edges, dedup=directed)
        if directed:  # the de-duplication is a shuffle: keep its result (an undirected input is re-read instead)
            und = und.localCheckpoint()
        n, deg_sum = (both_directions(und).groupBy("src").agg(F.count("*").alias("deg"))
                      .agg(F.count("*"), F.sum("deg")).first())
        n, m_edges = int(n), int(deg_sum or 0) // 2
        buckets = shuffle_partitions(spark, 2 * m_edges)
        spark.conf.set(keys[0], str(buckets))
        vectors, meta = _embed(spark, und, n, m_edges, vertices, cfg, buckets, t0, timings, out_partitions)
        meta["top_threads"] = cfg.top_threads
        return vectors, meta
    finally:
        for k, v in saved.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def _embed(spark, und, n, m_edges, vertices, cfg, buckets, t0, timings, out_partitions=None):
    cfg = cfg.for_graph(n, m_edges)  # M from the memory budget, now that the graph's size is known
    max_part, budget = cfg.sizes(n)
    slots = task_slots(spark)
    timings["read_s"] = time.perf_counter() - t0
    meta: dict = {"dim": cfg.dim, "nodes_with_edges": n, "edges": m_edges, "max_subgraph_nodes": cfg.resolved_m(),
                  "max_subgraph_edges": cfg.max_subgraph_edges,
                  "shuffle_partitions": buckets}
    d = cfg.dim
    if n <= cfg.resolved_m():
        vec = und.withColumn("g", F.lit(0)).groupBy("g").applyInPandas(_single_task(cfg), "id long, cur binary")
        mp = None
        meta.update(levels=1, parts=1, edge_cut_fraction=0.0, largest_subgraph_nodes=n, embedded_edges_multiple=1.0)
    else:
        local = cfg.coarsens_locally(m_edges)
        meta["coarsening"] = "top task" if local else "spark"
        if local:  # every level inside the top task: one pass per round instead of a Spark job per round
            node_cluster, counts = None, []
            task = _one_arg(_top_task(cfg, max_part, budget, True, CHUNK_EDGES))
            top_rows = und.withColumn("g", F.lit(0)).groupBy("g").applyInPandas(task, TOP).localCheckpoint()
        else:
            node_cluster, counts, q1 = coarsen(spark, und, n, cfg, cfg.resolved_m(), buckets)
            timings["coarsen_s"] = time.perf_counter() - t0 - sum(timings.values())
            sizes = node_cluster.groupBy("cluster").agg(F.count("*").alias("size"))
            top_rows = (q1.withColumn("g", F.lit(0)).groupBy("g")
                        .cogroup(sizes.withColumn("g", F.lit(0)).groupBy("g"))
                        .applyInPandas(_top_task(cfg, max_part, budget, False, CHUNK_EDGES), TOP)).localCheckpoint()
        info = sorted((int(r["a"]), int(r["b"])) for r in top_rows.where("kind = 3").select("a", "b").collect())
        q_edges = info[0][1]
        counts = counts + [c for _, c in info[1:]]
        top = top_rows.where("kind = 1").select(F.col("a").alias("cluster"), "part", "z")
        q_blob = top_rows.where("kind = 2").select(F.col("a").alias("x"), "z")
        c1_map = top_rows.where("kind = 0").select(F.col("a").alias("c1"), F.col("b").alias("cluster"), "part")
        timings["top_s"] = time.perf_counter() - t0 - sum(timings.values())
        if node_cluster is None:  # coarsened in the top task: its first map is node -> cluster
            npart = c1_map.select(F.col("c1").alias("id"), "cluster", "part")
        else:
            npart = (node_cluster.select("id", F.col("cluster").alias("c1")).join(c1_map, "c1")
                     .select("id", "cluster", "part"))
        s_ = npart.select(F.col("id").alias("a"), F.col("cluster").alias("ca"), F.col("part").alias("pa"))
        t_ = npart.select(F.col("id").alias("b"), F.col("cluster").alias("cb"), F.col("part").alias("pb"))
        if 32 * n <= broadcast_limit(spark):  # the node table is small: broadcast it (the checkpoint below
            s_, t_ = F.broadcast(s_), F.broadcast(t_)  # runs non-adaptive, so AQE would not decide this)
        ann = und.join(s_, "a").join(t_, "b").select("a", "b", "w", "pa", "pb", "ca", "cb")
        # every edge in both directions, packed per part (src's) and placed once in the task slot of its part: the
        # part tasks and the fusion rounds then shuffle only their node rows and messages
        arcs = ann.mapInPandas(_arc_chunks(CHUNK_EDGES), ARCS)
        arcs = checkpoint_partitioned(spark, arcs.withColumn("pk", _part_key(slots)).repartition(slots, "pk"))
        cols = ["part", "kind", "x", "z"]
        parts = top.select("part").distinct()
        # the coarse edges: the packed quotient, its pieces once per part (each part keeps those among its
        # outside clusters); x orders the pieces
        coarse_rows = q_blob.crossJoin(F.broadcast(parts)).select("part", F.lit(2).alias("kind"), "x", "z")
        node_rows = npart.select("part", F.lit(3).alias("kind"), F.col("id").alias("x"),
                                 F.lit(bytearray()).cast("binary").alias("z"))
        anchors = (top.select("cluster", F.col("part").alias("cpart"), "z").crossJoin(F.broadcast(parts))
                   .where(F.col("part") != F.col("cpart"))
                   .select("part", F.lit(4).alias("kind"), F.col("cluster").alias("x"), "z"))
        rows = node_rows.select(cols).unionByName(coarse_rows.select(cols)).unionByName(anchors.select(cols))
        refine = cfg.refine_order >= 2
        parted = (per_part(arcs, rows, slots)
                  .applyInPandas(_part_task(cfg, refine), MSG + ", h_nodes long, h_edges long, cut_rows long, border long")
                  .localCheckpoint())
        hs = (parted.where("own").groupBy("part")
              .agg(*(F.max(c).alias(c) for c in ("h_nodes", "h_edges", "cut_rows", "border")))
              .agg(F.max("h_nodes"), F.sum("h_nodes"), F.sum("h_edges"), F.count("*"), F.sum("cut_rows"),
                   F.sum("border"), F.max("h_edges"))).first()
        cut_n = int(hs[4]) // 2
        timings["parts_s"] = time.perf_counter() - t0 - sum(timings.values())
        meta.update(levels=len(counts) + 1, parts=int(hs[3]), coarsening_clusters=counts,
                    edge_cut_fraction=cut_n / max(m_edges, 1), largest_subgraph_nodes=int(hs[0]),
                    largest_subgraph_edges=max(int(hs[6]), q_edges),
                    border_nodes_fraction=int(hs[5]) / n,
                    per_level={"top": {"nodes_frac": counts[-1] / n, "edges_frac": q_edges / max(m_edges, 1)},
                               "parts": {"nodes_frac": int(hs[1]) / n, "edges_frac": int(hs[2]) / max(m_edges, 1)}},
                    embedded_edges_multiple=(int(hs[2]) + q_edges) / max(m_edges, 1))
        msgs = parted.select("part", "id", "own", "cur", "state")
        mp = None
        if refine:
            msgs = fuse(arcs, msgs, cfg, slots)
            mp = fusion_map([r[0] for r in msgs.where("id = -2").select("state").collect()], d)
            timings["fusion_s"] = time.perf_counter() - t0 - sum(timings.values())
        vec = msgs.where("own").select("id", "cur")
    meta["timings"] = timings
    # placed by id now (non-adaptive, so the placement is kept): with both join sides shuffles, the planner
    # would re-plan a user repartition to spark.sql.shuffle.partitions
    vec = checkpoint_partitioned(spark, vec.repartition(out_partitions or buckets, "id"))
    return output_vectors(vertices, vec, mp, d, out_partitions or buckets), meta


def output_vectors(vertices: DataFrame, vec: DataFrame, mp: np.ndarray | None, d: int,
                   out_partitions: int) -> DataFrame:
    """``vectors(id, vector)`` for every vertex, in ``out_partitions`` partitions sorted by id: the vertex ids are
    hash-placed by id beside the binary ``cur`` rows ``(id, cur)`` (already placed so by the caller: one
    shuffle of binary rows, before any array column exists), joined, and mapped by ``mp`` in one
    ``mapInArrow`` (zero vector without edges). Slashdot's 82k × 128 output, write alone at load 8: 11.9 s joining
    and then repartitioning the array rows into 8 files; 9.8 s placing the binary rows first; 6.4 s with
    ``mapInArrow`` instead of ``mapInPandas``; 5.3 s (``mapInPandas``) into 2 files instead of 8."""
    ids = vertices.select(F.col("id").cast("long").alias("id")).repartition(out_partitions, "id")
    out = ids.join(vec, "id", "left").sortWithinPartitions("id")
    return out.mapInArrow(_apply_map(mp, d), f"id long, vector {VEC}")


def _apply_map(mp: np.ndarray | None, d: int):
    """``mapInArrow`` body: binary ``cur`` → ``vector`` = ``normalize(cur @ mp)`` (ProNE's last SVD step) or
    ``cur`` as is; a null ``cur`` (a vertex without edges) → the zero vector. The vectors are read from and
    written to flat Arrow buffers (no per-row objects in pandas)."""
    def run(batches):
        import pyarrow as pa

        for rb in batches:
            cur = rb.column(rb.schema.get_field_index("cur"))
            have = cur.is_valid().to_numpy(zero_copy_only=False)
            m = np.zeros((rb.num_rows, d), np.float32)
            if have.any():
                m[have] = _binary_rows(cur, d)
            if mp is not None:
                m = m @ mp
                m /= np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
            offsets = pa.array(np.arange(0, (rb.num_rows + 1) * d, d, dtype=np.int32))
            vec = pa.ListArray.from_arrays(offsets, pa.array(m.astype(np.float32).ravel()))
            yield pa.RecordBatch.from_arrays([rb.column(rb.schema.get_field_index("id")), vec], ["id", "vector"])
    return run


def _binary_rows(col, d: int) -> np.ndarray:
    """The non-null values of an Arrow (large) binary array of ``d`` float32 each, as one ``(k, d)`` matrix read
    straight from its data buffer (values are contiguous; a null has length 0)."""
    import pyarrow as pa

    off_t = np.int64 if pa.types.is_large_binary(col.type) else np.int32
    offs = np.frombuffer(col.buffers()[1], off_t)[col.offset: col.offset + len(col) + 1]
    data = np.frombuffer(col.buffers()[2], np.uint8)[offs[0]: offs[-1]]
    k = len(col) - col.null_count
    if data.size != 4 * d * k:  # a null slot with a length: take the values one by one
        return np.frombuffer(b"".join(v for v in col.to_pylist() if v is not None), np.float32).reshape(k, d)
    return data.view(np.float32).reshape(k, d)


def fusion_map(grams: list, d: int) -> np.ndarray:
    """The final ``d × d`` map from the per-part Gram matrices (float64 bytes; the only vector-derived
    data on the driver)."""
    from embeddings import fusion

    return fusion.final_map(np.sum([np.frombuffer(bytes(g), np.float64).reshape(d, d) for g in grams], axis=0), d)


def fuse(arcs: DataFrame, msgs: DataFrame, cfg: DistNEConfig, slots: int) -> DataFrame:
    """Fusion by propagation: ``2(order−1)+1`` message rounds, each one grouping of the messages (own state
    + one vector per (node, neighbouring part) pair) with the slot's packed edges ``arcs`` (:func:`_arc_chunks`).
    The last round also emits each task's Gram matrix ``curᵀcur`` as a row ``id = −2`` (float64 in ``state``)."""
    from embeddings import fusion

    e = arcs.groupBy("pk")
    for k in range(fusion.n_products(cfg.refine_order)):
        m = msgs.withColumn("pk", _part_key(slots)).groupBy("pk")
        msgs = e.cogroup(m).applyInPandas(_round_task(k, cfg), MSG).localCheckpoint()
    return msgs


def per_part(arcs: DataFrame, rows: DataFrame, slots: int):
    """One cogroup per part of the placed packed edges ``arcs`` and ``rows``: with
    ``spark.sql.requireAllClusterKeysForCoPartition`` off (as inside :func:`embed`) only ``rows`` is shuffled, onto
    the edges' placement by ``pk``."""
    return arcs.groupBy("pk", "part").cogroup(rows.withColumn("pk", _part_key(slots)).groupBy("pk", "part"))


def broadcast_limit(spark: SparkSession) -> int:
    """``spark.sql.autoBroadcastJoinThreshold`` in bytes (default 10 MiB)."""
    v = str(spark.conf.get("spark.sql.autoBroadcastJoinThreshold", "10485760")).strip().lower()
    mult = {"k": 2**10, "m": 2**20, "g": 2**30}
    v = v[:-1] if v.endswith("b") else v
    return int(float(v[:-1]) * mult[v[-1]]) if v and v[-1] in mult else int(v)


def checkpoint_partitioned(spark: SparkSession, df: DataFrame) -> DataFrame:
    """``localCheckpoint`` that keeps ``df``'s hash partitioning, so later groupings on the key shuffle
    nothing on this side (an adaptive plan reports an unknown partitioning: run this one non-adaptive)."""
    key = "spark.sql.adaptive.enabled"
    saved = spark.conf.get(key, None)
    spark.conf.set(key, "false")
    try:
        return df.localCheckpoint()
    finally:
        spark.conf.set(key, saved) if saved is not None else spark.conf.unset(key)


def _part_key(slots: int):
    """The shuffle key of part ``p``: :func:`partition_keys` ``[p mod slots]``, so part ``p`` is in task slot
    ``p mod slots`` (hash partitioning of a few small ints can put 3 of 4 parts in one task, and range
    partitioning costs a sampling job per exchange)."""
    return _key_col(F.col("part") % slots, partition_keys(slots))


def knn_batches(path: str, cfg, sample_mod: int):
    """``mapInPandas`` body of the kNN job: ``(id, excl)`` batches → ``(id, neighbor, score, rank, hit)``.

    ``hit`` is 1/0 for queries with ``id % sample_mod == 0`` (neighbour also in the exact top-k), −1 otherwise.
    """
    def run(batches):
        from embeddings.knn import cached_searchers

        searcher, exact = cached_searchers(path, cfg)
        for pdf in batches:
            ids = pdf["id"].to_numpy(np.int64)
            excl = [np.asarray(e if e is not None else [], np.int64) for e in pdf["excl"]]
            nb, sc = searcher.search(ids, excl)
            hit = np.full(nb.shape, -1, np.int32)
            sampled = np.flatnonzero(ids % sample_mod == 0) if exact is not None else np.empty(0, np.int64)
            if len(sampled):
                ex, _ = exact.search(ids[sampled], [excl[i] for i in sampled])
                for j, r in enumerate(sampled):
                    hit[r] = np.isin(nb[r], ex[j][ex[j] >= 0]).astype(np.int32)
            rank = np.tile(np.arange(1, nb.shape[1] + 1, dtype=np.int16), len(ids))
            yield pd.DataFrame({"id": np.repeat(ids, nb.shape[1]), "neighbor": nb.ravel(), "score": sc.ravel(),
                                "rank": rank, "hit": hit.ravel()})
    return run

