"""The ``PARAMS_DIR`` layout: ``v=<n>/`` version folders, the ``CURRENT`` pointer, the table schemas.

One version folder holds the tables below (one Parquet folder each) and ``manifest.json``
(:mod:`recsys.bandits.manifest`); ``CURRENT`` holds one line ``v=<n>``. This module only names and
reads things; :mod:`recsys.bandits.publish` writes them and :mod:`recsys.bandits.params` turns them
into a :class:`~recsys.bandits.params.BanditParams`.

* ``edges``          ``(cluster int32, item int64, d float64, b float64)``.
* ``user_clusters``  ``(user int64, cluster int32, weight float32, path string)`` — ``path`` is
  where the user's vector came from (:data:`USER_PATHS`: ``personal`` — trained on its
  interactions, ``social`` — placed from the social side); a table without the column (older
  versions) means ``personal`` for every user.
* ``centroids``      ``(cluster int32, vector array<float32>)``.
* ``popular``        ``(item int64, count int64)`` — the most interacted-with items (the
  scoring service's ``fallback`` path for users without a context); optional: a version without
  it has no fallback.
* ``merged_events``  ``(event_id string, ts timestamp)``.

>>> current_version("/nonexistent") is None, list_versions("/nonexistent")
(True, [])
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["EDGE_SCHEMA", "USER_CLUSTER_SCHEMA", "CENTROID_SCHEMA", "POPULAR_SCHEMA", "MERGED_EVENTS_SCHEMA",
           "USER_PATHS", "FALLBACK", "SERVING_PATHS", "encode_paths", "list_versions", "current_version",
           "resolve_version", "version_dir", "read_table"]

EDGE_SCHEMA = pa.schema([("cluster", pa.int32()), ("item", pa.int64()), ("d", pa.float64()), ("b", pa.float64())])
USER_CLUSTER_SCHEMA = pa.schema([("user", pa.int64()), ("cluster", pa.int32()), ("weight", pa.float32()),
                                 ("path", pa.string())])
POPULAR_SCHEMA = pa.schema([("item", pa.int64()), ("count", pa.int64())])
CENTROID_SCHEMA = pa.schema([("cluster", pa.int32()), ("vector", pa.list_(pa.float32()))])
MERGED_EVENTS_SCHEMA = pa.schema([("event_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC"))])
_VERSION_RE = re.compile(r"^v=(\d+)$")
USER_PATHS = ("personal", "social")     # stored per user; index = the int8 code held in memory
FALLBACK = "fallback"                   # a user without a context, served the popular items
SERVING_PATHS = USER_PATHS + (FALLBACK,)


def encode_paths(values, where: str) -> np.ndarray:
    """int8 codes (index into :data:`USER_PATHS`) of path strings; unknown values raise naming ``where``.

    >>> encode_paths(["social", "personal"], "x").tolist()
    [1, 0]
    """
    arr = np.asarray(values, dtype=object)
    codes = np.full(arr.shape, -1, np.int8)
    for i, name in enumerate(USER_PATHS):
        codes[arr == name] = i
    if (codes < 0).any():
        bad = sorted({str(v) for v in arr[codes < 0].tolist()})[:5]
        raise ValueError(f"{where}: unknown value(s) {bad}; expected one of {list(USER_PATHS)}")
    return codes


def list_versions(params_dir: str | os.PathLike) -> list[int]:
    """Published version numbers, ascending."""
    root = Path(params_dir)
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if (m := _VERSION_RE.match(p.name)) and p.is_dir())


def current_version(params_dir: str | os.PathLike) -> int | None:
    """The version named by ``CURRENT``, or None when nothing was published."""
    cur = Path(params_dir) / "CURRENT"
    if not cur.exists():
        return None
    text = cur.read_text().strip()
    m = _VERSION_RE.match(text)
    if not m:
        raise ValueError(f"{cur}: expected 'v=<n>', got {text!r}")
    return int(m.group(1))


def resolve_version(params_dir: str | os.PathLike, version: int | None = None) -> int:
    """``version``, or the one named by ``CURRENT`` (FileNotFoundError when nothing was published)."""
    v = current_version(params_dir) if version is None else int(version)
    if v is None:
        raise FileNotFoundError(f"{params_dir}: no CURRENT file (nothing published)")
    return v


def version_dir(params_dir: str | os.PathLike, version: int) -> Path:
    return Path(params_dir) / f"v={int(version)}"


def read_table(path: Path, schema: pa.Schema, optional: tuple[str, ...] = ()) -> pa.Table:
    """A Parquet table cast to ``schema``; a missing table or column raises naming the path.

    Columns named in ``optional`` may be absent (they are then left out of the result).
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing table")
    t = pq.read_table(path)
    missing = [f.name for f in schema if f.name not in t.column_names and f.name not in optional]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    fields = [f for f in schema if f.name in t.column_names]
    try:
        return t.select([f.name for f in fields]).cast(pa.schema(fields))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise ValueError(f"{path}: columns do not match {schema}: {e}") from e
