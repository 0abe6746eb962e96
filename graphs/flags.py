"""Command-line flags generated from a typed config dataclass: one place for a default and its help.

A field declares its flag with :func:`arg` (``field(default=..., metadata=opt(help, ...))``)::

    @dataclass(frozen=True)
    class ExampleConfig:
        vectors: str = arg(help="DIR written by embed_graph (vectors/)")          # no default: required
        k: int = arg(KnnConfig.k, "neighbours per node")                          # --k, the core's default
        exclude_edges: str | None = arg(None, "GRAPH_DIR of edges to exclude")    # optional
        dedup: bool = arg(True, "do not deduplicate", flag="--keep-duplicates", negate=True)
        rounds: int = arg(100, "research knob", hidden=True)                      # accepted, not in --help
        train: TrainConfig = arg(TrainConfig(epochs=100), "training", nested=TRAIN_FLAGS)  # a core config's flags

    cfg = parse_config(ExampleConfig, argv, prog="example", description="...")

Types: ``str``, ``int``, ``float``, ``Path``, ``X | None`` (default None), ``bool`` (``store_true``; with
``negate=True`` a ``store_false`` flag), ``tuple`` with ``sep=","`` (a comma-separated value). ``choices`` may be
a callable (evaluated when the parser is built). A field with ``cli=False`` is no flag (set by the job, e.g. from
a settings file); ``hidden=True`` keeps a flag accepted but out of ``--help``. A default that a core config also
has is taken from it (``arg(KnnConfig.k, ...)``), so it is stated once. ``nested`` makes a dataclass-typed field's
own fields flags (an argument group; ``True``: their own :func:`arg` metadata; a dict ``name -> opt(...)``: these
fields of a core config that carries no metadata), their defaults taken from the field's default instance. ``--help``
shows each default unless the help text already states it. The parsed values go to the dataclass constructor, so
its ``__post_init__`` validates them (a ``ValueError``). This module lives in ``graphs`` (imported by every layer,
importing nothing of the project) so that entry points of core packages need not import ``jobs``;
:mod:`jobs.runtime.cli` re-exports it (tests: ``tests/test_flags.py``).
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path

__all__ = ["arg", "opt", "add_flags", "build_parser", "config_from", "parse_config", "flag_fields",
           "DefaultsHelpFormatter"]


def opt(help: str = "", *, flag: str | None = None, choices=None, sep: str | None = None, negate: bool = False,
        cli: bool = True, metavar: str | None = None, hidden: bool = False, nested=None) -> dict:
    """A flag's metadata: what :func:`arg` stores on a field, or what ``nested``/``meta`` give a core config's field."""
    return {"help": help, "flag": flag, "choices": choices, "sep": sep, "negate": negate, "cli": cli,
            "metavar": metavar, "hidden": hidden, "nested": nested}


def arg(default=dataclasses.MISSING, help: str = "", *, default_factory=dataclasses.MISSING, **kw):
    """A dataclass field carrying its flag's help (and name, choices, ...; see :func:`opt`) in ``metadata``."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata=opt(help, **kw))


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


