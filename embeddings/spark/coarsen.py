"""DistNE's coarsening on Spark: capped label propagation as message rounds, renumbering, quotient graphs.

Label-propagation rounds are message passing: one ``applyInPandas`` per node bucket over its edges and
the messages addressed to it, emitting the next round's messages — one shuffle per round. Buckets are
keyed by :func:`graphs.spark_helpers.partition_keys`, so bucket ``i`` is shuffle partition ``i``. The
per-task numerics are those of :mod:`embeddings.partition` (the reference's steps).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from embeddings.distne import DistNEConfig
from embeddings.spark.sizing import checkpoint
from graphs.spark_helpers import broadcast_limit, key_col, one_group, partition_keys


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


def bucket_round_task(cap: int, r: int, buckets: int, last: bool):
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


def one_arg(fn):
    """An ``applyInPandas`` body of one frame (a plain grouping) from one that also takes messages."""
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        return fn(pdf)
    return run


def lpa(sym: DataFrame, cap: int, rounds: int, buckets: int) -> DataFrame:
    """Capped label propagation (:func:`embeddings.partition.label_propagation`'s rule) as ``rounds``
    message-passing rounds over ``buckets`` node buckets (``id mod buckets``, keyed by :func:`partition_keys`
    so that bucket ``i`` is shuffle partition ``i``); returns ``(id, label)``."""
    schema = "bucket int, id long, label long, cnt long"
    e = checkpoint(sym.withColumn("bucket", key_col(F.col("src") % buckets, partition_keys(buckets)))
                   .repartition(buckets, "bucket"))
    if rounds == 0:
        return e.select(F.col("src").alias("id")).distinct().withColumn("label", F.col("id"))
    msgs = None
    for r in range(rounds):
        task = bucket_round_task(cap, r, buckets, last=r == rounds - 1)
        if msgs is None:
            out = e.groupBy("bucket").applyInPandas(one_arg(task), schema)
        else:
            out = e.groupBy("bucket").cogroup(msgs.groupBy("bucket")).applyInPandas(task, schema)
        msgs = checkpoint(out)
    return msgs.select("id", "label")


def split_and_renumber(labels: DataFrame, cap: int) -> DataFrame:
    """Split labels above ``cap`` by rank of id and renumber ``0..n_c-1`` by (label, sub) order
    (:func:`embeddings.partition.split_oversized` in one task over the ``(id, label)`` rows: the global
    renumbering is one ordered pass anyway, and one grouping is a single job instead of two windows and a join)."""
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        from embeddings.partition import split_oversized

        ids = pdf["id"].to_numpy(np.int64)
        return pd.DataFrame({"id": ids, "cluster": split_oversized(pdf["label"].to_numpy(np.int64), cap, ids)})
    return one_group(labels).applyInPandas(run, "id long, cluster long")


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
        level = checkpoint(split_and_renumber(labels, cap))
        new_n = level.agg(F.max("cluster").alias("top")).first()["top"] + 1
        if new_n >= cur_n:
            raise RuntimeError(f"coarsening made no progress at {cur_n} clusters (cap {cap})")
        if node_cluster is None:  # first level: nodes are their own clusters, no join needed
            node_cluster = level
        else:
            node_cluster = checkpoint(node_cluster.join(level.select(F.col("id").alias("cluster"),
                                                                     F.col("cluster").alias("c2")), "cluster")
                                      .select("id", F.col("c2").alias("cluster")))
        cur_und = checkpoint(quotient(sym, level, 16 * cur_n <= broadcast_limit(spark)))
        cur_n = new_n
        counts.append(int(new_n))
    if node_cluster is None:
        node_cluster = (both_directions(und).select(F.col("src").alias("id")).distinct()
                        .withColumn("cluster", F.col("id")))
    return node_cluster, counts, cur_und
