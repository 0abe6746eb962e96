"""DistNE on Spark, stage by stage: read, coarsen, top level, parts, fusion, output.

Spark jobs of :func:`embed`: read (1, +1 de-duplication for directed input); unless the graph is coarsened in
the top-level task (:meth:`DistNEConfig.coarsens_locally`), per Spark coarsening level (while > M clusters)
``lpa_rounds`` message rounds + renumbering + quotient (:mod:`embeddings.spark.coarsen`); one top-level task
(the remaining levels, ProNE of the quotient, parts; :mod:`embeddings.spark.top`); the edges annotated and
packed per part (1, :func:`~embeddings.spark.codec.arc_chunks`); parts (1, :mod:`embeddings.spark.parts`); one
aggregate of their figures; ``2(order−1)+1`` fusion rounds (the last also emits the Gram matrices;
:mod:`embeddings.spark.fuse`); the output rows placed by id (1); the write. The whole embedding runs
non-adaptive (no AQE), so each query is one job; the caller's settings come back when :func:`embed` returns.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from embeddings.distne import DistNEConfig
from embeddings.spark import codec
from embeddings.spark.coarsen import both_directions, coarsen, one_arg, undirected_edges
from embeddings.spark.fuse import fuse, fusion_map
from embeddings.spark.output import output_vectors
from embeddings.spark.parts import part_key, part_task, per_part
from embeddings.spark.rows import GRAM_ID, MSG_COLS, PART_INPUT_COLS, PART_OUT, TOP, PartInput, TopRow
from embeddings.spark.sizing import checkpoint, checkpoint_partitioned, checkpoint_storage
from embeddings.spark.stats import EmbedStats, Laps, PartStats
from embeddings.spark.top import single_task, top_task
from graphs.spark_helpers import (SHUFFLE_PARTITIONS, broadcast_limit, executor_cores, input_rows, one_group,
                                  task_slots, temporary_conf)

# non-adaptive: every shuffle of a query in one job (AQE submits each shuffle stage and broadcast as a job of its
# own — Slashdot: 69 → 32 jobs); small tables are broadcast explicitly. One task per core for the per-part numpy
# work (no coalescing); a grouping by (pk, part) may reuse the packed edges' placement by pk (no reshuffle).
EMBED_CONF = {"spark.sql.adaptive.enabled": "false", "spark.sql.adaptive.coalescePartitions.enabled": "false",
              "spark.sql.requireAllClusterKeysForCoPartition": "false"}


def shuffle_partitions(spark: SparkSession, sym_rows: int, rows_per_partition: int = 4_000_000) -> int:
    """Shuffle partitions sized to the data: the cores, or more when one would exceed
    ``rows_per_partition`` directed edge rows."""
    return max(task_slots(spark), -(-sym_rows // rows_per_partition))


def embed(spark: SparkSession, edges: DataFrame, vertices: DataFrame, cfg: DistNEConfig,
          directed: bool = True, out_partitions: int | None = None,
          storage: str | None = None) -> tuple[DataFrame, EmbedStats]:
    """Run DistNE; return ``(vectors(id, vector), stats)`` — ``vectors`` covers every vertex id.

    ``directed=False`` declares the input an undirected ingest output (pairs stored once); ``out_partitions``
    hash-places the output by id into that many partitions (default: the shuffle partitions, i.e. the task
    slots), sorted by id (see :func:`~embeddings.spark.output.output_vectors`); ``storage``: the StorageLevel name
    of every checkpoint (``None``: Spark's default; :func:`embeddings.sizing.plan` picks ``DISK_ONLY`` when the
    tables would crowd the heap).
    """
    t0 = time.perf_counter()
    if cfg.top_threads == 0:  # the single-task stages may use their executor's cores
        cfg = dataclasses.replace(cfg, top_threads=executor_cores(spark))
    rows = input_rows(edges)  # the Parquet footers: the read's shuffle is sized before any count
    first = shuffle_partitions(spark, 2 * rows) if rows is not None else spark.conf.get(SHUFFLE_PARTITIONS)
    with temporary_conf(spark, {**EMBED_CONF, SHUFFLE_PARTITIONS: str(first)}), checkpoint_storage(storage):
        und = undirected_edges(edges, dedup=directed)
        if directed:  # the de-duplication is a shuffle: keep its result (an undirected input is re-read instead)
            und = checkpoint(und)
        r = (both_directions(und).groupBy("src").agg(F.count(F.lit(1)).alias("deg"))
             .agg(F.count(F.lit(1)).alias("nodes"), F.sum("deg").alias("deg_sum")).first())
        n, m_edges = int(r["nodes"]), int(r["deg_sum"] or 0) // 2
        buckets = shuffle_partitions(spark, 2 * m_edges)
        spark.conf.set(SHUFFLE_PARTITIONS, str(buckets))
        return _embed(spark, und, n, m_edges, vertices, cfg, buckets, Laps(t0), out_partitions)


def _embed(spark: SparkSession, und: DataFrame, n: int, m_edges: int, vertices: DataFrame, cfg: DistNEConfig,
           buckets: int, laps: Laps, out_partitions: int | None) -> tuple[DataFrame, EmbedStats]:
    """The embedding of the read graph ``und`` (``n`` nodes with edges, ``m_edges`` edges) and its figures."""
    cfg = cfg.for_graph(n, m_edges)  # M from the memory budget, now that the graph's size is known
    laps.lap("read_s")
    common = dict(dim=cfg.dim, nodes_with_edges=n, edges=m_edges, max_subgraph_nodes=cfg.resolved_m(),
                  max_subgraph_edges=cfg.max_subgraph_edges, shuffle_partitions=buckets, top_threads=cfg.top_threads)
    if n <= cfg.resolved_m():  # the whole graph in one task
        vec = one_group(und).applyInPandas(single_task(cfg), "id long, cur binary")
        mp = None
        stats = EmbedStats(**common, levels=1, parts=1, edge_cut_fraction=0.0, largest_subgraph_nodes=n,
                           embedded_edges_multiple=1.0, timings=dict(laps.seconds))
    else:
        vec, mp, stats = _partitioned(spark, und, n, m_edges, cfg, buckets, laps, common)
    # placed by id now (non-adaptive, so the placement is kept): with both join sides shuffles, the planner
    # would re-plan a user repartition to spark.sql.shuffle.partitions
    vec = checkpoint_partitioned(spark, vec.repartition(out_partitions or buckets, "id"))
    return output_vectors(vertices, vec, mp, cfg.dim, out_partitions or buckets), stats


def _partitioned(spark: SparkSession, und: DataFrame, n: int, m_edges: int, cfg: DistNEConfig, buckets: int,
                 laps: Laps, common: dict) -> tuple[DataFrame, np.ndarray | None, EmbedStats]:
    """Coarsen, top level, parts, fusion: ``((id, cur) of every node with edges, final map or None, stats)``."""
    slots = task_slots(spark)
    local = cfg.coarsens_locally(m_edges)
    top_rows, node_cluster, counts = _top_level(spark, und, n, cfg, buckets, local, laps)
    kind = F.col("kind")
    levels = sorted((int(r["a"]), int(r["b"])) for r in top_rows.where(kind == int(TopRow.LEVEL)).select("a", "b")
                    .collect())
    q_edges = levels[0][1]  # the row a = −1: edges of the embedded quotient
    counts = counts + [c for _, c in levels[1:]]
    top = top_rows.where(kind == int(TopRow.CLUSTER)).select(F.col("a").alias("cluster"), "part", "z")
    q_blob = top_rows.where(kind == int(TopRow.QUOTIENT)).select(F.col("a").alias("x"), "z")
    c1_map = top_rows.where(kind == int(TopRow.NODE_MAP)).select(F.col("a").alias("c1"), F.col("b").alias("cluster"),
                                                                 "part")
    laps.lap("top_s")
    if node_cluster is None:  # coarsened in the top task: its first map is node -> cluster
        npart = c1_map.select(F.col("c1").alias("id"), "cluster", "part")
    else:
        npart = (node_cluster.select("id", F.col("cluster").alias("c1")).join(c1_map, "c1")
                 .select("id", "cluster", "part"))
    arcs = _packed_arcs(spark, und, npart, n, slots)
    refine = cfg.refine_order >= 2
    parted = (per_part(arcs, _part_inputs(npart, top, q_blob), slots)
              .applyInPandas(part_task(cfg, refine), PART_OUT))
    parted = checkpoint(parted)
    hs = PartStats.of(parted)
    laps.lap("parts_s")
    msgs = parted.select(*MSG_COLS)
    mp = None
    if refine:
        msgs = fuse(arcs, msgs, cfg, slots)
        mp = fusion_map([r["state"] for r in msgs.where(F.col("id") == GRAM_ID).select("state").collect()], cfg.dim)
        laps.lap("fusion_s")
    stats = EmbedStats(
        **common, coarsening="top task" if local else "spark", levels=len(counts) + 1, parts=hs.parts,
        coarsening_clusters=counts, edge_cut_fraction=(hs.cut_rows // 2) / max(m_edges, 1),
        largest_subgraph_nodes=hs.largest_nodes, largest_subgraph_edges=max(hs.largest_edges, q_edges),
        border_nodes_fraction=hs.border / n,
        per_level={"top": {"nodes_frac": counts[-1] / n, "edges_frac": q_edges / max(m_edges, 1)},
                   "parts": {"nodes_frac": hs.nodes / n, "edges_frac": hs.edges / max(m_edges, 1)}},
        embedded_edges_multiple=(hs.edges + q_edges) / max(m_edges, 1), timings=dict(laps.seconds))
    return msgs.where("own").select("id", "cur"), mp, stats


def _top_level(spark: SparkSession, und: DataFrame, n: int, cfg: DistNEConfig, buckets: int, local: bool,
               laps: Laps) -> tuple[DataFrame, DataFrame | None, list[int]]:
    """The top-level task's rows (:data:`~embeddings.spark.rows.TOP`), checkpointed; with Spark coarsening first
    (``local=False``) also the node → cluster map and the clusters per Spark level."""
    max_part, budget = cfg.sizes(n)
    if local:  # every level inside the top task: one pass per round instead of a Spark job per round
        task = one_arg(top_task(cfg, max_part, budget, True, codec.CHUNK_EDGES))
        return checkpoint(one_group(und).applyInPandas(task, TOP)), None, []
    node_cluster, counts, q1 = coarsen(spark, und, n, cfg, cfg.resolved_m(), buckets)
    laps.lap("coarsen_s")
    sizes = node_cluster.groupBy("cluster").agg(F.count(F.lit(1)).alias("size"))
    top_rows = checkpoint(one_group(q1).cogroup(one_group(sizes))
                          .applyInPandas(top_task(cfg, max_part, budget, False, codec.CHUNK_EDGES), TOP))
    return top_rows, node_cluster, counts


def _packed_arcs(spark: SparkSession, und: DataFrame, npart: DataFrame, n: int, slots: int) -> DataFrame:
    """Every edge in both directions, annotated with the parts and clusters of its ends, packed per part (src's) and
    placed once in the task slot of its part: the part tasks and the fusion rounds then shuffle only their node rows
    and messages."""
    s_ = npart.select(F.col("id").alias("a"), F.col("cluster").alias("ca"), F.col("part").alias("pa"))
    t_ = npart.select(F.col("id").alias("b"), F.col("cluster").alias("cb"), F.col("part").alias("pb"))
    if 32 * n <= broadcast_limit(spark):  # the node table is small: broadcast it (the checkpoint below
        s_, t_ = F.broadcast(s_), F.broadcast(t_)  # runs non-adaptive, so AQE would not decide this)
    ann = und.join(s_, "a").join(t_, "b").select("a", "b", "w", "pa", "pb", "ca", "cb")
    arcs = ann.mapInPandas(codec.arc_chunks(codec.CHUNK_EDGES), codec.ARCS)
    return checkpoint_partitioned(spark, arcs.withColumn("pk", part_key(slots)).repartition(slots, "pk"))


def _part_inputs(npart: DataFrame, top: DataFrame, q_blob: DataFrame) -> DataFrame:
    """The rows each part task reads besides its edges (:class:`~embeddings.spark.rows.PartInput`): its nodes, the
    packed quotient's pieces once per part (each part keeps those among its outside clusters; ``x`` orders the
    pieces), and the top-level vector of every cluster outside it (anchors)."""
    parts = top.select("part").distinct()
    coarse = q_blob.crossJoin(F.broadcast(parts)).select("part", F.lit(int(PartInput.COARSE)).alias("role"), "x", "z")
    nodes = npart.select("part", F.lit(int(PartInput.NODE)).alias("role"), F.col("id").alias("x"),
                         F.lit(bytearray()).cast("binary").alias("z"))
    anchors = (top.select("cluster", F.col("part").alias("cpart"), "z").crossJoin(F.broadcast(parts))
               .where(F.col("part") != F.col("cpart"))
               .select("part", F.lit(int(PartInput.ANCHOR)).alias("role"), F.col("cluster").alias("x"), "z"))
    cols = list(PART_INPUT_COLS)
    return nodes.select(cols).unionByName(coarse.select(cols)).unionByName(anchors.select(cols))
