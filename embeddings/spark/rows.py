"""The row schemas DistNE's Spark stages exchange, and the named kinds of their mixed rows.

Two tables carry rows of several kinds in one schema (one ``applyInPandas`` output or input):

* :data:`TOP` — what the top-level task emits, kind :class:`TopRow` in column ``kind``;
* :data:`PART_INPUT` — what a part task receives besides its packed edges, kind :class:`PartInput` in
  column ``role``.

The integer values are those the stages have always used; the names say which columns a kind fills.
"""
from __future__ import annotations

from enum import IntEnum


class TopRow(IntEnum):
    """Kinds of the top-level task's rows (:data:`TOP`: ``kind, a, b, w, part, z``)."""

    NODE_MAP = 0  # a = cluster of Q₁ (the node id when the task coarsened the whole graph), b = final cluster, part
    CLUSTER = 1  # a = final cluster, part, z = its top-level vector (float32 bytes)
    QUOTIENT = 2  # a = piece number, b = edges of the packed quotient, z = a piece of them (codec.pack_chunks)
    LEVEL = 3  # a = level, b = its clusters (levels run in the task); a = −1: b = edges of the embedded quotient


class PartInput(IntEnum):
    """Kinds of a part task's rows besides its packed edges (:data:`PART_INPUT`: ``part, role, x, z``)."""

    COARSE = 2  # x = piece number, z = a piece of the final quotient's edges
    NODE = 3  # x = a node of the part
    ANCHOR = 4  # x = an outside cluster, z = its top-level vector


TOP = "kind int, a long, b long, w float, part int, z binary"
PART_INPUT_COLS = ("part", "role", "x", "z")
# messages between part tasks: own rows (id's vector and fusion state) and halo rows (a neighbour's vector)
MSG = "part int, id long, own boolean, cur binary, state binary"
MSG_COLS = ("part", "id", "own", "cur", "state")
GRAM_ID = -2  # the message row of a part's Gram matrix (float64 bytes in ``state``) after the last round
# what a part task emits: its first messages, with the part's figures on every row
PART_OUT = MSG + ", h_nodes long, h_edges long, cut_rows long, border long"
VEC = "array<float>"
