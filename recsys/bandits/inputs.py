"""Reading the recommender's output for the candidate graph (:mod:`recsys.candidates`).

The recommender's output folder (:mod:`recsys.export`) holds ``user_vectors`` and ``item_vectors``
``(id int64, vector list<float32>[, source string])`` and ``seen(user int64, item int64)`` (the
training interactions). ``source`` on ``user_vectors`` says where a user's vector came from:
``personal`` (trained on the user's interactions) or ``social`` (a user with friends but no
interactions, placed from the social side); a table without the column predates it and means
``personal`` for every user. ``seen`` gives each item's interaction count, the popularity behind
the scoring service's ``fallback`` path.

>>> import tempfile, pyarrow as pa
>>> d = Path(tempfile.mkdtemp())
>>> pq.write_table(pa.table({"user": [1, 2, 2, 3], "item": [7, 7, 8, 9]}), d / "seen.parquet")
>>> [a.tolist() for a in popular_items(d / "seen.parquet", 2)]
[[7, 8], [2, 1]]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from embeddings.vectors import read_vectors, table_path
from recsys.bandits.versions import encode_paths

__all__ = ["read_vectors", "read_user_vectors", "read_fresh_items", "popular_items", "seen_beside"]


def read_user_vectors(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, vectors, path codes)``: codes index ``USER_PATHS`` (0 personal, 1 social) from ``source``.

    Without a ``source`` column every user is personal; a null or unknown value raises naming the file.
    """
    src = table_path(path)
    ids, mat = read_vectors(src)
    if "source" not in pq.ParquetDataset(src).schema.names:
        return ids, mat, np.zeros(ids.size, np.int8)
    source = pq.read_table(src, columns=["source"]).column("source")
    return ids, mat, encode_paths(source.to_numpy(zero_copy_only=False), f"{src} column source")


def read_fresh_items(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Fresh item ids (column ``item`` or ``id``) and their ``vector`` column if present."""
    t = pq.read_table(path)
    col = "item" if "item" in t.column_names else "id" if "id" in t.column_names else None
    if col is None:
        raise ValueError(f"{path}: expected an 'item' or 'id' column, got {t.column_names}")
    ids = t.column(col).to_numpy().astype(np.int64)
    if "vector" in t.column_names and ids.size:
        flat = t.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False).astype(np.float32)
        return ids, flat.reshape(ids.size, -1)
    return ids, None


def seen_beside(user_vectors: str | Path) -> Path | None:
    """The recommender output's ``seen`` table next to its ``user_vectors`` folder, if there is one."""
    p = Path(user_vectors).parent / "seen"
    return p if p.exists() else None


def popular_items(seen: str | Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` items with the most ``seen`` rows: ``(items, counts)``, count desc then item asc."""
    if n < 0:
        raise ValueError(f"popular_items: n must be >= 0, got {n}")
    t = pq.read_table(seen)
    if "item" not in t.column_names:
        raise ValueError(f"{seen}: expected an 'item' column (the recommender's seen(user, item)), got {t.column_names}")
    col = t.column("item")
    if col.null_count:
        raise ValueError(f"{seen}: column item has {col.null_count} null value(s)")
    items, counts = np.unique(col.to_numpy().astype(np.int64), return_counts=True)
    top = np.lexsort((items, -counts))[:n]
    return items[top], counts[top].astype(np.int64)
