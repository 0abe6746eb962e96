"""Spark side of the LDP heavy-hitter protocols: perturbation on executors, supports summed there.

:class:`SparkPopulation` answers a protocol's queries (``ldp.rounds.Query``) with one pass over the
input per round: ``mapInPandas`` assigns every user its group (salted hash of the user id), lets the
users of the asked groups perturb their item prefix with the round's oracle — vectorised per Arrow
batch, randomness from the OS CSPRNG unless a test/benchmark seed is set — and sums the supports of
the round's candidates over the whole partition (the oracles' additive tallies are summed over the
partition's batches; the support is computed once per partition). Only ``(query, candidate, support)`` rows leave a
partition (no shuffle at all); raw values never reach the driver. The driver adds the partitions'
support vectors and de-biases. Imported only by ``jobs/``.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from ldp.oracles import DEFAULT_POOL
from ldp.randomness import batch_rng
from ldp.rounds import Answer, Query, assign_groups, build_oracle, build_oracles, supports

SUPPORT_SCHEMA = "q int, idx int, value long"


def _support_fn(queries: Sequence[Query], shares, group_salt: int, epsilon: float, bits: int,
                seed: int | None, call: int, pool_size: int):
    """The ``mapInPandas`` function: per partition, one support vector (+ user count) per query."""
    def fn(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from pyspark import TaskContext

        specs = list(zip(queries, build_oracles(queries, epsilon, pool_size)))  # built on the executor
        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx is not None else 0
        tallies = [0] * len(specs)
        n = np.zeros(len(specs), dtype=np.int64)
        for b, pdf in enumerate(batches):
            users = pdf["user"].to_numpy(np.int64)
            party = pdf["party"].to_numpy(np.int64)
            items = pdf["item"].to_numpy(np.int64)
            groups = assign_groups(users, shares, group_salt)
            rng = batch_rng(seed, call, part, b)
            for i, (q, o) in enumerate(specs):
                mask = (party == q.party) & np.isin(groups, q.groups)
                if not mask.any():
                    continue
                prefixes = items[mask] >> (bits - q.prefix_bits)
                tallies[i] = tallies[i] + o.tally(o.perturb(prefixes, rng))
                n[i] += prefixes.size
        frames = []
        sup = supports([o for _, o in specs], tallies, n)  # queries sharing an oracle: one gather pass
        for i, (_, o) in enumerate(specs):
            s = sup[i]
            nz = np.flatnonzero(s)
            frames.append(pd.DataFrame({"q": np.full(nz.size + 1, i, np.int32),
                                        "idx": np.concatenate([[-1], nz]).astype(np.int32),
                                        "value": np.concatenate([[n[i]], s[nz]]).astype(np.int64)}))
        yield pd.concat(frames, ignore_index=True)

    return fn


class SparkPopulation:
    """A ``Population`` backed by a DataFrame with int64 columns ``party, user, item``."""

    def __init__(self, df, bits: int, epsilon: float, seed: int | None = None, pool_size: int | None = DEFAULT_POOL,
                 party_sizes: dict[int, int] | None = None):
        self.df = df.select("party", "user", "item")
        self.bits, self.epsilon, self.seed, self.pool_size = bits, float(epsilon), seed, pool_size
        self._sizes = dict(party_sizes) if party_sizes is not None else None  # known already: no Spark job
        self._calls = 0

    def party_sizes(self) -> dict[int, int]:
        if self._sizes is None:
            rows = self.df.groupBy("party").count().collect()  # one row per party
            self._sizes = {int(r["party"]): int(r["count"]) for r in rows}
        return dict(self._sizes)

    def answer(self, queries, shares, group_salt) -> list[Answer]:
        fn = _support_fn(list(queries), list(shares), group_salt, self.epsilon, self.bits, self.seed,
                         self._calls, self.pool_size)
        self._calls += 1
        # one small support vector per (partition, query) reaches the driver — no shuffle stage
        parts = self.df.mapInPandas(fn, SUPPORT_SCHEMA).toPandas()
        summed = parts.groupby(["q", "idx"], as_index=False)["value"].sum()
        out = []
        for i, q in enumerate(queries):
            o = build_oracle(q, self.epsilon, self.pool_size)
            rows = summed[summed["q"] == i]
            n = int(rows.loc[rows["idx"] == -1, "value"].sum())
            sup = np.zeros(o.m, dtype=np.int64)
            body = rows[rows["idx"] >= 0]
            sup[body["idx"].to_numpy()] = body["value"].to_numpy()
            out.append(Answer(o.debias(sup, n), n, o.name, float(o.variance(n))))
        return out


def true_counts_spark(df, k: int, found: np.ndarray):
    """Simulation only: the true top-k ``(items, counts)`` and the true counts of ``found`` items."""
    from pyspark.sql import functions as F

    from graphs.spark_helpers import small_frame

    counts = df.groupBy("item").count()
    top = counts.orderBy(F.desc("count"), F.asc("item")).limit(k).toPandas()
    f = small_frame(df.sparkSession, {"item": np.asarray(found, dtype=np.int64)})
    fc = f.join(counts, "item", "left").toPandas().set_index("item")["count"].fillna(0)
    found_counts = np.array([int(fc.get(int(v), 0)) for v in found], dtype=np.int64)
    return top["item"].to_numpy(np.int64), top["count"].to_numpy(np.int64), found_counts
