"""Spark side of interactions ingest beyond one file: a previous output, feedback, a user graph.

* :func:`read_previous` — an ``ingest_interactions`` output back in original ids (its dense ids
  are its own; days are chained on the original ids).
* :func:`feedback_rows` — the rules of :mod:`graphs.feedback` (positive rewards, one row per
  ``event_id``, the user from the ``(score_id, item)`` impression, nothing already present) on
  DataFrames; only the counts reach the driver.
* :func:`user_overlap` — interaction users against a user graph's vertices, joined on the original
  id: users in both, with friends only, with interactions only (a full outer join and one
  aggregate row).

Imported only by ``jobs/``; the cores stay Spark-free.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from graphs.feedback import FeedbackCounts

log = logging.getLogger(__name__)

ROW_COLUMNS = {"user": "bigint", "item": "bigint", "ts": "timestamp", "weight": "float", "event_id": "string"}
_INTEGRAL = (T.LongType, T.IntegerType, T.ShortType, T.ByteType)


def conform(df: DataFrame, columns: dict[str, str]) -> DataFrame:
    """``df`` with exactly ``columns`` (name → Spark type), missing ones as typed nulls.

    A numeric ``ts`` is read as seconds since the epoch."""
    def col(c: str, t: str):
        if c not in df.columns:
            return F.lit(None).cast(t).alias(c)
        if t == "timestamp" and isinstance(df.schema[c].dataType, T.NumericType):
            return F.timestamp_seconds(c).alias(c)
        return F.col(c).cast(t).alias(c)
    return df.select(*[col(c, t) for c, t in columns.items()])


def read_previous(spark: SparkSession, folder: str) -> DataFrame:
    """An ``ingest_interactions`` output as ``(user, item, ts?, weight?, event_id?)`` in original ids."""
    root = Path(folder.removeprefix("file:"))
    for name in ("interactions", "users", "items"):
        if "://" not in folder and not (root / name).exists():
            raise FileNotFoundError(f"{folder}: not an ingest_interactions output (no '{name}' table)")
    inter = spark.read.parquet(f"{folder}/interactions")
    users = spark.read.parquet(f"{folder}/users").select(F.col("id").alias("user"), F.col("orig_id").cast("long").alias("u"))
    items = spark.read.parquet(f"{folder}/items").select(F.col("id").alias("item"), F.col("orig_id").cast("long").alias("i"))
    extra = [c for c in ("ts", "weight", "event_id") if c in inter.columns]
    return (inter.join(users, "user").join(items, "item")
            .select(F.col("u").alias("user"), F.col("i").alias("item"), *extra))


def feedback_rows(events: DataFrame, impressions: DataFrame, known_event_ids: DataFrame | None = None
                  ) -> tuple[DataFrame, FeedbackCounts]:
    """New interaction rows ``(user, item, ts, weight, event_id)`` from an export, and the counts.

    ``events``: ``event_id, score_id, item, reward, ts[, seq]``; ``impressions``: ``score_id, user,
    item`` (one row per cluster × item); ``known_event_ids``: a DataFrame with an ``event_id``
    column. The returned DataFrame is cached (it is small: one day's positive events).
    """
    seq = F.col("seq").cast("long") if "seq" in events.columns else F.lit(None).cast("long")
    ev = events.select(F.col("event_id").cast("string"), F.col("score_id").cast("string"), F.col("item").cast("long"),
                       F.col("reward").cast("float"), F.col("ts").cast("timestamp"), seq.alias("seq"))
    n_events, n_pos = ev.agg(F.count(F.lit(1)), F.sum((F.col("reward") > 0).cast("long"))).first()
    n_pos = n_pos or 0
    first = Window.partitionBy("event_id").orderBy(F.col("seq").asc_nulls_last(), "ts", "score_id", "item")
    uniq = (ev.where(F.col("reward") > 0).withColumn("_r", F.row_number().over(first)).where("_r = 1")
            .drop("_r", "seq").cache())
    imp = (impressions.select(F.col("score_id").cast("string"), F.col("item").cast("long"), F.col("user").cast("long"))
           .join(uniq.select("score_id", "item"), ["score_id", "item"], "left_semi").distinct())  # only the events' rows
    j = uniq.join(imp, ["score_id", "item"], "left")
    known = F.lit(False)
    if known_event_ids is not None:
        j = j.join(known_event_ids.select("event_id").distinct().withColumn("_known", F.lit(True)), "event_id", "left")
        known = F.coalesce(F.col("_known"), F.lit(False))
    j = j.withColumn("_known", known).cache()
    n_rows, n_unique, n_unmatched, n_known = j.agg(
        F.count(F.lit(1)), F.count_distinct("event_id"), F.sum(F.col("user").isNull().cast("long")),
        F.sum((F.col("user").isNotNull() & F.col("_known")).cast("long"))).first()
    if n_rows != n_unique:
        bad = j.groupBy("event_id").count().where("count > 1").join(j, "event_id").select("score_id", "item").first()
        j.unpersist()
        uniq.unpersist()
        raise ValueError(f"impressions: (score_id, item) = ({bad['score_id']!r}, {bad['item']}) names several users")
    rows = (j.where(F.col("user").isNotNull() & ~F.col("_known"))
            .select("user", "item", "ts", F.col("reward").alias("weight"), "event_id").cache())
    n_added = rows.count()
    j.unpersist()
    uniq.unpersist()
    counts = FeedbackCounts(int(n_events), int(n_events - n_pos), int(n_pos - n_unique), int(n_unmatched or 0),
                            int(n_known or 0), int(n_added))
    return rows, counts


def user_overlap(users: DataFrame, vertices: DataFrame) -> dict:
    """Users of the interactions vs the user graph's vertices, by original id (``orig_id`` on both).

    Both ingests write ``orig_id`` as int64; should either side be a string, both are compared as
    strings. Returns ``users_in_both``, ``users_with_friends_no_interactions``,
    ``users_with_interactions_no_friends``, the two totals and ``key_type``.
    """
    tu, tv = users.schema["orig_id"].dataType, vertices.schema["orig_id"].dataType
    as_string = not (isinstance(tu, _INTEGRAL) and isinstance(tv, _INTEGRAL))
    if as_string:
        log.warning("orig_id types differ (%s vs %s): comparing users and vertices as strings", tu, tv)
    key = F.col("orig_id").cast("string" if as_string else "long").alias("k")
    a = users.select(key).distinct().withColumn("u", F.lit(1))
    b = vertices.select(key).distinct().withColumn("g", F.lit(1))
    row = a.join(b, "k", "full").agg(
        F.sum(F.col("u").isNotNull().cast("long")).alias("interaction_users"),
        F.sum(F.col("g").isNotNull().cast("long")).alias("graph_users"),
        F.sum((F.col("u").isNotNull() & F.col("g").isNotNull()).cast("long")).alias("users_in_both"),
        F.sum((F.col("u").isNull()).cast("long")).alias("users_with_friends_no_interactions"),
        F.sum((F.col("g").isNull()).cast("long")).alias("users_with_interactions_no_friends")).first()
    out = {k: int(v or 0) for k, v in row.asDict().items()}
    out["key_type"] = "string" if as_string else "int64"
    return out
