"""Tune the embedding's propagation settings on a sample by link-prediction AUC; write the chosen ones.

    spark-submit --py-files dist/graphrec.zip jobs/tune_embedding.py --edges SAMPLE_DIR --output DIR \\
        [--dim 128] [--repeats 1] [--test-frac 0.1] [--grid FILE.json] [--max-edges 5000000] [--seed S]

Reads a (sample) graph (``SAMPLE_DIR/edges`` with ``src, dst``; directed graphs are symmetrised) and scores
every setting of the grid (:func:`embeddings.tuning.default_grid`: ProNE's filter centre μ, width θ and
Chebyshev order — the settings DistNE applies at every level) by link-prediction AUC on held-out edges of the
sample (:func:`embeddings.tuning.tune`). The scoring runs in **one task** on an executor (all edges of the
sample sent to one ``applyInPandas`` group; the job refuses a graph above ``--max-edges``: tune on a sample).
A sample that cannot be scored (a forest: no edge outside a spanning forest to hold out) gets DistNE's
default settings in ``chosen.json``, with the reason under ``fallback``.
Writes atomically ``DIR/chosen.json`` (``order, mu, theta, dim, auc``: what ``embed_graph --settings
DIR/chosen.json`` applies), ``DIR/scores.json`` (every setting's AUC and seconds) and ``DIR/_meta.json``.
``--grid FILE.json``: a list of ``{"order": .., "mu": .., "theta": ..}`` instead of the default grid.

In ``graphrec_daily``: sample_graph → tune_embedding → embed_graph ``--settings``.
"""
from __future__ import annotations

if __package__ in (None, ""):  # run as a script by spark-submit
    import bootstrap  # noqa: F401  (puts the project root on sys.path)

import json
import logging
import time
from dataclasses import asdict, dataclass

from embeddings.tuning import TuningConfig
from jobs.runtime.cli import arg, parse_config, run_job

log = logging.getLogger("jobs.tune_embedding")


@dataclass(frozen=True)
class TuneEmbeddingConfig:
    """Flags of the job."""

    edges: str = arg(help="SAMPLE_DIR (edges/ with src, dst)")
    output: str = arg(help="output DIR (replaced atomically)")
    dim: int = arg(TuningConfig.dim, "embedding dimension (embed_graph's --dim)")
    repeats: int = arg(TuningConfig.repeats, "link-prediction splits averaged per setting")
    test_frac: float = arg(TuningConfig.test_frac, "fraction of edges held out")
    seed: int = arg(TuningConfig.seed, "random seed of the splits")
    grid: str | None = arg(None, "JSON list of {order, mu, theta} (default: the built-in grid)")
    max_edges: int = arg(5_000_000, "refuse larger graphs (tune on a sample)")
    threads: int = arg(TuningConfig.threads, "threads of the task (0: the executor's cores)")

    def __post_init__(self) -> None:
        self.tuning()  # validates dim, repeats, test_frac
        if self.max_edges < 1:
            raise ValueError(f"--max-edges must be >= 1, got {self.max_edges}")
        if self.threads < 0:
            raise ValueError(f"--threads must be >= 0, got {self.threads}")

    def tuning(self, threads: int | None = None):
        return TuningConfig(dim=self.dim, test_frac=self.test_frac, repeats=self.repeats, seed=self.seed,
                            threads=self.threads if threads is None else threads)

    def settings(self) -> tuple:
        from embeddings.tuning import Setting, default_grid

        if self.grid is None:
            return default_grid()
        from graphs.atomic import local_path

        items = json.loads(local_path(self.grid).read_text())
        return tuple(Setting(int(x["order"]), float(x["mu"]), float(x["theta"])) for x in items)


def parse_args(argv=None) -> TuneEmbeddingConfig:
    return parse_config(TuneEmbeddingConfig, argv, prog="tune_embedding", description=__doc__.split("\n\n")[0])


SCHEMA = "label string, ord int, mu double, theta double, auc double, aucs string, seconds double, info string"
COLUMNS = [c.split()[0] for c in SCHEMA.split(", ")]


