"""Ingest a graph file into the canonical tables: ``edges``, ``vertices``, ``stats.json``.

    spark-submit --py-files dist/graphrec.zip jobs/ingest_graph.py \\
        --input soc-Slashdot0902.txt.gz --format snap --output out/graph --drop-self-loops

A friend graph such as SocialLGN's ``trust.txt`` (``--format csv-pairs``: ``user,friend`` with a
header) or RecDiff's ``recdiff_trust.txt`` (``--format pairs``) is read as directed edges;
``--undirected`` stores each pair once (``src < dst``), merging the two directions of a
reciprocated friendship (counted in ``duplicates_dropped``).
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401

import logging
import time
from dataclasses import asdict, dataclass

from graphs.formats import GRAPH_FORMATS
from jobs.runtime.cli import arg, parse_config, run_job

log = logging.getLogger("graphrec.ingest_graph")


@dataclass(frozen=True)
class IngestGraphConfig:
    input: str = arg(help="edge file or folder (text; .gz ok; see --format) or Parquet dir with src,dst")
    format: str = arg(help="format of --input", choices=GRAPH_FORMATS)
    output: str = arg(help="output DIR (replaced atomically)")
    undirected: bool = arg(False, "store each edge once with src < dst")
    drop_self_loops: bool = arg(False, "drop edges from a node to itself")
    dedup: bool = arg(True, "do not deduplicate edges", flag="--keep-duplicates", negate=True)
    labels: str | None = arg(None, "node-label file (node label1 label2 ...) or Parquet dir (id, label)")
    partitions: int = arg(8, "output partitions")

    def __post_init__(self):
        if self.format not in GRAPH_FORMATS:
            raise ValueError(f"--format must be one of {GRAPH_FORMATS}, got {self.format!r}")
        if self.partitions < 1:
            raise ValueError("--partitions must be >= 1")


def parse_args(argv=None) -> IngestGraphConfig:
    return parse_config(IngestGraphConfig, argv, prog="ingest_graph", description=__doc__.splitlines()[0])


def run(spark, cfg: IngestGraphConfig) -> dict:
    from pyspark.sql import functions as F

    from graphs.spark import build_graph, graph_stats, read_edge_text, read_list_text, relabel_pairs
    from graphs.spark_helpers import input_rows, read_parquet
    from jobs.runtime.output import publish
    from jobs.runtime.session import fit_shuffle_partitions

    t0 = time.perf_counter()
    if cfg.format == "parquet":
        raw = read_parquet(spark, cfg.input, ("src", "dst"))
        w = F.col("weight").cast("float") if "weight" in raw.columns else F.lit(1.0).cast("float")
        raw = raw.select(F.col("src").cast("long"), F.col("dst").cast("long"), w.alias("weight"))
    else:
        raw = read_edge_text(spark, cfg.input, cfg.format)
    fit_shuffle_partitions(spark, input_rows(raw))  # the user's --conf wins; a small input: task slots, no AQE
    labels = None
    if cfg.labels:
        if _is_dir(cfg.labels):
            labels = read_parquet(spark, cfg.labels, ("id", "label")).select(F.col("id").alias("key"), F.col("label").cast("int"))
        else:
            labels = read_list_text(spark, cfg.labels, "labels").select(
                F.col("key"), F.col("value").cast("int").alias("label"))
    g = build_graph(raw, directed=not cfg.undirected, drop_self_loops=cfg.drop_self_loops, dedup=cfg.dedup,
                    extra_vertices=labels.select("key") if labels is not None else None, partitions=cfg.partitions)
    n = g.vertices.count()
    edges = g.edges.repartition(cfg.partitions, "src").sortWithinPartitions("src", "dst").cache()
    stats = graph_stats(edges, n, directed=not cfg.undirected)
    stats.update(g.counts)
    t_parse = time.perf_counter() - t0
    tables = {"edges": edges, "vertices": g.vertices.orderBy("id")}
    if labels is not None:
        tables["labels"] = relabel_pairs(labels, g.vertices).select("id", "label").orderBy("id", "label")
        stats["labelled_nodes"] = tables["labels"].select("id").distinct().count()
    meta = publish(cfg.output, "ingest_graph", asdict(cfg), tables, {"stats.json": stats},
                   rows={"edges": stats["edges"], "vertices": n}, timings={"ingest_s": round(t_parse, 3)})
    log.info("ingested %s: %s nodes, %s edges -> %s", cfg.input, n, stats["edges"], cfg.output)
    return {"stats": stats, "meta": meta}


def _is_dir(path: str) -> bool:
    from pathlib import Path

    return Path(path.removeprefix("file:")).is_dir()


def main(argv=None) -> int:
    cfg, res = run_job(argv, parse_args, run, "graphrec-ingest-graph")
    print_stats(res["stats"], cfg.output)
    return 0


def print_stats(stats: dict, out: str) -> None:
    log.info("stats for %s: %s", out, ", ".join(f"{k}={v}" for k, v in sorted(stats.items())))


if __name__ == "__main__":
    raise SystemExit(main())
