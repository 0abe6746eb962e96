"""Vectorised 64-bit hashing for OLH and salted user-to-group assignment.

The mixer is MurmurHash3's 64-bit finaliser ``fmix64`` (Appleby), a bijection on 64-bit words
with full avalanche; numpy ``uint64`` arithmetic wraps modulo 2^64, so a whole array of values
hashes in a handful of vector instructions and no domain is ever enumerated.

``keyed_hash(v, key) = fmix64(fmix64(v) ^ key)`` gives one member of a hash family per key; OLH
draws a key from a public pool (Apple's count-mean sketch uses a public hash set the same way).

>>> import numpy as np
>>> h = keyed_hash(np.array([1, 2, 3]), np.uint64(7))
>>> h.dtype, len(set(h.tolist()))
(dtype('uint64'), 3)
>>> bool(unit_interval(np.arange(5), salt=1).max() < 1.0)
True
"""
from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S33 = np.uint64(33)


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3 ``fmix64`` on a ``uint64`` array (returns a new array)."""
    x = np.asarray(x).astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> _S33
        x *= _M1
        x ^= x >> _S33
        x *= _M2
        x ^= x >> _S33
    return x


def as_u64(values: np.ndarray) -> np.ndarray:
    """Reinterpret int64 values (negative ones included) as uint64 without copying."""
    v = np.asarray(values)
    if v.dtype == np.uint64:
        return v
    return np.ascontiguousarray(v.astype(np.int64, copy=False)).view(np.uint64)


def pool_keys(salt: int, size: int) -> np.ndarray:
    """The ``size`` public hash keys of a pool identified by ``salt``."""
    with np.errstate(over="ignore"):
        base = np.uint64(salt & 0xFFFFFFFFFFFFFFFF) * _GOLDEN
        return fmix64(np.arange(size, dtype=np.uint64) + base)


def keyed_hash(values: np.ndarray, keys: np.ndarray | np.uint64) -> np.ndarray:
    """``fmix64(fmix64(v) ^ key)``; ``values`` and ``keys`` broadcast against each other."""
    return fmix64(fmix64(as_u64(values)) ^ np.asarray(keys, dtype=np.uint64))


def unit_interval(values: np.ndarray, salt: int) -> np.ndarray:
    """A salted, uniform-looking float in [0, 1) per value (53 high bits of the hash)."""
    h = keyed_hash(values, pool_keys(salt, 1)[0])
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
