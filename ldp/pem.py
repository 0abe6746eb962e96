"""Prefix-extending heavy hitters (PEM) over a population of LDP reporters.

PEM (Wang, Li, Jha, "Locally Differentially Private Heavy Hitter Identification", IEEE TDSC 2019):
users are split uniformly into ``L`` groups; group ``i`` reports the first ``ℓ_i = s + (i+1)·η``
bits of its item (ℓ clipped at the item width) through a frequency oracle; the server estimates the
candidates of level ``i`` — the ``2^ℓ_0`` prefixes at level 0, afterwards the top-``k`` prefixes of
level ``i-1`` each extended by every ``η``-bit suffix (``k·2^η`` candidates) — keeps the top ``k``
and finally returns the top ``k`` full-width items. Each user reports once with the full ε; the
domain ``2^bits`` is never materialised. Level splits follow pure-ldp's PEM
(``L = ⌈(bits - s)/η⌉``), so the two are comparable.

:func:`run_tracks` runs several independent PEM instances ("tracks", each pooling a set of parties)
level-synchronised, so one pass over the data answers every track — federated PEM is one track per
party, pooled PEM one track holding every party.

>>> import numpy as np
>>> from ldp.rounds import LocalPopulation
>>> rng = np.random.default_rng(0)
>>> items = np.concatenate([np.full(3000, 0xBEEF), np.full(2000, 0x1234), rng.integers(0, 1 << 16, 5000)])
>>> pop = LocalPopulation(np.zeros(items.size, int), np.arange(items.size), items, bits=16, epsilon=4, seed=0)
>>> hh = pem(pop, PEMConfig(k=2, step=4, seed=0))
>>> sorted(hex(i) for i in hh.items)
['0x1234', '0xbeef']
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ldp.ledger import PrivacyLedger
from ldp.randomness import public_salt
from ldp.rounds import Population, Query


@dataclass(frozen=True)
class HeavyHitters:
    """Ranked top-k items with their estimated global counts and the run's privacy ledger."""

    items: np.ndarray
    estimates: np.ndarray
    method: str
    ledger: dict[str, Any] = field(repr=False)
    rounds: int = 0


@dataclass(frozen=True)
class PEMConfig:
    """PEM parameters: ``k`` items, ``step`` η bits per level, first level ``start_bits + step``."""

    k: int = 32
    step: int = 6
    start_bits: int | None = None  # default ⌈log2 k⌉, as in PEM
    oracle: str = "auto"
    seed: int | None = None  # fixes salts and group assignment (tests/benchmarks only)

    def __post_init__(self):
        if self.k < 1 or self.step < 1:
            raise ValueError("k and step must be >= 1")
        if self.start_bits is not None and self.start_bits < 0:
            raise ValueError("start_bits must be >= 0")

    def lengths(self, bits: int) -> list[int]:
        """Prefix length of every level: ``s + η, s + 2η, ...`` clipped at ``bits``."""
        s = math.ceil(math.log2(self.k)) if self.start_bits is None else self.start_bits
        s = min(s, bits - 1)
        levels = math.ceil((bits - s) / self.step)
        return [min(bits, s + (i + 1) * self.step) for i in range(levels)]


def children(prefixes: np.ndarray, step: int) -> np.ndarray:
    """All ``step``-bit extensions of sorted prefixes, sorted: ``(c << step) | s``."""
    p = np.asarray(prefixes, dtype=np.int64)
    return ((p[:, None] << step) | np.arange(1 << step, dtype=np.int64)[None, :]).ravel()


def top(candidates: np.ndarray, estimates: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``r`` candidates with the largest estimates, best first (stable on ties)."""
    order = np.argsort(-np.asarray(estimates), kind="stable")[:r]
    return candidates[order], np.asarray(estimates)[order]


def merge_counts(items: Sequence[np.ndarray], estimates: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sum count estimates of the same item over lists (absent = 0)."""
    it = np.concatenate([np.asarray(i, dtype=np.int64) for i in items])
    es = np.concatenate([np.asarray(e, dtype=np.float64) for e in estimates])
    u, inv = np.unique(it, return_inverse=True)
    return u, np.bincount(inv, weights=es, minlength=u.size)


def run_tracks(pop: Population, tracks: Sequence[tuple[int, ...]], cfg: PEMConfig, ledger: PrivacyLedger,
               group_salt: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run PEM on every track (parties pooled within a track); one ``answer`` call per level."""
    lengths = cfg.lengths(pop.bits)
    shares = [1.0 / len(lengths)] * len(lengths)
    kept: list[np.ndarray | None] = [None] * len(tracks)
    result: list[tuple[np.ndarray, np.ndarray]] = []
    for i, ln in enumerate(lengths):
        queries, owner, cands_of = [], [], []
        for t, parties in enumerate(tracks):
            cands = np.arange(1 << ln, dtype=np.int64) if i == 0 else children(kept[t], ln - lengths[i - 1])
            cands_of.append(cands)
            salt = public_salt(cfg.seed, 1, i, t)
            for p in parties:
                q = Query(p, (i,), ln, cands, cfg.oracle, salt)
                ledger.check(q)
                queries.append(q)
                owner.append(t)
        answers = pop.answer(queries, shares, group_salt)
        est = [np.zeros(c.size) for c in cands_of]
        for q, a, t in zip(queries, answers, owner):
            ledger.record(q, a)
            est[t] += a.estimates
        result = []
        for t in range(len(tracks)):
            items, e = top(cands_of[t], est[t], cfg.k)
            result.append((items, e))
            kept[t] = np.sort(items)
    return result


def pem(pop: Population, cfg: PEMConfig = PEMConfig()) -> HeavyHitters:
    """Pooled PEM: every party's users form one population (the federated reference ideal)."""
    sizes = pop.party_sizes()
    n_levels = len(cfg.lengths(pop.bits))
    ledger = PrivacyLedger("pem", pop.epsilon, sizes, [1.0 / n_levels] * n_levels)
    (items, est), = run_tracks(pop, [tuple(sorted(sizes))], cfg, ledger, public_salt(cfg.seed, 0))
    return HeavyHitters(items, est, "pem", ledger.to_dict(), rounds=n_levels)
