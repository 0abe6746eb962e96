"""Federated heavy hitters under local differential privacy (PEM, federated PEM, TAP, TAPS).

    spark-submit jobs/heavy_hitters.py --input DIR --party-col party --user-col user --item-col item \\
        --bits 48 --epsilon 4 --k 32 --method taps --output OUT [--evaluate]

Input: Parquet with one row per user (party, user, item; integer columns). Perturbation runs on the
executors (``ldp.spark``); only per-partition support sums reach the driver. Outputs:
``OUT/heavy_hitters`` (item int64, estimate double, rank int32), ``OUT/ledger.json`` (per party:
users, ε per user, levels, oracles), ``OUT/_meta.json`` and, with ``--evaluate`` (simulation only:
raw values are known), ``OUT/metrics.json`` (F1, NCR, relative error against the global top-k).
"""
if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401  (puts the project root on sys.path)

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.runtime.cli import arg, parse_config, run_job
from jobs.runtime.output import publish
from ldp.federated import METHODS, SCORES, TAPConfig, run_method
from ldp.oracles import DEFAULT_POOL, ORACLES
from ldp.pem import PEMConfig

log = logging.getLogger("jobs.heavy_hitters")
T = TAPConfig  # the protocol's own defaults


@dataclass(frozen=True)
class HeavyHittersConfig:
    input: str = arg(help="Parquet directory with party/user/item columns")
    output: str = arg(help="output directory (replaced atomically)")
    party_col: str = arg("party", "party column")
    user_col: str = arg("user", "user column")
    item_col: str = arg("item", "item column")
    bits: int = arg(48, "item width in bits (items in [0, 2^bits))")
    epsilon: float = arg(4.0, "ε per user (each user reports once)")
    k: int = arg(T.k, "heavy hitters to find")
    method: str = arg("taps", "protocol", choices=METHODS)
    oracle: str = arg(T.oracle, "auto (GRR for small candidate sets, else OLH), grr, olh, oue")
    seed: int | None = arg(None, "fixed seed for tests/benchmarks ONLY; default draws from the OS CSPRNG")
    evaluate: bool = arg(False, "simulation only: score against the true top-k")
    candidate_budget: int = arg(T.candidate_budget, "TAP/TAPS: most candidates a level keeps")
    final_share: float | None = arg(T.final_share, "TAP/TAPS share of users at the full-width level (default max(0.4, "
                                    "1/levels))")  # ldp.federated.TAPConfig
    first_bits: int | None = arg(T.first_bits, "TAP/TAPS width of the enumerated first level (default log2 of the "
                                 "candidate budget)")
    score: str = arg(T.score, "TAPS with several parties: empirical-Bayes posterior-mean scores or hard claims",
                     choices=SCORES)
    consistency: bool = arg(T.consistency, "TAPS with several parties: score children's raw estimates, not ones made "
                            "consistent with their parent prefix's", flag="--no-consistency", negate=True)
    pem_step: int = arg(PEMConfig.step, "PEM: bits added per level")
    pool_size: int | None = arg(DEFAULT_POOL, "public OLH hash-key pool size (default: sized per round from its "
                                "candidate count)")  # None: ldp.oracles.adaptive_pool
    check_users: bool = arg(True, "skip the check that every user id occurs once", flag="--no-check-users",
                            negate=True)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"--method must be one of {METHODS}, got {self.method!r}")
        if self.oracle != "auto" and self.oracle not in ORACLES:
            raise ValueError(f"--oracle must be auto or one of {sorted(ORACLES)}")
        if self.score not in SCORES:
            raise ValueError(f"--score must be one of {SCORES}, got {self.score!r}")
        if not 1 <= self.bits <= 62:
            raise ValueError("--bits must be in 1..62")
        if not self.epsilon > 0 or self.k < 1:
            raise ValueError("--epsilon must be > 0 and --k >= 1")


def parse_args(argv=None) -> HeavyHittersConfig:
    return parse_config(HeavyHittersConfig, argv, prog="heavy_hitters", description=__doc__.split("\n\n")[0])


def tap_options(cfg: HeavyHittersConfig) -> dict:
    """The job's ``TAPConfig`` options for TAP/TAPS (none for PEM)."""
    if cfg.method in ("pem", "fedpem"):
        return {}
    return {"candidate_budget": cfg.candidate_budget, "final_share": cfg.final_share, "first_bits": cfg.first_bits,
            "score": cfg.score, "consistency": cfg.consistency}


