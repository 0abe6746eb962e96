"""Privacy ledger: per party, who reported what, under which ε — and a guard that nobody reports twice.

Every user belongs to exactly one (party, group) and reports once with the full ε, so each user's
privacy cost is ε however many levels a protocol runs (parallel composition over disjoint groups).
The ledger enforces it: a (party, group) pair answering a second query raises
:class:`PrivacyBudgetError`.

>>> import numpy as np
>>> from ldp.rounds import Query, Answer
>>> led = PrivacyLedger("pem", 4.0, {0: 10}, shares=(0.5, 0.5))
>>> q = Query(0, (0,), 3, np.array([1, 2]), "grr")
>>> led.record(q, Answer(np.zeros(2), 5, "grr", 1.0))
>>> led.record(q, Answer(np.zeros(2), 5, "grr", 1.0))
Traceback (most recent call last):
...
ldp.ledger.PrivacyBudgetError: party 0 group 0 already reported (each user reports once)
"""
from __future__ import annotations

from typing import Any, Sequence


class PrivacyBudgetError(RuntimeError):
    """A group of users was asked to report twice."""


class PrivacyLedger:
    """Per-party record of rounds; ``to_dict`` is what jobs write to ``ledger.json``."""

    def __init__(self, method: str, epsilon: float, party_sizes: dict[int, int], shares: Sequence[float]):
        self.method, self.epsilon = method, float(epsilon)
        self.party_sizes = {int(p): int(n) for p, n in party_sizes.items()}
        self.shares = [float(s) for s in shares]
        self._used: set[tuple[int, int]] = set()
        self.rounds: dict[int, list[dict[str, Any]]] = {p: [] for p in self.party_sizes}

    def record(self, query, answer) -> None:
        """Log one answered query; refuse a (party, group) that already reported."""
        p = int(query.party)
        if p not in self.party_sizes:
            raise KeyError(f"party {p} not in the ledger")
        for g in query.groups:
            if (p, int(g)) in self._used:
                raise PrivacyBudgetError(f"party {p} group {g} already reported (each user reports once)")
        self._used.update((p, int(g)) for g in query.groups)
        self.rounds[p].append({"groups": [int(g) for g in query.groups], "prefix_bits": int(query.prefix_bits),
                               "oracle": answer.oracle, "candidates": int(query.candidates.size),
                               "users": int(answer.n), "epsilon": self.epsilon})

    def check(self, query) -> None:
        """Raise before asking a query whose groups already reported."""
        for g in query.groups:
            if (int(query.party), int(g)) in self._used:
                raise PrivacyBudgetError(f"party {query.party} group {g} already reported (each user reports once)")

    def to_dict(self) -> dict[str, Any]:
        parties = {}
        for p, n in self.party_sizes.items():
            rs = self.rounds[p]
            reported = sum(r["users"] for r in rs)
            parties[str(p)] = {"users": n, "users_reported": reported, "epsilon_per_user": self.epsilon,
                               "reports_per_user": 1, "levels": len(rs),
                               "oracles": sorted({r["oracle"] for r in rs}),
                               "groups_used": sorted(g for q, g in self._used if q == p),
                               "rounds": rs}
        return {"method": self.method, "epsilon_per_user": self.epsilon, "reports_per_user": 1,
                "composition": "parallel: disjoint user groups, one report each with the full epsilon",
                "group_shares": self.shares, "parties": parties}
