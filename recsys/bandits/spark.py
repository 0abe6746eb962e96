"""Spark side of the Diag-LinUCB batch update (imported only by ``jobs/bandit_update.py``).

The same sums as :func:`recsys.bandits.diag_linucb.aggregate_events`, over DataFrames:

1. events are deduplicated by ``event_id`` (one row kept per id, deterministically) and
   anti-joined with the ids already merged into the current version (``merged_events``);
2. joined to the impressions by ``(score_id, item)`` — one row per context cluster with its
   weight ``w_uc`` — events without an impression are left for a later run (not marked merged);
3. per edge ``Δd = Σ w²``, ``Δb = Σ w·r`` (weights taken as float32, as recorded, then squared in
   float64) — sums, so Spark may add them in any order;
4. joined onto the current edges following the version's ``off_graph`` rule (manifest
   ``extra.off_graph``, see :class:`recsys.bandits.diag_linucb.DiagLinUCB`): ``"prior"`` (default,
   what the scoring service does online) full-outer-joins, so a pair that is not an edge yet
   becomes one with ``d = λ + Δd, b = Δb``; ``"skip"`` left-joins, so only graph edges learn.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

__all__ = ["EVENT_COLUMNS", "IMPRESSION_COLUMNS", "UpdatePlan", "check_table", "read_table", "plan_update"]

EVENT_COLUMNS = {"event_id": "string", "score_id": "string", "item": "bigint", "reward": "float", "ts": "timestamp"}
IMPRESSION_COLUMNS = {"score_id": "string", "user": "bigint", "cluster": "int", "weight": "float", "item": "bigint",
                      "version": "bigint", "ts": "timestamp"}


def read_table(spark: SparkSession, path: str, columns: dict[str, str], what: str) -> DataFrame:
    """Read Parquet and cast to ``columns``; a missing column raises naming the path and field."""
    df = spark.read.parquet(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} {path}: missing column(s) {missing}; have {df.columns}")
    extra = ["seq"] if "seq" in df.columns else []
    return df.select(*[F.col(c).cast(t).alias(c) for c, t in columns.items()],
                     *[F.col(c).cast("bigint").alias(c) for c in extra])


def _bad_events(df: DataFrame):
    return (F.col("event_id").isNull() | F.col("score_id").isNull() | F.col("item").isNull() | F.col("ts").isNull()
            | F.col("reward").isNull() | F.isnan("reward") | (F.abs(F.col("reward")) == float("inf")))


def _bad_impressions(df: DataFrame):
    return (F.col("score_id").isNull() | F.col("cluster").isNull() | F.col("item").isNull() | F.col("weight").isNull()
            | F.isnan("weight") | (F.col("weight") < 0) | (F.col("weight") == float("inf")))


def check_table(df: DataFrame, path: str, what: str) -> int:
    """Row count of ``df``; raises naming the path and fields when a row has nulls or non-finite values.

    Events need finite rewards (NaN/inf rejected); impressions finite weights ≥ 0. The whole run is
    refused and nothing is written.
    """
    bad = _bad_events(df) if what == "events" else _bad_impressions(df)
    row = df.agg(F.count("*").alias("n"), F.sum(bad.cast("int")).alias("bad")).collect()[0]
    if row["bad"]:
        examples = [r.asDict() for r in df.where(bad).limit(3).collect()]
        field = "reward" if what == "events" else "weight"
        raise ValueError(f"{what} {path}: {row['bad']} row(s) with null fields or non-finite {field}, e.g. {examples}")
    return int(row["n"])


@dataclass(frozen=True)
class UpdatePlan:
    """Lazy DataFrames of one update: the new edges and merged ids, and the new events' rows."""

    edges: DataFrame          # (cluster int, item bigint, d double, b double)
    merged_events: DataFrame  # (event_id string, ts timestamp): previous ∪ newly merged
    new_events: DataFrame     # the newly merged events (event_id, ts[, seq])
    deltas: DataFrame         # (cluster, item, w2, wr, on_graph): on_graph False = a new edge


def plan_update(edges: DataFrame, merged: DataFrame, events: DataFrame, impressions: DataFrame, lam: float,
                off_graph: str = "prior", cutoff_ts: float | None = None) -> UpdatePlan:
    """Build the update (nothing is computed until an action).

    ``cutoff_ts`` (seconds, UTC; the previous watermark minus a dedup horizon) bounds the merged-id
    set: ids of events older than it are dropped from ``merged_events`` and events older than it
    are refused as late (they could no longer be deduplicated). None keeps every id forever.
    """
    if cutoff_ts is not None:
        keep = F.unix_micros("ts") >= F.lit(int(cutoff_ts * 1e6))
        events, merged = events.where(keep), merged.where(keep)
    order = [F.col("ts"), F.col("score_id"), F.col("item"), F.col("reward")]
    first = Window.partitionBy("event_id").orderBy(*order)
    ev = (events.withColumn("_rn", F.row_number().over(first)).where(F.col("_rn") == 1).drop("_rn")
          .join(merged.select("event_id"), "event_id", "left_anti"))
    imp = impressions.select("score_id", "item", "cluster", "weight").dropDuplicates(["score_id", "item", "cluster"])
    shown = imp.select("score_id", "item").distinct()
    matched = ev.join(shown, ["score_id", "item"], "left_semi")
    rows = matched.join(imp, ["score_id", "item"], "inner")
    w = F.col("weight").cast("double")
    deltas = (rows.where(w != 0)
              .groupBy("cluster", "item")
              .agg(F.sum(w * w).alias("w2"), F.sum(w * F.col("reward").cast("double")).alias("wr")))
    if off_graph not in ("prior", "skip"):
        raise ValueError(f"off_graph must be 'prior' or 'skip', got {off_graph!r}")
    joined = edges.join(deltas, ["cluster", "item"], "full_outer" if off_graph == "prior" else "left")
    new_edges = joined.select(
        F.col("cluster").cast("int"), F.col("item").cast("bigint"),
        (F.coalesce(F.col("d"), F.lit(float(lam))) + F.coalesce(F.col("w2"), F.lit(0.0))).alias("d"),
        (F.coalesce(F.col("b"), F.lit(0.0)) + F.coalesce(F.col("wr"), F.lit(0.0))).alias("b"))
    keys = edges.select("cluster", "item").withColumn("on_graph", F.lit(True))
    flagged = deltas.join(keys, ["cluster", "item"], "left").fillna({"on_graph": False})
    new_cols = ["event_id", "ts"] + (["seq"] if "seq" in events.columns else [])
    new_events = matched.select(*new_cols)
    merged_out = merged.select("event_id", "ts").unionByName(new_events.select("event_id", "ts"))
    return UpdatePlan(new_edges, merged_out, new_events, flagged)
