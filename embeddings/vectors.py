"""The vectors contract: ``vectors(id int64, vector list<float32>[, source string])`` Parquet.

One reader and one writer for every producer and consumer of vectors -- ``embed_graph`` (graph
embeddings), ``recsys.train`` (``user_vectors`` / ``item_vectors``), the candidate graph, kNN and
evaluation. The reader validates what the contract promises and names the table on failure:
both columns present, at least one row, every vector of one length, finite values, unique ids.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_vectors(d / "v", np.array([7, 9]), np.array([[1.0, 0.0], [0.0, 2.0]]))
>>> ids, x = read_vectors(d / "v"); ids.tolist(), x.dtype.name
([7, 9], 'float32')
>>> dense_by_id(ids, x, 10).shape
(10, 2)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def table_path(path: str | Path) -> Path:
    """``DIR/vectors`` when ``DIR`` is a job's output folder, else ``path`` itself (a table folder or file)."""
    p = Path(path)
    return p / "vectors" if (p / "vectors").exists() else p


def read_vectors(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ids int64, float32 (n, dim))`` of a vectors table (``DIR``, ``DIR/vectors`` or a table folder)."""
    src = table_path(path)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no vectors table")
    t = pq.read_table(src, columns=None)
    for col in ("id", "vector"):
        if col not in t.column_names:
            raise ValueError(f"{src}: vectors table has no column {col!r} (has {t.column_names})")
    ids = t.column("id").to_numpy().astype(np.int64)
    vec = t.column("vector").combine_chunks()
    if len(ids) == 0:
        raise ValueError(f"{src}: no vectors")
    if vec.null_count:
        raise ValueError(f"{src}: a vector is null")
    lengths = np.diff(vec.offsets.to_numpy())
    if (lengths != lengths[0]).any():
        raise ValueError(f"{src}: vectors of different lengths ({int(lengths.min())}..{int(lengths.max())})")
    mat = vec.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(ids), int(lengths[0]))
    if not np.isfinite(mat).all():
        raise ValueError(f"{src}: a vector holds NaN or inf")
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{src}: duplicate ids")
    return ids, mat


def write_vectors(path: str | Path, ids: np.ndarray, vectors, source: np.ndarray | None = None) -> None:
    """Write ``vectors`` (numpy or torch, ``(n, dim)``) as ``path/part-0.parquet``; ``source`` is the
    optional per-row provenance (``personal`` / ``social`` for user vectors)."""
    v = vectors.detach().float().cpu().numpy() if hasattr(vectors, "detach") else np.asarray(vectors, np.float32)
    n, d = v.shape
    cols = {"id": pa.array(np.asarray(ids, dtype=np.int64)),
            "vector": pa.ListArray.from_arrays(pa.array((np.arange(n + 1) * d).astype(np.int32)),
                                               pa.array(v.reshape(-1).astype(np.float32), pa.float32()))}
    if source is not None:
        cols["source"] = pa.array(np.asarray(source, dtype=str), pa.string())
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path / "part-0.parquet")


def dense_by_id(ids: np.ndarray, mat: np.ndarray, n: int | None = None) -> np.ndarray:
    """Rows placed at their (dense, 0-based) ids: ``(n or max id + 1, dim)``, zeros where absent."""
    out = np.zeros((int(ids.max()) + 1 if n is None else n, mat.shape[1]), np.float32)
    out[ids] = mat
    return out
