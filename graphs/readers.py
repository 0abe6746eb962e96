"""Single-machine readers for edge-list and pair text files (SNAP, KONECT, pairs, CSV pairs).

The Spark readers in :mod:`graphs.spark` handle any size; these are for tests, benchmarks and
graphs that fit one machine. Both validate the same way: a bad line raises
:class:`~graphs.errors.InputFormatError` naming the file and line. :func:`header_line` is the one
rule for a CSV header (the first data line, no integer field), shared with the Spark reader.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "g.txt")
>>> _ = open(p, "w").write("# c\\r\\n0\\t1\\r\\n1 2\\r\\n")
>>> e = read_edges(p, "snap"); e.src.tolist(), e.dst.tolist()
([0, 1], [1, 2])
>>> _ = open(p, "w").write("user,item\\r\\n0,5\\r\\n1, 6\\r\\n")
>>> e = read_edges(p, "csv-pairs"); e.src.tolist(), e.dst.tolist()
([0, 1], [5, 6])
"""
from __future__ import annotations

import gzip
import io
import re
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from graphs.errors import InputFormatError
from graphs.formats import TextFormat, get_format

_INT = re.compile(r"^[+-]?\d+$")
HEADER_MSG = "header line where data is expected (a header is allowed only as the first line)"


@dataclass(frozen=True)
class EdgeArrays:
    """Raw edges as read (original ids, file order)."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.src)


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a text file, transparently gunzipping ``*.gz``; missing files get a clear error.

    Reading it may raise a decoding or gzip error: wrap the reading in :func:`text_errors`.
    """
    p = Path(path)
    if not p.exists():
        raise InputFormatError(str(p), "file not found")
    if p.is_dir():
        raise InputFormatError(str(p), "is a directory, expected a text file")
    raw = gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline=None)


GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


@contextmanager
def text_errors(path: str | Path) -> Iterator[None]:
    """Turn what reading a text file can raise — bytes that are not UTF-8, a truncated or corrupt
    gzip stream, NUL bytes, an unreadable file — into :class:`InputFormatError` naming the file (and
    the line of an undecodable byte)."""
    try:
        yield
    except InputFormatError:
        raise
    except UnicodeDecodeError as e:
        raise InputFormatError(str(path), f"not UTF-8 text ({e.reason} at byte {e.object[e.start:e.start + 1]!r})",
                               line=undecodable_line(path)) from None
    except GZIP_ERRORS as e:
        raise InputFormatError(str(path), f"corrupt or truncated gzip stream ({type(e).__name__}: {e})") from None
    except OSError as e:
        raise InputFormatError(str(path), f"cannot read: {e.strerror or e}") from None


