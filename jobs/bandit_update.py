"""Batch Diag-LinUCB update: merge logged feedback into the current parameter version.

    spark-submit jobs/bandit_update.py --events DIR --impressions DIR --params PARAMS_DIR --output PARAMS_DIR

Joins events to impressions by ``(score_id, item)``, deduplicates by ``event_id`` (within the input
and against the ids already merged into the current version), adds the per-edge sums
``Δd = Σ w²``, ``Δb = Σ w·r`` to the current version and publishes ``v=<n+1>`` with the new watermark
(``recsys.bandits.params.new_version_dir``: temporary folder, rename, then ``CURRENT``). When no new
event matches, nothing is published: re-running a day changes nothing.
"""
if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401  (puts the project root on sys.path)

import argparse
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

log = logging.getLogger("jobs.bandit_update")


@dataclass(frozen=True)
class BanditUpdateConfig:
    """Paths of one update run (all come from flags)."""

    events: str
    impressions: str
    params: str
    output: str
    dedup_horizon_days: float | None = None

    def __post_init__(self) -> None:
        for name in ("events", "impressions", "params", "output"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
        if self.dedup_horizon_days is not None and not self.dedup_horizon_days > 0:
            raise ValueError(f"--dedup-horizon-days must be > 0, got {self.dedup_horizon_days}")


def parse_args(argv: Sequence[str] | None = None) -> BanditUpdateConfig:
    ap = argparse.ArgumentParser(prog="bandit_update", description=__doc__.split("\n")[0])
    ap.add_argument("--events", required=True, help="Parquet DIR of feedback events (event_id, score_id, item, reward, ts[, seq])")
    ap.add_argument("--impressions", required=True, help="Parquet DIR of impressions (score_id, user, cluster, weight, item, version, ts)")
    ap.add_argument("--params", required=True, help="PARAMS_DIR holding the current version (CURRENT)")
    ap.add_argument("--output", required=True, help="PARAMS_DIR to publish v=<n+1> into (may equal --params)")
    ap.add_argument("--dedup-horizon-days", type=float, default=None,
                    help="keep merged event ids this many days behind the watermark; older events are refused "
                         "as late (default: keep every id)")
    a = ap.parse_args(argv)
    return BanditUpdateConfig(a.events, a.impressions, a.params, a.output, a.dedup_horizon_days)


def run(spark, cfg: BanditUpdateConfig) -> dict:
    """Plan, compute and publish; returns the run report (also written to ``_meta.json``)."""
    from pyspark.sql import functions as F

    from graphs.atomic import write_json, write_meta
    from recsys.bandits.params import Watermark, current_version, read_manifest
    from recsys.bandits.publish import ANY_VERSION, new_version_dir
    from recsys.bandits.spark import EVENT_COLUMNS, IMPRESSION_COLUMNS, check_table, plan_update, read_table

    t0 = time.perf_counter()
    version = current_version(cfg.params)
    if version is None:
        raise FileNotFoundError(f"{cfg.params}: no CURRENT version to update (build the candidate graph first)")
    man = read_manifest(cfg.params, version)
    vdir = Path(cfg.params) / f"v={version}"
    events = read_table(spark, cfg.events, EVENT_COLUMNS, "events")
    imps = read_table(spark, cfg.impressions, IMPRESSION_COLUMNS, "impressions")
    n_events = check_table(events, cfg.events, "events")
    n_imps = check_table(imps, cfg.impressions, "impressions")
    edges = spark.read.parquet(str(vdir / "edges"))
    if (vdir / "merged_events").exists() and any((vdir / "merged_events").glob("*.parquet")):
        merged = spark.read.parquet(str(vdir / "merged_events"))
    else:
        merged = spark.createDataFrame([], "event_id string, ts timestamp")
    off_graph = (man.get("extra") or {}).get("off_graph", "prior")
    wm = Watermark.from_json(man.get("watermark", {}))
    cutoff = None
    if cfg.dedup_horizon_days is not None and wm.ts is not None:
        cutoff = wm.ts - cfg.dedup_horizon_days * 86400.0
    plan = plan_update(edges, merged, events, imps, float(man["lambda"]), off_graph, cutoff)
    new = plan.new_events.cache()
    agg = new.agg(F.count("*").alias("n"), F.max(F.unix_micros("ts")).alias("ts"),
                  *([F.max("seq").alias("seq")] if "seq" in new.columns else [])).collect()[0]
    n_new = int(agg["n"])
    report = {"input_events": n_events, "input_impression_rows": n_imps, "new_events": n_new, "previous_version": version,
              "dedup_cutoff_ts": cutoff}
    if cutoff is not None:
        report["late_events_refused"] = events.where(F.unix_micros("ts") < F.lit(int(cutoff * 1e6))).count()
    if n_new == 0:
        new.unpersist()
        report.update(published=None, seconds=time.perf_counter() - t0)
        log.info("nothing new to merge into v=%d: %s", version, report)
        return report
    d = plan.deltas.groupBy("on_graph").agg(F.count("*").alias("pairs")).collect()
    report["edges_updated"] = int(sum(r["pairs"] for r in d if r["on_graph"]))
    off = int(sum(r["pairs"] for r in d if not r["on_graph"]))
    report["off_graph"] = off_graph
    report["edges_created" if off_graph == "prior" else "off_graph_pairs_skipped"] = off
    ts_new = agg["ts"] / 1e6 if agg["ts"] is not None else None
    seq_new = agg["seq"] if "seq" in new.columns else None
    new_wm = wm.advanced(n_new, ts_new, None if seq_new is None else int(seq_new))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    same_dir = Path(cfg.output).resolve() == Path(cfg.params).resolve()
    with new_version_dir(cfg.output, version if same_dir else ANY_VERSION) as (tmp, n):
        plan.edges.coalesce(4).write.parquet(str(tmp / "edges"))
        (plan.merged_events.select(F.col("event_id").cast("string"), F.col("ts").cast("timestamp"))
         .coalesce(4).write.parquet(str(tmp / "merged_events")))
        for name in ("user_clusters", "centroids"):
            shutil.copytree(vdir / name, tmp / name)
        manifest = {**man, "num_edges": man.get("num_edges", 0) + report.get("edges_created", 0), "version": n,
                    "watermark": new_wm.to_json(), "created_at": created, "previous_version": version}
        write_json(tmp / "manifest.json", manifest)
        report.update(published=n, seconds=time.perf_counter() - t0)
        write_meta(tmp, "jobs.bandit_update", asdict(cfg), **report)
    new.unpersist()
    log.info("published %s/v=%d: %s", cfg.output, n, report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    from jobs.session import get_session

    spark = get_session("bandit_update")
    run(spark, cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
