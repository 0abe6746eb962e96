"""Spark side of graph ingest: text readers, dense relabelling and graph statistics on DataFrames.

Everything stays distributed: parsing is columnar (``split`` + casts), bad lines are found with a
``limit(1)`` query and only then located in the file, and dense ids come from per-partition
offsets of a range-partitioned id column — no global ``row_number()`` on one partition and no
``collect()`` of edges. Column names follow GraphFrames (``id``, ``src``, ``dst``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from graphs.errors import InputFormatError
from graphs.formats import SPMF_SEPARATORS, get_format
from graphs.readers import find_bad_line

_INT_RE = r"^[+-]?[0-9]+$"


def _check_path(path: str) -> None:
    if "://" in path and not path.startswith("file:"):
        return  # remote filesystems: let Spark report
    p = Path(path.removeprefix("file:"))
    if not p.exists():
        raise InputFormatError(path, "file not found")


def read_tokens(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """Data lines of a text file as ``(file, text, tokens array<string>)``; comments/blank dropped."""
    _check_path(path)
    spec = get_format(fmt)
    df = spark.read.text(path).select(F.input_file_name().alias("file"),
                                      F.trim(F.regexp_replace("value", "\r", "")).alias("text"))
    df = df.where((F.col("text") != "") & ~F.col("text").startswith(spec.comment))
    return df.withColumn("tokens", F.split("text", r"[ \t]+"))


def _fail_on(df: DataFrame, bad: F.Column, comment: str, message: str, fallback_path: str) -> None:
    """Raise InputFormatError for the first row matching ``bad`` (one tiny query; none if clean)."""
    row = df.where(bad).select("file", "text").limit(1).collect()
    if row:
        f, text = row[0]
        local = f.removeprefix("file://").removeprefix("file:") if f else fallback_path
        line = find_bad_line(local, comment, text) if Path(local).exists() else None
        raise InputFormatError(local or fallback_path, f"{message}: {text[:80]!r}", line=line)


def _require_rows(df: DataFrame, path: str) -> None:
    if not df.limit(1).count():
        raise InputFormatError(path, "no data lines: the file is empty or only comments")


def read_edge_text(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """Read SNAP/KONECT/adjacency-list text into raw ``(src, dst, weight)`` with original ids."""
    spec = get_format(fmt)
    df = read_tokens(spark, path, fmt)
    _require_rows(df, path)
    n = F.size("tokens")
    if spec.max_cols is not None:
        _fail_on(df, (n < spec.min_cols) | (n > spec.max_cols), spec.comment,
                 f"expected {spec.min_cols}..{spec.max_cols} columns", path)
        _fail_on(df, ~F.col("tokens")[0].rlike(_INT_RE) | ~F.col("tokens")[1].rlike(_INT_RE),
                 spec.comment, "non-integer id", path)
        w = F.lit(1.0)
        if spec.weight_col is not None:
            w = F.when(n > spec.weight_col, F.col("tokens")[spec.weight_col].cast("float")).otherwise(F.lit(1.0))
        return df.select(F.col("tokens")[0].cast("long").alias("src"), F.col("tokens")[1].cast("long").alias("dst"),
                         F.coalesce(w, F.lit(1.0)).cast("float").alias("weight"))
    # adjacency list: node nbr nbr ...
    _fail_on(df, ~F.forall("tokens", lambda t: t.rlike(_INT_RE)), spec.comment, "non-integer id", path)
    ids = df.select(F.transform("tokens", lambda t: t.cast("long")).alias("t"))
    return ids.select(F.col("t")[0].alias("src"), F.explode(F.slice("t", 2, F.size("t"))).alias("dst"),
                      F.lit(1.0).cast("float").alias("weight"))


def read_list_text(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """Read ``key v1 v2 ...`` lines (labels, LightGCN splits) into ``(key, value)`` long pairs."""
    spec = get_format(fmt)
    df = read_tokens(spark, path, fmt)
    _require_rows(df, path)
    _fail_on(df, F.size("tokens") < spec.min_cols, spec.comment, f"expected at least {spec.min_cols} columns", path)
    _fail_on(df, ~F.forall("tokens", lambda t: t.rlike(_INT_RE)), spec.comment, "non-integer id", path)
    ids = df.select(F.transform("tokens", lambda t: t.cast("long")).alias("t"))
    return ids.select(F.col("t")[0].alias("key"), F.explode(F.slice("t", 2, F.size("t"))).alias("value"))


def read_baskets(spark: SparkSession, path: str) -> DataFrame:
    """Transactions (one user per line) → ``(user, item)``; SPMF -1/-2 separators are not items.

    Users are numbered by ``monotonically_increasing_id`` (unique, not dense).
    """
    df = read_tokens(spark, path, "baskets")
    _require_rows(df, path)
    _fail_on(df, ~F.forall("tokens", lambda t: t.rlike(_INT_RE)), "#", "non-integer item", path)
    df = df.select(F.monotonically_increasing_id().alias("user"),
                   F.explode(F.transform("tokens", lambda t: t.cast("long"))).alias("item"))
    return df.where(~F.col("item").isin(*SPMF_SEPARATORS))


def dense_ids(values: DataFrame, col: str, partitions: int = 8) -> DataFrame:
    """Map distinct ``col`` values to dense ids ``0..n-1`` in sorted order: ``(orig_id, id)``.

    Range-partition the distinct values, number rows inside each partition, then add the
    partition's offset (a prefix sum over ``partitions`` counts) — no single-partition window.
    """
    d = values.select(F.col(col).alias("orig_id")).distinct().repartitionByRange(partitions, "orig_id")
    d = d.withColumn("pid", F.spark_partition_id())
    d = d.withColumn("local", F.row_number().over(Window.partitionBy("pid").orderBy("orig_id")) - 1).cache()
    counts = d.groupBy("pid").count()
    offsets = counts.withColumn("offset", F.coalesce(F.sum("count").over(
        Window.orderBy("pid").rowsBetween(Window.unboundedPreceding, -1)), F.lit(0)))
    return d.join(F.broadcast(offsets.select("pid", "offset")), "pid").select(
        "orig_id", (F.col("local") + F.col("offset")).cast("long").alias("id"))


@dataclass(frozen=True)
class GraphTables:
    edges: DataFrame      # (src, dst, weight) dense ids
    vertices: DataFrame   # (id, orig_id)
    counts: dict          # input_edges, self_loops_dropped, duplicates_dropped


def build_graph(raw: DataFrame, directed: bool, drop_self_loops: bool = True, dedup: bool = True,
                extra_vertices: DataFrame | None = None, partitions: int = 8) -> GraphTables:
    """Canonicalise raw ``(src, dst, weight)`` edges: orient, drop loops/duplicates, relabel densely."""
    raw = raw.cache()
    n_input = raw.count()
    loops = raw.where(F.col("src") == F.col("dst")).count()
    e = raw.where(F.col("src") != F.col("dst")) if drop_self_loops else raw
    if not directed:
        e = e.select(F.least("src", "dst").alias("src"), F.greatest("src", "dst").alias("dst"), "weight")
    n_before = e.count()
    if dedup:
        e = e.groupBy("src", "dst").agg(F.max("weight").alias("weight"))
    e = e.cache()
    n_after = e.count()
    ends = raw.select(F.col("src").alias("v")).union(raw.select(F.col("dst").alias("v")))
    if extra_vertices is not None:
        ends = ends.union(extra_vertices.select(F.col(extra_vertices.columns[0]).alias("v")))
    vmap = dense_ids(ends, "v", partitions).cache()
    s = vmap.select(F.col("orig_id").alias("src"), F.col("id").alias("s"))
    d = vmap.select(F.col("orig_id").alias("dst"), F.col("id").alias("d"))
    edges = e.join(s, "src").join(d, "dst").select(F.col("s").alias("src"), F.col("d").alias("dst"),
                                                   F.col("weight").cast("float"))
    counts = {"input_edges": n_input, "self_loops": loops,
              "self_loops_dropped": loops if drop_self_loops else 0,
              "duplicates_dropped": (n_before - n_after) if dedup else 0}
    return GraphTables(edges, vmap.select("id", "orig_id"), counts)


def graph_stats(edges: DataFrame, n_nodes: int, directed: bool) -> dict:
    """Nodes, edges, in/out-degree max and mean, reciprocity (fraction of edges whose reverse exists)."""
    m = edges.count()
    if directed:
        out_deg = edges.groupBy("src").count().agg(F.max("count")).first()[0] or 0
        in_deg = edges.groupBy("dst").count().agg(F.max("count")).first()[0] or 0
        rev = edges.select(F.col("dst").alias("src"), F.col("src").alias("dst"))
        recip = edges.select("src", "dst").join(rev, ["src", "dst"], "left_semi").count() / m if m else 0.0
        return {"nodes": n_nodes, "edges": m, "directed": True,
                "out_degree_max": int(out_deg), "in_degree_max": int(in_deg),
                "out_degree_mean": m / n_nodes if n_nodes else 0.0, "in_degree_mean": m / n_nodes if n_nodes else 0.0,
                "reciprocity": recip}
    both = edges.select(F.col("src").alias("v")).union(edges.select(F.col("dst").alias("v")))
    dmax = both.groupBy("v").count().agg(F.max("count")).first()[0] or 0
    mean = 2 * m / n_nodes if n_nodes else 0.0
    return {"nodes": n_nodes, "edges": m, "directed": False, "out_degree_max": int(dmax), "in_degree_max": int(dmax),
            "out_degree_mean": mean, "in_degree_mean": mean, "reciprocity": 1.0}


def relabel_pairs(pairs: DataFrame, vmap: DataFrame, key: str = "key", out: str = "id") -> DataFrame:
    """Replace original ids in ``pairs[key]`` by dense ids from ``vmap (id, orig_id)``."""
    m = vmap.select(F.col("orig_id").alias(key), F.col("id").alias(out))
    return pairs.join(m, key).drop(key)


LABEL_SCHEMA = T.StructType([T.StructField("id", T.LongType()), T.StructField("label", T.IntegerType())])
