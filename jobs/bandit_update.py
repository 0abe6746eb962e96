"""Batch Diag-LinUCB update: merge logged feedback into the current parameter version.

    spark-submit jobs/bandit_update.py --events DIR --impressions DIR --params PARAMS_DIR --output PARAMS_DIR

Spark joins events to impressions by ``(score_id, item)``, deduplicates by ``event_id`` (within the
input and against the ids already merged into the current version) and sums ``Δd = Σ w²``,
``Δb = Σ w·r`` per edge (:mod:`recsys.bandits.spark`); the driver adds those sums to the current
version with :meth:`recsys.bandits.state.EdgeStats.apply` — the same function the scoring service
learns with, following the version's manifest ``off_graph`` — and publishes ``v=<n+1>`` with the
new watermark (``recsys.bandits.publish.new_version_dir``: temporary folder, rename, then
``CURRENT``). When no new event matches, nothing is published: re-running a day changes nothing.
Events on impressions without a cluster context (the service's ``fallback`` path: impression rows
with ``cluster = -1``) are merged and counted in the watermark but add nothing, as online.
"""
if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401  (puts the project root on sys.path)

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from jobs.runtime.cli import arg, parse_config, run_job

log = logging.getLogger("jobs.bandit_update")


@dataclass(frozen=True)
class BanditUpdateConfig:
    """Paths of one update run (all come from flags)."""

    events: str = arg(help="Parquet DIR of feedback events (event_id, score_id, item, reward, ts[, seq])")
    impressions: str = arg(help="Parquet DIR of impressions (score_id, user, cluster, weight, item, version, ts)")
    params: str = arg(help="PARAMS_DIR holding the current version (CURRENT)")
    output: str = arg(help="PARAMS_DIR to publish v=<n+1> into (may equal --params)")
    dedup_horizon_days: float | None = arg(None, "keep merged event ids this many days behind the watermark; older "
                                           "events are refused as late (default: keep every id)")

    def __post_init__(self) -> None:
        for name in ("events", "impressions", "params", "output"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
        if self.dedup_horizon_days is not None and not self.dedup_horizon_days > 0:
            raise ValueError(f"--dedup-horizon-days must be > 0, got {self.dedup_horizon_days}")


def parse_args(argv: Sequence[str] | None = None) -> BanditUpdateConfig:
    return parse_config(BanditUpdateConfig, argv, prog="bandit_update", description=__doc__.split("\n")[0])


def run(spark, cfg: BanditUpdateConfig) -> dict:
    """Plan, compute and publish; returns the run report (also written to ``_meta.json``)."""
    from pyspark.sql import functions as F

    from graphs.atomic import write_meta
    from recsys.bandits.params import current_version, load_params
    from recsys.bandits.publish import ANY_VERSION, new_version_dir, write_version
    from recsys.bandits.spark import EVENT_COLUMNS, IMPRESSION_COLUMNS, check_table, collect_delta, plan_update, read_table
    from recsys.bandits.state import EdgeStats

    t0 = time.perf_counter()
    version = current_version(cfg.params)
    if version is None:
        raise FileNotFoundError(f"{cfg.params}: no CURRENT version to update (build the candidate graph first)")
    params = load_params(cfg.params, version)
    vdir = Path(cfg.params) / f"v={version}"
    events = read_table(spark, cfg.events, EVENT_COLUMNS, "events")
    imps = read_table(spark, cfg.impressions, IMPRESSION_COLUMNS, "impressions")
    n_events = check_table(events, cfg.events, "events")
    n_imps = check_table(imps, cfg.impressions, "impressions")
    if (vdir / "merged_events").exists() and any((vdir / "merged_events").glob("*.parquet")):
        merged = spark.read.parquet(str(vdir / "merged_events"))
    else:
        merged = spark.createDataFrame([], "event_id string, ts timestamp")
    wm = params.watermark
    cutoff = None
    if cfg.dedup_horizon_days is not None and wm.ts is not None:
        cutoff = wm.ts - cfg.dedup_horizon_days * 86400.0
    plan = plan_update(merged, events, imps, cutoff)
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
    state = EdgeStats.from_params(params)
    done = state.apply(collect_delta(plan.deltas))
    report["edges_updated"] = done.updated
    report["off_graph"] = params.off_graph
    if params.off_graph == "prior":
        report["edges_created"] = done.created
    else:
        report["off_graph_pairs_skipped"] = done.skipped
    ts_new = agg["ts"] / 1e6 if agg["ts"] is not None else None
    seq_new = agg["seq"] if "seq" in new.columns else None
    e = state.edges()
    out = params.with_edges(e["cluster"], e["item"], e["d"], e["b"]).replace(
        watermark=wm.advanced(n_new, ts_new, None if seq_new is None else int(seq_new)))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    same_dir = Path(cfg.output).resolve() == Path(cfg.params).resolve()
    with new_version_dir(cfg.output, version if same_dir else ANY_VERSION) as (tmp, n):
        (plan.merged_events.select(F.col("event_id").cast("string"), F.col("ts").cast("timestamp"))
         .coalesce(4).write.parquet(str(tmp / "merged_events")))
        write_version(tmp, out, n, created, with_merged_events=False, previous_version=version)
        report.update(published=n, seconds=time.perf_counter() - t0)
        write_meta(tmp, "jobs.bandit_update", asdict(cfg), **report)
    new.unpersist()
    log.info("published %s/v=%d: %s", cfg.output, n, report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    run_job(argv, parse_args, run, "bandit_update")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
