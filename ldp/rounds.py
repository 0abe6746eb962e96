"""Rounds of LDP reports: who answers which question, and the in-memory population.

A protocol (PEM, TAP, TAPS) never sees raw values. It splits every party's users into groups by
fixed ``shares`` (a salted hash of the user id, so a user's group is stable across passes and
every user is in exactly one group), then asks :class:`Query` s: "users of party ``p`` in groups
``G``: report the top ``prefix_bits`` bits of your item with oracle ``o`` over candidates ``C``".
A population answers with debiased counts. :class:`LocalPopulation` does it in numpy (simulation
and tests); ``ldp.spark.SparkPopulation`` does the same on executors.

>>> import numpy as np
>>> pop = LocalPopulation(parties=np.zeros(6000, int), users=np.arange(6000),
...                       items=np.repeat([5, 9, 12], 2000), bits=4, epsilon=4.0, seed=1)
>>> q = Query(party=0, groups=(0,), prefix_bits=4, candidates=np.array([5, 9, 12]), oracle="grr")
>>> ans = pop.answer([q], shares=(1.0,), group_salt=3)[0]
>>> ans.n, bool(abs(ans.estimates[0] - 2000) < 200)
(6000, True)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from ldp.hashing import unit_interval
from ldp.oracles import DEFAULT_POOL, FrequencyOracle, make_oracle
from ldp.randomness import batch_rng

BATCH = 1 << 16


@dataclass(frozen=True)
class Query:
    """One round for one party: the users of ``groups`` report ``prefix_bits``-bit prefixes."""

    party: int
    groups: tuple[int, ...]
    prefix_bits: int
    candidates: np.ndarray = field(repr=False, compare=False)
    oracle: str = "auto"
    salt: int = 0  # public OLH pool salt

    def __post_init__(self):
        if not self.groups:
            raise ValueError("a query needs at least one group")
        if self.prefix_bits < 1:
            raise ValueError(f"prefix_bits must be >= 1, got {self.prefix_bits}")
        c = np.asarray(self.candidates, dtype=np.int64)
        if c.ndim != 1 or c.size == 0 or (c.size > 1 and not (np.diff(c) > 0).all()):
            raise ValueError("candidates must be a sorted, unique, non-empty 1-d array")
        if c[0] < 0 or (self.prefix_bits < 63 and c[-1] >= (1 << self.prefix_bits)):
            raise ValueError(f"candidates do not fit in {self.prefix_bits} bits")
        object.__setattr__(self, "candidates", c)


@dataclass(frozen=True)
class Answer:
    """Debiased counts for a query's candidates; ``n`` users reported; ``oracle`` actually used."""

    estimates: np.ndarray
    n: int
    oracle: str
    variance0: float  # variance of one estimate of a zero-count candidate (n q(1-q)/(p-q)^2)


def assign_groups(users: np.ndarray, shares: Sequence[float], salt: int) -> np.ndarray:
    """Group index of each user: ``searchsorted(cumsum(shares), U(user, salt))``."""
    s = np.asarray(shares, dtype=np.float64)
    if s.ndim != 1 or s.size == 0 or (s < 0).any() or not np.isclose(s.sum(), 1.0):
        raise ValueError(f"shares must be non-negative and sum to 1, got {shares}")
    cum = np.cumsum(s)
    cum[-1] = 1.0 + 1e-12
    return np.searchsorted(cum, unit_interval(users, salt), side="right").astype(np.int32)


def build_oracle(q: Query, epsilon: float, pool_size: int | None = DEFAULT_POOL) -> FrequencyOracle:
    """The oracle a query's users and the server agree on."""
    return make_oracle(q.oracle, epsilon, q.candidates, salt=q.salt, pool_size=pool_size)


def build_oracles(queries: Sequence[Query], epsilon: float, pool_size: int | None = DEFAULT_POOL) -> list[FrequencyOracle]:
    """One oracle per query; identical rounds (e.g. every party of an aligned level) share one object."""
    cache: dict[tuple, FrequencyOracle] = {}
    out = []
    for q in queries:
        key = (q.oracle, q.salt, q.prefix_bits, q.candidates.size, q.candidates.tobytes())
        if key not in cache:
            cache[key] = build_oracle(q, epsilon, pool_size)
        out.append(cache[key])
    return out


def supports(oracles: Sequence[FrequencyOracle], tallies: Sequence, ns: Sequence[int]) -> list[np.ndarray]:
    """Support vector per query; queries sharing an oracle object are aggregated in one pass."""
    out: list[np.ndarray | None] = [None] * len(oracles)
    shared: dict[int, list[int]] = {}
    for i, (o, n) in enumerate(zip(oracles, ns)):
        if n:
            shared.setdefault(id(o), []).append(i)
        else:
            out[i] = np.zeros(o.m, dtype=np.int64)
    for idx in shared.values():
        for i, s in zip(idx, oracles[idx[0]].supports_from_tallies([tallies[i] for i in idx])):
            out[i] = s
    return out


class Population(Protocol):
    """What a protocol needs from the data: party sizes and answers to queries."""

    bits: int
    epsilon: float

    def party_sizes(self) -> dict[int, int]: ...

    def answer(self, queries: Sequence[Query], shares: Sequence[float], group_salt: int) -> list[Answer]: ...


class LocalPopulation:
    """Users in memory (numpy); perturbation per batch, support summed over batches."""

    def __init__(self, parties: np.ndarray, users: np.ndarray, items: np.ndarray, bits: int,
                 epsilon: float, seed: int | None = None, pool_size: int | None = DEFAULT_POOL):
        self.parties = np.asarray(parties, dtype=np.int64)
        self.users = np.asarray(users, dtype=np.int64)
        self.items = np.asarray(items, dtype=np.int64)
        if not (self.parties.shape == self.users.shape == self.items.shape):
            raise ValueError("parties, users and items must have the same length")
        if not 1 <= bits <= 62:
            raise ValueError(f"bits must be in 1..62, got {bits}")
        if self.items.size and (self.items.min() < 0 or self.items.max() >= (1 << bits)):
            raise ValueError(f"items must lie in [0, 2^{bits})")
        self.bits, self.epsilon, self.seed, self.pool_size = bits, float(epsilon), seed, pool_size
        self._calls = 0

    def party_sizes(self) -> dict[int, int]:
        ps, counts = np.unique(self.parties, return_counts=True)
        return {int(p): int(c) for p, c in zip(ps, counts)}

    def answer(self, queries, shares, group_salt):
        groups = assign_groups(self.users, shares, group_salt)
        oracles = build_oracles(queries, self.epsilon, self.pool_size)
        tallies, ns = [], []
        for qi, (q, oracle) in enumerate(zip(queries, oracles)):
            mask = (self.parties == q.party) & np.isin(groups, q.groups)
            prefixes = self.items[mask] >> (self.bits - q.prefix_bits)
            tally = 0
            for b, a in enumerate(range(0, prefixes.size, BATCH)):
                rng = batch_rng(self.seed, self._calls, qi, b)
                tally = tally + oracle.tally(oracle.perturb(prefixes[a : a + BATCH], rng))
            tallies.append(tally)
            ns.append(int(prefixes.size))
        self._calls += 1
        return [Answer(o.debias(s, n), n, o.name, float(o.variance(n)))
                for o, s, n in zip(oracles, supports(oracles, tallies, ns), ns)]
