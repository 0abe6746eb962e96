"""Spark side of the JDM/DCM sampler: one-job graph summaries, distributed wiring, Spark baselines.

Imported only by ``jobs/sample_graph.py``. The graph's edge list stays distributed:

* :func:`summarise_graph` simplifies the input (one shuffle over unordered pairs also yields the
  duplicates, self-loops and reciprocity), aggregates degrees and the DCM/JDM in a **single** Spark
  job; only the non-zero matrix cells reach the driver. :func:`summarise_sample` does the same for
  the sample (for ``rescaled`` it counts the JDM from the plan and checks every node's degrees
  against it in the same job, without joins).
* The rescaling runs on those small matrices (:mod:`graphs.rescale`); the wiring is a
  ``mapInPandas`` over chunks of JDM cells: every executor receives the small
  :class:`graphs.wiring.WiringPlan` and emits the edges of its cells (with within-cell loop swaps).
  The rare cells still holding a self-loop are re-wired on the driver together with a few cells of
  their row/column (:func:`graphs.wiring.resolve_loops`), which replaces only those cells.
* Baselines: random node / random edge (ordering by random keys); random walk and forest fire are in
  :mod:`graphs.spark_walks`.
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
from graphs.spark_helpers import small_frame, union_all
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
    if (root / "vertices").exists():
        vertices = spark.read.parquet(str(root / "vertices")).select(F.col("id").cast("long"))
    else:
        vertices = edges.select(F.col("src").alias("id")).union(edges.select(F.col("dst").alias("id"))).distinct()
    return edges, vertices, stats


CELL_SCHEMA = "tag string, a long, b long, c long, d long"


def _cells(df: DataFrame, tag: str, a: str, b: str, c: str) -> DataFrame:
    return df.select(F.lit(tag).alias("tag"), F.col(a).cast("long").alias("a"), F.col(b).cast("long").alias("b"),
                     F.col(c).cast("long").alias("c"), F.lit(None).cast("long").alias("d"))


def edge_pairs(edges: DataFrame) -> DataFrame:
    """One row per unordered pair ``a <= b``: ``bits`` (1: ``a -> b`` present, 2: ``b -> a``, 4: a self-loop)
    and ``cnt`` (input rows). A single shuffle gives the simple graph, its duplicates and reciprocity."""
    a, b = F.least("src", "dst"), F.greatest("src", "dst")
    bit = (F.when(F.col("src") == F.col("dst"), 4).when(F.col("src") < F.col("dst"), 1).otherwise(2))
    return edges.groupBy(a.alias("a"), b.alias("b")).agg(F.bit_or(bit).alias("bits"), F.count(F.lit(1)).alias("cnt"))


def pairs_to_edges(pairs: DataFrame) -> DataFrame:
    """The simple directed edges ``(src, dst)`` of :func:`edge_pairs` rows (loops and duplicates gone)."""
    fwd = pairs.filter((F.col("bits").bitwiseAND(1)) > 0).select(F.col("a").alias("src"), F.col("b").alias("dst"))
    back = pairs.filter((F.col("bits").bitwiseAND(2)) > 0).select(F.col("b").alias("src"), F.col("a").alias("dst"))
    return fwd.unionByName(back)


def _pair_stats(pairs: DataFrame) -> DataFrame:
    """``stats`` row: input edges, self-loops, simple edges, reciprocated simple edges."""
    d = F.col("bits").bitwiseAND(3)
    return pairs.agg(
        F.lit("stats").alias("tag"), F.sum("cnt").cast("long").alias("a"),
        F.sum(F.when(F.col("bits") == 4, F.col("cnt")).otherwise(0)).cast("long").alias("b"),
        F.sum(F.when(d == 3, 2).when(d > 0, 1).otherwise(0)).cast("long").alias("c"),
        F.sum(F.when(d == 3, 2).otherwise(0)).cast("long").alias("d"))


def degrees_fused(edges: DataFrame, vertices: DataFrame) -> DataFrame:
    """``(id, out_deg, in_deg)`` for every vertex and edge endpoint in one aggregation (one shuffle)."""
    one, zero = F.lit(1).cast("long"), F.lit(0).cast("long")
    rows = (edges.select(F.col("src").alias("id"), one.alias("o"), zero.alias("i"))
            .unionByName(edges.select(F.col("dst").alias("id"), zero.alias("o"), one.alias("i")))
            .unionByName(vertices.select("id", zero.alias("o"), zero.alias("i"))))
    return rows.groupBy("id").agg(F.sum("o").alias("out_deg"), F.sum("i").alias("in_deg"))


def _jdm_cells(edges: DataFrame, deg: DataFrame) -> DataFrame:
    a = (edges.join(deg.select(F.col("id").alias("src"), F.col("out_deg")), "src")
         .join(deg.select(F.col("id").alias("dst"), F.col("in_deg")), "dst")
         .groupBy("out_deg", "in_deg").count())
    return _cells(a, "jdm", "out_deg", "in_deg", "count")


def _to_matrices(pdf: pd.DataFrame) -> tuple[sp.csr_array, sp.csr_array]:
    b, a = pdf[pdf["tag"] == "dcm"], pdf[pdf["tag"] == "jdm"]
    shape = (int(pd.concat([b["a"], a["a"]]).max()) + 1 if len(b) + len(a) else 1,
             int(pd.concat([b["b"], a["b"]]).max()) + 1 if len(b) + len(a) else 1)
    return (cells_to_csr(b["a"].to_numpy(), b["b"].to_numpy(), b["c"].to_numpy(), shape),
            cells_to_csr(a["a"].to_numpy(), a["b"].to_numpy(), a["c"].to_numpy(), shape))


def summarise_graph(edges: DataFrame, vertices: DataFrame):
    """Simplify, count, degree and aggregate a raw edge list in **one** Spark job.

    Returns ``(simple, deg, dcm, jdm, stats)``: the simple edges and the degree table (both persisted,
    filled by that job), the DCM and JDM (only their non-zero cells reach the driver) and
    ``stats`` = ``{edges_in, self_loops, duplicates, edges, reciprocal}``.
    """
    pairs = edge_pairs(edges).persist()
    simple = pairs_to_edges(pairs)
    deg = degrees_fused(simple, vertices).persist()
    pdf = (_pair_stats(pairs)
           .unionByName(_cells(deg.groupBy("out_deg", "in_deg").count(), "dcm", "out_deg", "in_deg", "count"))
           .unionByName(_jdm_cells(simple, deg)).toPandas())
    st = pdf[pdf["tag"] == "stats"].iloc[0]
    n_in, loops, n_simple, recip = (int(0 if pd.isna(st[c]) else st[c]) for c in ("a", "b", "c", "d"))
    dcm, jdm = _to_matrices(pdf)
    stats = {"edges_in": n_in, "self_loops": loops, "duplicates": n_in - loops - n_simple, "edges": n_simple,
             "reciprocal": recip}
    return simple, deg, dcm, jdm, stats


def summarise_sample(spark: SparkSession, edges: DataFrame, vertices: DataFrame, plan: WiringPlan | None = None):
    """DCM, JDM and reciprocity of a sample in one Spark job; returns ``(dcm, jdm, reciprocal edges)``.

    With the wiring ``plan`` the JDM is counted from the plan's degree of each endpoint (no joins)
    *and* every node's counted degrees are compared with the plan's in the same job; the JDM is
    recounted with joins only if some node differs (then the sample does not realise the plan).
    """
    deg = degrees_fused(edges, vertices)
    parts = [_cells(deg.groupBy("out_deg", "in_deg").count(), "dcm", "out_deg", "in_deg", "count")]
    pairs = edge_pairs(edges)
    parts.append(pairs.agg(F.lit("rec").alias("tag"),
                           F.sum(F.when(F.col("bits").bitwiseAND(3) == 3, 2).otherwise(0)).cast("long").alias("a"),
                           F.lit(None).cast("long").alias("b"), F.lit(None).cast("long").alias("c"),
                           F.lit(None).cast("long").alias("d")))
    if plan is not None:
        bplan = spark.sparkContext.broadcast(plan)

        def plan_jdm(batches):
            p = bplan.value
            for pdf in batches:
                if pdf.empty:
                    continue
                i = p.degrees(pdf["src"].to_numpy(np.int64))[0]
                j = p.degrees(pdf["dst"].to_numpy(np.int64))[1]
                c = pd.DataFrame({"a": i, "b": j}).value_counts().reset_index()
                yield pd.DataFrame({"tag": "jdm", "a": c["a"], "b": c["b"], "c": c["count"], "d": None})

        def mismatches(batches):
            p = bplan.value
            for pdf in batches:
                ids = pdf["id"].to_numpy(np.int64)
                i, j = p.degrees(ids)
                bad = int(((i != pdf["out_deg"].to_numpy()) | (j != pdf["in_deg"].to_numpy())).sum())
                yield pd.DataFrame({"tag": ["bad"], "a": [bad], "b": [None], "c": [None], "d": [None]})

        parts.append(edges.select("src", "dst").mapInPandas(plan_jdm, CELL_SCHEMA)
                     .groupBy("tag", "a", "b").agg(F.sum("c").alias("c"), F.lit(None).cast("long").alias("d")))
        parts.append(deg.mapInPandas(mismatches, CELL_SCHEMA)
                     .groupBy("tag").agg(F.sum("a").alias("a"), F.lit(None).cast("long").alias("b"),
                                         F.lit(None).cast("long").alias("c"), F.lit(None).cast("long").alias("d")))
    else:
        parts.append(_jdm_cells(edges, deg))
    pdf = union_all(parts).toPandas()
    rec = int(pdf.loc[pdf["tag"] == "rec", "a"].fillna(0).iloc[0]) if (pdf["tag"] == "rec").any() else 0
    if plan is not None and int(pdf.loc[pdf["tag"] == "bad", "a"].sum()) > 0:
        log.warning("sample degrees differ from the plan's: recounting the JDM with joins")
        pdf = pd.concat([pdf[pdf["tag"] == "dcm"], _jdm_cells(edges, deg).toPandas()])
    dcm, jdm = _to_matrices(pdf)
    return dcm, jdm, rec


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
        pdf = (raw.join(small_frame(spark, {"cell": cells}), "cell", "left_semi")
               .toPandas().sort_values("cell", kind="stable"))
        return pdf["src"].to_numpy(), pdf["dst"].to_numpy(), pdf["cell"].to_numpy()

    s2, d2, c2, cells = resolve_loops(plan, loop_cells, fetch, rng)
    log.info("re-wired %d edges of %d cells on the driver to clear self-loops in %d cells",
             s2.size, cells.size, loop_cells.size)
    keep = raw.join(F.broadcast(small_frame(spark, {"cell": cells})), "cell", "left_anti")
    fixed = small_frame(spark, {"src": s2, "dst": d2})
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