def load_input(spark, cfg: HeavyHittersConfig):
    """Read and validate the input in one Spark query (per-party counts, item range, nulls, a duplicate user);
    returns ``(DataFrame with int64 party/user/item, rows, {party: users})``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegralType

    from graphs.spark_helpers import input_rows, read_parquet
    from jobs.runtime.session import fit_shuffle_partitions

    df = read_parquet(spark, cfg.input)
    fit_shuffle_partitions(spark, input_rows(df))
    fields = {f.name: f.dataType for f in df.schema.fields}
    for role, col in (("party", cfg.party_col), ("user", cfg.user_col), ("item", cfg.item_col)):
        if col not in fields:
            raise ValueError(f"{cfg.input}: missing {role} column {col!r} (has {sorted(fields)})")
        if not isinstance(fields[col], IntegralType):
            raise ValueError(f"{cfg.input}: column {col!r} must be an integer type, got {fields[col].simpleString()}")
    df = df.select(F.col(cfg.party_col).cast("long").alias("party"), F.col(cfg.user_col).cast("long").alias("user"),
                   F.col(cfg.item_col).cast("long").alias("item"))
    null = F.lit(None).cast("long")
    stats = df.groupBy("party").agg(
        F.lit("party").alias("tag"), F.count(F.lit(1)).alias("n"), F.min("item").alias("lo"), F.max("item").alias("hi"),
        F.sum(F.col("party").isNull().cast("int") + F.col("user").isNull().cast("int")
              + F.col("item").isNull().cast("int")).cast("long").alias("nulls"))
    if cfg.check_users:
        dup = (df.groupBy("user").count().filter("count > 1").limit(1)
               .select(F.lit("dup").alias("tag"), F.col("user").alias("party"), null.alias("n"), null.alias("lo"),
                       null.alias("hi"), null.alias("nulls")))
        stats = stats.select("tag", "party", "n", "lo", "hi", "nulls").unionByName(dup)
    rows = stats.collect()
    parties = [r for r in rows if r["tag"] == "party"]
    n = sum(r["n"] for r in parties)
    if n == 0:
        raise ValueError(f"{cfg.input}: no rows")
    nulls = sum(r["nulls"] or 0 for r in parties)
    if nulls:
        raise ValueError(f"{cfg.input}: {nulls} null values in party/user/item")
    lo = min((r["lo"] for r in parties if r["lo"] is not None), default=0)
    hi = max((r["hi"] for r in parties if r["hi"] is not None), default=0)
    if lo < 0 or hi >= (1 << cfg.bits):
        raise ValueError(f"{cfg.input}: column {cfg.item_col!r} has values outside [0, 2^{cfg.bits})")
    dups = [r["party"] for r in rows if r["tag"] == "dup"]
    if dups:
        raise ValueError(f"{cfg.input}: user {dups[0]} occurs more than once in {cfg.user_col!r} "
                         "(each user must report exactly once)")
    return df, int(n), {int(r["party"]): int(r["n"]) for r in parties}


def run(spark, cfg: HeavyHittersConfig) -> dict:
    """Read and validate, run the protocol, write the outputs; returns ``_meta.json``'s content."""
    from ldp.metrics import scores
    from ldp.spark import SparkPopulation, true_counts_spark

    t0 = time.time()
    df, n, sizes = load_input(spark, cfg)
    t_read = time.time()
    pop = SparkPopulation(df, cfg.bits, cfg.epsilon, seed=cfg.seed, pool_size=cfg.pool_size, party_sizes=sizes)
    hh = run_method(cfg.method, pop, k=cfg.k, oracle=cfg.oracle, seed=cfg.seed, pem_step=cfg.pem_step,
                    **tap_options(cfg))
    t_hh = time.time()
    log.info("%s found %d items in %d rounds (%.1f s)", cfg.method, hh.items.size, hh.rounds, t_hh - t_read)
    metrics = None
    if cfg.evaluate:
        truth, _, found_counts = true_counts_spark(df, cfg.k, hh.items)
        metrics = scores(hh.items, hh.estimates, truth, found_counts)
        log.info("evaluation: %s", metrics)
    table = pa.table({"item": pa.array(hh.items, pa.int64()), "estimate": pa.array(hh.estimates, pa.float64()),
                      "rank": pa.array(np.arange(1, hh.items.size + 1, dtype=np.int32))})
    timings = {"read_validate_s": round(t_read - t0, 3), "protocol_s": round(t_hh - t_read, 3)}

    def write_table(tmp: Path) -> None:  # a few rows from the driver: one Parquet file, no Spark job
        (tmp / "heavy_hitters").mkdir()
        pq.write_table(table, tmp / "heavy_hitters" / "part-00000.parquet")
        timings["total_s"] = round(time.time() - t0, 3)

    files = {"ledger.json": hh.ledger}
    if metrics is not None:
        files["metrics.json"] = {**metrics, "method": cfg.method, "epsilon": cfg.epsilon}
    return publish(cfg.output, "heavy_hitters", asdict(cfg), {}, files, write=write_table,
                   rows={"input": n, "heavy_hitters": int(hh.items.size)}, rounds=hh.rounds, timings=timings,
                   metrics=metrics)


def main(argv=None) -> dict:
    return run_job(argv, parse_args, run, "heavy_hitters")[1]


if __name__ == "__main__":
    main()
