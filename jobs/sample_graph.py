"""Sample a smaller directed graph that keeps the degree structure (JDM/DCM rescaling) or a baseline.

    spark-submit jobs/sample_graph.py --edges GRAPH_DIR --ratio 0.1 --method rescaled --output DIR [--seed S]

Reads an ingest output (``GRAPH_DIR/edges`` Parquet ``src, dst[, weight]``, ``stats.json`` with
``"directed": true``), removes self-loops and duplicate edges (counted in the report), and writes
atomically ``DIR/edges`` (``src, dst, weight``), ``DIR/vertices`` (``id, orig_id``; ``orig_id`` is
null for the synthetic ``rescaled`` nodes), ``DIR/matrices/{orig,sample}_{dcm,jdm}`` (non-zero
cells ``out_degree, in_degree, count``; for ``rescaled`` also ``target_*``), ``DIR/report.json``
(:func:`graphs.quality.quality_report`), ``DIR/degree_distributions.png`` and ``DIR/_meta.json``.
Methods: ``rescaled`` (Yan & Jiang 2022, repaired; docs/algorithms.md §2), ``random-node``,
``random-edge``, ``random-walk`` (many walkers, one join per step), ``forest-fire`` (synchronous
rounds); all distributed — the edge list never reaches the driver. Random-walk and forest-fire give
the same samples as their numpy versions in :mod:`graphs.baselines` for the same seed.
"""
if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401  (puts the project root on sys.path)

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphs.atomic import write_json
from jobs.runtime.cli import arg, parse_config, run_job

log = logging.getLogger("jobs.sample_graph")

METHODS = ("rescaled", "random-node", "random-edge", "random-walk", "forest-fire")


@dataclass(frozen=True)
class SampleConfig:
    """Parameters of one sampling run."""

    edges: str = arg(help="ingest output GRAPH_DIR (edges/, stats.json)")
    ratio: float = arg(help="sample ratio r in (0, 1]: about r*N nodes")
    output: str = arg(help="output directory (replaced atomically)")
    method: str = arg("rescaled", "sampler: JDM/DCM rescaling or a baseline", choices=METHODS)
    seed: int = arg(0, "random seed")
    # wiring tasks; 0 = about one per 200k sample edges, at least the default parallelism
    chunks: int = arg(0, "wiring tasks (0 = automatic)")

    def __post_init__(self) -> None:
        if not 0 < self.ratio <= 1:
            raise ValueError(f"--ratio must be in (0, 1], got {self.ratio}")
        if self.method not in METHODS:
            raise ValueError(f"--method must be one of {METHODS}, got {self.method!r}")
        if self.chunks < 0:
            raise ValueError("--chunks must be >= 0")


def parse_args(argv=None) -> SampleConfig:
    return parse_config(SampleConfig, argv, prog="sample_graph", description=__doc__.split("\n\n")[0])


def _cells_frame(m: sp.csr_array) -> pd.DataFrame:
    c = sp.coo_array(m)
    return pd.DataFrame({"out_degree": c.row.astype(np.int64), "in_degree": c.col.astype(np.int64),
                         "count": c.data.astype(np.int64)})


def _expand(dcm: sp.csr_array, jdm: sp.csr_array):
    """A :class:`graphs.degree.DegreeMatrices` with per-node degrees rebuilt from the DCM (order-free)."""
    from graphs.degree import DegreeMatrices

    c = sp.coo_array(dcm)
    return DegreeMatrices(np.repeat(c.row, c.data).astype(np.int64), np.repeat(c.col, c.data).astype(np.int64),
                          dcm, jdm)


