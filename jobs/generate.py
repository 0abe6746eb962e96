"""Generate data on the cluster, block by block: a planted-community graph, R-MAT, or interactions.

    spark-submit --py-files dist/graphrec.zip jobs/generate.py graph --nodes 100000 --output out/raw_graph
    spark-submit ... jobs/generate.py interactions --nodes 100000 --items 20000 --output out/raw_inter
    spark-submit ... jobs/generate.py rmat --scale 20 --edges 16000000 --output out/rmat

Outputs are Parquet (``edges(src, dst)`` + ``labels(id, label)`` for ``graph``;
``interactions(user, item)``) that ``ingest_graph --format parquet`` / ``ingest_interactions
--format parquet`` read.

``--social-only S --isolated I`` (both default 0) withhold users the way the demo does
(:mod:`jobs.demo_users`, the same seeded split by id): ``graph`` drops the edges of the isolated
users, ``interactions`` drops the interactions of both shares; give the two commands the same
``--seed`` and shares and the users come out with both friends and interactions, friends only, or
neither.
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401

import argparse
import logging
from dataclasses import asdict, dataclass, field

from graphs.generators import InteractionConfig, PlantedConfig

log = logging.getLogger("graphrec.generate")


@dataclass(frozen=True)
class GenerateConfig:
    kind: str
    output: str
    graph: PlantedConfig = field(default_factory=PlantedConfig)
    interactions: InteractionConfig = field(default_factory=InteractionConfig)
    scale: int = 16
    edges: int = 1_000_000
    block: int = 100_000
    partitions: int = 8
    social_only: float = 0.0  # share of users without interactions (friends only)
    isolated: float = 0.0     # share of users with neither edges nor interactions

    def __post_init__(self):
        from jobs.demo_users import check_shares

        if self.kind not in ("graph", "interactions", "rmat"):
            raise ValueError(f"kind must be graph|interactions|rmat, got {self.kind!r}")
        if not 1 <= self.scale <= 40 or self.edges < 1 or self.block < 1:
            raise ValueError("need 1 <= --scale <= 40, --edges >= 1, --block >= 1")
        check_shares(self.social_only, self.isolated)


def parse_args(argv=None) -> GenerateConfig:
    p = argparse.ArgumentParser(prog="generate", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="kind", required=True)
    for kind in ("graph", "interactions", "rmat"):
        s = sub.add_parser(kind)
        s.add_argument("--output", required=True)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--block", type=int, default=None, help="nodes (graph/interactions) or edges (rmat) per task")
        s.add_argument("--partitions", type=int, default=8)
        if kind == "rmat":
            s.add_argument("--scale", type=int, default=16, help="2**scale node ids")
            s.add_argument("--edges", type=int, default=1_000_000)
        else:
            s.add_argument("--nodes", type=int, default=10_000)
            s.add_argument("--communities", type=int, default=10)
            s.add_argument("--avg-degree", type=float, default=10.0)
            s.add_argument("--mu", type=float, default=0.2, help="fraction of edges leaving the community")
            s.add_argument("--social-only", type=float, default=0.0,
                           help="share of users whose interactions are withheld (friends only)")
            s.add_argument("--isolated", type=float, default=0.0,
                           help="share of users with neither edges nor interactions")
        if kind == "interactions":
            s.add_argument("--items", type=int, default=5_000)
            s.add_argument("--items-per-user", type=float, default=20.0)
            s.add_argument("--p-in", type=float, default=0.8)
    a = p.parse_args(argv)
    if a.kind == "rmat":
        return GenerateConfig("rmat", a.output, scale=a.scale, edges=a.edges, block=a.block or 1_000_000,
                              partitions=a.partitions, graph=PlantedConfig(seed=a.seed))
    g = PlantedConfig(nodes=a.nodes, communities=a.communities, avg_degree=a.avg_degree, mu=a.mu, seed=a.seed)
    i = InteractionConfig(items=getattr(a, "items", 5_000), avg_items_per_user=getattr(a, "items_per_user", 20.0),
                          p_in=getattr(a, "p_in", 0.8), seed=a.seed)
    return GenerateConfig(a.kind, a.output, graph=g, interactions=i, block=a.block or 100_000, partitions=a.partitions,
                          social_only=a.social_only, isolated=a.isolated)


def keep_users(df, columns: tuple[str, ...], kinds: tuple[int, ...], cfg: GenerateConfig):
    """Rows of ``df`` whose ``columns`` all hold users of ``kinds`` (:func:`jobs.demo_users.user_kind`)."""
    import numpy as np

    from jobs.demo_users import user_kind

    if cfg.social_only == 0 and cfg.isolated == 0:
        return df
    shares, seed = (cfg.social_only, cfg.isolated), cfg.graph.seed

    def keep(batches):
        for b in batches:
            ok = np.ones(len(b), bool)
            for c in columns:
                ok &= np.isin(user_kind(b[c].to_numpy(), *shares, seed), kinds)
            yield b[ok]

    return df.mapInPandas(keep, df.schema)


def run(spark, cfg: GenerateConfig) -> dict:
    from graphs.spark_generate import planted_edges, planted_interactions, planted_labels, rmat_edges
    from jobs.demo_users import BOTH, SOCIAL
    from jobs.output import publish

    if cfg.kind == "rmat":
        tables = {"edges": rmat_edges(spark, cfg.scale, cfg.edges, cfg.graph.seed, cfg.block)}
    elif cfg.kind == "graph":
        tables = {"edges": keep_users(planted_edges(spark, cfg.graph, cfg.block), ("src", "dst"), (BOTH, SOCIAL), cfg),
                  "labels": planted_labels(spark, cfg.graph).repartition(cfg.partitions)}
    else:
        tables = {"interactions": keep_users(planted_interactions(spark, cfg.graph, cfg.interactions, cfg.block),
                                             ("user",), (BOTH,), cfg)}
    meta = publish(cfg.output, f"generate_{cfg.kind}", asdict(cfg), tables)
    log.info("generated %s -> %s", cfg.kind, cfg.output)
    return meta


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    from jobs.session import get_session

    run(get_session(f"graphrec-generate-{cfg.kind}"), cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
