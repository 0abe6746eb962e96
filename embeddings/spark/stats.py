"""Typed figures of a DistNE run on Spark: phase times, the part stage's aggregate, the run's summary."""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

class Laps:
    """Phase durations in seconds: each lap is the time since the previous one (the first: since ``t0``)."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """End phase ``name`` (logged as ``DistNE phase NAME done``: what a fault schedule can wait for)."""
        self.seconds[name] = time.perf_counter() - self.t0 - sum(self.seconds.values())
        log.info("DistNE phase %s done (%.1f s)", name, self.seconds[name])


@dataclass(frozen=True)
class PartStats:
    """The part stage's figures, from one aggregate over the parts' own message rows."""

    parts: int
    largest_nodes: int  # nodes of the largest part subgraph H_i (its proxies included)
    nodes: int  # Σ nodes of the H_i
    edges: int  # Σ edges of the H_i
    largest_edges: int  # edges of the H_i with the most edges
    cut_rows: int  # directed cut edge rows: two per cut edge
    border: int  # nodes with a cut edge

    @classmethod
    def of(cls, parted: DataFrame) -> "PartStats":
        """Read from the part tasks' output (every row carries its part's ``h_nodes, h_edges, cut_rows, border``)."""
        per_part = (parted.where("own").groupBy("part")
                    .agg(*(F.max(c).alias(c) for c in ("h_nodes", "h_edges", "cut_rows", "border"))))
        r = per_part.agg(F.count(F.lit(1)).alias("parts"), F.max("h_nodes").alias("largest_nodes"),
                         F.sum("h_nodes").alias("nodes"), F.sum("h_edges").alias("edges"),
                         F.max("h_edges").alias("largest_edges"), F.sum("cut_rows").alias("cut_rows"),
                         F.sum("border").alias("border")).first()
        return cls(**{f.name: int(r[f.name]) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class EmbedStats:
    """What :func:`embeddings.spark.embed.embed` reports (``_meta.json`` of ``embed_graph``)."""

    dim: int
    nodes_with_edges: int
    edges: int
    max_subgraph_nodes: int  # M
    max_subgraph_edges: int | None
    shuffle_partitions: int
    levels: int
    parts: int
    edge_cut_fraction: float
    largest_subgraph_nodes: int
    embedded_edges_multiple: float
    top_threads: int
    timings: dict[str, float] = field(default_factory=dict)
    # only when the graph was partitioned (more than M nodes); left out of the meta otherwise
    coarsening: str | None = None  # "top task" | "spark"
    coarsening_clusters: list[int] | None = None
    largest_subgraph_edges: int | None = None
    border_nodes_fraction: float | None = None
    per_level: dict[str, dict[str, float]] | None = None

    def to_meta(self) -> dict:
        """The fields as a dict; the partitioned-graph fields only when set."""
        optional = {f.name for f in dataclasses.fields(self) if f.default is None}
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None or k not in optional}
