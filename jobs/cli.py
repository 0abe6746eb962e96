"""Command-line flags generated from a job's typed config dataclass: one place for a default and its help.

A field declares its flag with :func:`arg` (``field(default=..., metadata={"help": ..., ...})``)::

    @dataclass(frozen=True)
    class ExampleConfig:
        vectors: str = arg(help="DIR written by embed_graph (vectors/)")          # no default: required
        k: int = arg(KnnConfig.k, "neighbours per node")                          # --k, the core's default
        exclude_edges: str | None = arg(None, "GRAPH_DIR of edges to exclude")    # optional
        dedup: bool = arg(True, "do not deduplicate", flag="--keep-duplicates", negate=True)

    cfg = parse_config(ExampleConfig, argv, prog="example", description="...")

Types: ``str``, ``int``, ``float``, ``Path``, ``X | None`` (default None), ``bool`` (``store_true``; with
``negate=True`` a ``store_false`` flag), ``tuple`` with ``sep=","`` (a comma-separated value). ``choices`` may be
a callable (evaluated when the parser is built). A field with ``cli=False`` is no flag (set by the job, e.g. from
a settings file). A default that a core config also has is taken from it (``arg(KnnConfig.k, ...)``), so it is
stated once. ``--help`` shows each default unless the help text already states it. The parsed values go
to the dataclass constructor, so its ``__post_init__`` validates them (a ``ValueError``, as before).
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path

__all__ = ["arg", "add_flags", "build_parser", "config_from", "parse_config", "flag_fields"]


def arg(default=dataclasses.MISSING, help: str = "", *, flag: str | None = None, choices=None,
        sep: str | None = None, negate: bool = False, cli: bool = True, metavar: str | None = None,
        default_factory=dataclasses.MISSING):
    """A dataclass field carrying its flag's help (and name, choices, ...) in ``metadata``."""
    meta = {"help": help, "flag": flag, "choices": choices, "sep": sep, "negate": negate, "cli": cli,
            "metavar": metavar}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to a flag's help unless the help already speaks of its default."""

    def _get_help_string(self, action):
        h = action.help or ""
        d = action.default
        if (action.required or d is None or d is False or d in ("", ()) or d is argparse.SUPPRESS
                or isinstance(action, argparse._StoreConstAction) or "default" in h.lower()):
            return h
        return f"{h} (default: %(default)s)" if h else "default: %(default)s"


def _base_type(tp) -> tuple[type, bool]:
    """``(type, optional)`` of an annotation: ``int | None`` -> ``(int, True)``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {tp}")
        return _base_type(args[0])[0], True
    return (origin or tp), False


def flag_fields(cls) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are flags."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def add_flags(parser: argparse.ArgumentParser, cls, *, only: tuple[str, ...] | None = None,
              helps: dict[str, str] | None = None, flags: dict[str, str] | None = None,
              defaults: dict | None = None) -> None:
    """Add a flag per field of ``cls`` (``only`` these, in this order; ``helps``/``flags`` for a dataclass whose
    fields carry no metadata, e.g. a core config whose defaults a job reuses; ``defaults`` for a subcommand whose
    default differs from the dataclass's)."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in flag_fields(cls)}
    for name in only or list(by_name):
        f = by_name[name]
        meta = f.metadata
        tp, optional = _base_type(hints[f.name])
        default = (defaults or {}).get(name, _default(f))
        kw: dict = {"dest": f.name, "help": ((helps or {}).get(name) or meta.get("help") or "").replace("%", "%%")}
        if meta.get("metavar"):
            kw["metavar"] = meta["metavar"]
        name_ = (flags or {}).get(name) or flag_name(f)
        if tp is bool:
            if meta.get("negate"):
                if default is not True:
                    raise TypeError(f"{cls.__name__}.{f.name}: negate needs default True")
                parser.add_argument(name_, action="store_false", default=True, **kw)
            elif default is False:
                parser.add_argument(name_, action="store_true", default=False, **kw)
            else:
                raise TypeError(f"{cls.__name__}.{f.name}: a bool flag defaults to False (or negate=True)")
            continue
        if meta.get("sep"):
            sep = meta["sep"]
            kw["type"] = lambda s, sep=sep: tuple(x for x in s.split(sep) if x)
            kw["default"] = () if default is dataclasses.MISSING else tuple(default)
        else:
            kw["type"] = {Path: Path, int: int, float: float, str: str}.get(tp)
            if kw["type"] is None:
                raise TypeError(f"{cls.__name__}.{f.name}: unsupported flag type {tp}")
            if default is dataclasses.MISSING:
                kw["default"] = None
                kw["required"] = not optional
            else:
                kw["default"] = default
        choices = meta.get("choices")
        if choices is not None:
            kw["choices"] = tuple(choices() if callable(choices) else choices)
        parser.add_argument(name_, **kw)


def build_parser(cls, prog: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of ``cls``."""
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=DefaultsHelpFormatter)
    add_flags(p, cls)
    return p


def config_from(cls, ns: argparse.Namespace, **override):
    """``cls`` from the parsed flags (fields that are no flag keep their defaults), ``override`` winning."""
    values = {f.name: getattr(ns, f.name) for f in flag_fields(cls) if hasattr(ns, f.name)}
    return cls(**{**values, **override})


def parse_config(cls, argv=None, *, prog: str, description: str):
    """Parse ``argv`` into ``cls`` (its ``__post_init__`` validates)."""
    return config_from(cls, build_parser(cls, prog, description).parse_args(argv))


def run_job(argv, parse, run, app):
    """A Spark job's ``main``: log to the console, ``cfg = parse(argv)``, ``run(spark, cfg)`` on the session named
    ``app`` (or ``app(cfg)``); returns ``(cfg, run's result)``."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse(argv)
    from jobs.session import get_session

    return cfg, run(get_session(app(cfg) if callable(app) else app), cfg)
