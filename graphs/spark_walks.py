"""Distributed random walk and forest fire for the sampling job (same draws as :mod:`graphs.baselines`).

Random walk: walkers advanced by one join per step; forest fire: one round of joins per burning generation.
Both use the hashed draws of :mod:`graphs.baselines` and give exactly its numpy samples for the same seed.
:func:`induced_sample` turns the chosen nodes into the sample's tables.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from graphs.spark_helpers import local_checkpoint, small_frame, union_all
from graphs.spark_sampling import dense_relabel

log = logging.getLogger(__name__)

BROADCAST_ROWS = 2_000_000  # walkers / frontier rows up to which they are broadcast to the edge scan


def dense_graph(spark: SparkSession, edges: DataFrame, deg: DataFrame, n_nodes: int
                ) -> tuple[DataFrame, DataFrame | None]:
    """Edges on ids ``0..n_nodes-1`` (the rank of the original id) and the map ``(dense, orig_id)``.

    ``None`` as the map when the ids already are ``0..n_nodes-1`` (an ingest output): nothing moves.
    """
    lo, hi = deg.agg(F.min("id"), F.max("id")).first()
    if lo == 0 and hi == n_nodes - 1:
        return edges, None
    from graphs.spark import dense_ids

    m = dense_ids(deg, "id").persist()
    e = (edges.join(m.select(F.col("orig_id").alias("src"), F.col("id").alias("s")), "src")
         .join(m.select(F.col("orig_id").alias("dst"), F.col("id").alias("d")), "dst")
         .select(F.col("s").alias("src"), F.col("d").alias("dst")))
    return e, m.select(F.col("id").alias("dense"), "orig_id")


def _hash_col(seed: int, stream: int, *cols):
    """:func:`graphs.baselines.hash_uniform` as a column (a pandas UDF of one or two long columns)."""
    from graphs.baselines import hash_uniform

    if len(cols) == 1:
        @F.pandas_udf(T.DoubleType())
        def h1(a: pd.Series) -> pd.Series:
            return pd.Series(hash_uniform(seed, stream, a.to_numpy()))
        return h1(*cols)

    @F.pandas_udf(T.DoubleType())
    def h2(a: pd.Series, b: pd.Series) -> pd.Series:
        return pd.Series(hash_uniform(seed, stream, a.to_numpy(), b.to_numpy()))
    return h2(*cols)


def _maybe_broadcast(df: DataFrame, rows: int) -> DataFrame:
    return F.broadcast(df) if rows <= BROADCAST_ROWS else df


def _first_n(parts: list[tuple[DataFrame, int]], n: int, order: str) -> DataFrame:
    """Nodes (column ``id``) of ``parts`` (DataFrames of new nodes in sampling order, with counts)
    up to ``n`` in all: every part but the last whole, the last cut by ``order`` (ascending)."""
    out, count = [], 0
    for df, c in parts:
        if count + c <= n:
            out.append(df.select("id"))
            count += c
        else:
            out.append(df.orderBy(order, "id").limit(n - count).select("id"))
            break
    return union_all(out)


def random_walk(spark: SparkSession, edges: DataFrame, n_nodes: int, n: int, seed: int, restart: float = 0.15,
                life: int = 100, per_walker: int = 50, batch: int = 16) -> DataFrame:
    """Ids (``0..n_nodes-1``, column ``id``) of the nodes of :func:`graphs.baselines.random_walk`.

    The walkers are a small DataFrame ``(w, start, cur)``; a step joins it with the adjacency
    ``(cur, nbrs)`` (sorted out-neighbour arrays, every node present) and moves each walker with
    :func:`graphs.baselines.walk_decide` in a ``mapInPandas``. Up to ``batch`` steps (never more than
    the nodes still missing per walker) are chained before the new nodes (first visit key
    ``step * walkers + w``) are merged into the visited set; overshooting steps change nothing.
    """
    from graphs.baselines import n_walkers, walk_decide

    k = n_walkers(n, per_walker)
    nbrs = edges.groupBy(F.col("src").alias("cur")).agg(F.array_sort(F.collect_list("dst")).alias("nbrs"))
    adj = (spark.range(n_nodes).withColumnRenamed("id", "cur").join(nbrs, "cur", "left")
           .select("cur", F.coalesce("nbrs", F.array().cast("array<bigint>")).alias("nbrs")).persist())

    def stepper(step: int):
        def f(batches):
            for pdf in batches:
                nb = pdf["nbrs"].to_numpy()
                deg = np.fromiter((len(a) for a in nb), dtype=np.int64, count=nb.size)
                w = pdf["w"].to_numpy(np.int64)
                start, nxt, kk = walk_decide(seed, step, w, pdf["start"].to_numpy(np.int64),
                                             pdf["cur"].to_numpy(np.int64), deg, n_nodes, restart, life)
                for i in np.flatnonzero(kk >= 0):
                    nxt[i] = nb[i][kk[i]]
                yield pd.DataFrame({"w": w, "start": start, "cur": nxt})
        return f

    schema = "w long, start long, cur long"
    walkers = spark.range(k).select(F.col("id").alias("w"), F.lit(0).cast("long").alias("start"),
                                    F.lit(0).cast("long").alias("cur")).persist()
    parts: list[tuple[DataFrame, int]] = []
    seen, count, step = None, 0, 0
    while count < n:
        visits, done = [], []
        for _ in range(min(batch, max(1, -(-(n - count) // k)))):  # no more steps than could be needed
            nxt = (_maybe_broadcast(walkers, k).join(adj, "cur").mapInPandas(stepper(step), schema)
                   .persist())
            visits.append(nxt.select(F.col("cur").alias("id"), (F.lit(step * k) + F.col("w")).alias("key")))
            done.append(walkers)
            walkers, step = nxt, step + 1
        new = union_all(visits).groupBy("id").agg(F.min("key").alias("key"))
        if seen is not None:
            new = new.join(seen, "id", "left_anti")
        new = new.transform(local_checkpoint)  # eager: runs the batch; cuts the lineage of the step chain
        walkers = walkers.transform(local_checkpoint)
        c = new.count()
        for d in done + [nxt]:
            d.unpersist()
        parts.append((new, c))
        seen = new.select("id") if seen is None else seen.unionByName(new.select("id"))
        count += c
    log.info("random walk: %d walkers, %d steps, %d nodes visited", k, step, count)
    return _first_n(parts, n, "key")


def forest_fire(spark: SparkSession, edges: DataFrame, n_nodes: int, n: int, seed: int, p_forward: float = 0.7,
                r_backward: float = 0.3, per_fire: int = 500) -> DataFrame:
    """Ids (``0..n_nodes-1``, column ``id``) of the nodes of :func:`graphs.baselines.forest_fire`.

    One round per burning generation: the frontier joins the edge list on both ends, unburnt
    neighbours are ranked per burning node by a hash key (a window) and the first ``x`` / ``y`` burn.
    """
    from graphs.baselines import burn_counts, fire_seeds, n_fires

    k = n_fires(n, per_fire)

    @F.pandas_udf("struct<x: long, y: long>")
    def budgets(v: pd.Series) -> pd.DataFrame:
        x, y = burn_counts(seed, v.to_numpy(np.int64), p_forward, r_backward)
        return pd.DataFrame({"x": x, "y": y})

    parts: list[tuple[DataFrame, int]] = []
    burnt, frontier, f_count, count, ignitions, rounds = None, None, 0, 0, 0, 0
    while count < n:
        if f_count == 0:
            cand = small_frame(spark, {"id": fire_seeds(seed, ignitions, k, n_nodes)})
            ignitions += 1
        else:
            fb = frontier.select(F.col("id").alias("v"), budgets("id").alias("b")).select(
                "v", F.col("b.x").alias("x"), F.col("b.y").alias("y")).persist()
            fb = _maybe_broadcast(fb, f_count)
            picks = []
            for near, far, budget, stream in (("src", "dst", "x", 13), ("dst", "src", "y", 14)):
                c = (edges.join(fb.filter(F.col(budget) > 0), edges[near] == fb["v"])
                     .select("v", F.col(far).alias("id"), F.col(budget).alias("budget"))
                     .join(burnt, "id", "left_anti")
                     .withColumn("key", _hash_col(seed, stream, F.col("v"), F.col("id"))))
                rank = F.row_number().over(Window.partitionBy("v").orderBy("key", "id"))
                picks.append(c.withColumn("rank", rank).filter(F.col("rank") <= F.col("budget")).select("id"))
            cand = picks[0].unionByName(picks[1])
        new = cand.distinct()
        if burnt is not None:
            new = new.join(burnt, "id", "left_anti")
        new = new.withColumn("key", _hash_col(seed, 15, F.col("id"))).transform(local_checkpoint)
        c = new.count()
        parts.append((new, c))
        burnt = new.select("id") if burnt is None else burnt.unionByName(new.select("id"))
        frontier, f_count, count, rounds = new, c, count + c, rounds + 1
    log.info("forest fire: %d fires, %d ignitions, %d rounds, %d nodes burnt", k, ignitions, rounds, count)
    return _first_n(parts, n, "key")


def induced_sample(spark: SparkSession, edges: DataFrame, nodes: DataFrame, idmap: DataFrame | None
                   ) -> tuple[DataFrame, DataFrame]:
    """The subgraph of ``edges`` induced by ``nodes`` (column ``id``), relabelled densely;
    ``orig_id`` mapped back through ``idmap`` (``(dense, orig_id)``) when given."""
    nodes = nodes.persist()
    e = (edges.join(nodes.withColumnRenamed("id", "src"), "src", "left_semi")
         .join(nodes.withColumnRenamed("id", "dst"), "dst", "left_semi"))
    verts, e = dense_relabel(spark, nodes, e)
    if idmap is not None:
        verts = verts.join(idmap.withColumnRenamed("orig_id", "o").withColumnRenamed("dense", "orig_id"),
                           "orig_id").select("id", F.col("o").alias("orig_id"))
    return verts, e
