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

import argparse
import logging
import time
from dataclasses import asdict, dataclass

log = logging.getLogger("graphrec.knn")


@dataclass(frozen=True)
class KnnJobConfig:
    vectors: str
    output: str
    k: int = 20
    exclude_edges: str | None = None
    index: str = "auto"
    exact_threshold: int = 200_000
    recall_sample: int = 2000
    partitions: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"--k must be >= 1, got {self.k}")
        if self.recall_sample < 0 or self.partitions < 1:
            raise ValueError("--recall-sample must be >= 0 and --partitions >= 1")

    def knn(self):
        from embeddings.knn import KnnConfig

        return KnnConfig(k=self.k, index=self.index, exact_threshold=self.exact_threshold, seed=self.seed)


def parse_args(argv=None) -> KnnJobConfig:
    from embeddings.knn import INDEX_KINDS

    p = argparse.ArgumentParser(prog="knn", description=__doc__.splitlines()[0])
    p.add_argument("--vectors", required=True, help="DIR written by embed_graph (vectors/)")
    p.add_argument("--output", required=True, help="output DIR (replaced atomically)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--exclude-edges", help="GRAPH_DIR whose edges are excluded from the recommendations")
    p.add_argument("--index", choices=INDEX_KINDS, default="auto")
    p.add_argument("--exact-threshold", type=int, default=200_000, help="auto: exact search up to this many vectors")
    p.add_argument("--recall-sample", type=int, default=2000, help="queries checked against exact search")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    return KnnJobConfig(a.vectors, a.output, a.k, a.exclude_edges, a.index, a.exact_threshold, a.recall_sample,
                        a.partitions, a.seed)


def run(spark, cfg: KnnJobConfig) -> dict:
    from pyspark.sql import functions as F

    from embeddings.spark import knn_batches
    from graphs.atomic import local_path
    from jobs.output import publish

    t0 = time.perf_counter()
    vdir = local_path(cfg.vectors) / "vectors"
    if not vdir.exists():
        raise FileNotFoundError(f"{vdir}: not found (is --vectors an embed_graph output DIR?)")
    vec = spark.read.parquet(str(vdir))
    for col in ("id", "vector"):
        if col not in vec.columns:
            raise ValueError(f"{vdir}: no column {col!r}")
    q = vec.select(F.col("id").cast("long").alias("id"))
    n = q.count()
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
    kcfg = cfg.knn()
    res = (q.repartition(cfg.partitions).mapInPandas(
        knn_batches(str(vdir), kcfg, sample_mod), "id long, neighbor long, score float, rank short, hit int")
           .where(F.col("neighbor") >= 0).cache())
    rows = res.count()
    hits = res.where(F.col("hit") >= 0).agg(F.sum("hit"), F.countDistinct("id")).first()
    kind = kcfg.kind(n)
    recall = 1.0 if kind == "exact" else (float(hits[0]) / max(cfg.k * hits[1], 1) if hits[1] else None)
    out = publish(cfg.output, "knn", asdict(cfg),
                  {"neighbors": res.select("id", "neighbor", "score", "rank").repartition(cfg.partitions)
                   .sortWithinPartitions("id", "rank")},
                  rows={"neighbors": rows}, index=kind, recall_at_k=recall, recall_queries=int(hits[1] or 0),
                  timings={"knn_s": round(time.perf_counter() - t0, 3)})
    log.info("kNN %s index over %d vectors: %d rows, recall@%d = %s -> %s", kind, n, rows, cfg.k, recall, cfg.output)
    return out


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    from jobs.session import get_session

    spark = get_session("graphrec-knn")
    run(spark, cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
