"""Spark side of the Diag-LinUCB batch update (imported only by ``jobs/bandit_update.py``).

Spark does the part that scales with the log; the driver merges the result with the one state
core, :meth:`recsys.bandits.state.EdgeStats.apply` — the function the scoring service and the
offline policy learn with, so batch and online cannot drift apart:

1. events are deduplicated by ``event_id`` (one row kept per id, deterministically) and
   anti-joined with the ids already merged into the current version (``merged_events``);
2. joined to the impressions by ``(score_id, item)`` — one row per context cluster with its
   weight ``w_uc`` — events without an impression are left for a later run (not marked merged);
   an impression row with ``cluster = -1`` (weight 0) marks an impression served without a
   cluster context (the service's ``fallback`` path): its events are merged, and add nothing;
3. per edge the partial sums ``Δd = Σ w²``, ``Δb = Σ w·r`` (weights taken as float32, as recorded,
   then squared in float64) — sums, so Spark may add them in any order;
4. :func:`collect_delta` brings the per-edge sums to the driver as an
   :class:`~recsys.bandits.state.EdgeDelta` (one row per touched edge), which the job applies to
   the version's statistics following the version's ``off_graph`` rule.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recsys.bandits.state import EdgeDelta

__all__ = ["EVENT_COLUMNS", "IMPRESSION_COLUMNS", "UpdatePlan", "check_table", "read_table", "plan_update",
           "collect_delta"]

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
    # cluster -1 (with weight 0) marks an impression without a cluster context (the fallback path)
    return (F.col("score_id").isNull() | F.col("cluster").isNull() | F.col("item").isNull() | F.col("weight").isNull()
            | F.isnan("weight") | (F.col("weight") < 0) | (F.col("weight") == float("inf"))
            | (F.col("cluster") < -1) | ((F.col("cluster") == -1) & (F.col("weight") != 0)))


def check_table(df: DataFrame, path: str, what: str) -> int:
    """Row count of ``df``; raises naming the path and fields when a row has nulls or non-finite values.

    Events need finite rewards (NaN/inf rejected); impressions finite weights ≥ 0 and a cluster ≥ 0,
    or -1 with weight 0 (no context). The whole run is refused and nothing is written.
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
    """Lazy DataFrames of one update: the per-edge sums, the merged ids and the new events' rows."""

    deltas: DataFrame         # (cluster int, item bigint, w2 double, wr double): one row per touched pair
    merged_events: DataFrame  # (event_id string, ts timestamp): previous ∪ newly merged
    new_events: DataFrame     # the newly merged events (event_id, ts[, seq])


def plan_update(merged: DataFrame, events: DataFrame, impressions: DataFrame,
                cutoff_ts: float | None = None) -> UpdatePlan:
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
    deltas = (rows.where((w != 0) & (F.col("cluster") >= 0))
              .groupBy("cluster", "item")
              .agg(F.sum(w * w).alias("w2"), F.sum(w * F.col("reward").cast("double")).alias("wr")))
    new_cols = ["event_id", "ts"] + (["seq"] if "seq" in events.columns else [])
    new_events = matched.select(*new_cols)
    merged_out = merged.select("event_id", "ts").unionByName(new_events.select("event_id", "ts"))
    return UpdatePlan(deltas, merged_out, new_events)


def collect_delta(deltas: DataFrame) -> EdgeDelta:
    """The per-edge sums on the driver (Arrow transfer), ready for :meth:`EdgeStats.apply`."""
    t = deltas.select(F.col("cluster").cast("int"), F.col("item").cast("bigint"), F.col("w2").cast("double"),
                      F.col("wr").cast("double")).toArrow()
    col = (lambda name: t.column(name).to_numpy())
    return EdgeDelta.from_pairs(col("cluster"), col("item"), col("w2"), col("wr"))
