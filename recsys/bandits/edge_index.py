"""Vectorised lookup of (cluster, item) edges of the sparse cluster–item candidate graph.

An edge is packed into one int64 key ``cluster · 2⁴⁸ + item`` (clusters < 2¹⁵, items < 2⁴⁸ —
catalogue ids of 48 bits fit). Keys sorted ascending order the edges by (cluster, item), so the
edges of one cluster are a contiguous slice and a batch of lookups is one ``np.searchsorted``.

>>> keys = edge_keys(np.array([0, 0, 2]), np.array([5, 9, 5]))
>>> idx = lookup(keys, np.array([2, 0, 1]), np.array([5, 9, 5]))
>>> idx.tolist()
[2, 1, -1]
"""
from __future__ import annotations

import numpy as np

__all__ = ["ITEM_BITS", "MAX_CLUSTER", "MAX_ITEM", "edge_keys", "split_keys", "lookup"]

ITEM_BITS = 48
MAX_ITEM = (1 << ITEM_BITS) - 1
MAX_CLUSTER = (1 << 15) - 1


def edge_keys(cluster: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Pack (cluster, item) pairs into int64 keys; raises on ids out of range."""
    c = np.asarray(cluster, dtype=np.int64)
    i = np.asarray(item, dtype=np.int64)
    if c.size and (c.min() < 0 or c.max() > MAX_CLUSTER):
        raise ValueError(f"cluster ids must be in [0, {MAX_CLUSTER}], got [{c.min()}, {c.max()}]")
    if i.size and (i.min() < 0 or i.max() > MAX_ITEM):
        raise ValueError(f"item ids must be in [0, 2^{ITEM_BITS}), got [{i.min()}, {i.max()}]")
    return (c << ITEM_BITS) | i


def split_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`edge_keys`: ``(cluster int32, item int64)``."""
    k = np.asarray(keys, dtype=np.int64)
    return (k >> ITEM_BITS).astype(np.int32), k & MAX_ITEM


def lookup(sorted_keys: np.ndarray, cluster: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Positions of the (cluster, item) pairs in ``sorted_keys``; -1 where the edge is absent.

    Any shape of ``cluster``/``item`` (broadcast together) is accepted; the result has that shape.
    Invalid ids (negative, too large) are reported absent rather than raising, so a padded
    context (cluster -1) can be looked up directly.
    """
    c, i = np.broadcast_arrays(np.asarray(cluster, dtype=np.int64), np.asarray(item, dtype=np.int64))
    valid = (c >= 0) & (c <= MAX_CLUSTER) & (i >= 0) & (i <= MAX_ITEM)
    keys = np.where(valid, (c << ITEM_BITS) | np.where(valid, i, 0), -1)
    if sorted_keys.size == 0:
        return np.full(keys.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_keys, keys)
    pos_c = np.minimum(pos, sorted_keys.size - 1)
    found = valid & (sorted_keys[pos_c] == keys)
    return np.where(found, pos_c, -1).astype(np.int64)
