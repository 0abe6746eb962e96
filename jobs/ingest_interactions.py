"""Ingest user–item interactions: ``interactions(user, item, ts?, weight?[, event_id])``, ``users``, ``items``.

Users and items get separate dense id spaces (``users(id, orig_id)``, ``items(id, orig_id)``;
``orig_id`` int64, like the graph's ``vertices.orig_id``).

    spark-submit --py-files dist/graphrec.zip jobs/ingest_interactions.py \\
        --input lastfm_social/train_set.txt.gz --format csv-pairs --output out/interactions \\
        [--graph out/graph]                                   # overlap with the user graph → stats.json
        [--previous out/interactions/ds=D-1] [--feedback out/events/ds=D-1] [--missing-ok]

The day's rows are the union of

* the base: ``--input`` (a text file or Parquet; duplicate ``(user, item)`` rows merged), or, without
  ``--input``, every row of ``--previous`` (the previous day's output, read back in original ids);
* with ``--input`` and ``--previous``: the previous output's *feedback* rows (``event_id`` set), so
  feedback accumulates over days while the base is refreshed;
* ``--feedback``: the positive, acknowledged events of an ``export_events`` folder joined to their
  impressions on ``(score_id, item)`` for the user, one row per ``event_id`` not already present
  (:mod:`graphs.feedback` states the rules; :mod:`graphs.spark_interactions` runs them).

With ``--previous`` or ``--feedback`` the table has ``ts`` (timestamp) and ``event_id`` (string, null
for non-feedback rows); feedback rows carry ``weight = reward`` when the table has weights. The same
inputs always give the same output, so re-running a day changes nothing.
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from graphs.formats import INTERACTION_FORMATS
from jobs.runtime.cli import arg, parse_config, run_job

log = logging.getLogger("graphrec.ingest_interactions")


@dataclass(frozen=True)
class IngestInteractionsConfig:
    input: str | None = arg(help="text file (lightgcn, pairs, csv-pairs; .gz ok) or Parquet dir")
    format: str | None = arg(help="format of --input", choices=INTERACTION_FORMATS)
    output: str = arg(help="output DIR (replaced atomically)")
    user_col: str = arg("user", "Parquet input: user column")
    item_col: str = arg("item", "Parquet input: item column")
    partitions: int = arg(8, "output partitions")
    graph: str | None = arg(None, "ingest_graph output of the user graph: report the user overlap in stats.json")
    previous: str | None = arg(None, "a previous ingest_interactions output to build on")
    feedback: str | None = arg(None, "export_events DIR (events/, impressions/) or an events Parquet dir")
    impressions: str | None = arg(None, "impressions Parquet dir (default: FEEDBACK/impressions)")
    missing_ok: bool = arg(False, "skip a --previous or --feedback path that does not exist (a first day) "
                                  "instead of failing")

    def __post_init__(self):
        if self.input is None and self.previous is None:
            raise ValueError("give --input, --previous or both")
        if self.input is not None and self.format not in INTERACTION_FORMATS:
            raise ValueError(f"--format must be one of {INTERACTION_FORMATS}, got {self.format!r}")
        if self.impressions is not None and self.feedback is None:
            raise ValueError("--impressions needs --feedback")
        if self.partitions < 1:
            raise ValueError("--partitions must be >= 1")

    @property
    def feedback_mode(self) -> bool:
        """Rows may come from feedback: the table then has ``ts`` and ``event_id``."""
        return self.previous is not None or self.feedback is not None


def parse_args(argv=None) -> IngestInteractionsConfig:
    return parse_config(IngestInteractionsConfig, argv, prog="ingest_interactions",
                        description=__doc__.splitlines()[0])


def read_input(spark, cfg: IngestInteractionsConfig):
    """The ``--input`` rows ``(user, item, ts?, weight?)`` in original ids, and the extra columns."""
    from pyspark.sql import functions as F

    from graphs.spark import read_edge_text, read_list_text
    from graphs.spark_helpers import read_parquet

    if cfg.format == "lightgcn":
        return read_list_text(spark, cfg.input, "lightgcn").select(F.col("key").alias("user"), F.col("value").alias("item")), []
    if cfg.format != "parquet":
        return read_edge_text(spark, cfg.input, cfg.format).select(F.col("src").alias("user"), F.col("dst").alias("item")), []
    src = read_parquet(spark, cfg.input, (cfg.user_col, cfg.item_col))
    extra = [c for c in ("ts", "weight") if c in src.columns]
    return src.select(F.col(cfg.user_col).cast("long").alias("user"), F.col(cfg.item_col).cast("long").alias("item"),
                      *[F.col(c) for c in extra]), extra


def feedback_paths(cfg: IngestInteractionsConfig) -> tuple[str, str] | None:
    """``(events, impressions)`` of ``--feedback``; None when absent and ``--missing-ok``."""
    root = Path(cfg.feedback.removeprefix("file:"))
    if not root.exists():
        if cfg.missing_ok:
            return None
        raise FileNotFoundError(f"--feedback {cfg.feedback}: not found")
    export = (root / "events").is_dir()
    events = str(root / "events") if export else cfg.feedback
    imps = cfg.impressions or (str(root / "impressions") if export else None)
    if imps is None or not Path(imps.removeprefix("file:")).exists():
        raise FileNotFoundError(f"--feedback {cfg.feedback}: no impressions (give --impressions, or an export DIR)")
    return events, imps


def run(spark, cfg: IngestInteractionsConfig) -> dict:
    from pyspark.sql import functions as F

    from graphs.spark import dense_ids
    from graphs.spark_interactions import ROW_COLUMNS, conform, read_previous, user_overlap
    from jobs.runtime.output import publish

    t0 = time.perf_counter()
    parts, stats, extra = [], {"input_rows": 0, "duplicates_dropped": 0}, []
    if cfg.input is not None:
        raw, extra = read_input(spark, cfg)
        raw = raw.cache()
        n_raw = raw.count()
        if n_raw == 0:
            raise ValueError(f"{cfg.input}: no interactions")
        agg = [F.max("ts").alias("ts")] if "ts" in extra else []
        agg += [F.sum("weight").cast("float").alias("weight")] if "weight" in extra else []
        base = (raw.groupBy("user", "item").agg(*agg) if agg else raw.dropDuplicates(["user", "item"])).cache()
        stats.update(input_rows=n_raw, duplicates_dropped=n_raw - base.count())
        parts.append(base)
    if cfg.previous is not None:
        if cfg.missing_ok and not Path(cfg.previous.removeprefix("file:")).exists():
            log.warning("--previous %s does not exist: skipped (--missing-ok)", cfg.previous)
            stats["previous"] = {"path": cfg.previous, "missing": True}
            if not parts:
                raise FileNotFoundError(f"--previous {cfg.previous}: not found and no --input to start from")
        else:
            prev = read_previous(spark, cfg.previous)
            extra += [c for c in ("ts", "weight") if c in prev.columns and c not in extra]
            prev = conform(prev, ROW_COLUMNS).cache()
            kept = prev.where(F.col("event_id").isNotNull()) if cfg.input is not None else prev
            n_prev, n_fb = prev.agg(F.count(F.lit(1)), F.count("event_id")).first()
            parts.append(kept)
            stats["previous"] = {"path": cfg.previous, "rows": n_prev, "feedback_rows": n_fb,
                                 "kept": n_fb if cfg.input is not None else n_prev}
    columns = {c: t for c, t in ROW_COLUMNS.items() if c in ("user", "item", *extra)}
    if cfg.feedback_mode:
        columns = {c: t for c, t in ROW_COLUMNS.items() if c != "weight" or "weight" in extra}
    rows = parts[0] if len(parts) == 1 else conform(parts[0], columns).unionByName(conform(parts[1], columns))
    paths = feedback_paths(cfg) if cfg.feedback is not None else None
    if cfg.feedback is not None and paths is None:
        log.warning("--feedback %s does not exist: skipped (--missing-ok)", cfg.feedback)
        stats["feedback"] = {"path": cfg.feedback, "missing": True}
    elif paths is not None:
        stats["feedback"], rows = _add_feedback(spark, rows, columns, paths)
    rows = conform(rows, columns) if cfg.feedback_mode else rows
    users = dense_ids(rows, "user", cfg.partitions).cache()
    items = dense_ids(rows, "item", cfg.partitions).cache()
    order = ["user", "item"] + (["event_id"] if cfg.feedback_mode else [])
    inter = (rows.join(users.select(F.col("orig_id").alias("user"), F.col("id").alias("u")), "user")
             .join(items.select(F.col("orig_id").alias("item"), F.col("id").alias("i")), "item")
             .select(F.col("u").alias("user"), F.col("i").alias("item"), *[c for c in columns if c not in ("user", "item")])
             .repartition(cfg.partitions, "user").sortWithinPartitions(*order).cache())
    counts = {"users": users.count(), "items": items.count(), "interactions": inter.count()}
    stats = {**counts, **stats}
    if cfg.graph is not None:
        stats["overlap"] = {"graph": cfg.graph, **user_overlap(users, _vertices(spark, cfg.graph))}
        log.info("user overlap with %s: %s", cfg.graph, stats["overlap"])
    meta = publish(cfg.output, "ingest_interactions", asdict(cfg),
                   {"interactions": inter, "users": users.select("id", "orig_id").orderBy("id"),
                    "items": items.select("id", "orig_id").orderBy("id")},
                   {"stats.json": stats}, rows=counts, timings={"ingest_s": round(time.perf_counter() - t0, 3)})
    log.info("ingested %s: %s -> %s", cfg.input or cfg.previous, stats, cfg.output)
    return {"stats": stats, "meta": meta}


def _add_feedback(spark, rows, columns: dict, paths: tuple[str, str]):
    """``rows`` ∪ the export's new feedback rows, and the feedback block of stats.json."""
    from pyspark.sql import functions as F

    from graphs.spark_interactions import conform, feedback_rows
    from recsys.bandits.spark import EVENT_COLUMNS, check_table, read_table

    events = read_table(spark, paths[0], EVENT_COLUMNS, "events")
    check_table(events, paths[0], "events")
    imps = spark.read.parquet(paths[1])
    missing = {"score_id", "user", "item"} - set(imps.columns)
    if missing:
        raise ValueError(f"impressions {paths[1]}: missing column(s) {sorted(missing)}; have {imps.columns}")
    rows = conform(rows, columns).cache()
    known = rows.where(F.col("event_id").isNotNull()).select("event_id")
    new, counts = feedback_rows(events, imps, known)
    new_pairs = new.select("user", "item").distinct().join(rows.select("user", "item"), ["user", "item"], "left_anti").count()
    block = {"events_path": paths[0], "impressions_path": paths[1], **counts.to_dict(), "new_pairs": new_pairs}
    log.info("feedback from %s: %s", paths[0], block)
    return block, rows.unionByName(conform(new, columns))


def _vertices(spark, graph: str):
    path = Path(graph.removeprefix("file:")) / "vertices"
    if "://" not in graph and not path.exists():
        raise FileNotFoundError(f"--graph {graph}: not an ingest_graph output (no 'vertices' table)")
    v = spark.read.parquet(f"{graph}/vertices")
    if "orig_id" not in v.columns:
        raise ValueError(f"--graph {graph}: vertices lack 'orig_id' (have {v.columns})")
    return v


def main(argv=None) -> int:
    run_job(argv, parse_args, run, "graphrec-ingest-interactions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
