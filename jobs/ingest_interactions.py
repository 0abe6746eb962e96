"""Ingest user–item interactions: ``interactions(user, item, ts?, weight?)``, ``users``, ``items``.

Users and items get separate dense id spaces (``users(id, orig_id)``, ``items(id, orig_id)``).

    spark-submit --py-files dist/graphrec.zip jobs/ingest_interactions.py \\
        --input gowalla/train.txt.gz --format lightgcn --output out/interactions
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401

import argparse
import logging
import time
from dataclasses import asdict, dataclass

from graphs.formats import INTERACTION_FORMATS

log = logging.getLogger("graphrec.ingest_interactions")


@dataclass(frozen=True)
class IngestInteractionsConfig:
    input: str
    format: str
    output: str
    user_col: str = "user"
    item_col: str = "item"
    partitions: int = 8

    def __post_init__(self):
        if self.format not in INTERACTION_FORMATS:
            raise ValueError(f"--format must be one of {INTERACTION_FORMATS}, got {self.format!r}")


def parse_args(argv=None) -> IngestInteractionsConfig:
    p = argparse.ArgumentParser(prog="ingest_interactions", description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="LightGCN split file (user item item ...) or Parquet dir")
    p.add_argument("--format", required=True, choices=INTERACTION_FORMATS)
    p.add_argument("--output", required=True, help="output DIR (replaced atomically)")
    p.add_argument("--user-col", default="user", help="Parquet input: user column")
    p.add_argument("--item-col", default="item", help="Parquet input: item column")
    p.add_argument("--partitions", type=int, default=8)
    a = p.parse_args(argv)
    return IngestInteractionsConfig(a.input, a.format, a.output, a.user_col, a.item_col, a.partitions)


def run(spark, cfg: IngestInteractionsConfig) -> dict:
    from pyspark.sql import functions as F

    from graphs.spark import dense_ids, read_list_text
    from jobs.output import publish

    t0 = time.perf_counter()
    extra: list[str] = []
    if cfg.format == "lightgcn":
        raw = read_list_text(spark, cfg.input, "lightgcn").select(F.col("key").alias("user"), F.col("value").alias("item"))
    else:
        src = spark.read.parquet(cfg.input)
        for c in (cfg.user_col, cfg.item_col):
            if c not in src.columns:
                raise ValueError(f"{cfg.input}: Parquet input lacks column {c!r} (has {src.columns})")
        extra = [c for c in ("ts", "weight") if c in src.columns]
        raw = src.select(F.col(cfg.user_col).cast("long").alias("user"), F.col(cfg.item_col).cast("long").alias("item"),
                         *[F.col(c) for c in extra])
    raw = raw.cache()
    n_raw = raw.count()
    if n_raw == 0:
        raise ValueError(f"{cfg.input}: no interactions")
    agg = [F.max("ts").alias("ts")] if "ts" in extra else []
    agg += [F.sum("weight").cast("float").alias("weight")] if "weight" in extra else []
    dedup = raw.groupBy("user", "item").agg(*agg) if agg else raw.dropDuplicates(["user", "item"])
    users = dense_ids(raw, "user", cfg.partitions).cache()
    items = dense_ids(raw, "item", cfg.partitions).cache()
    inter = (dedup.join(users.select(F.col("orig_id").alias("user"), F.col("id").alias("u")), "user")
             .join(items.select(F.col("orig_id").alias("item"), F.col("id").alias("i")), "item")
             .select(F.col("u").alias("user"), F.col("i").alias("item"), *[F.col(c) for c in extra])
             .repartition(cfg.partitions, "user").sortWithinPartitions("user", "item").cache())
    counts = {"users": users.count(), "items": items.count(), "interactions": inter.count(), "input_rows": n_raw}
    counts["duplicates_dropped"] = n_raw - counts["interactions"]
    meta = publish(cfg.output, "ingest_interactions", asdict(cfg),
                   {"interactions": inter, "users": users.select("id", "orig_id").orderBy("id"),
                    "items": items.select("id", "orig_id").orderBy("id")},
                   {"stats.json": counts}, rows=counts, timings={"ingest_s": round(time.perf_counter() - t0, 3)})
    log.info("ingested %s: %s -> %s", cfg.input, counts, cfg.output)
    return {"stats": counts, "meta": meta}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    from jobs.session import get_session

    run(get_session("graphrec-ingest-interactions"), cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
