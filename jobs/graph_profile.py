"""Profile a directed graph (what-if analytics), and compare a sample's profile with the full graph's.

    spark-submit --py-files dist/graphrec.zip jobs/graph_profile.py --edges GRAPH_DIR --output DIR \\
        [--reference FULL_PROFILE_DIR [--ratio R]] [--memory-mb 2048] [--bfs-sources 256] [--seed S]

Reads an ingest or sample_graph output (``GRAPH_DIR/edges`` with ``src, dst``; ``vertices`` with ``id``;
``stats.json``; an undirected graph is read as both directions) and writes atomically to ``DIR``:
``profile.json`` (:class:`graphs.profile.GraphProfile`: degree, clustering, components, cores, distances,
PageRank), ``profile.png`` and ``_meta.json`` (mode, timings, what was not computed and why).
The degree section is aggregated on Spark; the structural sections run in one task when the simple graph
fits ``--memory-mb`` (:func:`graphs.spark_profile.fits_one_task`), else PageRank and weak components run
distributed, and so do the distances (vertex ids dense ``0..n-1``: the same BFS sources and result as in one
task); clustering, strong components and k-cores are left out (listed in ``_meta.json``). No edge list reaches
the driver; clustering is then always sampled (:func:`graphs.spark_profile.clustering_distributed`).

With ``--reference`` (the ``graph_profile`` output of the full graph) it also writes ``comparison.json``
(:func:`graphs.profile_compare.comparison_report`: per property the full value, the sample's estimate by
its scaling law, the relative error), ``comparison.md`` and ``comparison.png``; ``--ratio`` defaults to the
sample's ``_meta.json`` (``params.ratio``, written by ``sample_graph``).
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401  (puts the project root on sys.path)

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from graphs.atomic import local_path, write_json
from graphs.profile import ProfileConfig
from jobs.runtime.cli import arg, parse_config, run_job

log = logging.getLogger("jobs.graph_profile")

SECTIONS = ("clustering", "components", "cores", "distances", "pagerank")


@dataclass(frozen=True)
class GraphProfileConfig:
    """Flags of the job."""

    edges: str = arg(help="GRAPH_DIR (edges/, vertices/, stats.json)")
    output: str = arg(help="output DIR (replaced atomically)")
    reference: str | None = arg(None, "graph_profile output DIR of the full graph: compare to it")
    ratio: float | None = arg(None, "sample ratio r (default: GRAPH_DIR/_meta.json)")
    memory_mb: int = arg(2048, "memory of the one task that runs the structure")
    bfs_sources: int = arg(ProfileConfig.bfs_sources, "BFS sources of the distance distribution")
    seed: int = arg(ProfileConfig.seed, "random seed (BFS sources, sampled clustering)")
    skip: tuple = arg((), f"comma-separated sections to leave out ({', '.join(SECTIONS)})", sep=",")
    distributed: bool = arg(False, "use the distributed path even if one task would do")
    pagerank_max_iter: int = arg(100, "most PageRank steps of the distributed path")

    def __post_init__(self) -> None:
        if self.ratio is not None and not 0 < self.ratio <= 1:
            raise ValueError(f"--ratio must be in (0, 1], got {self.ratio}")
        if self.ratio is not None and self.reference is None:
            raise ValueError("--ratio needs --reference")
        if self.memory_mb < 64:
            raise ValueError(f"--memory-mb must be >= 64, got {self.memory_mb}")
        if self.pagerank_max_iter < 1:
            raise ValueError(f"--pagerank-max-iter must be >= 1, got {self.pagerank_max_iter}")
        if self.bfs_sources < 1:
            raise ValueError(f"--bfs-sources must be >= 1, got {self.bfs_sources}")
        bad = set(self.skip) - set(SECTIONS)
        if bad:
            raise ValueError(f"--skip: unknown sections {sorted(bad)} (known: {', '.join(SECTIONS)})")

    def profile(self):
        return ProfileConfig(bfs_sources=self.bfs_sources, seed=self.seed, skip=tuple(self.skip))


def parse_args(argv=None) -> GraphProfileConfig:
    return parse_config(GraphProfileConfig, argv, prog="graph_profile", description=__doc__.split("\n\n")[0])


def sample_ratio(graph_dir: str) -> float:
    """The ratio a ``sample_graph`` output was drawn at (its ``_meta.json``)."""
    meta = local_path(graph_dir) / "_meta.json"
    try:
        return float(json.loads(meta.read_text())["params"]["ratio"])
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{meta}: no params.ratio ({e}); pass --ratio") from e


def run(spark, cfg: GraphProfileConfig) -> dict:
    """Profile ``cfg.edges``, write ``cfg.output``; return ``profile.json``'s content."""
    from pyspark.sql import functions as F

    from graphs import spark_profile as spr
    from graphs.profile import GraphProfile
    from jobs.runtime.output import publish

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    ratio = None
    if cfg.reference is not None:  # fail before any work when the comparison cannot be made
        ref_path = local_path(cfg.reference) / "profile.json"
        if not ref_path.is_file():
            raise FileNotFoundError(f"{ref_path}: not found (is --reference a graph_profile output DIR?)")
        ratio = cfg.ratio if cfg.ratio is not None else sample_ratio(cfg.edges)
    edges, vertices, stats = spr.read_graph(spark, str(local_path(cfg.edges)))
    simple, degree, st = spr.degree_section(edges, vertices)
    timings["degree_s"] = time.perf_counter() - t0
    n = degree.nodes
    pcfg = cfg.profile()
    one_task = spr.fits_one_task(st["edges"], cfg.memory_mb) and not cfg.distributed
    sections: dict = {}
    not_computed: dict = {s: "--skip" for s in cfg.skip}
    t = time.perf_counter()
    if one_task:
        sections = spr.structure_in_one_task(simple, n, pcfg)
        timings.update({f"task_{k}_s": v for k, v in sections.pop("seconds", {}).items()})
    else:
        reason = f"{st['edges']} edges exceed one task of {cfg.memory_mb} MB" if not cfg.distributed else "--distributed"
        if "pagerank" not in cfg.skip:
            pr, iters = spr.pagerank_distributed(simple, vertices, n, pcfg.damping, pcfg.pagerank_tol,
                                                 cfg.pagerank_max_iter)
            sections["pagerank"] = asdict(spr.pagerank_section(pr, n))
            timings["pagerank_iterations"] = iters
        if "components" not in cfg.skip:
            sections["components"] = asdict(spr.wcc_distributed(simple, vertices))
            not_computed["strong components"] = reason
        if "distances" not in cfg.skip:
            lo, hi = vertices.agg(F.min("id"), F.max("id")).first()
            if lo == 0 and hi == n - 1:  # dense ids: the sources of the single-machine profile
                sections["distances"] = asdict(spr.distances_distributed(simple, n, cfg.bfs_sources, seed=cfg.seed))
            else:
                not_computed["distances"] = f"vertex ids are not dense 0..{n - 1}"
        if "clustering" not in cfg.skip:
            sections["clustering"] = asdict(spr.clustering_distributed(simple, n, pcfg.nodes_per_bin,
                                                                       pcfg.wedges_per_node, cfg.seed))
        not_computed.setdefault("cores", reason)
    timings["structure_s"] = time.perf_counter() - t
    profile = GraphProfile.from_dict({"degree": asdict(degree), **sections})
    body = profile.to_dict()
    body["seconds"] = timings
    comparison = None
    if ratio is not None:
        from graphs.profile_compare import comparison_report

        reference = json.loads(ref_path.read_text())
        comparison = comparison_report(reference, body, ratio)
    def write_local(tmp: Path) -> None:  # the figures, then the total time
        _figures(tmp, body, comparison, reference if comparison else None, ratio)
        timings["total_s"] = time.perf_counter() - t0

    publish(cfg.output, "graph_profile", asdict(cfg), {}, {"profile.json": body}, write=write_local,
            mode="one task" if one_task else "distributed", not_computed=not_computed,
            rows={"nodes": n, "edges": st["edges"]},
            input={"self_loops": st["self_loops"], "duplicates": st["duplicates"], "stats": stats},
            timings=timings, **({"median_rel_error": comparison["median_rel_error"]} if comparison else {}))
    log.info("profiled %s: %d nodes, %d edges (%s) in %.1fs%s", cfg.edges, n, st["edges"],
             "one task" if one_task else "distributed", timings["total_s"],
             f"; median relative error vs reference {comparison['median_rel_error']:.3f}" if comparison else "")
    return body


def _figures(tmp: Path, body: dict, comparison: dict | None, reference: dict | None, ratio: float | None) -> None:
    from graphs.profile_plot import plot_profiles

    plot_profiles({"graph": body}, tmp / "profile.png")
    if comparison is not None:
        from graphs.profile_compare import PropertyComparison, comparison_table

        write_json(tmp / "comparison.json", comparison)
        rows = [PropertyComparison(**r) for r in comparison["properties"]]
        (tmp / "comparison.md").write_text(comparison_table(rows) + "\n")
        plot_profiles({"full graph": reference, f"sample (r = {ratio})": body}, tmp / "comparison.png")


def main(argv=None) -> int:
    run_job(argv, parse_args, run, "graphrec-graph-profile", figures=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
