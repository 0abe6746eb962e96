"""Spark side of the JDM/DCM sampler: degree aggregations, distributed wiring, Spark baselines.

Imported only by ``jobs/sample_graph.py``. The graph's edge list stays distributed: degrees, the
DCM and the JDM are ``groupBy`` aggregations (only their non-zero cells reach the driver; they are
small), the rescaling runs on those small matrices (:mod:`graphs.rescale`), and the wiring is a
``mapInPandas`` over chunks of JDM cells: every executor receives the small
:class:`graphs.wiring.WiringPlan` and emits the edges of its cells (with within-cell loop swaps).
The rare cells still holding a self-loop are re-wired on the driver together with a few cells of
their row/column (:func:`graphs.wiring.resolve_loops`), which replaces only those cells.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from graphs.degree import cells_to_csr
from graphs.wiring import WiringPlan, repair_loops, resolve_loops

log = logging.getLogger(__name__)

EDGE_SCHEMA = T.StructType([T.StructField("src", T.LongType()), T.StructField("dst", T.LongType()),
                            T.StructField("cell", T.LongType())])


def read_directed_graph(spark: SparkSession, graph_dir: str) -> tuple[DataFrame, DataFrame, dict]:
    """Edges ``(src, dst)`` and vertices ``(id)`` of an ingest output; rejects undirected/empty graphs."""
    root = Path(graph_dir)
    stats_path = root / "stats.json"
    if not stats_path.is_file():
        raise FileNotFoundError(f"{stats_path}: missing (expected an ingest output directory)")
    stats = json.loads(stats_path.read_text())
    if "directed" not in stats:
        raise ValueError(f"{stats_path}: field 'directed' missing")
    if not stats["directed"]:
        raise ValueError(f"{stats_path}: graph is undirected ('directed': false); JDM/DCM sampling needs a digraph")
    edges = spark.read.parquet(str(root / "edges"))
    missing = {"src", "dst"} - set(edges.columns)
    if missing:
        raise ValueError(f"{root / 'edges'}: columns {sorted(missing)} missing")
    edges = edges.select(F.col("src").cast("long"), F.col("dst").cast("long"))
    if edges.limit(1).count() == 0:
        raise ValueError(f"{root / 'edges'}: the graph has no edges")
    if (root / "vertices").exists():
        vertices = spark.read.parquet(str(root / "vertices")).select(F.col("id").cast("long"))
    else:
        vertices = edges.select(F.col("src").alias("id")).union(edges.select(F.col("dst").alias("id"))).distinct()
    return edges, vertices, stats


def simplify(edges: DataFrame) -> tuple[DataFrame, int, int, int]:
    """Drop self-loops and duplicate pairs; returns ``(edges (persisted), n_edges, self_loops, duplicates)``."""
    agg = edges.agg(F.count(F.lit(1)).alias("n"), F.sum((F.col("src") == F.col("dst")).cast("long")).alias("loops")
                    ).first()
    simple = edges.filter(F.col("src") != F.col("dst")).dropDuplicates(["src", "dst"]).persist()
    n_simple = simple.count()
    loops = int(agg["loops"] or 0)
    return simple, n_simple, loops, int(agg["n"]) - loops - n_simple


def node_degrees(edges: DataFrame, vertices: DataFrame) -> DataFrame:
    """``(id, out_deg, in_deg)`` for every vertex (zeros for vertices without edges)."""
    out = edges.groupBy(F.col("src").alias("id")).agg(F.count(F.lit(1)).alias("out_deg"))
    inn = edges.groupBy(F.col("dst").alias("id")).agg(F.count(F.lit(1)).alias("in_deg"))
    return (vertices.join(out, "id", "left").join(inn, "id", "left")
            .fillna(0, ["out_deg", "in_deg"]))


def degree_matrices(edges: DataFrame, deg: DataFrame) -> tuple[sp.csr_array, sp.csr_array]:
    """The DCM and JDM as ``csr_array`` (only the aggregated non-zero cells are collected)."""
    b = deg.groupBy("out_deg", "in_deg").count().toPandas()
    a = (edges.join(deg.select(F.col("id").alias("src"), F.col("out_deg")), "src")
         .join(deg.select(F.col("id").alias("dst"), F.col("in_deg")), "dst")
         .groupBy("out_deg", "in_deg").count().toPandas())
    shape = (int(b["out_deg"].max()) + 1, int(b["in_deg"].max()) + 1)
    return (cells_to_csr(b["out_deg"].to_numpy(), b["in_deg"].to_numpy(), b["count"].to_numpy(), shape),
            cells_to_csr(a["out_deg"].to_numpy(), a["in_deg"].to_numpy(), a["count"].to_numpy(), shape))


def reciprocity(edges: DataFrame, total: int | None = None) -> float:
    """Fraction of (simple) edges whose reverse is present."""
    total = edges.count() if total is None else total
    if total == 0:
        return 0.0
    rev = edges.select(F.col("dst").alias("src"), F.col("src").alias("dst"))
    return edges.join(rev, ["src", "dst"], "left_semi").count() / total


def _chunks(plan: WiringPlan, n_chunks: int) -> list[np.ndarray]:
    """JDM cells split into ``n_chunks`` runs of about equal edge counts."""
    bounds = np.searchsorted(np.cumsum(plan.ca), np.linspace(0, plan.n_edges, n_chunks + 1)[1:-1])
    return [c for c in np.split(np.arange(plan.ci.size), bounds) if c.size]


def wire_distributed(spark: SparkSession, plan: WiringPlan, seed: int, n_chunks: int) -> DataFrame:
    """Edges ``(src, dst)`` realising the plan's matrices, generated on the executors; loop-free."""
    chunks = _chunks(plan, n_chunks)
    bplan = spark.sparkContext.broadcast(plan)
    bchunks = spark.sparkContext.broadcast(chunks)

    def gen(batches):
        p = bplan.value
        for pdf in batches:
            for k in pdf["id"].tolist():
                src, dst, cell = p.generate(bchunks.value[k])
                repair_loops(src, dst, cell, p, np.random.default_rng([seed, 2, k]), wide=False)
                yield pd.DataFrame({"src": src, "dst": dst, "cell": cell})

    ids = spark.range(len(chunks)).repartition(max(1, len(chunks)))
    raw = ids.mapInPandas(gen, EDGE_SCHEMA).persist()
    loop_cells = np.array(sorted(r["cell"] for r in raw.filter(F.col("src") == F.col("dst"))
                                 .select("cell").distinct().collect()), dtype=np.int64)
    if loop_cells.size == 0:
        return raw.select("src", "dst")
    rng = np.random.default_rng([seed, 3])

    def fetch(cells):
        pdf = (raw.join(spark.createDataFrame(pd.DataFrame({"cell": cells})), "cell", "left_semi")
               .toPandas().sort_values("cell", kind="stable"))
        return pdf["src"].to_numpy(), pdf["dst"].to_numpy(), pdf["cell"].to_numpy()

    s2, d2, c2, cells = resolve_loops(plan, loop_cells, fetch, rng)
    log.info("re-wired %d edges of %d cells on the driver to clear self-loops in %d cells",
             s2.size, cells.size, loop_cells.size)
    keep = raw.join(F.broadcast(spark.createDataFrame(pd.DataFrame({"cell": cells}))), "cell", "left_anti")
    fixed = spark.createDataFrame(pd.DataFrame({"src": s2, "dst": d2}))
    return keep.select("src", "dst").unionByName(fixed)


