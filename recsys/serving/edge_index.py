"""Vectorised (cluster, item) → edge-id index for the serving statistics.

Items are mapped to dense indices (the parameter version's sorted item ids first, then items seen
later), and an edge is the composite key ``cluster * 2**40 + item_index``.  Edges of the parameter
version live in one sorted key array; edges created online (feedback for a pair that is not an
edge yet, e.g. a fresh item) go to a small sorted overflow that is merged into the main array once
it grows.  Every lookup is a ``np.searchsorted`` over whole request arrays: no per-candidate
Python loop.

>>> ix = EdgeIndex.build(np.array([0, 0, 1]), np.array([7, 9, 7]))
>>> ix.lookup(np.array([0, 1, 1]), np.array([9, 7, 9])).tolist()
[1, 2, -1]
>>> ix.add(np.array([1]), np.array([42])).tolist()      # a new edge gets the next id
[3]
>>> ix.cluster_items(1).tolist()
[7, 42]
"""
from __future__ import annotations

import numpy as np

ITEM_BITS = 40
CAP = np.int64(1) << ITEM_BITS
_MERGE_AT = 8_192   # overflow size that triggers the (linear) merge into the main arrays


class EdgeIndex:
    """Maps (cluster, item) pairs to dense edge ids ``0..n_edges-1``; grows online."""

    def __init__(self, items: np.ndarray, keys: np.ndarray, eids: np.ndarray) -> None:
        self._items = items                      # sorted base item ids; index = position
        self._xitems = np.empty(0, np.int64)     # sorted extra item ids (seen after the version)
        self._xidx = np.empty(0, np.int64)       # their dense indices
        self._keys, self._eids = keys, eids      # sorted composite keys and their edge ids
        self._okeys = np.empty(0, np.int64)      # overflow (online-created) keys, sorted
        self._oeids = np.empty(0, np.int64)
        self._all_items = items                  # dense index -> item id
        self.n_edges = int(eids.size)
        # item id -> dense index as a direct table when ids are compact (catalogue ids 0..n): one gather
        # instead of a cache-missing binary search per candidate
        top = int(items[-1]) if items.size else -1
        self._lut = None
        if 0 <= top < max(1 << 20, 4 * items.size):
            self._lut = np.full(top + 1, -1, np.int64)
            self._lut[items] = np.arange(items.size)

    @classmethod
    def build(cls, clusters: np.ndarray, items: np.ndarray) -> "EdgeIndex":
        """Index the edges of a parameter version; edge ``i`` is the ``i``-th input pair."""
        clusters = np.asarray(clusters, np.int64)
        items = np.asarray(items, np.int64)
        if clusters.shape != items.shape:
            raise ValueError("clusters and items must have the same length")
        if clusters.size and (clusters.min() < 0 or clusters.max() >= (1 << 22)):
            raise ValueError("cluster ids must lie in [0, 2**22)")
        uitems, idx = np.unique(items, return_inverse=True)
        keys = clusters * CAP + idx
        order = np.argsort(keys, kind="stable")
        skeys = keys[order]
        if skeys.size > 1 and np.any(skeys[1:] == skeys[:-1]):
            raise ValueError("duplicate (cluster, item) edges in the parameter version")
        return cls(uitems.astype(np.int64), skeys, order.astype(np.int64))

    # -- items ------------------------------------------------------------------------------
    def item_index(self, items: np.ndarray) -> np.ndarray:
        """Dense index of each item, ``-1`` for items never seen."""
        items = np.asarray(items, np.int64)
        if self._lut is not None:
            inb = (items >= 0) & (items < self._lut.size)
            out = np.where(inb, self._lut[np.where(inb, items, 0)], -1)
        else:
            out = _find(self._items, items)
        if self._xitems.size:
            miss = out < 0
            if miss.any():
                pos = _find(self._xitems, items[miss])
                out[miss] = np.where(pos >= 0, self._xidx[np.maximum(pos, 0)], -1)
        return out

    def _add_items(self, items: np.ndarray) -> np.ndarray:
        idx = self.item_index(items)
        miss = idx < 0
        if miss.any():
            new = np.unique(items[miss])
            start = self._all_items.size
            new_idx = np.arange(start, start + new.size, dtype=np.int64)
            xi = np.concatenate([self._xitems, new])
            xx = np.concatenate([self._xidx, new_idx])
            order = np.argsort(xi, kind="stable")
            self._xitems, self._xidx = xi[order], xx[order]
            self._all_items = np.concatenate([self._all_items, new])
            idx = self.item_index(items)
        return idx

    # -- edges ------------------------------------------------------------------------------
    def keys_for(self, clusters: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Composite keys (broadcasting clusters against items); ``-1`` where the item is unknown."""
        idx = self.item_index(items)
        keys = np.asarray(clusters, np.int64) * CAP + idx
        return np.where(idx >= 0, keys, -1)

    def lookup_keys(self, keys: np.ndarray) -> np.ndarray:
        """Edge id per composite key, ``-1`` where absent."""
        keys = np.asarray(keys, np.int64)
        pos = _find(self._keys, keys)
        out = np.where(pos >= 0, self._eids[np.maximum(pos, 0)], -1)
        if self._okeys.size:
            miss = out < 0
            if miss.any():
                p2 = _find(self._okeys, keys[miss])
                out[miss] = np.where(p2 >= 0, self._oeids[np.maximum(p2, 0)], -1)
        out[keys < 0] = -1
        return out

    def lookup(self, clusters: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Edge id per (cluster, item) pair (broadcast), ``-1`` where it is not an edge."""
        return self.lookup_keys(self.keys_for(clusters, items))

    def add(self, clusters: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Edge ids of the pairs, creating edges (and item indices) that do not exist yet."""
        clusters = np.asarray(clusters, np.int64)
        items = np.asarray(items, np.int64)
        keys = clusters * CAP + self._add_items(items)
        eids = self.lookup_keys(keys)
        miss = eids < 0
        if miss.any():
            new_keys, inv = np.unique(keys[miss], return_inverse=True)
            new_eids = np.arange(self.n_edges, self.n_edges + new_keys.size, dtype=np.int64)
            self.n_edges += int(new_keys.size)
            # sorted insert (one memmove, O(overflow)) instead of re-sorting the overflow every batch
            pos = np.searchsorted(self._okeys, new_keys)
            self._okeys = np.insert(self._okeys, pos, new_keys)
            self._oeids = np.insert(self._oeids, pos, new_eids)
            if self._okeys.size >= _MERGE_AT:
                self._merge_overflow()
            eids = eids.copy()
            eids[miss] = new_eids[inv]
        return eids

    def _merge_overflow(self) -> None:
        pos = np.searchsorted(self._keys, self._okeys)     # both sorted and disjoint: a linear merge
        self._keys = np.insert(self._keys, pos, self._okeys)
        self._eids = np.insert(self._eids, pos, self._oeids)
        self._okeys = np.empty(0, np.int64)
        self._oeids = np.empty(0, np.int64)

    def cluster_edges(self, cluster: int) -> tuple[np.ndarray, np.ndarray]:
        """``(item ids, edge ids)`` of one cluster, items in dense-index order."""
        lo, hi = np.int64(cluster) * CAP, (np.int64(cluster) + 1) * CAP
        parts_k, parts_e = [], []
        for keys, eids in ((self._keys, self._eids), (self._okeys, self._oeids)):
            a, b = np.searchsorted(keys, [lo, hi])
            parts_k.append(keys[a:b])
            parts_e.append(eids[a:b])
        k = np.concatenate(parts_k)
        e = np.concatenate(parts_e)
        return self._all_items[k - lo], e

    def cluster_items(self, cluster: int) -> np.ndarray:
        """Item ids linked to one cluster."""
        return self.cluster_edges(cluster)[0]

    def edge_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(cluster, item)`` of every edge id ``0..n_edges-1``."""
        keys = np.empty(self.n_edges, np.int64)
        keys[self._eids] = self._keys
        keys[self._oeids] = self._okeys
        return (keys // CAP).astype(np.int32), self._all_items[keys % CAP]


def _find(sorted_arr: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Position of each query in a sorted array, ``-1`` where absent."""
    if sorted_arr.size == 0:
        return np.full(q.shape, -1, np.int64)
    pos = np.searchsorted(sorted_arr, q)
    pos = np.minimum(pos, sorted_arr.size - 1)
    return np.where(sorted_arr[pos] == q, pos, -1).astype(np.int64)
