"""Binary values that carry DistNE's edges and vectors between Spark stages.

A part's edges and a node's vector travel as one ``binary`` value instead of a row per edge or an
``array<float>`` per vector: no per-element Arrow/JVM cost, and no JVM row of hundreds of MB that
cannot be sorted or spilled (values are cut into pieces of :data:`CHUNK_EDGES` edges).

* :data:`EDGE` records ``(a, b, w)``: a list of weighted edges (the quotient graph's);
* :data:`ARC` records ``(src, dst, w, part of dst, cluster of dst)``: both directions of every edge,
  packed per part of ``src`` by :func:`arc_chunks`;
* float32 matrices as one value per row (:func:`pack_rows`, :func:`unpack_rows`, :func:`binary_rows`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

CHUNK_EDGES = 1 << 18  # 5 MiB of quotient edges, 8 MiB of ARC records per binary value: a JVM row of
# hundreds of MB cannot be sorted or spilled

EDGE = np.dtype([("a", "<i8"), ("b", "<i8"), ("w", "<f4")])
ARC = np.dtype([("src", "<i8"), ("dst", "<i8"), ("w", "<f4"), ("pd", "<i4"), ("cd", "<i8")])
ARCS = "part int, z binary"


def pack_edges(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> bytes:
    """An edge list as one binary value (records ``(a int64, b int64, w float32)``)."""
    rec = np.empty(len(a), EDGE)
    rec["a"], rec["b"], rec["w"] = a, b, w
    return rec.tobytes()


def unpack_edges(blob: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``(a, b, w)`` arrays of :func:`pack_edges` values (concatenated pieces are one list)."""
    rec = np.frombuffer(blob, EDGE)
    return rec["a"].astype(np.int64), rec["b"].astype(np.int64), rec["w"].astype(np.float32)


def pack_chunks(a: np.ndarray, b: np.ndarray, w: np.ndarray, chunk_edges: int = CHUNK_EDGES) -> list[bytes]:
    """:func:`pack_edges` in pieces of at most ``chunk_edges`` edges (at least one piece, maybe empty);
    concatenated in order they are the whole list (R-MAT 2^19's quotient: 6M edges, 120 MB as one value,
    ran the local JVM out of heap when four copies were sorted for the part tasks)."""
    starts = range(0, max(len(a), 1), chunk_edges)
    return [pack_edges(a[i:i + chunk_edges], b[i:i + chunk_edges], w[i:i + chunk_edges]) for i in starts]


def arc_chunks(chunk_edges: int = CHUNK_EDGES):
    """``mapInPandas`` over the annotated edges ``(a, b, w, pa, pb, ca, cb)``: both directions of every edge as
    :data:`ARC` records ``(src, dst, w, part of dst, cluster of dst)``, packed per part of ``src`` in pieces of
    about ``chunk_edges``. The part tasks and every fusion round read a part's edges from a few binary rows:
    31M directed edge rows (R-MAT 2^20) are never sorted or converted to Arrow row by row."""
    def run(batches):
        buf: dict[int, list] = {}
        held: dict[int, int] = {}
        for pdf in batches:
            a, b, w = pdf["a"].to_numpy(np.int64), pdf["b"].to_numpy(np.int64), pdf["w"].to_numpy(np.float32)
            pa, pb = pdf["pa"].to_numpy(np.int32), pdf["pb"].to_numpy(np.int32)
            ca, cb = pdf["ca"].to_numpy(np.int64), pdf["cb"].to_numpy(np.int64)
            rec = np.empty(2 * len(a), ARC)
            rec["src"], rec["dst"], rec["w"], rec["pd"], rec["cd"] = np.r_[a, b], np.r_[b, a], np.r_[w, w], \
                np.r_[pb, pa], np.r_[cb, ca]
            part = np.r_[pa, pb]
            order = np.argsort(part, kind="stable")
            ordered = part[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            for p, seg in zip(ordered[starts].tolist(), np.split(rec[order], starts[1:])):
                buf.setdefault(p, []).append(seg)
                held[p] = held.get(p, 0) + len(seg)
                if held[p] >= chunk_edges:
                    yield pd.DataFrame({"part": [np.int32(p)], "z": [np.concatenate(buf.pop(p)).tobytes()]})
                    held[p] = 0
        for p, segs in buf.items():
            yield pd.DataFrame({"part": [np.int32(p)], "z": [np.concatenate(segs).tobytes()]})
    return run


def arcs_of(pdf: pd.DataFrame) -> dict[int, np.ndarray]:
    """The :data:`ARC` records of each part in a group of :func:`arc_chunks` rows."""
    if len(pdf) == 0:
        return {}
    part = pdf["part"].to_numpy()
    return {int(p): np.frombuffer(b"".join(pdf["z"].to_numpy()[part == p]), ARC) for p in np.unique(part)}


def pack_rows(m: np.ndarray) -> list[bytes]:
    """Rows of a float32 matrix as bytes (a binary column: no per-element Arrow/JVM array cost)."""
    m = np.ascontiguousarray(m, np.float32).reshape(len(m), -1)
    return [r.tobytes() for r in m]


def unpack_rows(col: pd.Series, width: int) -> np.ndarray:
    """The ``(len(col), width)`` float32 matrix of a column of :func:`pack_rows` values."""
    if len(col) == 0 or width == 0:
        return np.zeros((len(col), width), np.float32)
    return np.frombuffer(b"".join(col.to_numpy()), np.float32).reshape(len(col), width).copy()


def binary_rows(col, d: int) -> np.ndarray:
    """The non-null values of an Arrow (large) binary array of ``d`` float32 each, as one ``(k, d)`` matrix read
    straight from its data buffer (values are contiguous; a null has length 0)."""
    import pyarrow as pa

    off_t = np.int64 if pa.types.is_large_binary(col.type) else np.int32
    offs = np.frombuffer(col.buffers()[1], off_t)[col.offset: col.offset + len(col) + 1]
    data = np.frombuffer(col.buffers()[2], np.uint8)[offs[0]: offs[-1]]
    k = len(col) - col.null_count
    if data.size != 4 * d * k:  # a null slot with a length: take the values one by one
        return np.frombuffer(b"".join(v for v in col.to_pylist() if v is not None), np.float32).reshape(k, d)
    return data.view(np.float32).reshape(k, d)


def member(sorted_keys: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v ∈ sorted_keys``, element-wise."""
    if len(sorted_keys) == 0:
        return np.zeros(len(v), bool)
    i = np.minimum(np.searchsorted(sorted_keys, v), len(sorted_keys) - 1)
    return sorted_keys[i] == v
