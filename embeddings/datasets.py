"""Small readers for the raw evaluation graphs (BlogCatalog adjacency lists + labels, SNAP edge lists).

These read the files as distributed in ``../shared/data`` (see each folder's SOURCE.md) straight
into a symmetric ``scipy.sparse`` adjacency, without self-loops or duplicate edges, for the
evaluation protocols and the benchmark. Production input goes through the ingest job instead.

>>> import gzip, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "g.txt.gz"
>>> with gzip.open(p, "wt") as f:
...     _ = f.write("# comment\\r\\n0\\t1\\r\\n1\\t0\\r\\n1\\t2\\r\\n2\\t2\\r\\n")
>>> a = read_snap_edges(p)
>>> a.shape, a.nnz
((3, 3), 4)
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp


def symmetric_adjacency(src: np.ndarray, dst: np.ndarray, n: int | None = None) -> sp.csr_matrix:
    """Binary symmetric float32 CSR from an edge list; self-loops and duplicates dropped."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    n = int(max(src.max(initial=-1), dst.max(initial=-1)) + 1) if n is None else n
    a = sp.coo_matrix((np.ones(2 * len(src), np.float32), (np.r_[src, dst], np.r_[dst, src])), shape=(n, n)).tocsr()
    a.data[:] = 1.0
    return a


def _open_text(path: Path) -> io.TextIOBase:
    return gzip.open(path, "rt") if str(path).endswith(".gz") else open(path)


def read_snap_edges(path: str | Path) -> sp.csr_matrix:
    """Read a SNAP edge list (``#`` comments, whitespace separated, CRLF tolerated) as an undirected graph."""
    path = Path(path)
    df = pd.read_csv(path, sep=r"\s+", comment="#", header=None, names=["src", "dst"], dtype=np.int64,
                     compression="infer")
    if df.empty:
        raise ValueError(f"{path}: no edges")
    return symmetric_adjacency(df["src"].to_numpy(), df["dst"].to_numpy())


def read_adjlist(path: str | Path) -> sp.csr_matrix:
    """Read ``node nbr1 nbr2 ...`` lines (BlogCatalog's ``bc_adjlist.txt``) as an undirected graph."""
    src, dst = [], []
    with _open_text(Path(path)) as f:
        for line in f:
            ids = np.array(line.split(), dtype=np.int64)
            if len(ids) > 1:
                src.append(np.full(len(ids) - 1, ids[0]))
                dst.append(ids[1:])
    if not src:
        raise ValueError(f"{path}: no edges")
    return symmetric_adjacency(np.concatenate(src), np.concatenate(dst))


def read_labels(path: str | Path, n: int) -> sp.csr_matrix:
    """Read ``node label1 [label2 ...]`` lines as an ``(n, n_labels)`` binary CSR matrix."""
    rows, cols = [], []
    with _open_text(Path(path)) as f:
        for line in f:
            ids = [int(t) for t in line.split()]
            if len(ids) > 1:
                rows.extend([ids[0]] * (len(ids) - 1))
                cols.extend(ids[1:])
    if not rows:
        raise ValueError(f"{path}: no labels")
    y = sp.csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, max(cols) + 1))
    y.data[:] = 1
    return y


def blogcatalog(data_root: str | Path) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """BlogCatalog adjacency (10,312 nodes, 333,983 edges) and its 39-label matrix."""
    root = Path(data_root) / "blogcatalog"
    a = read_adjlist(root / "bc_adjlist.txt.gz")
    return a, read_labels(root / "bc_labels.txt.gz", a.shape[0])


def slashdot(data_root: str | Path) -> sp.csr_matrix:
    """soc-Slashdot0902 symmetrised (82,168 nodes, 504,230 undirected edges, self-loops dropped)."""
    return read_snap_edges(Path(data_root) / "soc-slashdot0902" / "soc-Slashdot0902.txt.gz")
