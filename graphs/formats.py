"""Text formats graphrec reads, described once for the numpy readers and the Spark readers.

* ``snap``: SNAP edge lists — ``#`` comments, tab or space separated ``src dst``, CRLF tolerated.
* ``konect``: KONECT ``out.*`` — ``%`` comments, ``src dst [weight [timestamp]]``.
* ``adjlist``: adjacency lists (BlogCatalog) — ``node nbr1 nbr2 ...``.
* ``labels``: node-label files — ``node label1 [label2 ...]``.
* ``lightgcn``: LightGCN user–item splits — ``user item item ...`` (interactions, not edges).
* ``baskets``: transactions — items of one user per line; SPMF's ``-1``/``-2`` are separators.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextFormat:
    """How to read one line-oriented format."""

    name: str
    comment: str            # lines starting with this are skipped
    min_cols: int           # fewest whitespace-separated fields on a data line
    max_cols: int | None    # most fields (None: variable length lists)
    weight_col: int | None = None  # 0-based column holding an optional edge weight


FORMATS: dict[str, TextFormat] = {
    "snap": TextFormat("snap", "#", 2, 3, weight_col=2),
    "konect": TextFormat("konect", "%", 2, 4, weight_col=2),
    "adjlist": TextFormat("adjlist", "#", 1, None),
    "labels": TextFormat("labels", "#", 2, None),
    "lightgcn": TextFormat("lightgcn", "#", 1, None),
    "baskets": TextFormat("baskets", "#", 1, None),
}

GRAPH_FORMATS = ("snap", "konect", "adjlist", "parquet")
INTERACTION_FORMATS = ("lightgcn", "parquet")
SPMF_SEPARATORS = (-1, -2)


def get_format(name: str) -> TextFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; expected one of {sorted(FORMATS)}") from None
