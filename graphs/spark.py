"""Spark side of graph ingest: text readers, dense relabelling and graph statistics on DataFrames.

Everything stays distributed: parsing is columnar (``split`` + casts), bad lines are found with a
``limit(1)`` query and only then located in the file, and dense ids come from per-partition
offsets of a range-partitioned id column — no global ``row_number()`` on one partition and no
``collect()`` of edges. Column names follow GraphFrames (``id``, ``src``, ``dst``).
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from graphs.errors import InputFormatError
from graphs.formats import SPMF_SEPARATORS, TextFormat, get_format
from graphs.readers import HEADER_MSG, find_bad_line, header_line, is_header, undecodable_line

_INT_RE = r"^[+-]?[0-9]+$"
NOT_UTF8 = "not UTF-8 text"


def _id_error(tokens) -> Column:
    """The error of a list of id tokens: not integers, beyond int64, negative (None when fine)."""
    return (F.when(F.exists(tokens, lambda t: F.instr(t, "\ufffd") > 0), F.lit(NOT_UTF8))
            .when(~F.forall(tokens, lambda t: t.rlike(_INT_RE)), F.lit("non-integer id"))
            .when(F.exists(tokens, lambda t: t.try_cast("long").isNull()), F.lit("id beyond int64"))
            .when(F.exists(tokens, lambda t: t.startswith("-")), F.lit("negative id")))


def _check_path(path: str) -> None:
    """A local input must exist, and its ``.gz`` files must be complete gzip streams: Hadoop's codec
    reads a truncated stream as a shorter file without an error, so each one is read through once
    on the driver (one decompression pass, ~110 MB of text/s: 0.08-0.10 s for Slashdot's 3.2 MB
    ``.gz``; an error names the file)."""
    if "://" in path and not path.startswith("file:"):
        return  # remote filesystems: let Spark report
    p = Path(path.removeprefix("file:"))
    if not p.exists():
        raise InputFormatError(path, "file not found")
    files = sorted(p.rglob("*.gz")) if p.is_dir() else [p] if p.suffix == ".gz" else []
    for f in files:
        if p.is_dir() and any(part.startswith(("_", ".")) for part in f.relative_to(p).parts):
            continue  # hidden and metadata files are not input
        _check_gzip(f)


def _check_gzip(f: Path) -> None:
    import gzip
    import zlib

    try:
        with gzip.open(f, "rb") as fh:
            while fh.read(1 << 22):
                pass
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise InputFormatError(str(f), f"corrupt or truncated gzip stream ({type(e).__name__}: {e})") from None


def read_tokens(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """Data lines of a text file as ``(file, text, tokens array<string>)``; comments/blank dropped."""
    _check_path(path)
    spec = get_format(fmt)
    df = spark.read.text(path).select(F.input_file_name().alias("file"),
                                      F.trim(F.regexp_replace("value", "\r", "")).alias("text"))
    df = df.where((F.col("text") != "") & ~F.col("text").startswith(spec.comment))
    return df.withColumn("tokens", F.split("text", r"\s*,\s*" if spec.sep == "," else r"[ \t]+"))


def _local(f: str | None, fallback: str) -> str:
    """A file name as Spark reports it (``file:`` URI, percent-encoded) as a local path."""
    return unquote(f.removeprefix("file://").removeprefix("file:")) if f else fallback


def _raise_first_error(df: DataFrame, comment: str, fallback_path: str) -> None:
    """Raise InputFormatError for the first row whose ``_err`` is set (rows carry ``_err``/``_text``/``_file``)."""
    row = df.where(F.col("_err").isNotNull()).select("_file", "_text", "_err").limit(1).collect()
    if row:
        f, text, err = row[0]
        local = _local(f, fallback_path)
        if not Path(local).exists():
            line = None
        elif "\ufffd" in text:  # Spark decodes bad UTF-8 as U+FFFD: find the raw line
            line = undecodable_line(local)
        else:
            line = find_bad_line(local, comment, text)
        raise InputFormatError(local or fallback_path, f"{err}: {text[:80]!r}", line=line)


def _require_rows(df: DataFrame, path: str, what: str = "comments") -> None:
    with read_failures(path):
        if not df.limit(1).count():
            raise InputFormatError(path, f"no data lines: the file is empty or only {what}")


@contextmanager
def read_failures(path: str):
    """A file Spark cannot read (a truncated or corrupt gzip stream) as InputFormatError naming it."""
    try:
        yield
    except InputFormatError:
        raise
    except Exception as e:  # noqa: BLE001 — Py4JJavaError / SparkException, matched on the message
        text = str(e)
        if "FAILED_READ_FILE" not in text and "EOFException" not in text and "ZipException" not in text:
            raise
        m = re.search(r"reading file (\S+?)\.?\s", text)
        where = _local(m.group(1), path) if m else path
        cause = ("corrupt or truncated gzip stream" if where.endswith(".gz") or "Zip" in text or "EOF" in text
                 else "unreadable file")
        raise InputFormatError(where, f"cannot read: {cause}") from None


def file_headers(spark: SparkSession, path: str, spec: TextFormat) -> dict[str | None, str]:
    """Header text of each input file whose first data line is a header (:func:`graphs.readers.is_header`).

    Local files (or a folder's visible files) are opened on the driver, reading only their first
    lines. Remote paths: the first lines of the input; key ``None`` then allows that header once in
    any file.
    """
    if not spec.header:
        return {}
    if "://" in path and not path.startswith("file:"):
        lines = [t.strip() for t in spark.sparkContext.textFile(path).take(64)]
        first = next((t for t in lines if t and not t.startswith(spec.comment)), None)
        return {None: first} if first is not None and is_header(first, spec) else {}
    p = Path(path.removeprefix("file:"))
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(("_", "."))) if p.is_dir() else [p]
    found = {str(f.resolve()): header_line(f, spec) for f in files}
    return {f: h[1] for f, h in found.items() if h is not None}


def _check_headers(parsed: DataFrame, headers: dict[str | None, str], comment: str, path: str) -> None:
    """A header's text may occur once per file, as its first data line; a second copy is a bad line."""
    rows = parsed.where("_hdr").groupBy("_file", "_text").count().collect()  # at most files x header texts
    for f, text, n in rows:
        local = _local(f, path)
        key = str(Path(local).resolve()) if None not in headers else None
        allowed = 1 if headers.get(key) == text else 0
        if n > allowed:
            line = find_bad_line(local, comment, text, occurrence=allowed + 1) if Path(local).exists() else None
            raise InputFormatError(local, f"{HEADER_MSG}: {text[:80]!r}", line=line)


def read_edge_text(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """Read SNAP/KONECT/adjacency-list text into raw ``(src, dst, weight)`` with original ids.

    One pass over the text: each line is parsed and flagged (``_err``) at once; the parsed rows are
    cached and the flags checked on the cache, so a clean file is read once.
    """
    spec = get_format(fmt)
    df = read_tokens(spark, path, fmt)
    headers = file_headers(spark, path, spec)
    n = F.size("tokens")
    hdr = F.col("text").isin(*sorted(set(headers.values()))) if headers else F.lit(False)
    keep = lambda err: [F.when(err.isNotNull() | hdr, F.col("file")).alias("_file"),  # noqa: E731
                        F.when(err.isNotNull() | hdr, F.col("text")).alias("_text"), err.alias("_err"), hdr.alias("_hdr")]
    if spec.max_cols is not None:
        cols = f"{spec.min_cols}" if spec.min_cols == spec.max_cols else f"{spec.min_cols}..{spec.max_cols}"
        any_int = F.exists("tokens", lambda t: t.rlike(_INT_RE))
        w = F.lit(1.0)
        bad_w = F.lit(False)
        if spec.weight_col is not None:
            wt = F.get("tokens", spec.weight_col).try_cast("double")
            w = F.when(n > spec.weight_col, wt).otherwise(F.lit(1.0))
            bad_w = (n > spec.weight_col) & (wt.isNull() | F.isnan(wt) | (F.abs(wt) == float("inf")))
        err = (F.when(hdr, F.lit(None).cast("string"))
               .when(F.instr("text", "\ufffd") > 0, F.lit(NOT_UTF8))
               .when((n < spec.min_cols) | (n > spec.max_cols), F.lit(f"expected {cols} columns"))
               .when(F.lit(spec.header) & ~any_int, F.lit(HEADER_MSG))
               .otherwise(_id_error(F.slice("tokens", 1, 2))))
        err = F.coalesce(err, F.when(~hdr & bad_w, F.lit("weight is not a finite number")))
        parsed = df.select(F.get("tokens", 0).try_cast("long").alias("src"), F.get("tokens", 1).try_cast("long").alias("dst"),
                           F.coalesce(w, F.lit(1.0)).cast("float").alias("weight"), *keep(err))
    else:  # adjacency list: node nbr nbr ...
        err = _id_error(F.col("tokens"))
        parsed = df.select(F.transform("tokens", lambda t: t.try_cast("long")).alias("t"), *keep(err))
    parsed = cached = parsed.cache()
    _require_rows(parsed.where(~F.col("_hdr")), path, "comments and a header" if headers else "comments")
    with read_failures(path):  # a stream that breaks after its first lines
        _raise_first_error(parsed, spec.comment, path)
    if headers:
        _check_headers(parsed, headers, spec.comment, path)
    parsed = parsed.where(~F.col("_hdr"))
    if spec.max_cols is not None:
        clean = parsed.select("src", "dst", "weight")
    else:
        clean = parsed.select(F.col("t")[0].alias("src"), F.explode(F.slice("t", 2, F.size("t"))).alias("dst"),
                              F.lit(1.0).cast("float").alias("weight"))
    clean = clean.cache()  # one cached copy of the edges: the validated rows replace the parse cache
    clean.count()
    cached.unpersist()
    return clean


def _int_lists(df: DataFrame, path: str, comment: str, min_cols: int, what: str, ids: bool = False) -> DataFrame:
    """Lines of integers as cached ``t array<long>``; the first bad line raises (one text pass).
    ``ids``: also refuse negative values and values beyond int64."""
    err = (F.when(F.size("tokens") < min_cols, F.lit(f"expected at least {min_cols} columns"))
           .when(F.instr("text", "\ufffd") > 0, F.lit(NOT_UTF8))
           .when(~F.forall("tokens", lambda t: t.rlike(_INT_RE)), F.lit(f"non-integer {what}"))
           .when(F.exists("tokens", lambda t: t.try_cast("long").isNull()), F.lit(f"{what} beyond int64")))
    if ids:
        err = F.coalesce(err, F.when(F.exists("tokens", lambda t: t.startswith("-")), F.lit(f"negative {what}")))
    parsed = df.select(F.transform("tokens", lambda t: t.try_cast("long")).alias("t"),
                       F.when(err.isNotNull(), F.col("file")).alias("_file"),
                       F.when(err.isNotNull(), F.col("text")).alias("_text"), err.alias("_err")).cache()
    _require_rows(parsed, path)
    with read_failures(path):
        _raise_first_error(parsed, comment, path)
    return parsed.select("t")


def read_list_text(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """Read ``key v1 v2 ...`` lines (labels, LightGCN splits) into ``(key, value)`` long pairs."""
    spec = get_format(fmt)
    ids = _int_lists(read_tokens(spark, path, fmt), path, spec.comment, spec.min_cols, "id", ids=True)
    return ids.select(F.col("t")[0].alias("key"), F.explode(F.slice("t", 2, F.size("t"))).alias("value"))


def read_baskets(spark: SparkSession, path: str) -> DataFrame:
    """Transactions (one user per line) → ``(user, item)``; SPMF -1/-2 separators are not items.

    Users are numbered by ``monotonically_increasing_id`` (unique, not dense).
    """
    ids = _int_lists(read_tokens(spark, path, "baskets"), path, "#", 1, "item")
    df = ids.withColumn("user", F.monotonically_increasing_id()).select("user", F.explode("t").alias("item"))
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
    raw = raw if raw.is_cached else raw.cache()
    n_input, loops = raw.agg(F.count(F.lit(1)), F.sum((F.col("src") == F.col("dst")).cast("long"))).first()
    loops = loops or 0
    e = raw.where(F.col("src") != F.col("dst")) if drop_self_loops else raw
    if not directed:
        e = e.select(F.least("src", "dst").alias("src"), F.greatest("src", "dst").alias("dst"), "weight")
    n_before = n_input - loops if drop_self_loops else n_input
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
