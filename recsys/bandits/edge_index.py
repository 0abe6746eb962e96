"""The one (cluster, item) edge-key layout of the candidate graph, and its growable index.

An edge is packed into one int64 key ``cluster · 2⁴⁸ + item`` (clusters < 2¹⁵, items < 2⁴⁸ —
catalogue ids of 48 bits fit). Keys sorted ascending order the edges by (cluster, item), so the
edges of one cluster are a contiguous key range and a batch of lookups is one ``np.searchsorted``.
Every part of the system uses this layout: the parameter versions (:mod:`recsys.bandits.params`),
the Diag-LinUCB state (:mod:`recsys.bandits.state`) behind the offline policy, the scoring
service and the batch job.

:class:`EdgeIndex` maps keys to dense edge ids ``0..n_edges-1`` that never change while it grows:
the edges it was built with live in one sorted key array, edges created later (feedback on a pair
that is not an edge yet, with ``off_graph="prior"``) go to a small sorted overflow that is merged
into the main array once it grows. Lookups are vectorised over whole request arrays.

>>> keys = edge_keys(np.array([0, 0, 2]), np.array([5, 9, 5]))
>>> lookup(keys, np.array([2, 0, 1]), np.array([5, 9, 5])).tolist()
[2, 1, -1]
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

__all__ = ["ITEM_BITS", "MAX_CLUSTER", "MAX_ITEM", "edge_keys", "split_keys", "pack_or_absent", "lookup",
           "EdgeIndex"]

ITEM_BITS = 48
MAX_ITEM = (1 << ITEM_BITS) - 1
MAX_CLUSTER = (1 << 15) - 1
_MERGE_AT = 8_192   # overflow size that triggers the (linear) merge into the main arrays


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


def pack_or_absent(cluster: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Keys of the (broadcast) pairs, ``-1`` where an id is out of range (e.g. a padded cluster -1)."""
    c, i = np.asarray(cluster, dtype=np.int64), np.asarray(item, dtype=np.int64)
    vc, vi = (c >= 0) & (c <= MAX_CLUSTER), (i >= 0) & (i <= MAX_ITEM)    # checked on the small inputs
    keys = (np.where(vc, c, 0) << ITEM_BITS) | np.where(vi, i, 0)
    if vc.all() and vi.all():
        return keys
    return np.where(vc & vi, keys, -1)