def _specs(cls, meta: dict | None = None) -> list[tuple[dataclasses.Field, dict]]:
    """``(field, metadata)`` of the flag fields of ``cls``: its own metadata, or ``meta``'s fields in its order."""
    if meta is None:
        return [(f, dict(f.metadata)) for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    return [(by_name[n], m) for n, m in meta.items() if m.get("cli", True)]


def flag_fields(cls) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are flags."""
    return [f for f, _ in _specs(cls)]


def flag_name(f: dataclasses.Field, meta=None) -> str:
    return (meta if meta is not None else f.metadata).get("flag") or "--" + f.name.replace("_", "-")


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _nested(cls, f: dataclasses.Field, meta: dict):
    """``(nested class, its fields' metadata or None)`` of a ``nested`` field."""
    return typing.get_type_hints(cls)[f.name], (None if meta["nested"] is True else meta["nested"])


def add_flags(parser, cls, *, only: tuple[str, ...] | None = None, helps: dict[str, str] | None = None,
              flags: dict[str, str] | None = None, defaults: dict | None = None, meta: dict | None = None,
              prefix: str = "") -> None:
    """Add a flag per field of ``cls`` (``only`` these, in this order; ``meta``: ``name -> opt(...)`` for a dataclass
    whose fields carry no metadata, e.g. a core config whose defaults a job reuses, or ``helps``/``flags`` alone;
    ``defaults`` for a subcommand whose default differs from the dataclass's; ``prefix``: of each ``dest``)."""
    hints = typing.get_type_hints(cls)
    specs = _specs(cls, meta)
    if only:
        by_name = {f.name: (f, m) for f, m in specs}
        specs = [by_name[n] for n in only]
    for f, meta_ in specs:
        m = dict(meta_)
        if helps and helps.get(f.name):
            m["help"] = helps[f.name]
        if flags and flags.get(f.name):
            m["flag"] = flags[f.name]
        default = (defaults or {}).get(f.name, _default(f))
        if m.get("nested"):  # its flags in an argument group, their defaults from the default instance
            sub, sub_meta = _nested(cls, f, m)
            group = parser.add_argument_group(m["help"]) if isinstance(parser, argparse.ArgumentParser) else parser
            add_flags(group, sub, meta=sub_meta, prefix=f"{prefix}{f.name}.",
                      defaults=None if default is dataclasses.MISSING else
                      {g.name: getattr(default, g.name) for g in dataclasses.fields(sub)})
            continue
        _add_flag(parser, f"{cls.__name__}.{f.name}", hints[f.name], m, default, dest=prefix + f.name,
                  name=flag_name(f, m))


def _add_flag(parser, where: str, hint, m: dict, default, *, dest: str, name: str) -> None:
    """One flag ``name`` (metadata ``m``) for the field ``where`` of type ``hint``."""
    tp, optional = _base_type(hint)
    help_ = argparse.SUPPRESS if m.get("hidden") else (m.get("help") or "").replace("%", "%%")
    kw: dict = {"dest": dest, "help": help_}
    if m.get("metavar"):
        kw["metavar"] = m["metavar"]
    if tp is bool:
        if m.get("negate"):
            if default is not True:
                raise TypeError(f"{where}: negate needs default True")
            parser.add_argument(name, action="store_false", default=True, **kw)
        elif default is False:
            parser.add_argument(name, action="store_true", default=False, **kw)
        else:
            raise TypeError(f"{where}: a bool flag defaults to False (or negate=True)")
        return
    if m.get("sep"):
        sep = m["sep"]
        kw["type"] = lambda s, sep=sep: tuple(x for x in s.split(sep) if x)
        kw["default"] = () if default is dataclasses.MISSING else tuple(default)
    else:
        kw["type"] = {Path: Path, int: int, float: float, str: str}.get(tp)
        if kw["type"] is None:
            raise TypeError(f"{where}: unsupported flag type {tp}")
        if default is dataclasses.MISSING:
            kw["default"] = None
            kw["required"] = not optional
        else:
            kw["default"] = default
    choices = m.get("choices")
    if choices is not None:
        kw["choices"] = tuple(choices() if callable(choices) else choices)
    elif "." in dest and "metavar" not in kw:  # a nested field: DENSITY, not TRAIN.DENSITY
        kw["metavar"] = name.lstrip("-").replace("-", "_").upper()
    parser.add_argument(name, **kw)


def build_parser(cls, prog: str, description: str, **kw) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of ``cls`` (``kw``: more ``ArgumentParser`` options)."""
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=DefaultsHelpFormatter, **kw)
    add_flags(p, cls)
    return p


def _values(cls, ns: argparse.Namespace, meta: dict | None, prefix: str) -> dict:
    """The constructor arguments of ``cls`` that ``ns`` holds (nested configs built from theirs)."""
    out = {}
    for f, m in _specs(cls, meta):
        if m.get("nested"):
            (sub, sub_meta), base = _nested(cls, f, m), _default(f)
            vals = _values(sub, ns, sub_meta, f"{prefix}{f.name}.")
            out[f.name] = sub(**vals) if base is dataclasses.MISSING else dataclasses.replace(base, **vals)
        elif hasattr(ns, prefix + f.name):
            out[f.name] = getattr(ns, prefix + f.name)
    return out


def config_from(cls, ns: argparse.Namespace, **override):
    """``cls`` from the parsed flags (fields that are no flag keep their defaults), ``override`` winning."""
    return cls(**{**_values(cls, ns, None, ""), **override})


def parse_config(cls, argv=None, *, prog: str, description: str):
    """Parse ``argv`` into ``cls`` (its ``__post_init__`` validates)."""
    return config_from(cls, build_parser(cls, prog, description).parse_args(argv))