def _task(settings: tuple, tcfg):
    import numpy as np
    import pandas as pd

    def run(pdf: pd.DataFrame) -> pd.DataFrame:
        import scipy.sparse as sp

        from embeddings.tuning import tune

        ids = np.unique(np.r_[pdf["src"].to_numpy(np.int64), pdf["dst"].to_numpy(np.int64)])
        a, b = np.searchsorted(ids, pdf["src"].to_numpy(np.int64)), np.searchsorted(ids, pdf["dst"].to_numpy(np.int64))
        adj = sp.csr_matrix((np.ones(a.size, np.float32), (a, b)), shape=(ids.size, ids.size))
        try:
            res = tune(adj, settings, tcfg)
        except ValueError as e:  # a forest: nothing to hold out; the driver falls back to the defaults
            info = json.dumps({"nodes": int(ids.size), "edges": int(a.size), "seconds": {}, "error": str(e)})
            return pd.DataFrame([("", 0, 0.0, 0.0, float("nan"), "[]", 0.0, info)], columns=COLUMNS)
        info = json.dumps({"nodes": res.nodes, "edges": res.edges, "seconds": res.seconds})
        return pd.DataFrame([(s.setting.label, s.setting.order, s.setting.mu, s.setting.theta, s.auc, json.dumps(s.aucs),
                              s.seconds, info) for s in res.scores], columns=COLUMNS)
    return run


def run(spark, cfg: TuneEmbeddingConfig) -> dict:
    """Score the grid on ``cfg.edges`` in one task; write ``chosen.json``, ``scores.json``; return chosen.json."""
    from pyspark.sql import functions as F

    from embeddings.spark import executor_cores
    from graphs.atomic import local_path
    from graphs.spark_profile import read_graph
    from jobs.runtime.output import publish

    t0 = time.perf_counter()
    settings = cfg.settings()
    if not settings:
        raise ValueError("the grid is empty")
    edges, _, stats = read_graph(spark, str(local_path(cfg.edges)))
    edges = edges.where("src != dst").persist()
    n_edges = edges.count()
    if n_edges == 0:
        raise ValueError(f"{cfg.edges}: the graph has no edges")
    if n_edges > cfg.max_edges:
        raise ValueError(f"{cfg.edges}: {n_edges} edges exceed --max-edges {cfg.max_edges}; tune on a sample "
                         "(sample_graph) and apply the settings to the full graph")
    tcfg = cfg.tuning(threads=cfg.threads or executor_cores(spark))
    rows = (edges.withColumn("g", F.lit(0)).groupBy("g").applyInPandas(_task(settings, tcfg), SCHEMA)
            .collect())
    info = json.loads(rows[0]["info"])
    if "error" in info:  # keep the day's pipeline going with DistNE's defaults, and say why
        from embeddings.tuning import Setting

        log.warning("%s cannot be tuned (%s); writing the default settings", cfg.edges, info["error"])
        scores = []
        best = {**asdict(Setting()), "label": Setting().label, "auc": None}
    else:
        scores = [{"label": r["label"], "order": r["ord"], "mu": r["mu"], "theta": r["theta"], "auc": r["auc"],
                   "aucs": json.loads(r["aucs"]), "seconds": r["seconds"]} for r in rows]
        best = max(scores, key=lambda s: s["auc"])
    chosen = {"order": best["order"], "mu": best["mu"], "theta": best["theta"], "dim": cfg.dim, "auc": best["auc"],
              "source": "tune_embedding", **({"fallback": info["error"]} if "error" in info else {})}
    timings = {"tuning": info["seconds"], "total_s": time.perf_counter() - t0}
    publish(cfg.output, "tune_embedding", asdict(cfg), {},
            {"chosen.json": chosen, "scores.json": {"scores": sorted(scores, key=lambda s: -s["auc"]),
                                                    "nodes": info["nodes"], "edges": info["edges"],
                                                    "tuning": asdict(tcfg)}},
            rows={"settings": len(scores), "edges": n_edges}, chosen=chosen, timings=timings, input_stats=stats)
    log.info("tuned %d settings on %d nodes / %d edges: %s (AUC %s) in %.1fs", len(scores), info["nodes"],
             info["edges"], best["label"], best["auc"], timings["total_s"])
    return chosen


def main(argv=None) -> int:
    run_job(argv, parse_args, run, "graphrec-tune-embedding")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
