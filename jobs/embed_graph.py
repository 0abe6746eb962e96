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

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass

log = logging.getLogger("graphrec.embed_graph")


@dataclass(frozen=True)
class EmbedGraphConfig:
    """Flags of the job; ``max_part_nodes`` is M, the bound on every embedded subgraph."""

    edges: str
    output: str
    dim: int = 128
    max_part_nodes: int | None = None
    memory_mb: int = 2048
    seed: int = 0
    lpa_rounds: int = 4
    refine_order: int = 2
    align: str = "lstsq"
    partitions: int | None = None
    coarse_edges_per_cluster: int | None = None
    max_subgraph_edges: int | None = None
    local_coarsen_edges: int | None = None
    top_threads: int = 0
    order: int = 5
    mu: float = 0.2
    theta: float = 0.5
    settings: str | None = None

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"--dim must be >= 1, got {self.dim}")
        if self.max_part_nodes is not None and self.max_part_nodes < 4:
            raise ValueError(f"--max-part-nodes must be >= 4, got {self.max_part_nodes}")
        if self.partitions is not None and self.partitions < 1:
            raise ValueError("--partitions must be >= 1")
        if self.top_threads < 0:
            raise ValueError(f"--top-threads must be >= 0, got {self.top_threads}")

    def distne(self):
        from embeddings.distne import DistNEConfig

        return DistNEConfig(dim=self.dim, max_subgraph_nodes=self.max_part_nodes, memory_mb=self.memory_mb,
                            lpa_rounds=self.lpa_rounds, refine_order=self.refine_order, align=self.align,
                            seed=self.seed, coarse_edges_per_cluster=self.coarse_edges_per_cluster,
                            max_subgraph_edges=self.max_subgraph_edges, local_coarsen_edges=self.local_coarsen_edges,
                            top_threads=self.top_threads, order=self.order, mu=self.mu, theta=self.theta)


def parse_args(argv=None) -> EmbedGraphConfig:
    p = argparse.ArgumentParser(prog="embed_graph", description=__doc__.splitlines()[0])
    p.add_argument("--edges", required=True, help="GRAPH_DIR written by ingest_graph (edges/, vertices/, stats.json)")
    p.add_argument("--output", required=True, help="output DIR (replaced atomically)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--max-part-nodes", type=int, default=None,
                   help="M: most nodes of any embedded subgraph (default: from --memory-mb and the edges per node)")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory budget of one embedding task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lpa-rounds", type=int, default=4, help="label-propagation rounds per coarsening level")
    p.add_argument("--refine-order", type=int, default=2,
                   help="Chebyshev terms of the global fusion propagation (0 = off; rounds = 2(order-1)+1)")
    p.add_argument("--align", choices=["lstsq", "orthogonal"], default="lstsq")
    p.add_argument("--partitions", type=int, default=None,
                   help="output partitions (default: the job's shuffle partitions, i.e. the task slots)")
    p.add_argument("--coarse-edges-per-cluster", type=int, default=None,
                   help="part subgraphs keep only the quotient edges among the K heaviest of one of their outside "
                        "clusters (default: all)")
    p.add_argument("--max-subgraph-edges", type=int, default=None,
                   help="most edges of any embedded subgraph: the heaviest coarse/quotient edges that fit are kept "
                        "(default: from --memory-mb when M is, else no bound)")
    p.add_argument("--local-coarsen-edges", type=int, default=None,
                   help="coarsen a graph of at most N edges inside one task, else on Spark (default: half of "
                        "--memory-mb at 256 B per edge; 0: always on Spark)")
    p.add_argument("--top-threads", type=int, default=0,
                   help="threads of the ProNE in the one-task stages (top level, or a graph that fits one task); "
                        "0: the cores of one executor (spark.executor.cores, N of local[N]); part tasks use one each")
    p.add_argument("--settings", default=None,
                   help="chosen.json of tune_embedding (or its output DIR): ProNE's order, mu, theta")
    a = p.parse_args(argv)
    tuned = {}
    if a.settings:
        from pathlib import Path

        from embeddings.tuning import read_settings

        path = Path(a.settings.removeprefix("file:"))
        tuned = asdict(read_settings(path / "chosen.json" if path.is_dir() else path))
    return EmbedGraphConfig(a.edges, a.output, a.dim, a.max_part_nodes, a.memory_mb, a.seed, a.lpa_rounds,
                            a.refine_order, a.align, a.partitions, a.coarse_edges_per_cluster, a.max_subgraph_edges,
                            a.local_coarsen_edges, a.top_threads, settings=a.settings, **tuned)


def run(spark, cfg: EmbedGraphConfig) -> dict:
    """Read the graph, embed, write ``vectors`` + ``_meta.json``; return the meta."""
    from embeddings.spark.embed import embed
    from graphs.atomic import local_path
    from graphs.spark_helpers import input_rows
    from jobs.output import publish

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
    vectors, run_stats = embed(spark, edges, vertices, cfg.distne(), directed=bool(stats.get("directed", True)),
                               out_partitions=cfg.partitions)
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    from jobs.session import get_session

    spark = get_session("graphrec-embed-graph")
    run(spark, cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
