"""Command-line flags of the jobs, generated from their typed config dataclasses: one place for a default and its help.

The generator is :mod:`graphs.flags` (re-exported here; see its docstring for :func:`arg`, ``hidden``, ``nested``
and the types), kept outside ``jobs`` so that the entry points of core packages (``recsys.train``,
``recsys.candidates``, ``recsys.serving.cli``) use it without importing ``jobs``::

    @dataclass(frozen=True)
    class ExampleConfig:
        vectors: str = arg(help="DIR written by embed_graph (vectors/)")          # no default: required
        k: int = arg(KnnConfig.k, "neighbours per node")                          # --k, the core's default

    cfg = parse_config(ExampleConfig, argv, prog="example", description="...")

:func:`run_job` is a Spark job's ``main``.
"""
from __future__ import annotations

from graphs.flags import (DefaultsHelpFormatter, add_flags, arg, build_parser, config_from, flag_fields, opt,
                          parse_config)

__all__ = ["arg", "opt", "add_flags", "build_parser", "config_from", "parse_config", "flag_fields",
           "DefaultsHelpFormatter", "run_job"]


def run_job(argv, parse, run, app, figures: bool = False):
    """A Spark job's ``main``: log to the console, ``cfg = parse(argv)``, ``run(spark, cfg)`` on the session named
    ``app`` (or ``app(cfg)``); returns ``(cfg, run's result)``. ``figures``: the job draws figures, so matplotlib
    loads on a thread while Spark starts (:func:`graphs.figures.warm_up`)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse(argv)
    if figures:
        from graphs.figures import warm_up

        warm_up()
    from jobs.runtime.session import get_session

    return cfg, run(get_session(app(cfg) if callable(app) else app), cfg)
