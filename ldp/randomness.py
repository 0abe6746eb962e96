"""Where perturbation randomness comes from.

Production: every batch gets a fresh ``numpy`` Generator on PCG64 seeded with 256 bits from the
operating system's CSPRNG (``os.urandom``), so nobody — the server included — can re-derive a
user's coins. Tests and benchmarks pass an explicit integer seed; the batch generator is then
derived from ``(seed, *stream)`` with ``numpy.random.SeedSequence`` (reproducible, *not* private).

>>> a = batch_rng(7, 0, 1).integers(0, 1000, 3); b = batch_rng(7, 0, 1).integers(0, 1000, 3)
>>> bool((a == b).all())
True
>>> bool(batch_rng(None, 0).integers(0, 2**62) >= 0)   # CSPRNG-seeded
True
"""
from __future__ import annotations

import os

import numpy as np


def secure_rng() -> np.random.Generator:
    """A Generator seeded from 256 bits of ``os.urandom`` (fresh per call)."""
    return np.random.Generator(np.random.PCG64(int.from_bytes(os.urandom(32), "little")))


def batch_rng(seed: int | None, *stream: int) -> np.random.Generator:
    """Generator for one batch: CSPRNG when ``seed`` is None, else derived from ``(seed, *stream)``."""
    if seed is None:
        return secure_rng()
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), *map(int, stream)])))


def public_salt(seed: int | None, *stream: int) -> int:
    """A 63-bit public salt (OLH hash pool, group assignment): random, or derived from ``seed``."""
    return int(batch_rng(seed, 0x5A17, *stream).integers(0, 2**63 - 1))
