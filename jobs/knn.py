"""Friend recommendations: k nearest neighbours of every node vector (faiss; torch on CUDA).

    spark-submit --py-files dist/graphrec.zip jobs/knn.py \\
        --vectors out/embedding --k 20 [--exclude-edges out/graph] --output out/knn

Reads ``VECTORS_DIR/vectors(id, vector)``; writes ``neighbors(id long, neighbor long, score float,
rank short)`` (rank 1 = best) and ``_meta.json`` with the index kind and recall@k of the approximate
index against exact search on a sample of queries. With ``--exclude-edges GRAPH_DIR`` the node's
existing neighbours are never recommended. Queries are spread over tasks; each Python worker loads
the vectors from the shared path and builds the index once.
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401  (puts the project root on sys.path)

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from embeddings.knn import INDEX_KINDS, KnnConfig
from jobs.runtime.cli import arg, parse_config, run_job

log = logging.getLogger("graphrec.knn")


@dataclass(frozen=True)
class KnnJobConfig:
    vectors: str = arg(help="DIR written by embed_graph (vectors/)")
    output: str = arg(help="output DIR (replaced atomically)")
    k: int = arg(KnnConfig.k, "neighbours recommended per node")
    exclude_edges: str | None = arg(None, "GRAPH_DIR whose edges are excluded from the recommendations")
    index: str = arg(KnnConfig.index, "search index (auto: exact up to --exact-threshold vectors, else HNSW)",
                     choices=INDEX_KINDS)
    exact_threshold: int = arg(KnnConfig.exact_threshold, "auto: exact search up to this many vectors")
    recall_sample: int = arg(2000, "queries checked against exact search")
    partitions: int = arg(0, "query tasks and output files (0 = the task slots)")
    seed: int = arg(KnnConfig.seed, "random seed of the index")
    device: str = arg(KnnConfig.device, "exact search on the GPU (torch) or faiss on the CPU; auto: the GPU when "
                      "there is one", choices=("auto", "cpu", "cuda"))

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"--k must be >= 1, got {self.k}")
        if self.recall_sample < 0 or self.partitions < 0:
            raise ValueError("--recall-sample must be >= 0 and --partitions >= 0")

    def knn(self, device: str | None = None):
        return KnnConfig(k=self.k, index=self.index, exact_threshold=self.exact_threshold, seed=self.seed,
                         device=device or self.device)


def parse_args(argv=None) -> KnnJobConfig:
    return parse_config(KnnJobConfig, argv, prog="knn", description=__doc__.splitlines()[0])


def resolve_device(spark, device: str) -> str:
    """``auto`` on a local master without an NVIDIA device is ``cpu``: the Python workers then never import
    torch to ask CUDA (seconds per worker); on a cluster the executors decide."""
    if device == "auto" and spark.sparkContext.master.startswith("local") and not any(
            Path("/dev").glob("nvidia[0-9]*")):
        return "cpu"
    return device


def run(spark, cfg: KnnJobConfig) -> dict:
    """Search, write ``neighbors`` + ``_meta.json``; Spark jobs: the exclusion lists (with ``--exclude-edges``),
    the searches with their row and recall counts (one aggregation, the result cached) and the write."""
    from pyspark.sql import functions as F

    from embeddings.spark.knn import knn_batches
    from graphs.atomic import local_path
    from graphs.spark_helpers import input_rows, task_slots
    from jobs.runtime.output import publish
    from jobs.runtime.session import fit_shuffle_partitions

    t0 = time.perf_counter()
    vdir = local_path(cfg.vectors) / "vectors"
    if not vdir.exists():
        raise FileNotFoundError(f"{vdir}: not found (is --vectors an embed_graph output DIR?)")
    vec = spark.read.parquet(str(vdir))
    for col in ("id", "vector"):
        if col not in vec.columns:
            raise ValueError(f"{vdir}: no column {col!r}")
    q = vec.select(F.col("id").cast("long").alias("id"))
    n = input_rows(vec)  # the Parquet footers: no Spark job
    n = q.count() if n is None else n
    fit_shuffle_partitions(spark, n)
    parts = cfg.partitions or task_slots(spark)
    if cfg.exclude_edges:
        edir = local_path(cfg.exclude_edges) / "edges"
        if not edir.exists():
            raise FileNotFoundError(f"{edir}: not found (is --exclude-edges an ingest_graph output DIR?)")
        e = spark.read.parquet(str(edir)).select(F.col("src").cast("long"), F.col("dst").cast("long"))
        both = e.unionByName(e.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
        nb = both.groupBy("src").agg(F.array_distinct(F.collect_list("dst")).alias("excl"))
        q = q.join(nb.withColumnRenamed("src", "id"), "id", "left")
    else:
        q = q.withColumn("excl", F.lit(None).cast("array<long>"))
    sample_mod = max(1, n // max(cfg.recall_sample, 1)) if cfg.recall_sample else n + 1
    kcfg = cfg.knn(resolve_device(spark, cfg.device))
    res = (q.repartition(parts).mapInPandas(
        knn_batches(str(vdir), kcfg, sample_mod), "id long, neighbor long, score float, rank short, hit int")
           .where(F.col("neighbor") >= 0).cache())
    sampled = F.col("hit") >= 0
    st = res.agg(F.count(F.lit(1)).alias("rows"), F.sum(F.when(sampled, F.col("hit"))).alias("hits"),
                 F.countDistinct(F.when(sampled, F.col("id"))).alias("queries")).first()
    rows, hits, queries = int(st["rows"]), st["hits"], int(st["queries"] or 0)
    kind = kcfg.kind(n)
    recall = 1.0 if kind == "exact" else (float(hits) / max(cfg.k * queries, 1) if queries else None)
    out = publish(cfg.output, "knn", asdict(cfg),
                  {"neighbors": res.select("id", "neighbor", "score", "rank").sortWithinPartitions("id", "rank")},
                  rows={"neighbors": rows}, index=kind, recall_at_k=recall, recall_queries=queries,
                  timings={"knn_s": round(time.perf_counter() - t0, 3)})
    res.unpersist()
    log.info("kNN %s index over %d vectors: %d rows, recall@%d = %s -> %s", kind, n, rows, cfg.k, recall, cfg.output)
    return out


def main(argv=None) -> int:
    run_job(argv, parse_args, run, "graphrec-knn")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
