"""Text formats graphrec reads, described once for the numpy readers and the Spark readers.

* ``snap``: SNAP edge lists — ``#`` comments, tab or space separated ``src dst``, CRLF tolerated.
* ``konect``: KONECT ``out.*`` — ``%`` comments, ``src dst [weight [timestamp]]``.
* ``adjlist``: adjacency lists (BlogCatalog) — ``node nbr1 nbr2 ...``.
* ``labels``: node-label files — ``node label1 [label2 ...]``.
* ``lightgcn``: LightGCN user–item splits — ``user item item ...`` (interactions, not edges).
* ``baskets``: transactions — items of one user per line; SPMF's ``-1``/``-2`` are separators.
* ``pairs``: exactly two space/tab separated integers per line — ``user item`` or ``user friend``
  (RecDiff's Ciao conversions ``recdiff_{train,val,test,trust}.txt``).
* ``csv-pairs``: exactly two comma-separated integers per line, with an optional header as the
  first data line (a line with no integer field, e.g. ``user,item`` or ``user,friend``: SocialLGN's
  ``train_set.txt``, ``test_set.txt``, ``trust.txt``). A header anywhere else is a bad line.

Every text format may be gzipped (``.gz``) and have CRLF line ends.

>>> get_format("csv-pairs").sep, get_format("csv-pairs").header
(',', True)
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextFormat:
    """How to read one line-oriented format."""

    name: str
    comment: str            # lines starting with this are skipped
    min_cols: int           # fewest fields on a data line
    max_cols: int | None    # most fields (None: variable length lists)
    weight_col: int | None = None  # 0-based column holding an optional edge weight
    sep: str | None = None  # field separator; None: runs of spaces/tabs
    header: bool = False    # the first data line of a file may be a header (no integer field)

    def __post_init__(self):
        if self.header and self.max_cols is None:
            raise ValueError(f"{self.name}: a header needs a fixed column count")


FORMATS: dict[str, TextFormat] = {
    "snap": TextFormat("snap", "#", 2, 3, weight_col=2),
    "konect": TextFormat("konect", "%", 2, 4, weight_col=2),
    "adjlist": TextFormat("adjlist", "#", 1, None),
    "labels": TextFormat("labels", "#", 2, None),
    "lightgcn": TextFormat("lightgcn", "#", 1, None),
    "baskets": TextFormat("baskets", "#", 1, None),
    "pairs": TextFormat("pairs", "#", 2, 2),
    "csv-pairs": TextFormat("csv-pairs", "#", 2, 2, sep=",", header=True),
}

GRAPH_FORMATS = ("snap", "konect", "adjlist", "pairs", "csv-pairs", "parquet")
INTERACTION_FORMATS = ("lightgcn", "pairs", "csv-pairs", "parquet")
SPMF_SEPARATORS = (-1, -2)


def get_format(name: str) -> TextFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; expected one of {sorted(FORMATS)}") from None
