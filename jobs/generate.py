"""Generate data on the cluster, block by block: a planted-community graph, R-MAT, or interactions.

    spark-submit --py-files dist/graphrec.zip jobs/generate.py graph --nodes 100000 --output out/raw_graph
    spark-submit ... jobs/generate.py interactions --nodes 100000 --items 20000 --output out/raw_inter
    spark-submit ... jobs/generate.py rmat --scale 20 --edges 16000000 --output out/rmat

Outputs are Parquet (``edges(src, dst)`` + ``labels(id, label)`` for ``graph``;
``interactions(user, item)``) that ``ingest_graph --format parquet`` / ``ingest_interactions
--format parquet`` read.

``--social-only S --isolated I`` (both default 0) withhold users the way the demo does
(:mod:`jobs.demo.users`, the same seeded split by id): ``graph`` drops the edges of the isolated
users, ``interactions`` drops the interactions of both shares; give the two commands the same
``--seed`` and shares and the users come out with both friends and interactions, friends only, or
neither.
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401

import argparse
import logging
from dataclasses import asdict, dataclass

from graphs.generators import InteractionConfig, PlantedConfig
from jobs.runtime.cli import DefaultsHelpFormatter, add_flags, arg, config_from, run_job

log = logging.getLogger("graphrec.generate")


KINDS = ("graph", "interactions", "rmat")
RMAT_BLOCK = 1_000_000  # edges per task of rmat (graph and interactions: GenerateConfig.block nodes)


@dataclass(frozen=True)
class GenerateConfig:
    kind: str = arg(help="graph | interactions | rmat (the subcommand)", cli=False)
    output: str = arg(help="output DIR (replaced atomically)")
    graph: PlantedConfig = arg(help="the planted graph (--nodes, --communities, --avg-degree, --mu, --seed)",
                               cli=False, default_factory=PlantedConfig)
    interactions: InteractionConfig = arg(help="the interactions (--items, --items-per-user, --p-in)", cli=False,
                                          default_factory=InteractionConfig)
    scale: int = arg(16, "2**scale node ids")
    edges: int = arg(1_000_000, "edges to draw")
    block: int = arg(100_000, "nodes (graph/interactions) or edges (rmat) per task")
    partitions: int = arg(8, "partitions of the labels table")
    social_only: float = arg(0.0, "share of users whose interactions are withheld (friends only)")
    isolated: float = arg(0.0, "share of users with neither edges nor interactions")

    def __post_init__(self):
        from jobs.demo.users import check_shares

        if self.kind not in KINDS:
            raise ValueError(f"kind must be graph|interactions|rmat, got {self.kind!r}")
        if not 1 <= self.scale <= 40 or self.edges < 1 or self.block < 1:
            raise ValueError("need 1 <= --scale <= 40, --edges >= 1, --block >= 1")
        check_shares(self.social_only, self.isolated)


PLANTED_HELP = {"nodes": "users (nodes of the planted graph)", "communities": "planted communities",
                "avg_degree": "mean out-degree", "mu": "fraction of edges leaving the community",
                "seed": "random seed (the same seed and shares withhold the same users)"}
INTERACTION_HELP = {"items": "items", "avg_items_per_user": "mean interactions per user",
                    "p_in": "probability an interaction is with an item of the user's community"}


def parse_args(argv=None) -> GenerateConfig:
    p = argparse.ArgumentParser(prog="generate", description=__doc__.splitlines()[0],
                                formatter_class=DefaultsHelpFormatter)
    sub = p.add_subparsers(dest="kind", required=True)
    for kind in KINDS:
        s = sub.add_parser(kind, formatter_class=DefaultsHelpFormatter)
        add_flags(s, GenerateConfig, only=("output",))
        add_flags(s, PlantedConfig, only=("seed",), helps=PLANTED_HELP)
        add_flags(s, GenerateConfig, only=("block", "partitions"),
                  defaults={"block": RMAT_BLOCK} if kind == "rmat" else None)
        if kind == "rmat":
            add_flags(s, GenerateConfig, only=("scale", "edges"))
        else:
            add_flags(s, PlantedConfig, only=("nodes", "communities", "avg_degree", "mu"), helps=PLANTED_HELP)
            add_flags(s, GenerateConfig, only=("social_only", "isolated"))
        if kind == "interactions":
            add_flags(s, InteractionConfig, only=("items", "avg_items_per_user", "p_in"), helps=INTERACTION_HELP,
                      flags={"avg_items_per_user": "--items-per-user"})
    a = p.parse_args(argv)
    block = a.block or (RMAT_BLOCK if a.kind == "rmat" else GenerateConfig.block)
    if a.kind == "rmat":
        return config_from(GenerateConfig, a, kind="rmat", block=block, graph=PlantedConfig(seed=a.seed))
    g = PlantedConfig(**{k: getattr(a, k) for k in PLANTED_HELP})
    i = InteractionConfig(seed=a.seed, **{k: getattr(a, k) for k in INTERACTION_HELP if hasattr(a, k)})
    return config_from(GenerateConfig, a, kind=a.kind, graph=g, interactions=i, block=block)


def keep_users(df, columns: tuple[str, ...], kinds: tuple[int, ...], cfg: GenerateConfig):
    """Rows of ``df`` whose ``columns`` all hold users of ``kinds`` (:func:`jobs.demo.users.user_kind`)."""
    import numpy as np

    from jobs.demo.users import user_kind

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
    from jobs.demo.users import BOTH, SOCIAL
    from jobs.runtime.output import publish

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
    run_job(argv, parse_args, run, lambda cfg: f"graphrec-generate-{cfg.kind}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
