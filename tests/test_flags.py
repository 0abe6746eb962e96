"""graphs.flags (re-exported by jobs.runtime.cli): hidden flags, nested core configs, dest prefixes."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from graphs.flags import arg, build_parser, opt, parse_config


@dataclass(frozen=True)
class Inner:
    n: int = 1
    kind: str = "a"
    keep: bool = True


@dataclass(frozen=True)
class Own:
    x: float = arg(0.5, "x value")


@dataclass(frozen=True)
class Outer:
    out: str = arg(help="output")
    quiet: bool = arg(False, "no log", hidden=True)
    inner: Inner = arg(Inner(n=2), "inner settings", nested={
        "n": opt("how many", flag="--count"), "kind": opt("kind", choices=("a", "b"), hidden=True),
        "keep": opt("drop", flag="--no-keep", negate=True)})
    own: Own = arg(help="own metadata", nested=True, default_factory=Own)


def test_nested_and_hidden_flags():
    cfg = parse_config(Outer, ["--out", "o", "--count", "5", "--kind", "b", "--no-keep", "--quiet", "--x", "2"],
                       prog="x", description="")
    assert cfg == Outer(out="o", quiet=True, inner=Inner(n=5, kind="b", keep=False), own=Own(x=2.0))
    assert parse_config(Outer, ["--out", "o"], prog="x", description="") == Outer(out="o")  # defaults: the instances
    with pytest.raises(SystemExit):
        parse_config(Outer, ["--out", "o", "--kind", "c"], prog="x", description="")


def test_hidden_flags_stay_out_of_help():
    p = build_parser(Outer, "x", "")
    text = p.format_help()
    assert "--count" in text and "inner settings" in text and "(default: 2)" in text and "--no-keep" in text
    assert "--quiet" not in text and "--kind" not in text
    hidden = {a.option_strings[0] for a in p._actions if a.help == argparse.SUPPRESS}
    assert hidden == {"--quiet", "--kind"}
    assert {a.dest for a in p._actions} >= {"inner.n", "own.x", "out"}