def plan_vertices(spark: SparkSession, plan: WiringPlan) -> DataFrame:
    """``(id, orig_id = null)`` for the synthetic nodes ``0..n-1``."""
    return spark.range(plan.n_nodes).select(F.col("id"), F.lit(None).cast("long").alias("orig_id"))


def dense_relabel(spark: SparkSession, nodes: DataFrame, edges: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Give sampled nodes (column ``id``) dense new ids; returns ``(vertices(id, orig_id), edges)``."""
    from graphs.spark import dense_ids  # per-partition offsets: no single-partition window

    verts = dense_ids(nodes, "id")
    m_src = verts.select(F.col("orig_id").alias("src"), F.col("id").alias("s"))
    m_dst = verts.select(F.col("orig_id").alias("dst"), F.col("id").alias("d"))
    e = edges.join(m_src, "src").join(m_dst, "dst").select(F.col("s").alias("src"), F.col("d").alias("dst"))
    return verts.select("id", "orig_id"), e


def random_node(spark: SparkSession, edges: DataFrame, vertices: DataFrame, n: int, seed: int):
    """Induced subgraph on ``n`` uniformly chosen vertices (distributed)."""
    nodes = vertices.orderBy(F.rand(seed)).limit(n).persist()
    ids = nodes.select("id")
    e = (edges.join(ids.withColumnRenamed("id", "src"), "src", "left_semi")
         .join(ids.withColumnRenamed("id", "dst"), "dst", "left_semi"))
    return dense_relabel(spark, nodes, e)


def random_edge(spark: SparkSession, edges: DataFrame, n: int, seed: int):
    """Edges in uniform random order up to the first prefix touching ``n`` distinct nodes (distributed).

    With a uniform key ``u`` per edge, a node enters the prefix at the smallest key of its edges;
    the prefix ends at the ``n``-th smallest such entry key.
    """
    ke = edges.withColumn("u", F.rand(seed)).persist()
    ends = (ke.select(F.col("src").alias("id"), "u").union(ke.select(F.col("dst").alias("id"), "u"))
            .groupBy("id").agg(F.min("u").alias("u")))
    theta = ends.orderBy("u").limit(n).agg(F.max("u")).collect()[0][0]
    e = ke.filter(F.col("u") <= theta).select("src", "dst")
    nodes = e.select(F.col("src").alias("id")).union(e.select(F.col("dst").alias("id")))
    return dense_relabel(spark, nodes, e)
