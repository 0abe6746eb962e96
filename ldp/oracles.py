"""Frequency oracles under ε-local differential privacy: GRR, OLH, OUE.

One oracle object describes one *round*: a privacy budget ε and a sorted candidate set
``C = (c_1..c_m)``. A client turns its value into one report with :meth:`FrequencyOracle.perturb`;
the server sums an additive *tally* of the reports over batches and partitions (:meth:`tally`),
turns it into how many reports *support* each candidate (:meth:`support_from_tally`) and
de-biases (:meth:`debias`)::

    E[support_j] = f_j p + (n - f_j) q   =>   f̂_j = (support_j - n q) / (p - q)
    Var[f̂_j]    = n q (1 - q) / (p - q)^2 + f_j (1 - p - q) / (p - q)

(Wang, Blocki, Li, Jha, "Locally Differentially Private Protocols for Frequency Estimation",
USENIX Security 2017). Only the candidate set is ever materialised, so 48-bit values work: GRR and
OUE use the domain ``C ∪ {⊥}`` (a value outside ``C`` is reported as ⊥ — our design decision,
sound because ⊥ is just another domain element), OLH hashes the raw 64-bit value.

* **GRR** (k-ary randomised response), d = m + 1: keep the value w.p. ``p = e^ε/(e^ε+d-1)``,
  else a uniform other one; ``q = 1/(e^ε+d-1)``.
* **OLH** (optimised local hashing): a hash key from a public pool of ``pool_size`` keys
  (uniform, independent of the value), ``g = round(e^ε)+1`` buckets by multiply-shift hashing of
  ``fmix64(v)`` with the key as odd multiplier, GRR on the bucket;
  ``p = e^ε/(e^ε+g-1)``, ``q = 1/g``. The support is a gather over the (key, bucket) histogram:
  cost ``min(n, pool) · m``, never ``n · m``. Report = ``key_index · g + bucket``.
  Users sharing a key share hash collisions, which adds ≈ ``Σ_v f_v² / pool`` (times
  ``q(1-q)/(p-q)²``) to the variance of every estimate — small only when the pool is large
  against the concentration of the data. *Design decision*: the pool is sized per round from a
  fixed aggregation cost, ``pool = clip(POOL_CELLS / m, MIN_POOL, TALLY_CELLS / g)``
  (:func:`adaptive_pool`): a round with few candidates gets a large pool (nearly one key per user,
  i.e. plain OLH) at the same server cost as a wide round with a small pool.
* **OUE** (optimised unary encoding), d = m + 1 bits: own bit 1 w.p. 1/2, every other bit 1 w.p.
  ``q = 1/(e^ε+1)``; reports are packed bits.

Privacy: for every report r and values v, v': P[r|v] / P[r|v'] ≤ e^ε
(:meth:`report_log_prob` gives the exact probabilities the tests check).

>>> import numpy as np
>>> from ldp.randomness import batch_rng
>>> o = make_oracle("olh", 4.0, np.arange(8), salt=1)
>>> vals = np.repeat(np.arange(8), [4000, 2000, 1000, 500, 250, 125, 60, 65])
>>> est = o.estimate(o.perturb(vals, batch_rng(0)))
>>> bool(abs(est[0] - 4000) < 5 * o.variance(len(vals), 4000) ** 0.5)
True
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ldp.hashing import as_u64, fmix64, pool_keys

MIN_POOL = 1024
POOL_CELLS = 1 << 24  # aggregation budget per round: pool · m hash-and-gather cells
TALLY_CELLS = 1 << 21  # bound on the (key, bucket) histogram: pool · g counts (16 MiB of int64)
DEFAULT_POOL: int | None = None  # None: adaptive_pool(m, g)
_CHUNK_CELLS = 1 << 22  # elements per vectorised chunk (~32 MiB of uint64)
_TABLE_CELLS = 1 << 25  # cache the OLH bucket table up to 128 MiB (int32)


def adaptive_pool(m: int, g: int) -> int:
    """Public OLH key-pool size for a round of ``m`` candidates and ``g`` buckets (design decision).

    ``clip(POOL_CELLS // m, MIN_POOL, TALLY_CELLS // g)``: the server's gather cost ``pool · m`` is
    bounded and the collision variance ``Σ f² / pool`` shrinks when the round is narrow.
    """
    return int(max(MIN_POOL, min(POOL_CELLS // max(m, 1), TALLY_CELLS // max(g, 1))))


def _sorted_candidates(candidates: np.ndarray) -> np.ndarray:
    c = np.asarray(candidates, dtype=np.int64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError("candidates must be a non-empty 1-d integer array")
    if c.size > 1 and not (np.diff(c) > 0).all():
        raise ValueError("candidates must be sorted and unique")
    return c


class FrequencyOracle(ABC):
    """One ε-LDP round over a candidate set; see the module docstring for the formulas."""

    name: ClassVar[str]

    def __init__(self, epsilon: float, candidates: np.ndarray):
        if not (epsilon > 0 and math.isfinite(epsilon)):
            raise ValueError(f"epsilon must be positive and finite, got {epsilon}")
        self.epsilon = float(epsilon)
        self.candidates = _sorted_candidates(candidates)
        self.m = int(self.candidates.size)

    # --- client side -------------------------------------------------------------------------
    @abstractmethod
    def perturb(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One report per value (vectorised); ``rng`` must be CSPRNG-seeded in production."""

    # --- server side -------------------------------------------------------------------------
    @abstractmethod
    def tally(self, reports: np.ndarray) -> np.ndarray:
        """Additive sufficient statistic of a batch of reports (sum it over batches and partitions)."""

    @abstractmethod
    def support_from_tally(self, tally: np.ndarray) -> np.ndarray:
        """int64 counts of reports supporting each candidate, from a summed tally."""

    def support(self, reports: np.ndarray) -> np.ndarray:
        """int64 counts of reports supporting each candidate (additive over batches)."""
        return self.support_from_tally(self.tally(reports))

    def supports_from_tallies(self, tallies) -> np.ndarray:
        """``(len(tallies), m)`` supports of several tallies of this round (e.g. one per party)."""
        return np.stack([self.support_from_tally(t) for t in tallies])

    @property
    @abstractmethod
    def p(self) -> float:
        """P[a report supports the user's own value]."""

    @property
    @abstractmethod
    def q(self) -> float:
        """P[a report supports a given other value]."""

    def debias(self, support: np.ndarray, n: int) -> np.ndarray:
        """Unbiased count estimates ``(support - n q) / (p - q)``."""
        return (np.asarray(support, dtype=np.float64) - n * self.q) / (self.p - self.q)

    def estimate(self, reports: np.ndarray) -> np.ndarray:
        """Unbiased count estimate per candidate from a batch of reports."""
        return self.debias(self.support(reports), len(reports))

    def variance(self, n: int, f: float | np.ndarray = 0.0) -> float | np.ndarray:
        """Var of one estimate: ``n q(1-q)/(p-q)^2 + f (1-p-q)/(p-q)``."""
        p, q = self.p, self.q
        return n * q * (1 - q) / (p - q) ** 2 + np.asarray(f) * (1 - p - q) / (p - q)

    @abstractmethod
    def report_log_prob(self, value: int, reports: np.ndarray) -> np.ndarray:
        """Exact ``log P[report | value]`` for each report (privacy tests)."""

    def _index(self, values: np.ndarray) -> np.ndarray:
        """Index of each value in the candidates, ``m`` (⊥) when absent."""
        v = np.asarray(values, dtype=np.int64)
        idx = np.searchsorted(self.candidates, v)
        idx_c = np.minimum(idx, self.m - 1)
        return np.where(self.candidates[idx_c] == v, idx_c, self.m)


class GRR(FrequencyOracle):
    """Generalised (k-ary) randomised response over ``C ∪ {⊥}``."""

    name = "grr"

    @property
    def d(self) -> int:
        return self.m + 1

    @property
    def p(self) -> float:
        e = math.exp(self.epsilon)
        return e / (e + self.d - 1)

    @property
    def q(self) -> float:
        return 1.0 / (math.exp(self.epsilon) + self.d - 1)

    def perturb(self, values, rng):
        true = self._index(values)
        other = rng.integers(0, self.d - 1, size=true.size)
        other += other >= true
        keep = rng.random(true.size) < self.p
        return np.where(keep, true, other).astype(np.int64)

    def tally(self, reports):
        return np.bincount(np.asarray(reports, dtype=np.int64), minlength=self.d).astype(np.int64)

    def support_from_tally(self, tally):
        return np.asarray(tally, dtype=np.int64)[: self.m]

    def report_log_prob(self, value, reports):
        t = self._index(np.array([value]))[0]
        r = np.asarray(reports)
        return np.where(r == t, math.log(self.p), math.log(self.q))


class OLH(FrequencyOracle):
    """Optimised local hashing with a public pool of hash keys."""

    name = "olh"

    def __init__(self, epsilon, candidates, salt: int = 0, pool_size: int | None = DEFAULT_POOL):
        super().__init__(epsilon, candidates)
        self.g = max(2, int(round(math.exp(self.epsilon))) + 1)
        if pool_size is None:
            pool_size = adaptive_pool(self.m, self.g)
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        self.salt, self.pool_size = int(salt), int(pool_size)
        self.keys = pool_keys(self.salt, self.pool_size)
        self._table: np.ndarray | None = None

    @property
    def p(self) -> float:
        e = math.exp(self.epsilon)
        return e / (e + self.g - 1)

    @property
    def q(self) -> float:
        return 1.0 / self.g

    def _bucket(self, values, key_idx):
        """Multiply-shift hash (Dietzfelbinger et al.) keyed by an odd multiplier, into g buckets."""
        fv = fmix64(as_u64(values))
        a = self.keys[key_idx] | np.uint64(1)
        with np.errstate(over="ignore"):
            h = (fv * a) >> np.uint64(32)
            return ((h * np.uint64(self.g)) >> np.uint64(32)).astype(np.int64)

    def bucket_table(self) -> np.ndarray:
        """Flat histogram index ``s·g + H_s(c_j)`` for every pool key s and candidate j (cached, int32)."""
        if self._table is None:
            t = np.empty((self.pool_size, self.m), dtype=np.int32)
            step = max(1, _CHUNK_CELLS // self.m)
            for a in range(0, self.pool_size, step):
                b = min(a + step, self.pool_size)
                rows = np.arange(a, b)[:, None]
                t[a:b] = self._bucket(self.candidates[None, :], rows) + rows * self.g
            self._table = t
        return self._table

    def perturb(self, values, rng):
        v = np.asarray(values, dtype=np.int64)
        s = rng.integers(0, self.pool_size, size=v.size)
        h = self._bucket(v, s)
        other = rng.integers(0, self.g - 1, size=v.size)
        other += other >= h
        y = np.where(rng.random(v.size) < self.p, h, other)
        return s * self.g + y

    def tally(self, reports):
        """Histogram of (pool key, bucket) pairs: ``pool_size · g`` counts."""
        return np.bincount(np.asarray(reports, dtype=np.int64), minlength=self.pool_size * self.g).astype(np.int64)

    def support_from_tally(self, tally):
        return self.supports_from_tallies([tally])[0]

    def supports_from_tallies(self, tallies):
        """``support_j = Σ_s hist[s, H_s(c_j)]`` for several histograms at once.

        The histograms are stacked column-wise, so one hash-and-gather pass over the
        ``(key, candidate)`` cells serves every party answering this round (cost ``pool · m``,
        not ``parties · pool · m``).
        """
        hist = np.stack([np.asarray(t, dtype=np.int64) for t in tallies], axis=1)  # (pool·g, Q)
        out = np.zeros((self.m, hist.shape[1]), dtype=np.int64)
        seeds = np.flatnonzero(hist.reshape(self.pool_size, -1).any(axis=1))
        step = max(1, _CHUNK_CELLS // (self.m * hist.shape[1]))
        for a in range(0, seeds.size, step):
            sd = seeds[a : a + step]
            if self.pool_size * self.m <= _TABLE_CELLS:
                idx = self.bucket_table()[sd]
            else:
                idx = self._bucket(self.candidates[None, :], sd[:, None]) + sd[:, None] * self.g
            out += hist[idx].sum(axis=0)
        return out.T

    def report_log_prob(self, value, reports):
        r = np.asarray(reports, dtype=np.int64)
        s, y = r // self.g, r % self.g
        h = self._bucket(np.full(r.shape, value, dtype=np.int64), s)
        e = math.exp(self.epsilon)
        return np.where(y == h, math.log(self.p), -math.log(e + self.g - 1)) - math.log(self.pool_size)


class OUE(FrequencyOracle):
    """Optimised unary encoding over ``C ∪ {⊥}``; reports are rows of packed bits."""

    name = "oue"

    @property
    def d(self) -> int:
        return self.m + 1

    @property
    def p(self) -> float:
        return 0.5

    @property
    def q(self) -> float:
        return 1.0 / (math.exp(self.epsilon) + 1)

    def perturb(self, values, rng):
        true = self._index(values)
        rows = max(1, _CHUNK_CELLS // self.d)
        out = np.empty((true.size, (self.d + 7) // 8), dtype=np.uint8)
        for a in range(0, true.size, rows):
            t = true[a : a + rows]
            bits = rng.random((t.size, self.d)) < self.q
            bits[np.arange(t.size), t] = rng.random(t.size) < 0.5
            out[a : a + rows] = np.packbits(bits, axis=1)
        return out

    def tally(self, reports):
        """Per-bit counts of a batch of packed reports."""
        r = np.asarray(reports, dtype=np.uint8)
        out = np.zeros(self.d, dtype=np.int64)
        rows = max(1, _CHUNK_CELLS // self.d)
        for a in range(0, r.shape[0], rows):
            out += np.unpackbits(r[a : a + rows], axis=1, count=self.d).sum(axis=0, dtype=np.int64)
        return out

    def support_from_tally(self, tally):
        return np.asarray(tally, dtype=np.int64)[: self.m]

    def report_log_prob(self, value, reports):
        t = self._index(np.array([value]))[0]
        bits = np.unpackbits(np.atleast_2d(np.asarray(reports, dtype=np.uint8)), axis=1, count=self.d).astype(bool)
        own = np.where(bits[:, t], math.log(0.5), math.log(0.5))
        others = np.delete(bits, t, axis=1)
        lq, l1q = math.log(self.q), math.log1p(-self.q)
        return own + np.where(others, lq, l1q).sum(axis=1)


ORACLES: dict[str, type[FrequencyOracle]] = {"grr": GRR, "olh": OLH, "oue": OUE}


def choose_oracle(epsilon: float, m: int) -> str:
    """GRR when its variance beats OLH's (``m + 1 < 3 e^ε + 2``), else OLH (Wang et al. 2017)."""
    return "grr" if m + 1 < 3 * math.exp(epsilon) + 2 else "olh"


def make_oracle(name: str, epsilon: float, candidates: np.ndarray, salt: int = 0,
                pool_size: int | None = DEFAULT_POOL) -> FrequencyOracle:
    """Build the named oracle (``"auto"`` picks with :func:`choose_oracle`) for one round."""
    if name == "auto":
        name = choose_oracle(epsilon, len(candidates))
    if name not in ORACLES:
        raise ValueError(f"unknown oracle {name!r}; expected one of {sorted(ORACLES)} or 'auto'")
    if name == "olh":
        return OLH(epsilon, candidates, salt=salt, pool_size=pool_size)
    return ORACLES[name](epsilon, candidates)
