"""Single-machine readers for edge-list text files (SNAP, KONECT) into numpy arrays.

The Spark readers in :mod:`graphs.spark` handle any size; these are for tests, benchmarks and
graphs that fit one machine. Both validate the same way: a bad line raises
:class:`~graphs.errors.InputFormatError` naming the file and line.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "g.txt")
>>> _ = open(p, "w").write("# c\\r\\n0\\t1\\r\\n1 2\\r\\n")
>>> e = read_edges(p, "snap"); e.src.tolist(), e.dst.tolist()
([0, 1], [1, 2])
"""
from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graphs.errors import InputFormatError
from graphs.formats import get_format

_INT = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class EdgeArrays:
    """Raw edges as read (original ids, file order)."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.src)


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a text file, transparently gunzipping ``*.gz``; missing files get a clear error."""
    p = Path(path)
    if not p.exists():
        raise InputFormatError(str(p), "file not found")
    if p.is_dir():
        raise InputFormatError(str(p), "is a directory, expected a text file")
    raw = gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline=None)


def read_edges(path: str | Path, fmt: str = "snap") -> EdgeArrays:
    """Read a SNAP or KONECT edge list: ``src dst [weight [ts]]`` per line."""
    spec = get_format(fmt)
    if spec.max_cols is None:
        raise ValueError(f"read_edges reads fixed-column formats, not {fmt!r}")
    with open_text(path) as fh:
        try:
            df = pd.read_csv(fh, sep=r"\s+", comment=spec.comment, header=None, dtype=str,
                             engine="c", names=range(spec.max_cols + 1))
        except pd.errors.EmptyDataError:
            df = pd.DataFrame()
    if df.empty:
        raise InputFormatError(str(path), "no edges: the file is empty or only comments")
    if df.shape[1] > spec.max_cols and df[spec.max_cols].notna().any():
        bad = int(np.flatnonzero(df[spec.max_cols].notna().to_numpy())[0])
        raise InputFormatError(str(path), f"expected at most {spec.max_cols} columns", line=_line_of(path, spec.comment, bad))
    if df[1].isna().any():
        bad = int(np.flatnonzero(df[1].isna().to_numpy())[0])
        raise InputFormatError(str(path), f"expected at least {spec.min_cols} columns", line=_line_of(path, spec.comment, bad))
    src, dst = _ints(df[0], path, spec.comment), _ints(df[1], path, spec.comment)
    weight = None
    if spec.weight_col is not None and spec.weight_col in df and df[spec.weight_col].notna().all():
        weight = pd.to_numeric(df[spec.weight_col], errors="coerce").to_numpy(np.float32)
    return EdgeArrays(src, dst, weight)


def _ints(col: pd.Series, path, comment: str) -> np.ndarray:
    vals = pd.to_numeric(col, errors="coerce")
    ok = vals.notna().to_numpy() & col.str.fullmatch(r"[+-]?\d+").fillna(False).to_numpy()
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise InputFormatError(str(path), f"non-integer id {col.iloc[bad]!r}", line=_line_of(path, comment, bad))
    return col.astype(np.int64).to_numpy()


def _line_of(path, comment: str, data_row: int) -> int:
    """1-based file line number of the ``data_row``-th data line (error path only)."""
    seen = -1
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            s = line.strip()
            if not s or s.startswith(comment):
                continue
            seen += 1
            if seen == data_row:
                return lineno
    return -1


def find_bad_line(path, comment: str, text: str) -> int:
    """1-based number of the first line whose stripped content equals ``text`` (error path only)."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip() == text.strip():
                return lineno
    return -1
