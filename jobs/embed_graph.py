"""Embed an ingested graph with DistNE (recursive-partition network embedding) on Spark.

    spark-submit --py-files dist/graphrec.zip jobs/embed_graph.py \\
        --edges out/graph --output out/embedding --dim 128 [--max-part-nodes M] [--seed S] \\
        [--settings TUNE_DIR/chosen.json]

Reads ``GRAPH_DIR/edges`` (src, dst[, weight]) and ``GRAPH_DIR/vertices`` (id); directed graphs are
symmetrised. Writes ``vectors(id long, vector array<float>)`` and ``_meta.json`` (dim, levels, parts,
edge cut, per-level node/edge fractions, largest embedded subgraph in nodes and edges, embedded-edges
multiple, timings). Without ``--max-part-nodes``, M and the most edges of any embedded subgraph both come
from ``--memory-mb`` (one task's budget) and the graph's edges per node.
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401  (puts the project root on sys.path)

import json
import logging
import time
from dataclasses import asdict, dataclass, fields

from embeddings.distne import DistNEConfig
from jobs.runtime.cli import arg, build_parser, config_from, run_job

log = logging.getLogger("graphrec.embed_graph")


D = DistNEConfig  # the embedding's own defaults


@dataclass(frozen=True)
class EmbedGraphConfig:
    """Flags of the job; ``max_part_nodes`` is M, the bound on every embedded subgraph. ``order, mu, theta`` (ProNE's
    filter) are no flags: ``--settings`` sets them."""

    edges: str = arg(help="GRAPH_DIR written by ingest_graph (edges/, vertices/, stats.json)")
    output: str = arg(help="output DIR (replaced atomically)")
    dim: int = arg(D.dim, "embedding dimension")
    max_part_nodes: int | None = arg(D.max_subgraph_nodes, "M: most nodes of any embedded subgraph (default: from "
                                     "--memory-mb and the edges per node)")
    memory_mb: int = arg(D.memory_mb, "memory budget of one embedding task")
    seed: int = arg(D.seed, "random seed")
    lpa_rounds: int = arg(D.lpa_rounds, "label-propagation rounds per coarsening level")
    refine_order: int = arg(D.refine_order, "Chebyshev terms of the global fusion propagation (0 = off; rounds = "
                            "2(order-1)+1)")
    align: str = arg(D.align, "alignment of the part embeddings to the top level", choices=("lstsq", "orthogonal"))
    partitions: int | None = arg(None, "output partitions (default: the job's shuffle partitions, i.e. the task slots)")
    coarse_edges_per_cluster: int | None = arg(
        D.coarse_edges_per_cluster, "part subgraphs keep only the quotient edges among the K heaviest of one of their "
        "outside clusters (default: all)")
    top_edges_per_cluster: int | None = arg(
        D.top_edges_per_cluster, "the top level embeds only the quotient edges among the K heaviest of one of their "
        "clusters (default: all)")
    max_subgraph_edges: int | None = arg(
        D.max_subgraph_edges, "most edges of any embedded subgraph: the heaviest coarse/quotient edges that fit are "
        "kept (default: from --memory-mb when M is, else no bound)")
    local_coarsen_edges: int | None = arg(
        D.local_coarsen_edges, "coarsen a graph of at most N edges inside one task, else on Spark (default: half of "
        "--memory-mb at 256 B per edge; 0: always on Spark)")
    top_threads: int = arg(D.top_threads, "threads of the ProNE in the one-task stages (top level, or a graph that "
                           "fits one task); 0: the cores of one executor (spark.executor.cores, N of local[N]); part "
                           "tasks use one each")
    order: int = arg(D.order, "ProNE's Chebyshev terms (from --settings)", cli=False)
    mu: float = arg(D.mu, "ProNE's filter centre (from --settings)", cli=False)
    theta: float = arg(D.theta, "ProNE's filter width (from --settings)", cli=False)
    settings: str | None = arg(None, "chosen.json of tune_embedding (or its output DIR): ProNE's order, mu, theta")

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"--dim must be >= 1, got {self.dim}")
        if self.max_part_nodes is not None and self.max_part_nodes < 4:
            raise ValueError(f"--max-part-nodes must be >= 4, got {self.max_part_nodes}")
        if self.partitions is not None and self.partitions < 1:
            raise ValueError("--partitions must be >= 1")
        if self.top_threads < 0:
            raise ValueError(f"--top-threads must be >= 0, got {self.top_threads}")

    def distne(self) -> DistNEConfig:
        shared = {f.name for f in fields(DistNEConfig)} & {f.name for f in fields(self)}
        return DistNEConfig(max_subgraph_nodes=self.max_part_nodes, **{k: getattr(self, k) for k in shared})


def parse_args(argv=None) -> EmbedGraphConfig:
    ns = build_parser(EmbedGraphConfig, "embed_graph", __doc__.splitlines()[0]).parse_args(argv)
    tuned = {}
    if ns.settings:
        from pathlib import Path

        from embeddings.tuning import read_settings

        path = Path(ns.settings.removeprefix("file:"))
        tuned = asdict(read_settings(path / "chosen.json" if path.is_dir() else path))
    return config_from(EmbedGraphConfig, ns, **tuned)


def run(spark, cfg: EmbedGraphConfig) -> dict:
    """Read the graph, embed, write ``vectors`` + ``_meta.json``; return the meta."""
    from embeddings.spark.embed import embed
    from graphs.atomic import local_path
    from graphs.spark_helpers import input_rows
    from jobs.runtime.output import publish

    t0 = time.perf_counter()
    gdir = local_path(cfg.edges)
    for part in ("edges", "vertices"):
        if not (gdir / part).exists():
            raise FileNotFoundError(f"{gdir / part}: not found (is --edges an ingest_graph output DIR?)")
    stats_file = gdir / "stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    edges = spark.read.parquet(str(gdir / "edges"))
    vertices = spark.read.parquet(str(gdir / "vertices"))
    if "id" not in vertices.columns:
        raise ValueError(f"{gdir / 'vertices'}: no column 'id'")
    from embeddings.spark.sizing import size_job  # task budget and checkpoint storage from the graph and heap

    cfg, sized = size_job(spark, cfg, stats, default_memory_mb=EmbedGraphConfig.memory_mb)
    vectors, run_stats = embed(spark, edges, vertices, cfg.distne(), directed=bool(stats.get("directed", True)),
                               out_partitions=cfg.partitions, storage=sized.storage)
    meta = run_stats.to_meta()
    # one row per vertex (a left join from the ingest's unique vertex ids): count the vertices, not the vectors,
    # so the vectors are computed once, by the write (from the Parquet footers: no Spark job)
    rows = input_rows(vertices)
    rows = vertices.count() if rows is None else rows
    meta["timings"]["embed_total_s"] = round(time.perf_counter() - t0, 3)
    meta.update(method="distne", directed_input=bool(stats.get("directed", False)), symmetrised=True)
    out = publish(cfg.output, "embed_graph", asdict(cfg), {"vectors": vectors}, rows={"vectors": rows},
                  **meta)
    log.info("embedded %s nodes into %s dims -> %s (%s)", rows, cfg.dim, cfg.output,
             {k: meta.get(k) for k in ("levels", "parts", "largest_subgraph_nodes", "embedded_edges_multiple")})
    return out


def main(argv=None) -> int:
    run_job(argv, parse_args, run, "graphrec-embed-graph")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
