"""Write a trained recommender's outputs as Parquet, and recommend from them.

``OUTPUT/`` holds (ids are the data's external ids):

- ``user_vectors``, ``item_vectors``: ``(id int64, vector list<float32>)`` -- the final vectors
  that score (LightGCN: the propagated ones); what faiss retrieval and the bandit's candidate graph
  read;
- ``user_base``, ``item_base``: the trained embedding tables stored sparse, one row per id:
  ``(id int64, index list<int16>, value list<float32>)`` (the non-zero columns and their values);
- ``seen``: ``(user int64, item int64)`` training interactions, excluded by :func:`recommend`;
- ``metrics.json`` and ``_meta.json``.

Sizes: a dense table costs ``4·rows·dim`` bytes; the sparse one ``6·nnz + 8·(rows+1)`` (float32
value + int16 column per non-zero, plus CSR row pointers), which :func:`sparse_bytes` reports;
``metrics.json``'s ``bytes`` counts each table in the cheaper layout (dense above ~2/3 density).

>>> import numpy as np, torch, tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> write_vectors(out / "v", np.array([7, 9]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
>>> read_vectors(out / "v")[0].tolist(), sparse_bytes(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
([7, 9], 36)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp
import torch

from embeddings.vectors import read_vectors, write_vectors  # noqa: F401 (the vectors contract, re-exported)
from recsys.base import EmbeddingRecommender, Recommendations

VECTOR_TABLES = ("user_vectors", "item_vectors")


def _list_array(offsets: np.ndarray, values: np.ndarray, typ: pa.DataType) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, type=typ))


def sparse_bytes(table: torch.Tensor) -> int:
    """Bytes of ``table`` stored as CSR with float32 values and int16 column indices."""
    nnz = int((table != 0).sum())
    return 6 * nnz + 8 * (table.shape[0] + 1)


def write_sparse_table(path: Path, ids: np.ndarray, table: torch.Tensor) -> None:
    """``(id int64, index list<int16>, value list<float32>)``: the non-zeros of each row."""
    m = sp.csr_matrix(table.detach().float().cpu().numpy())
    m.eliminate_zeros()
    if m.shape[1] > np.iinfo(np.int16).max:
        raise ValueError(f"dimension {m.shape[1]} does not fit int16 column indices")
    out = pa.table({"id": pa.array(np.asarray(ids, dtype=np.int64)),
                    "index": _list_array(m.indptr, m.indices.astype(np.int16), pa.int16()),
                    "value": _list_array(m.indptr, m.data.astype(np.float32), pa.float32())})
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(out, path / "part-0.parquet")


def read_sparse_table(path: Path, dim: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Read a sparse base table back as ``(ids, CSR rows x dim)``."""
    t = pq.read_table(path)
    idx = t.column("index").combine_chunks()
    val = t.column("value").combine_chunks()
    indptr = idx.offsets.to_numpy().astype(np.int64)
    m = sp.csr_matrix((val.flatten().to_numpy().astype(np.float32), idx.flatten().to_numpy().astype(np.int64), indptr),
                      shape=(len(t), dim))
    return t.column("id").to_numpy().astype(np.int64), m


def write_seen(path: Path, train: sp.csr_matrix, user_ids: np.ndarray, item_ids: np.ndarray) -> None:
    u = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"user": pa.array(user_ids[u]), "item": pa.array(item_ids[train.indices])}),
                   path / "part-0.parquet")


def size_report(base: dict[str, torch.Tensor]) -> dict[str, int]:
    """``params``/``bytes`` (sparse storage) and their dense counterparts for the base tables."""
    params = sum(int((t != 0).sum()) for t in base.values())
    dense = sum(t.numel() for t in base.values())
    # each table is counted in the cheaper of its two layouts (CSR wins below ~2/3 density)
    stored = sum(min(sparse_bytes(t), 4 * t.numel()) for t in base.values())
    return {"params": params, "dense_params": dense, "bytes": stored, "dense_bytes": 4 * dense}


def export_model(out: Path, user_ids: np.ndarray, item_ids: np.ndarray, user_vecs: torch.Tensor,
                 item_vecs: torch.Tensor, base: dict[str, torch.Tensor], train: sp.csr_matrix,
                 user_source: np.ndarray | None = None) -> dict[str, int]:
    """Write all tables into ``out`` (normally the temporary folder of an ``atomic_dir``)."""
    write_vectors(out / "user_vectors", user_ids, user_vecs, user_source)
    write_vectors(out / "item_vectors", item_ids, item_vecs)
    for name, table in base.items():
        write_sparse_table(out / name, user_ids if name.startswith("user") else item_ids, table)
    write_seen(out / "seen", train, user_ids, item_ids)
    return size_report(base)


def load_recommender(out: str | Path, device: str | torch.device = "cpu") -> EmbeddingRecommender:
    """An :class:`EmbeddingRecommender` over an export's vectors, excluding its ``seen`` pairs."""
    out = Path(out)
    for name in (*VECTOR_TABLES, "seen"):
        if not (out / name).exists():
            raise FileNotFoundError(f"{out}: missing table {name!r} (not a recsys.train output?)")
    uids, U = read_vectors(out / "user_vectors")
    iids, V = read_vectors(out / "item_vectors")
    seen = pq.read_table(out / "seen")
    su = np.searchsorted(uids, seen.column("user").to_numpy()) if len(seen) else np.zeros(0, np.int64)
    si = np.searchsorted(iids, seen.column("item").to_numpy()) if len(seen) else np.zeros(0, np.int64)
    if not (np.all(np.diff(uids) > 0) and np.all(np.diff(iids) > 0)):
        raise ValueError(f"{out}: vector ids must be unique and sorted")
    m = sp.csr_matrix((np.ones(len(su), np.float32), (su, si)), shape=(len(uids), len(iids)))
    dev = torch.device(device)
    return EmbeddingRecommender(torch.from_numpy(U).to(dev), torch.from_numpy(V).to(dev), uids, iids, m)


def recommend(out: str | Path, user_ids: np.ndarray, k: int = 20) -> Recommendations:
    """Top-``k`` unseen items for ``user_ids`` from a ``recsys.train`` output folder."""
    return load_recommender(out).recommend(np.asarray(user_ids, dtype=np.int64), k)
