"""Distributed generation: each Spark task runs a :mod:`graphs.generators` block of its own.

``spark.range(n_blocks)`` is repartitioned to one block per task and ``mapInPandas`` turns each
block id into its edges, so the driver only ever sees block ids.
"""
from __future__ import annotations

import math
from typing import Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from graphs.generators import InteractionConfig, PlantedConfig, interactions_block, planted_block, rmat_block

EDGE_SCHEMA = "src long, dst long"
INTERACTION_SCHEMA = "user long, item long"


def _blocks(spark: SparkSession, n_blocks: int) -> DataFrame:
    parts = max(1, min(n_blocks, spark.sparkContext.defaultParallelism * 4))
    return spark.range(n_blocks, numPartitions=parts)


def rmat_edges(spark: SparkSession, scale: int, n_edges: int, seed: int, edges_per_block: int = 1_000_000) -> DataFrame:
    """R-MAT edges ``(src, dst)`` over ``2**scale`` node ids, generated block by block."""
    n_blocks = max(1, math.ceil(n_edges / edges_per_block))

    def gen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for b in batches:
            for blk in b["id"].tolist():
                m = min(edges_per_block, n_edges - blk * edges_per_block)
                s, d = rmat_block(scale, m, seed, blk)
                yield pd.DataFrame({"src": s, "dst": d})

    return _blocks(spark, n_blocks).mapInPandas(gen, EDGE_SCHEMA)


def _ranges(n: int, per_block: int) -> int:
    return max(1, math.ceil(n / per_block))


def planted_edges(spark: SparkSession, cfg: PlantedConfig, nodes_per_block: int = 100_000) -> DataFrame:
    """Planted-community digraph edges ``(src, dst)``; block ``k`` holds sources of node range ``k``."""

    def gen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for b in batches:
            for blk in b["id"].tolist():
                lo, hi = blk * nodes_per_block, min(cfg.nodes, (blk + 1) * nodes_per_block)
                s, d = planted_block(cfg, lo, hi, blk)
                yield pd.DataFrame({"src": s, "dst": d})

    return _blocks(spark, _ranges(cfg.nodes, nodes_per_block)).mapInPandas(gen, EDGE_SCHEMA)


def planted_labels(spark: SparkSession, cfg: PlantedConfig) -> DataFrame:
    """Ground-truth community of every node: ``(id, label)``."""
    from pyspark.sql import functions as F

    bounds = cfg.community_bounds().tolist()
    label = F.lit(0)
    for c, start in enumerate(bounds[1:-1], start=1):
        label = F.when(F.col("id") >= start, F.lit(c)).otherwise(label)
    return spark.range(cfg.nodes).select("id", label.cast("int").alias("label"))


def planted_interactions(spark: SparkSession, graph: PlantedConfig, cfg: InteractionConfig,
                         users_per_block: int = 100_000) -> DataFrame:
    """Interactions ``(user, item)`` whose users are the planted graph's nodes."""

    def gen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for b in batches:
            for blk in b["id"].tolist():
                lo, hi = blk * users_per_block, min(graph.nodes, (blk + 1) * users_per_block)
                u, i = interactions_block(graph, cfg, lo, hi, blk)
                yield pd.DataFrame({"user": u, "item": i})

    return _blocks(spark, _ranges(graph.nodes, users_per_block)).mapInPandas(gen, INTERACTION_SCHEMA)
