"""Federated heavy hitters: federated PEM, TAP (target-aligning prefix tree) and TAPS.

Zhang, Ye & Hu, "Federated Heavy Hitter Analytics with Local Differential Privacy" (TAP/TAPS,
SIGMOD 2025, arXiv 2412.14832). Only the abstract was available; **everything below marked
"design decision" is ours** (see ``docs``/``algorithms.md`` §3).

* **federated PEM** (baseline): each party runs PEM on its own users; the server sums the parties'
  count estimates of the items they return (absent = 0) and takes the top ``k``.
* **TAP** — target alignment (design decision): at every level *all* parties answer the *same*
  candidate set, so the tree grows toward the *global* top-k rather than each party's local one.

  - level 0 enumerates all ``2^s0`` prefixes, ``s0 = ⌊log2 B⌋`` (B = candidate budget); later
    nominal levels split the remaining width into equal steps of at most ``⌊log2(B/keep_max)⌋``;
  - a party *claims* a candidate if its estimate is ≥ ``z_claim·σ_p`` or among its top r; the
    global score is the sum of the claimed estimates (unclaimed = 0), which drops the noise of
    parties that do not hold an item (non-IID data);
  - every party keeps its own significant top prefixes (``f̂ ≥ z·σ``, between ``k_min`` and
    ``keep_max``); their union, capped by score to fit the budget, is the next frontier;
  - adaptive extension: the next level extends the frontier as far as ``|frontier|·2^Δ ≤ B``;
    skipped nominal levels' user groups join the level that is asked (no user is wasted);
  - uneven groups: the full-width level gets ``final_share`` of every party's users (default
    ``max(0.4, 1/levels)``: never less than an equal share), the other levels share the rest equally.
* **TAPS** = TAP + consensus (design decisions): the frontier is the *consensus* — the globally
  best claimed prefixes (significance-limited) plus each party's ``party_keep`` (default k)
  strongest ones, capped by score to fit the budget.
  *Evidence-restricted claims*: below the first level, party p may claim a candidate only if p
  kept its parent prefix (own top ``party_keep``) or claimed it as part of the consensus, and p's
  top r are taken among those candidates. A party's claim then needs evidence from two
  independent user groups, which removes part of the claims on noise when every party answers
  the shared (aligned) candidates (fed. PEM has this by construction: a party only ranks children
  of its own prefixes). Retail, 5 parties, ε = 4: 0.481 vs 0.431 without it on tuning seeds
  3000–3009, but 0.458 vs 0.452 on 20 held-out seeds; BMS ε = 4 0.681 vs 0.634.
  *Empirical-Bayes scores* (default ``score="bayes"``, several parties): the global score is
  ``Σ_p E[f_p | f̂_p]`` over the parties allowed to claim the candidate, the posterior mean under a
  prior on ``f ≥ 0`` fitted per party and level (``ldp.shrinkage``) — a soft claim. Tuning seeds
  7000–7019, 5 parties, vs hard claims: retail +0.037/+0.016/+0.002 at ε = 1/2/4, BMS
  +0.042/+0.009/+0.030, AOL −0.010/−0.025/−0.006; over 100 fresh retail seeds at ε = 4 a tie
  (−0.002 ± 0.007).
  *Consistent estimates* (default ``consistency=True``, several parties): before scoring, each
  party's child estimates are made to agree with its estimate of their parent prefix one asked level
  up, by constrained least squares (Hay, Rastogi, Miklau & Suciu, "Boosting the accuracy of
  differentially private histograms through consistency", VLDB 2010):
  ``x̃_c = x_c + σ_c²/(σ_P² + Σ_c' σ_c'²)·(x_P − Σ_c' x_c')``, variance ``σ_c² − σ_c⁴/(σ_P² + Σ_c' σ_c'²)``
  (the parent rescaled to this level's users). Seeds 9000–9039, 5 parties, vs without: retail
  +0.011/+0.007/+0.005 at ε = 1/2/4, BMS +0.018/+0.020/+0.005; AOL (seeds 7000–7019)
  +0.009/+0.002/+0.000. With one party it lost (retail −0.017/−0.005/−0.009), so it is off there.
  With one party or ε ≤ 2, each level's users form ``splits = 2`` cohorts answering in sequence: after the
  first, candidates whose upper bound ``Σ_p f̂_p + z_c·sqrt(Σ_p σ_p²)`` is below the current r-th
  best score are pruned (r = ``k`` at the final level, ``keep_max`` before) and the second cohort
  answers only the survivors — with GRR once ``m + 1 < 3e^ε + 2``, whose variance is then lower.
  With several parties and ε > 2 a level is one cohort (measured with a fixed 1,024-key OLH pool:
  AOL, 5 parties, ε = 4: 0.825 vs 0.762 with two cohorts; at ε ≤ 2 two cohorts win, 0.087/0.312
  vs 0.062/0.244).

In every method each user belongs to one group and reports once with the full ε.

>>> import numpy as np
>>> from ldp.rounds import LocalPopulation
>>> rng = np.random.default_rng(1)
>>> items = np.concatenate([np.full(4000, 77), np.full(3000, 5000), rng.integers(0, 1 << 20, 13000)])
>>> pop = LocalPopulation(rng.integers(0, 2, items.size), np.arange(items.size), items, 20, 4.0, seed=1)
>>> sorted(taps(pop, TAPConfig(k=2, candidate_budget=1024, seed=1)).items.tolist())
[77, 5000]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ldp.ledger import PrivacyLedger
from ldp.pem import HeavyHitters, PEMConfig, children, merge_counts, pem, run_tracks, top
from ldp.randomness import public_salt
from ldp.rounds import Population, Query
from ldp.shrinkage import posterior_mean

METHODS = ("taps", "tap", "fedpem", "pem")
SCORES = ("bayes", "claims")  # TAPS with several parties: posterior means (ldp.shrinkage) or hard claims


def fedpem(pop: Population, cfg: PEMConfig = PEMConfig()) -> HeavyHitters:
    """Federated PEM: PEM per party, counts merged by sum, global top-k."""
    sizes = pop.party_sizes()
    n_levels = len(cfg.lengths(pop.bits))
    ledger = PrivacyLedger("fedpem", pop.epsilon, sizes, [1.0 / n_levels] * n_levels)
    tracks = [(p,) for p in sorted(sizes)]
    res = run_tracks(pop, tracks, cfg, ledger, public_salt(cfg.seed, 0))
    items, est = merge_counts([r[0] for r in res], [r[1] for r in res])
    items, est = top(items, est, cfg.k)
    return HeavyHitters(items, est, "fedpem", ledger.to_dict(), rounds=n_levels)


@dataclass(frozen=True)
class TAPConfig:
    """TAP/TAPS parameters (all design decisions; defaults chosen by measurement on AOL)."""

    k: int = 32
    candidate_budget: int = 4096  # B: max candidates per level
    keep_max: int | None = None  # default 2k
    k_min: int | None = None  # default k
    z: float = 2.0  # significance to keep a prefix
    z_claim: float = 1.0  # a party's estimate counts toward the global one if ≥ z_claim·σ (or top r)
    final_share: float | None = None  # share of each party's users at the full-width level (default max(0.4, 1/levels))
    consensus_z: float = 2.0  # TAPS pruning margin
    party_keep: int | None = None  # TAPS: each party's best prefixes always stay in the frontier (default k)
    evidence: bool = True  # TAPS: a party claims only below prefixes it kept or claimed one level up
    first_bits: int | None = None  # width of the enumerated first level (default ⌊log2 B⌋)
    splits: int | None = None  # TAPS: sequential cohorts per level (default 2 for one party or ε ≤ 2, else 1)
    grain: int | None = None  # nominal level spacing in bits (default ⌊log2(B / keep_max)⌋)
    score: str = "bayes"  # TAPS, several parties: "bayes" (shrunk estimates) or "claims"
    consistency: bool = True  # TAPS, several parties: children's estimates made consistent with their parent's
    oracle: str = "auto"
    seed: int | None = None

    def __post_init__(self):
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, not {self.score!r}")
        if self.grain is not None and self.grain < 1:
            raise ValueError("grain must be >= 1")
        if self.first_bits is not None and not (1 <= self.first_bits and 1 << self.first_bits <= self.candidate_budget):
            raise ValueError("first_bits must be >= 1 and its 2^first_bits prefixes fit the candidate budget")
        if self.k < 1 or self.candidate_budget < 2:
            raise ValueError("k >= 1 and candidate_budget >= 2 required")
        if self.final_share is not None and not 0 < self.final_share <= 1:
            raise ValueError("final_share must be in (0, 1]")
        if self.keep < self.kmin:
            raise ValueError("keep_max must be >= k_min")
        if self.candidate_budget < 2 * self.keep:
            raise ValueError("candidate_budget must be at least 2 * keep_max")

    @property
    def keep(self) -> int:
        return self.keep_max or 2 * self.k

    @property
    def kmin(self) -> int:
        return self.k_min or self.k

    @property
    def own(self) -> int:
        return self.k if self.party_keep is None else self.party_keep

    def lengths(self, bits: int) -> list[int]:
        """Nominal prefix lengths: ``s0 = ⌊log2 B⌋``, then ``L = ⌈(bits − s0)/η⌉`` equal steps.

        ``η = ⌊log2(B / keep_max)⌋`` is the widest step the budget allows; the remaining
        ``bits − s0`` are spread evenly over the ``L`` levels (design decision: no degenerate
        1-bit last level, e.g. 19-bit items get 12, 16, 19 rather than 12, 18, 19).
        """
        s0 = min(bits, self.first_bits or int(math.log2(self.candidate_budget)))
        step = self.grain or max(1, int(math.log2(self.candidate_budget / self.keep)))
        levels = math.ceil((bits - s0) / step)
        return [s0] + [s0 + math.ceil(i * (bits - s0) / levels) for i in range(1, levels + 1)]

    def shares(self, levels: int) -> list[float]:
        if levels == 1:
            return [1.0]
        final = max(0.4, 1.0 / levels) if self.final_share is None else self.final_share
        rest = (1.0 - final) / (levels - 1)
        return [rest] * (levels - 1) + [final]


class _LevelState:
    """Per-party accumulators of one level: estimates, variances and users over the cohorts so far."""

    def __init__(self, parties, m, allowed=None, bayes=False, parent=None):
        self.parties = list(parties)
        self.parent = parent or {}  # party -> (parent count, parent sd, parent users, group of each candidate)
        self.bayes = bayes  # score by empirical-Bayes posterior means instead of claims
        self.allowed = allowed or {}  # party -> bool mask of candidates it may claim (TAPS evidence)
        self.est = {p: np.zeros(m) for p in parties}
        self.var = {p: np.zeros(m) for p in parties}
        self.n = {p: np.zeros(m) for p in parties}
        self.total = {p: 0 for p in parties}

    def add(self, p, active, ans):
        self.est[p][active] += ans.estimates
        self.var[p][active] += ans.variance0
        self.n[p][active] += ans.n
        self.total[p] += ans.n

    def party_counts(self, p):
        """Party p's count estimates and standard deviations scaled to all of its level users."""
        scale = self.total[p] / np.maximum(self.n[p], 1)
        cnt, s2 = self.est[p] * scale, self.var[p] * scale ** 2
        if p in self.parent and self.parent[p][2] > 0:  # constrained least squares (Hay et al. 2010)
            pc, psd, pn, g = self.parent[p]  # the parent's users answered: its children should sum to it
            r = self.total[p] / pn
            den = ((psd * r) ** 2 + np.bincount(g, weights=s2))[g]
            gain = np.divide(s2, den, out=np.zeros_like(s2), where=den > 0)
            cnt = cnt + gain * (pc * r - np.bincount(g, weights=cnt))[g]
            s2 = s2 * (1.0 - gain)
        return cnt, np.sqrt(s2)

    def claims(self, p, z, r):
        """Party p claims c if its estimate is significant (≥ z·σ) or among its top r.

        With an evidence mask (TAPS) only candidates whose parent prefix p kept or claimed at the
        previous level can be claimed, and the top r are taken among those.
        """
        cnt, sd = self.party_counts(p)
        claim = cnt >= z * sd
        ok = self.allowed.get(p)
        ranked = cnt if ok is None else np.where(ok, cnt, -np.inf)
        claim[np.argsort(-ranked, kind="stable")[:r]] = True
        if ok is not None:
            claim &= ok
        return cnt, sd, claim

    def score(self, z, r):
        """Global count: sum of the parties' claimed estimates (unclaimed = 0).

        Bayes mode: the sum of the parties' posterior means ``E[f_p | f̂_p]`` (``ldp.shrinkage``,
        prior fitted per party over the candidates it may claim; the others count 0).
        """
        out = np.zeros(next(iter(self.est.values())).size)
        for p in self.parties:
            if self.bayes:
                cnt, sd = self.party_counts(p)
                ok = self.allowed.get(p, np.ones(cnt.size, dtype=bool))
                out[ok] += posterior_mean(cnt[ok], sd[ok])
            else:
                cnt, _, claim = self.claims(p, z, r)
                out += np.where(claim, cnt, 0.0)
        return out

    def upper(self, z):
        """Upper confidence bound of the global count: ``Σ_p f̂_p + z·sqrt(Σ_p σ_p²)``."""
        tot, var = 0.0, 0.0
        for p in self.parties:
            cnt, sd = self.party_counts(p)
            tot, var = tot + cnt, var + sd ** 2
        return tot + z * np.sqrt(var)