def run(spark, cfg: SampleConfig) -> dict:
    """Sample and write everything; returns the report."""
    from pyspark.sql import functions as F

    from graphs import spark_sampling as ss
    from graphs.quality import plot_degree_distributions, quality_report
    from graphs.rescale import rescale
    from graphs.spark_helpers import input_rows
    from graphs.wiring import WiringPlan
    from jobs.runtime.output import publish
    from jobs.runtime.session import fit_shuffle_partitions

    t0 = time.time()
    timings: dict[str, float] = {}
    edges, vertices, stats = ss.read_directed_graph(spark, cfg.edges)
    fit_shuffle_partitions(spark, input_rows(edges))
    simple, deg, dcm0, jdm0, gstats = ss.summarise_graph(edges, vertices)  # one Spark job
    if gstats["edges_in"] == 0:
        raise ValueError(f"{cfg.edges}: the graph has no edges")
    if gstats["edges"] == 0:
        raise ValueError(f"{cfg.edges}: no edges left after removing self-loops and duplicates")
    n_simple, loops, dups = gstats["edges"], gstats["self_loops"], gstats["duplicates"]
    orig = _expand(dcm0, jdm0)
    n_nodes = orig.n_nodes
    if orig.n_edges != n_simple or int(jdm0.sum()) != n_simple:
        raise RuntimeError("degree aggregation lost edges")
    timings["degrees"] = time.time() - t0
    n_target = int(round(cfg.ratio * n_nodes))
    t = time.time()
    extra: dict = {}
    target = plan = None
    if cfg.method == "rescaled":
        res = rescale(orig, cfg.ratio)
        timings["rescale"] = time.time() - t
        t = time.time()
        plan = WiringPlan.build(res.dcm, res.jdm, cfg.seed)
        default_par = spark.sparkContext.defaultParallelism
        chunks = cfg.chunks or max(default_par, plan.n_edges // 200_000 + 1)
        s_edges = ss.wire_distributed(spark, plan, cfg.seed, chunks)
        s_verts = ss.plan_vertices(spark, plan)
        target = res
        extra = {"rescale": res.info}
    elif cfg.method in ("random-node", "random-edge"):
        if cfg.method == "random-node":
            s_verts, s_edges = ss.random_node(spark, simple, vertices, n_target, cfg.seed)
        else:
            s_verts, s_edges = ss.random_edge(spark, simple, n_target, cfg.seed)
    else:
        from graphs.baselines import hash_seed

        from graphs import spark_walks as sw

        e_dense, idmap = sw.dense_graph(spark, simple, deg, n_nodes)
        sampler = sw.random_walk if cfg.method == "random-walk" else sw.forest_fire
        nodes = sampler(spark, e_dense, n_nodes, n_target, hash_seed(np.random.default_rng(cfg.seed)))
        s_verts, s_edges = sw.induced_sample(spark, e_dense, nodes, idmap)
    s_edges = s_edges.persist()
    s_verts = s_verts.persist()
    dcm1, jdm1, s_recip = ss.summarise_sample(spark, s_edges, s_verts.select("id"),
                                              plan)  # one Spark job
    sample = _expand(dcm1, jdm1)
    timings["sample"] = time.time() - t
    report = quality_report(orig, sample, cfg.ratio)
    report.update({"method": cfg.method, "ratio": cfg.ratio, "seed": cfg.seed, "self_loops_removed": loops,
                   "duplicates_removed": dups, "orig_dcm_nnz": int(dcm0.nnz), "orig_jdm_nnz": int(jdm0.nnz),
                   "sample_dcm_nnz": int(dcm1.nnz), "sample_jdm_nnz": int(jdm1.nnz),
                   "reciprocity_orig": gstats["reciprocal"] / n_simple,
                   "reciprocity": s_recip / sample.n_edges if sample.n_edges else 0.0,
                   **extra})
    if target is not None:
        report["exact_realisation"] = bool((_pad(dcm1, target.dcm) != _pad(target.dcm, dcm1)).nnz == 0
                                           and (_pad(jdm1, target.jdm) != _pad(target.jdm, jdm1)).nnz == 0)
    frames = {"orig_dcm": dcm0, "orig_jdm": jdm0, "sample_dcm": dcm1, "sample_jdm": jdm1}
    if target is not None:
        frames.update({"target_dcm": target.dcm, "target_jdm": target.jdm})

    def write_local(tmp: Path) -> None:  # the matrices, the figure, and the report timed after them
        (tmp / "matrices").mkdir()
        for name, m in frames.items():
            _cells_frame(m).to_parquet(tmp / "matrices" / f"{name}.parquet", index=False)
        plot_degree_distributions(orig, {cfg.method: sample}, tmp / "degree_distributions.png",
                                  title=f"{cfg.method}, r = {cfg.ratio}")
        timings["total"] = time.time() - t0
        report["seconds"] = timings
        write_json(tmp / "report.json", report)

    publish(cfg.output, "sample_graph", asdict(cfg),
            {"edges": s_edges.select(F.col("src").cast("long"), F.col("dst").cast("long"),
                                     F.lit(1.0).cast("float").alias("weight")),
             "vertices": s_verts.select(F.col("id").cast("long"), F.col("orig_id").cast("long"))},
            write=write_local, rows={"edges": report["edges"], "vertices": report["nodes"]}, timings=timings,
            input_stats=stats)
    log.info("sampled %s: %d nodes (target %d), %d edges; in/out L1 %.4f/%.4f (floor %.4f/%.4f), JDM L1 %.3f",
             cfg.method, report["nodes"], n_target, report["edges"], report["in_l1"], report["out_l1"],
             report["floor_in"], report["floor_out"], report["jdm_l1"])
    return report


def _pad(a: sp.csr_array, b: sp.csr_array) -> sp.csr_array:
    c = sp.coo_array(a)
    shape = (max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1]))
    return sp.csr_array((c.data, (c.row, c.col)), shape=shape)


def main(argv=None) -> dict:
    return run_job(argv, parse_args, run, "graphrec-sample-graph", figures=True)[1]


if __name__ == "__main__":
    main()
