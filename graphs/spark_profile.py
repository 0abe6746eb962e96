"""Spark side of the graph profile: distributed degree aggregates, the structural sections in one task.

Imported only by ``jobs/graph_profile.py``. The edge list never reaches the driver:

* :func:`degree_section` — simplification (self-loops, duplicates), degrees, the DCM and reciprocity in
  one Spark job (:func:`graphs.spark_sampling.summarise_graph`), the four assortativities as ``corr``
  aggregates over the edges joined with both endpoints' degrees in a second; only the non-zero DCM
  cells and a handful of numbers are collected, and :func:`graphs.profile.degree_summary` (the same
  code as the single-machine profile) makes the section.
* :func:`structure_in_one_task` — when the simple graph fits one task's memory budget
  (:data:`PROFILE_EDGE_BYTES` per edge), every edge is sent to a single ``applyInPandas`` group and
  :func:`graphs.profile.structure_profile` runs there, on an executor; the task returns one JSON row per
  section.
* Above the budget, :func:`pagerank_distributed` (power iteration, one join + aggregate per step),
  :func:`wcc_distributed` (min-label propagation until no label changes) and
  :func:`distances_distributed` (a multi-source BFS, one join per level) give those sections with the
  single-machine results, and :func:`clustering_distributed` a sampled clustering (with standard errors);
  strong components and k-cores are reported as not computed.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from graphs.profile import ASSORTATIVITY, DegreeSummary, ProfileConfig, degree_summary, structure_profile
from graphs.profile_paths import PageRankSummary, pagerank_summary
from graphs.profile_structure import Components
from graphs.spark_helpers import local_checkpoint

log = logging.getLogger(__name__)

# Bytes per simple edge a task needs: profile_graph's peak RSS was 2,358 MB at 1.5·10^7 R-MAT edges (153 B/edge,
# benchmarks/sample_transfer.py's scaling part) plus the task's Arrow batches and pandas frame (~50 B/edge);
# rounded up for headroom.
PROFILE_EDGE_BYTES = 360


def read_graph(spark: SparkSession, graph_dir: str) -> tuple[DataFrame, DataFrame, dict]:
    """Edges ``(src, dst)`` and vertices ``(id)`` of an ingest/sample output; an undirected graph (pairs
    stored once) is read as both directions."""
    from pathlib import Path

    root = Path(graph_dir)
    stats_path = root / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    edges = spark.read.parquet(str(root / "edges"))
    missing = {"src", "dst"} - set(edges.columns)
    if missing:
        raise ValueError(f"{root / 'edges'}: columns {sorted(missing)} missing")
    edges = edges.select(F.col("src").cast("long"), F.col("dst").cast("long"))
    if stats.get("directed") is False:
        edges = edges.unionByName(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    if (root / "vertices").exists():
        vertices = spark.read.parquet(str(root / "vertices")).select(F.col("id").cast("long"))
    else:
        vertices = edges.select(F.col("src").alias("id")).union(edges.select(F.col("dst").alias("id"))).distinct()
    return edges, vertices, stats


def degree_section(edges: DataFrame, vertices: DataFrame) -> tuple[DataFrame, DegreeSummary, dict]:
    """``(simple edges (persisted), the degree section, input counts)`` from two Spark jobs."""
    from graphs.spark_sampling import summarise_graph

    simple, deg, dcm, _, st = summarise_graph(edges, vertices)
    joined = (simple.join(deg.select(F.col("id").alias("src"), F.col("out_deg").alias("s_out"),
                                     F.col("in_deg").alias("s_in")), "src")
              .join(deg.select(F.col("id").alias("dst"), F.col("out_deg").alias("d_out"),
                               F.col("in_deg").alias("d_in")), "dst"))
    row = joined.agg(*[F.corr(F.col(f"s_{x}").cast("double"), F.col(f"d_{y}").cast("double")).alias(f"{x}-{y}")
                       for x, y in ASSORTATIVITY]).first()
    assort = {f"{x}-{y}": float(row[f"{x}-{y}"] or 0.0) for x, y in ASSORTATIVITY}
    c = dcm.tocoo()
    summary = degree_summary(c.row, c.col, c.data, st["edges"], st["reciprocal"], assort)
    return simple, summary, st


def _task(n: int, cfg: ProfileConfig):
    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        src, dst = pdf["src"].to_numpy(np.int64), pdf["dst"].to_numpy(np.int64)
        size = n
        if src.size and max(src.max(), dst.max()) >= n:  # ids not dense: relabel, isolated vertices stay counted
            ids = np.unique(np.r_[src, dst])
            src, dst = np.searchsorted(ids, src), np.searchsorted(ids, dst)
            size = max(n, ids.size)
        order = np.lexsort((dst, src))
        res = structure_profile(src[order], dst[order], size, cfg)
        secs = res.pop("seconds")
        rows = [(k, json.dumps(asdict(v), default=_plain)) for k, v in res.items()]
        rows.append(("seconds", json.dumps(secs)))
        return pd.DataFrame(rows, columns=["section", "body"])
    return run


def _plain(o):
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def structure_in_one_task(simple: DataFrame, n: int, cfg: ProfileConfig) -> dict:
    """Every structural section computed on one executor; returns ``{section: dict, "seconds": {...}}``."""
    rows = (simple.withColumn("g", F.lit(0)).groupBy("g")
            .applyInPandas(_task(n, cfg), "section string, body string").collect())
    return {r["section"]: json.loads(r["body"]) for r in rows}


def fits_one_task(n_edges: int, memory_mb: int) -> bool:
    """Whether a graph of ``n_edges`` simple edges fits a task of ``memory_mb``."""
    return n_edges * PROFILE_EDGE_BYTES <= memory_mb * 2**20


def pagerank_distributed(simple: DataFrame, vertices: DataFrame, n: int, damping: float = 0.85, tol: float = 1e-9,
                         max_iter: int = 100) -> tuple[DataFrame, int]:
    """PageRank ``(id, pr)`` by power iteration on DataFrames, the same iterates as
    :func:`graphs.profile_paths.pagerank` (networkx's convention); stops when the L1 change is below ``tol``.

    One Spark job per step: the new ranks are computed from the links joined with the current ranks,
    checkpointed lazily, and a single aggregate over them returns both the L1 change and the next step's
    dangling mass. Returns the ranks and the steps run.
    """
    out_deg = simple.groupBy("src").agg(F.count("*").alias("k"))
    links = simple.join(out_deg, "src").select("src", "dst", (1.0 / F.col("k")).alias("w")).persist()
    state = (vertices.join(out_deg.withColumnRenamed("src", "id"), "id", "left")
             .select("id", F.col("k").isNull().alias("dangling"), F.lit(1.0 / n).alias("pr"))).transform(local_checkpoint)
    dmass = state.where("dangling").agg(F.sum("pr")).first()[0] or 0.0
    it = 0
    for it in range(1, max_iter + 1):
        contrib = (links.join(state.select(F.col("id").alias("src"), "pr"), "src")
                   .groupBy(F.col("dst").alias("id")).agg(F.sum(F.col("pr") * F.col("w")).alias("c")))
        new = (state.join(contrib, "id", "left")
               .select("id", "dangling", F.col("pr").alias("old"),
                       (damping * (F.coalesce("c", F.lit(0.0)) + F.lit(dmass / n)) + (1 - damping) / n).alias("pr"))
               .transform(local_checkpoint, eager=False))
        err, dmass = new.agg(F.sum(F.abs(F.col("pr") - F.col("old"))),
                             F.sum(F.when(F.col("dangling"), F.col("pr")).otherwise(0.0))).first()
        state, dmass = new.drop("old"), dmass or 0.0
        if err < tol:
            break
    links.unpersist()
    return state.select("id", "pr"), it


def pagerank_section(pr: DataFrame, n: int, grid: int = 20_000) -> PageRankSummary:
    """:class:`PageRankSummary` of a distributed PageRank: the ranks are reduced to ``grid`` quantiles by
    ``approxQuantile`` (relative error ``1/grid``) and the top-1 % share by one aggregate; only these reach
    the driver."""
    x = pr.select((F.col("pr") * n).alias("x"))
    probs = np.linspace(0, 1, grid + 1).tolist()
    qs = np.asarray(x.approxQuantile("x", probs, 1.0 / grid))
    base = pagerank_summary(qs / qs.size)  # a vector whose n·x is the quantile grid
    top = max(1, int(np.ceil(0.01 * n)))
    top_sum = x.orderBy(F.col("x").desc()).limit(top).agg(F.sum("x")).first()[0]
    return PageRankSummary(base.quantiles, base.max, float(top_sum / n), base.gini, base.ccdf)


def wcc_distributed(simple: DataFrame, vertices: DataFrame, max_iter: int = 100) -> Components:
    """Weakly connected components by min-label propagation (one join + aggregate per round; rounds ≈ the
    largest component's diameter). The SCC fields are None: not computed."""
    und = simple.select("src", "dst").unionByName(simple.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    und = und.persist()
    lab = vertices.select("id", F.col("id").alias("label")).transform(local_checkpoint)
    for _ in range(max_iter):
        msg = und.join(lab.withColumnRenamed("id", "src"), "src").groupBy(F.col("dst").alias("id")).agg(
            F.min("label").alias("m"))
        new = lab.join(msg, "id", "left").select("id", F.least("label", F.coalesce("m", "label")).alias("label"))
        new = new.transform(local_checkpoint)
        changed = new.join(lab.withColumnRenamed("label", "old"), "id").where("label != old").limit(1).count()
        lab = new
        if not changed:
            break
    sizes = lab.groupBy("label").count().groupBy(F.col("count").alias("size")).count().orderBy("size").toPandas()
    hist = {"size": sizes["size"].astype(int).tolist(), "count": sizes["count"].astype(int).tolist()}
    return Components(int(sizes["count"].sum()), int(sizes["size"].max()), None, None, hist, {})


def _signed(x: int) -> int:
    """A 64-bit pattern as Spark's signed ``long``."""
    return x - (1 << 64) if x >= 1 << 63 else x


def distances_distributed(simple: DataFrame, n: int, sources: int = 256, groups: int = 8, seed: int = 0,
                          max_levels: int = 1000):
    """:class:`graphs.profile_paths.Distances` by a multi-source BFS on DataFrames: 64 sources per batch, one bit
    per source in a ``long`` per node; a level is one join of the frontier with the edges and a ``bit_or`` per
    target. Vertex ids must be dense ``0..n-1`` (ingest and sample outputs are): the sources are then those
    of the single-machine :func:`graphs.profile_paths.distances` and so is the result."""
    from graphs.profile_paths import distances_from_groups, source_sample

    spark = simple.sparkSession
    srcs = source_sample(n, sources, seed)
    g_of = np.arange(srcs.size) % groups
    edges = simple.select("src", "dst").persist()
    per_group = []
    for lo in range(0, srcs.size, 64):
        batch, gb = srcs[lo:lo + 64], g_of[lo:lo + 64]
        bits = [_signed(1 << i) for i in range(batch.size)]  # bit 63 as a negative long
        masks = [0] * groups
        for i, g in enumerate(gb):
            masks[g] |= 1 << i
        masks = [_signed(m) for m in masks]
        start = spark.createDataFrame([(int(v), b) for v, b in zip(batch, bits)], "id long, b long")
        seen = front = start.groupBy("id").agg(F.bit_or("b").alias("b")).transform(local_checkpoint)
        rows = [np.zeros(groups, np.int64)]
        for _ in range(max_levels):
            msgs = (edges.join(front.withColumnRenamed("id", "src"), "src")
                    .groupBy(F.col("dst").alias("id")).agg(F.bit_or("b").alias("m")))
            new = (msgs.join(seen.withColumnRenamed("b", "s"), "id", "left")
                   .select("id", (F.col("m").bitwiseAND(F.bitwise_not(F.coalesce("s", F.lit(0).cast("long")))))
                           .alias("b"))
                   .where(F.col("b") != 0).transform(local_checkpoint))
            counts = new.agg(*[F.sum(F.bit_count(F.col("b").bitwiseAND(F.lit(m)))).alias(f"g{g}")
                               for g, m in enumerate(masks)]).first()
            level = np.array([int(counts[f"g{g}"] or 0) for g in range(groups)], np.int64)
            if not level.any():
                break
            rows.append(level)
            seen = (seen.join(new.withColumnRenamed("b", "nb"), "id", "full")
                    .select("id", F.coalesce("b", F.lit(0).cast("long")).bitwiseOR(F.coalesce("nb", F.lit(0).cast("long")))
                            .alias("b")).transform(local_checkpoint))
            front = new
        per_group.append(np.stack(rows, axis=1))
    edges.unpersist()
    return distances_from_groups(per_group, int(srcs.size), n, n <= sources)


def _draw_pairs(k: int, seed: int):
    def run(batches):
        from graphs.baselines import hash_uniform

        for pdf in batches:
            v = pdf["v"].to_numpy(np.int64)
            lists = pdf["nbrs"].to_numpy()
            d = np.array([len(x) for x in lists], np.int64)
            flat = np.concatenate(lists).astype(np.int64) if len(lists) else np.zeros(0, np.int64)
            off = np.repeat(np.cumsum(d) - d, k)
            vv, kk, dd = np.repeat(v, k), np.tile(np.arange(k), v.size), np.repeat(d, k)
            i = (hash_uniform(seed, 21, vv, kk) * dd).astype(np.int64)
            j = (hash_uniform(seed, 22, vv, kk) * (dd - 1)).astype(np.int64)
            j += j >= i
            yield pd.DataFrame({"v": vv, "a": flat[off + i], "c": flat[off + j]})
    return run


def clustering_distributed(simple: DataFrame, n: int, nodes_per_bin: int = 4000, wedges_per_node: int = 32,
                           seed: int = 0):
    """Sampled :class:`graphs.profile_structure.Clustering` of the underlying undirected graph on DataFrames.

    Per degree bin ``[2^b, 2^(b+1))`` about ``nodes_per_bin`` nodes are kept (Bernoulli, probability
    ``min(1, nodes_per_bin / n_b)``); each draws ``wedges_per_node`` random neighbour pairs (hashed draws), a join
    with the edges says which are closed. The average is the stratified mean of the nodes' closed fractions
    (zeros for degree < 2), the transitivity the stratified estimate of ``sum_v w_v c_v / sum_v w_v``
    (``w_v = d_v (d_v - 1) / 2``, the denominator exact); both with standard errors from the per-bin variances
    of the nodes' estimates (no finite-population correction: conservative, it keeps the pair-draw noise).
    """
    from graphs.profile_structure import Clustering

    a, b = F.least("src", "dst"), F.greatest("src", "dst")
    pairs = simple.select(a.alias("src"), b.alias("dst")).distinct()
    und = pairs.unionByName(pairs.select(F.col("dst").alias("src"), F.col("src").alias("dst"))).persist()
    deg = (und.groupBy("src").agg(F.count("*").alias("d"))
           .withColumn("bin", F.floor(F.log2("d")).cast("int"))
           .withColumn("w", F.col("d") * (F.col("d") - 1) / 2).persist())
    bins = {int(r["bin"]): (int(r["n"]), float(r["W"])) for r in
            deg.where("d >= 2").groupBy("bin").agg(F.count("*").alias("n"), F.sum("w").alias("W")).collect()}
    total_w = sum(w for _, w in bins.values())
    if not bins or total_w == 0:
        und.unpersist()
        return Clustering(0.0, 0.0, False, triangles=None)
    prob = F.create_map(*[x for bb, (nb, _) in bins.items() for x in (F.lit(bb), F.lit(min(1.0, nodes_per_bin / nb)))])
    picked = deg.where((F.col("d") >= 2) & (F.rand(seed) < F.element_at(prob, F.col("bin"))))
    nbrs = und.join(picked.select(F.col("src"), "d"), "src").groupBy(F.col("src").alias("v")).agg(
        F.collect_list("dst").alias("nbrs"))
    draws = nbrs.mapInPandas(_draw_pairs(wedges_per_node, seed), "v long, a long, c long")
    closed = draws.join(und.select(F.col("src").alias("a"), F.col("dst").alias("c"), F.lit(1).alias("hit")),
                        ["a", "c"], "left")
    per_node = (closed.groupBy("v").agg(F.avg(F.coalesce("hit", F.lit(0))).alias("ch"))
                .join(deg.select(F.col("src").alias("v"), "bin", "w"), "v"))
    stats = per_node.groupBy("bin").agg(F.count("*").alias("s"), F.avg("ch").alias("m"), F.var_samp("ch").alias("v"),
                                        F.avg(F.col("w") * F.col("ch")).alias("mw"),
                                        F.var_samp(F.col("w") * F.col("ch")).alias("vw")).collect()
    und.unpersist()
    deg.unpersist()
    avg = var = tr = var_tr = 0.0
    per_bin = {}
    for r in stats:
        nb, _ = bins[int(r["bin"])]
        s = int(r["s"])  # no finite-population correction: the pair draws inside a node add noise too
        avg += nb / n * r["m"]
        var += (nb / n) ** 2 * (r["v"] or 0.0) / s
        tr += nb * r["mw"] / total_w
        var_tr += (nb / total_w) ** 2 * (r["vw"] or 0.0) / s
        per_bin[int(r["bin"])] = (nb, float(r["m"]))
    keys = sorted(per_bin)
    by_degree = {"bin_lo": [2 ** k for k in keys], "nodes": [per_bin[k][0] for k in keys],
                 "mean": [per_bin[k][1] for k in keys]}
    return Clustering(float(avg), float(tr), False, float(np.sqrt(var)), float(np.sqrt(var_tr)), by_degree=by_degree)