def _ask_level(pop, ledger, cohorts, ln, cands, cfg, salt, shares, gsalt, r, allowed=None, bayes=False,
               parent=None):
    """Ask the cohorts in turn (TAP: one cohort); between cohorts prune by consensus (TAPS)."""
    parties = sorted({p for c in cohorts for p, _ in c})
    st = _LevelState(parties, cands.size, allowed, bayes, parent)
    active = np.ones(cands.size, dtype=bool)
    for j, cohort in enumerate(cohorts):
        qs = [Query(p, groups, ln, cands[active], cfg.oracle, salt + j) for p, groups in cohort]
        for q in qs:
            ledger.check(q)
        for q, a in zip(qs, pop.answer(qs, shares, gsalt)):
            ledger.record(q, a)
            st.add(q.party, active, a)
        if j + 1 < len(cohorts) and active.sum() > r:
            score = st.score(cfg.z_claim, r)
            tau = np.sort(score[active])[::-1][r - 1]
            active &= st.upper(cfg.consensus_z) >= tau
    return st


def _tap(pop: Population, cfg: TAPConfig, sequential: bool) -> HeavyHitters:
    method = "taps" if sequential else "tap"
    sizes = pop.party_sizes()
    parties = sorted(sizes, key=lambda p: (-sizes[p], p))
    lengths = cfg.lengths(pop.bits)
    if sequential:  # sequential pruning pays when noise is high (measured on AOL): one party or ε ≤ 2
        splits = cfg.splits or (2 if len(parties) == 1 or pop.epsilon <= 2 else 1)
    else:
        splits = 1
    shares = [s / splits for s in cfg.shares(len(lengths)) for _ in range(splits)]
    several = sequential and len(parties) > 1  # TAPS rules that need several parties
    bayes, consistent = several and cfg.score == "bayes", several and cfg.consistency
    ledger = PrivacyLedger(method, pop.epsilon, sizes, shares)
    gsalt = public_salt(cfg.seed, 0)
    i, cur, frontier, rounds, allowed, kept = 0, 0, None, 0, None, None
    while True:
        if i == 0:
            j, ln, cands = 0, lengths[0], np.arange(1 << lengths[0], dtype=np.int64)
        else:  # adaptive extension: go as deep as the candidate budget allows
            j = i
            while j + 1 < len(lengths) and frontier.size << (lengths[j + 1] - cur) <= cfg.candidate_budget:
                j += 1
            ln = lengths[j]
            cands = children(frontier, ln - cur)
            if allowed is not None:  # a party's evidence for a prefix carries to all its children
                allowed = {p: np.repeat(a, 1 << (ln - cur)) for p, a in allowed.items()}
        cohorts = [[(p, tuple(lv * splits + sp for lv in range(i, j + 1))) for p in parties] for sp in range(splits)]
        salt = public_salt(cfg.seed, 2, i) % (1 << 40)
        final = ln == pop.bits
        r = cfg.k if final else cfg.keep
        parent = None
        if kept is not None:  # each candidate's parent: its prefix's index in the frontier
            group = np.repeat(np.arange(frontier.size), 1 << (ln - cur))
            parent = {p: (*v, group) for p, v in kept.items()}
        st = _ask_level(pop, ledger, cohorts, ln, cands, cfg, salt, shares, gsalt, r, allowed, bayes, parent)
        rounds += 1
        score = st.score(cfg.z_claim, r)
        if final:
            items, e = top(cands, score, cfg.k)
            return HeavyHitters(items, e, method, ledger.to_dict(), rounds=rounds)
        cap = cfg.candidate_budget >> (lengths[j + 1] - ln)  # the frontier must fit the next level
        if sequential:  # consensus frontier: the global best, then every party's own strongest prefixes
            sig = int((score >= cfg.z * np.sqrt(sum(st.var[p] for p in parties))).sum())
            want = min(cfg.keep, max(cfg.kmin, sig), cands.size, cap)
            cons = np.zeros(cands.size, dtype=bool)
            cons[np.argsort(-score, kind="stable")[:want]] = True
            own = {p: np.zeros(cands.size, dtype=bool) for p in parties}
            if len(parties) > 1:
                for p in parties:
                    cnt = st.party_counts(p)[0]
                    if p in st.allowed:
                        cnt = np.where(st.allowed[p], cnt, -np.inf)
                    own[p][np.argsort(-cnt, kind="stable")[:cfg.own]] = True
            sel = cons | np.logical_or.reduce(list(own.values()))
            idx = np.flatnonzero(sel)
            if idx.size > cap:  # consensus first, then the parties' own prefixes by global score
                idx = idx[np.argsort(-np.where(cons[idx], np.inf, score[idx]), kind="stable")[:cap]]
            idx = np.sort(idx)
            keep = cands[idx]
            if cfg.evidence and len(parties) > 1:  # p may later claim only below prefixes it kept or claimed
                allowed = {p: (own[p] | (cons & st.claims(p, cfg.z_claim, r)[2]))[idx] for p in parties}
        else:  # every party extends toward its own candidates: union of per-party top prefixes
            sel = np.zeros(cands.size, dtype=bool)
            for p in parties:
                cnt, sd, claim = st.claims(p, cfg.z, 0)
                sig = int(claim.sum())
                sel[np.argsort(-cnt, kind="stable")[:min(cfg.keep, max(cfg.kmin, sig))]] = True
            keep = np.sort(top(cands[sel], score[sel], cap)[0])
        if consistent:  # each party's estimates of the kept prefixes, for its children's estimates
            kept = {p: (*(a[idx] for a in st.party_counts(p)), st.total[p]) for p in parties}
        frontier = keep
        cur, i = ln, j + 1


def tap(pop: Population, cfg: TAPConfig = TAPConfig()) -> HeavyHitters:
    """TAP: target-aligned prefix tree with adaptive extension (see module docstring)."""
    return _tap(pop, cfg, sequential=False)


def taps(pop: Population, cfg: TAPConfig = TAPConfig()) -> HeavyHitters:
    """TAPS: TAP plus sequential consensus-based pruning (see module docstring)."""
    return _tap(pop, cfg, sequential=True)


def run_method(method: str, pop: Population, k: int = 32, oracle: str = "auto", seed: int | None = None,
               pem_step: int = 6, **tap_kw) -> HeavyHitters:
    """Dispatch by name: ``taps``, ``tap``, ``fedpem`` or ``pem``."""
    if method in ("pem", "fedpem"):
        cfg = PEMConfig(k=k, step=pem_step, oracle=oracle, seed=seed)
        return pem(pop, cfg) if method == "pem" else fedpem(pop, cfg)
    if method in ("tap", "taps"):
        cfg = TAPConfig(k=k, oracle=oracle, seed=seed, **tap_kw)
        return tap(pop, cfg) if method == "tap" else taps(pop, cfg)
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