def undecodable_line(path: str | Path) -> int | None:
    """1-based number of the first line that is not UTF-8 (error path only; None if the stream breaks first)."""
    p = Path(path)
    try:
        with (gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb")) as fh:
            for lineno, line in enumerate(fh, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return lineno
    except (*GZIP_ERRORS, OSError):
        return None
    return None


def split_fields(text: str, spec: TextFormat) -> list[str]:
    """The fields of one stripped data line under ``spec``'s separator."""
    return [f.strip() for f in text.split(spec.sep)] if spec.sep else text.split()


def is_header(text: str, spec: TextFormat) -> bool:
    """True when ``text`` is a header of ``spec``: the right field count and no integer field.

    >>> is_header("user,friend", get_format("csv-pairs")), is_header("0,friend", get_format("csv-pairs"))
    (True, False)
    """
    if not spec.header:
        return False
    fields = split_fields(text, spec)
    return spec.min_cols <= len(fields) <= spec.max_cols and not any(_INT.match(f) for f in fields)


def header_line(path: str | Path, spec: TextFormat) -> tuple[int, str] | None:
    """``(line number, stripped text)`` of the file's header — its first data line when that
    :func:`is_header` — or None. Reads only the start of the file."""
    if not spec.header:
        return None
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            s = line.strip()
            if s and not s.startswith(spec.comment):
                return (lineno, s) if is_header(s, spec) else None
    return None


def read_edges(path: str | Path, fmt: str = "snap") -> EdgeArrays:
    """Read a fixed-column edge or pair file: ``src dst [weight [ts]]`` per line (``sep`` per format).

    For ``csv-pairs`` a header on the first data line is skipped; the same text anywhere else is a
    bad line. Every error names the file and its 1-based line.
    """
    spec = get_format(fmt)
    if spec.max_cols is None:
        raise ValueError(f"read_edges reads fixed-column formats, not {fmt!r}")
    with text_errors(path):
        return _read_edges(path, spec)


def _read_edges(path: str | Path, spec: TextFormat) -> EdgeArrays:
    hdr = header_line(path, spec)
    with open_text(path) as fh:
        try:
            df = pd.read_csv(fh, sep=spec.sep or r"\s+", comment=spec.comment, header=None, dtype=str,
                             engine="c", names=range(spec.max_cols + 1), skipinitialspace=True)
        except pd.errors.EmptyDataError:
            df = pd.DataFrame()
        except pd.errors.ParserError:  # a line with far too many fields: find it in Python
            line = _first_line(path, spec, lambda f: len(f) > spec.max_cols)
            raise InputFormatError(str(path), f"expected at most {spec.max_cols} columns", line=line) from None
    skip = 1 if hdr is not None else 0  # the header is data row 0
    if len(df) <= skip:
        raise InputFormatError(str(path), "no edges: the file is empty or only comments" + (" and a header" if skip else ""))
    if spec.sep:
        df = df.apply(lambda c: c.str.strip())
    df = df.iloc[skip:]
    if df.shape[1] > spec.max_cols and df[spec.max_cols].notna().any():
        bad = int(np.flatnonzero(df[spec.max_cols].notna().to_numpy())[0]) + skip
        raise InputFormatError(str(path), f"expected at most {spec.max_cols} columns", line=_line_of(path, spec.comment, bad))
    if df[1].isna().any():
        bad = int(np.flatnonzero(df[1].isna().to_numpy())[0]) + skip
        raise InputFormatError(str(path), f"expected at least {spec.min_cols} columns", line=_line_of(path, spec.comment, bad))
    src, dst = _ints(df[0], path, spec, skip), _ints(df[1], path, spec, skip)
    weight = None
    if spec.weight_col is not None and spec.weight_col in df and df[spec.weight_col].notna().any():
        col = df[spec.weight_col]
        w = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
        bad = col.notna().to_numpy() & ~np.isfinite(w)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputFormatError(str(path), f"weight {col.iloc[row]!r} is not a finite number",
                                   line=_line_of(path, spec.comment, row + skip))
        if col.notna().all():
            weight = w.astype(np.float32)
    return EdgeArrays(src, dst, weight)


def _ints(col: pd.Series, path, spec: TextFormat, skip: int) -> np.ndarray:
    """Ids as int64: every value an integer in ``[0, 2**63)``; the first bad one raises with its line."""
    ok = col.str.fullmatch(r"\+?[0-9]+").to_numpy(dtype=bool, na_value=False)
    mag = col.str.lstrip("+").str.lstrip("0")                   # the digits without sign and leading zeros
    digits = mag.str.len().fillna(99).to_numpy()
    big = ok & ((digits > 19) | ((digits == 19) & (mag > "9223372036854775807").to_numpy(dtype=bool, na_value=False)))
    if not ok.all() or big.any():
        bad = int(np.flatnonzero(~ok | big)[0])
        line = _line_of(path, spec.comment, bad + skip)
        value = col.iloc[bad]
        if big[bad]:
            msg = f"id {value!r} is beyond int64"
        elif isinstance(value, str) and re.fullmatch(r"-[0-9]+", value):
            msg = f"negative id {value!r}"
        else:
            msg = bad_id_message(path, spec, line, value)
        raise InputFormatError(str(path), msg, line=line)
    return col.astype(np.int64).to_numpy()


def bad_id_message(path, spec: TextFormat, line: int, value: str) -> str:
    """``non-integer id 'x'``, or ``header line repeated ...`` when the bad line is a header's copy."""
    if spec.header and line > 0:
        with open_text(path) as fh:
            text = next((t.strip() for i, t in enumerate(fh, start=1) if i == line), "")
        if is_header(text, spec):
            return f"{HEADER_MSG}: {text!r}"
    return f"non-integer id {value!r}"


def _first_line(path, spec: TextFormat, pred) -> int:
    """1-based number of the first data line whose fields satisfy ``pred`` (error path only)."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            s = line.split(spec.comment, 1)[0].strip()
            if s and pred(split_fields(s, spec)):
                return lineno
    return -1


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


def find_bad_line(path, comment: str, text: str, occurrence: int = 1) -> int:
    """1-based number of the ``occurrence``-th line whose stripped content equals ``text`` (error path only)."""
    seen = 0
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip() == text.strip():
                seen += 1
                if seen == occurrence:
                    return lineno
    return -1