def _find(sorted_keys: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Position of each query in a sorted array of keys (all >= 0), ``-1`` where absent (as for q = -1)."""
    if sorted_keys.size == 0:
        return np.full(np.shape(q), -1, dtype=np.int64)
    pos = np.searchsorted(sorted_keys, q)
    np.minimum(pos, sorted_keys.size - 1, out=pos)
    return np.where(sorted_keys[pos] == q, pos, -1)


def lookup(sorted_keys: np.ndarray, cluster: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Positions of the (cluster, item) pairs in ``sorted_keys``; -1 where the edge is absent.

    Any shape of ``cluster``/``item`` (broadcast together) is accepted; the result has that shape.
    Invalid ids (negative, too large) are reported absent rather than raising, so a padded
    context (cluster -1) can be looked up directly.
    """
    return _find(sorted_keys, pack_or_absent(cluster, item))


class EdgeIndex:
    """Maps edge keys to dense edge ids ``0..n_edges-1``; grows online, ids never change."""

    def __init__(self, keys: np.ndarray, eids: np.ndarray) -> None:
        self._keys, self._eids = keys, eids      # sorted keys and their edge ids
        self._identity = bool((eids == np.arange(eids.size)).all())   # edge id = position (built from sorted keys)
        self._okeys = np.empty(0, np.int64)      # overflow (created later) keys, sorted
        self._oeids = np.empty(0, np.int64)
        self.n_edges = int(eids.size)

    @classmethod
    def build(cls, clusters: np.ndarray, items: np.ndarray) -> "EdgeIndex":
        """Index the given edges; edge ``i`` is the ``i``-th input pair (duplicates raise)."""
        clusters = np.asarray(clusters, np.int64)
        items = np.asarray(items, np.int64)
        if clusters.shape != items.shape:
            raise ValueError("clusters and items must have the same length")
        return cls.from_keys(edge_keys(clusters, items))

    @classmethod
    def from_keys(cls, keys: np.ndarray) -> "EdgeIndex":
        """Index packed keys; edge ``i`` is ``keys[i]``."""
        keys = np.asarray(keys, np.int64)
        order = np.argsort(keys, kind="stable")
        skeys = keys[order]
        if skeys.size > 1 and np.any(skeys[1:] == skeys[:-1]):
            raise ValueError("duplicate (cluster, item) edges")
        return cls(skeys, order.astype(np.int64))

    def lookup_keys(self, keys: np.ndarray) -> np.ndarray:
        """Edge id per key (any shape), ``-1`` where absent."""
        keys = np.asarray(keys, np.int64)
        pos = _find(self._keys, keys)
        out = pos if self._identity else np.where(pos >= 0, self._eids[np.maximum(pos, 0)], -1)
        if self._okeys.size:
            miss = out < 0
            if miss.any():
                p2 = _find(self._okeys, keys[miss])
                out[miss] = np.where(p2 >= 0, self._oeids[np.maximum(p2, 0)], -1)
        return out

    def lookup(self, clusters: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Edge id per (cluster, item) pair (broadcast), ``-1`` where it is not an edge."""
        return self.lookup_keys(pack_or_absent(clusters, items))

    def add_keys(self, keys: np.ndarray) -> np.ndarray:
        """Edge ids of the (valid) keys, creating the edges that do not exist yet."""
        keys = np.asarray(keys, np.int64)
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

    def add(self, clusters: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Edge ids of the pairs, creating edges that do not exist yet (ids out of range raise)."""
        return self.add_keys(edge_keys(clusters, items))

    def _merge_overflow(self) -> None:
        pos = np.searchsorted(self._keys, self._okeys)     # both sorted and disjoint: a linear merge
        self._keys = np.insert(self._keys, pos, self._okeys)
        self._eids = np.insert(self._eids, pos, self._oeids)
        self._identity = False
        self._okeys = np.empty(0, np.int64)
        self._oeids = np.empty(0, np.int64)

    def cluster_edges(self, cluster: int) -> tuple[np.ndarray, np.ndarray]:
        """``(item ids, edge ids)`` of one cluster, items ascending."""
        if not 0 <= int(cluster) <= MAX_CLUSTER:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        lo, hi = np.int64(cluster) << ITEM_BITS, (np.int64(cluster) + 1) << ITEM_BITS
        parts_k, parts_e = [], []
        for keys, eids in ((self._keys, self._eids), (self._okeys, self._oeids)):
            a, b = np.searchsorted(keys, [lo, hi])
            parts_k.append(keys[a:b])
            parts_e.append(eids[a:b])
        k, e = np.concatenate(parts_k), np.concatenate(parts_e)
        if self._okeys.size:
            o = np.argsort(k, kind="stable")
            k, e = k[o], e[o]
        return k & MAX_ITEM, e

    def cluster_items(self, cluster: int) -> np.ndarray:
        """Item ids linked to one cluster (ascending)."""
        return self.cluster_edges(cluster)[0]

    def keys_by_id(self) -> np.ndarray:
        """The key of every edge id ``0..n_edges-1``."""
        keys = np.empty(self.n_edges, np.int64)
        keys[self._eids] = self._keys
        keys[self._oeids] = self._okeys
        return keys

    def edge_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(cluster int32, item int64)`` of every edge id ``0..n_edges-1``."""
        return split_keys(self.keys_by_id())

    def nbytes(self) -> int:
        return int(self._keys.nbytes + self._eids.nbytes + self._okeys.nbytes + self._oeids.nbytes)
