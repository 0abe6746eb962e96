"""PEM, federated PEM, TAP and TAPS: correctness, privacy accounting, quality."""
from __future__ import annotations

import numpy as np
import pytest

from ldp.datasets import dirichlet_parties, zipf_items
from ldp.federated import METHODS, TAPConfig, run_method, taps
from ldp.ledger import PrivacyBudgetError, PrivacyLedger
from ldp.metrics import evaluate, f1_score, true_top_k
from ldp.pem import PEMConfig, children, merge_counts
from ldp.rounds import Answer, LocalPopulation, Query, assign_groups


class RecordingPopulation(LocalPopulation):
    """Counts how many times each user is asked to report."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.reports = np.zeros(self.users.size, dtype=np.int64)

    def answer(self, queries, shares, group_salt):
        groups = assign_groups(self.users, shares, group_salt)
        for q in queries:
            self.reports += (self.parties == q.party) & np.isin(groups, q.groups)
        return super().answer(queries, shares, group_salt)


def _population(n=60_000, parties=3, bits=32, eps=4.0, seed=0, cls=LocalPopulation):
    items = zipf_items(n, bits=bits, s=1.3, distinct=5000, seed=seed)
    p = dirichlet_parties(items, parties, alpha=0.5, seed=seed)
    return cls(p, np.arange(n), items, bits, eps, seed=seed), items


@pytest.mark.parametrize("method", METHODS)
def test_every_user_reports_exactly_once(method):
    pop, items = _population(cls=RecordingPopulation)
    hh = run_method(method, pop, k=8, seed=3, candidate_budget=1024) if method in ("tap", "taps") else \
        run_method(method, pop, k=8, seed=3)
    assert np.all(pop.reports == 1)
    led = hh.ledger
    assert led["reports_per_user"] == 1 and led["epsilon_per_user"] == 4.0
    for p, n in pop.party_sizes().items():
        entry = led["parties"][str(p)]
        assert entry["users"] == n == entry["users_reported"]
        assert entry["levels"] >= 1 and set(entry["oracles"]) <= {"grr", "olh", "oue"}
        assert entry["groups_used"] == list(range(len(led["group_shares"])))


@pytest.mark.parametrize("method", METHODS)
def test_finds_clear_heavy_hitters(method):
    pop, items = _population(n=80_000, eps=4.0)
    kw = {"candidate_budget": 1024} if method in ("tap", "taps") else {}
    hh = run_method(method, pop, k=5, seed=1, **kw)
    m = evaluate(hh.items, hh.estimates, items, 5)
    assert m["f1"] >= 0.8, m
    assert hh.items.dtype == np.int64 and len(hh.items) == 5
    assert np.all(np.diff(hh.estimates) <= 0)  # ranked


def test_taps_beats_federated_pem_when_global_heavy_hitters_are_spread():
    """Each party's local top is its own items; the global top-5 are spread evenly over parties.

    Federated PEM sees a global item in few parties' top lists and under-counts it; TAPS estimates
    the same candidates in every party and sums them.
    """
    rng = np.random.default_rng(5)
    parties, items = [], []
    for p in range(5):
        local = [(p + 1) * 10_000_000 + j for j in range(3)]
        vals = np.concatenate([np.repeat(local, 1500), np.repeat(np.arange(5) * 7_777_777 + 1, 500),
                               rng.integers(0, 1 << 32, 5000)])
        items.append(vals)
        parties.append(np.full(vals.size, p))
    items, parties = np.concatenate(items), np.concatenate(parties)
    pop = LocalPopulation(parties, np.arange(items.size), items, 32, 4.0, seed=2)
    truth = true_top_k(items, 5)
    f_taps = np.mean([f1_score(taps(pop, TAPConfig(k=5, candidate_budget=1024, seed=s)).items, truth) for s in range(2)])
    f_fed = np.mean([f1_score(run_method("fedpem", pop, k=5, seed=s).items, truth) for s in range(2)])
    assert f_taps >= 0.9 and f_taps > f_fed + 0.3, (f_taps, f_fed)


def test_48_bit_items_do_not_materialise_the_domain():
    pop, items = _population(n=40_000, bits=48, parties=1)
    hh = run_method("taps", pop, k=4, seed=0, candidate_budget=512)
    assert evaluate(hh.items, hh.estimates, items, 4)["f1"] >= 0.75
    assert all(r["candidates"] <= 512 for r in hh.ledger["parties"]["0"]["rounds"])


def test_ledger_refuses_second_report_and_query_validation():
    led = PrivacyLedger("x", 1.0, {0: 5}, shares=(1.0,))
    q = Query(0, (0,), 2, np.array([0, 3]))
    led.record(q, Answer(np.zeros(2), 5, "grr", 1.0))
    with pytest.raises(PrivacyBudgetError):
        led.check(q)
    with pytest.raises(ValueError, match="fit"):
        Query(0, (0,), 2, np.array([0, 4]))
    with pytest.raises(ValueError, match="sorted"):
        Query(0, (0,), 4, np.array([3, 1]))


def test_group_assignment_is_stable_and_proportional():
    users = np.arange(200_000)
    g1 = assign_groups(users, [0.1, 0.5, 0.4], salt=9)
    np.testing.assert_array_equal(g1, assign_groups(users, [0.1, 0.5, 0.4], salt=9))
    np.testing.assert_allclose(np.bincount(g1) / users.size, [0.1, 0.5, 0.4], atol=0.01)
    with pytest.raises(ValueError):
        assign_groups(users, [0.5, 0.6], salt=1)


def test_helpers():
    np.testing.assert_array_equal(children(np.array([1, 2]), 1), [2, 3, 4, 5])
    u, e = merge_counts([np.array([5, 7]), np.array([7, 9])], [np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    assert u.tolist() == [5, 7, 9] and e.tolist() == [1.0, 5.0, 4.0]
    assert PEMConfig(k=32, step=6).lengths(48) == [11, 17, 23, 29, 35, 41, 47, 48]
    assert TAPConfig(k=32).lengths(48) == [12, 18, 24, 30, 36, 42, 48]
    with pytest.raises(ValueError):
        TAPConfig(final_share=0.0)
    assert TAPConfig(candidate_budget=8192, first_bits=12).lengths(19) == [12, 19]  # BMS's two-level shape
    for bad in (0, 13):
        with pytest.raises(ValueError, match="first_bits"):
            TAPConfig(first_bits=bad)  # 2^13 prefixes do not fit the default budget of 4,096


@pytest.mark.slow
def test_aol_single_party_quality(shared_data):
    from ldp.datasets import load_dataset
    items, bits = load_dataset("aol", shared_data)
    pop = LocalPopulation(np.zeros(items.size, int), np.arange(items.size), items, bits, 4.0, seed=11)
    assert f1_score(taps(pop, TAPConfig(seed=11)).items, true_top_k(items, 32)) >= 0.7


def test_default_final_share_is_at_least_an_equal_share():
    assert TAPConfig().shares(2) == [0.5, 0.5]
    assert TAPConfig().shares(7)[-1] == 0.4 and np.isclose(sum(TAPConfig().shares(7)), 1.0)
    assert TAPConfig(final_share=0.3).shares(2) == [0.7, 0.3]
    assert TAPConfig(first_bits=11).lengths(15) == [11, 15]


def test_evidence_mask_limits_claims():
    """TAPS: a party claims only candidates below prefixes it kept or claimed one level up."""
    from ldp.federated import _LevelState

    st = _LevelState([0], 4, allowed={0: np.array([False, True, True, False])})
    st.add(0, np.ones(4, dtype=bool), Answer(np.array([900.0, 50.0, 400.0, 800.0]), 1000, "olh", 100.0 ** 2))
    _, _, claim = st.claims(0, z=1.0, r=1)
    assert claim.tolist() == [False, False, True, False]  # 900 and 800 are outside the evidence
    np.testing.assert_allclose(st.score(1.0, 1), [0.0, 0.0, 400.0, 0.0])
    free = _LevelState([0], 4)
    free.add(0, np.ones(4, dtype=bool), Answer(np.array([900.0, 50.0, 400.0, 800.0]), 1000, "olh", 100.0 ** 2))
    assert free.claims(0, z=1.0, r=1)[2].tolist() == [True, False, True, True]


def test_bayes_score_sums_posterior_means_where_a_party_may_claim():
    """TAPS, several parties: the global score is Σ_p E[f_p | f̂_p] over the candidates p may claim."""
    from ldp.federated import _LevelState
    from ldp.shrinkage import posterior_mean

    rng = np.random.default_rng(3)
    true = {p: np.where(rng.random(400) < 0.05, 900.0, 0.0) for p in (0, 1)}
    est = {p: true[p] + rng.normal(0, 100, 400) for p in (0, 1)}
    ok = {0: np.arange(400) < 300, 1: np.arange(400) >= 100}
    st = _LevelState([0, 1], 400, allowed=ok, bayes=True)
    for p in (0, 1):
        st.add(p, np.ones(400, dtype=bool), Answer(est[p], 1000, "olh", 100.0 ** 2))
    want = np.zeros(400)
    for p in (0, 1):
        want[ok[p]] += posterior_mean(est[p][ok[p]], np.full(ok[p].sum(), 100.0))
    score = st.score(1.0, 5)
    np.testing.assert_allclose(score, want)
    only0 = np.arange(100)  # only party 0 may claim these: its 900s stay large, its zeros stay small
    assert score.min() >= 0 and np.all(score[only0][true[0][only0] > 0] > 600)
    assert np.median(score[only0][true[0][only0] == 0]) < 50


def test_several_party_rules_leave_one_party_runs_alone():
    """Posterior-mean scores and consistent estimates apply with several parties only."""
    with pytest.raises(ValueError, match="score"):
        TAPConfig(score="max")
    items = zipf_items(40_000, bits=24, s=1.3, distinct=3000, seed=6)
    hh = {}
    for name, kw in {"default": {}, "claims": {"score": "claims"}, "raw": {"consistency": False}}.items():
        one = LocalPopulation(np.zeros(items.size, int), np.arange(items.size), items, 24, 2.0, seed=6)
        hh[name] = taps(one, TAPConfig(k=8, candidate_budget=1024, seed=6, **kw))  # same perturbation draws
    for name in ("claims", "raw"):  # one party: nothing to sum, so the runs are identical
        np.testing.assert_array_equal(hh["default"].items, hh[name].items)
        np.testing.assert_array_equal(hh["default"].estimates, hh[name].estimates)


def test_consistent_estimates_use_the_parent_prefix():
    """Children's estimates made to agree with their parent's (constrained least squares, Hay et al. 2010)."""
    from ldp.federated import _LevelState

    rng = np.random.default_rng(5)
    groups, fan, sd = 2000, 8, 100.0
    g = np.repeat(np.arange(groups), fan)
    f = np.where(rng.random(groups * fan) < 0.1, 600.0, 0.0)
    child = f + rng.normal(0, sd, f.size)
    parent = np.bincount(g, weights=f) + rng.normal(0, sd, groups)
    raw = _LevelState([0], f.size)
    raw.add(0, np.ones(f.size, dtype=bool), Answer(child, 1000, "olh", sd ** 2))
    st = _LevelState([0], f.size, parent={0: (parent, np.full(groups, sd), 1000, g)})
    st.add(0, np.ones(f.size, dtype=bool), Answer(child, 1000, "olh", sd ** 2))
    cnt, s = st.party_counts(0)
    np.testing.assert_allclose(raw.party_counts(0)[0], child)
    np.testing.assert_allclose(s, sd * np.sqrt(1 - 1 / (fan + 1)))  # variance s² − s⁴/(s_P² + Σ s²)
    ratio = ((cnt - f) ** 2).mean() / ((child - f) ** 2).mean()
    assert 0.85 < ratio < 0.93, ratio  # theory: 8/9
    # an exact parent, counted on half as many users: the children sum to twice its count
    exact = _LevelState([0], f.size, parent={0: (parent / 2, np.full(groups, 1e-6), 500, g)})
    exact.add(0, np.ones(f.size, dtype=bool), Answer(child, 1000, "olh", sd ** 2))
    np.testing.assert_allclose(np.bincount(g, weights=exact.party_counts(0)[0]), parent, rtol=1e-9)
    # a party none of whose users answered the parent level, or this one: estimates left as they are
    for n_parent, n_here, var in ((0, 1000, sd ** 2), (1000, 0, 0.0)):
        none = _LevelState([0], f.size, parent={0: (np.zeros(groups), np.zeros(groups), n_parent, g)})
        none.add(0, np.ones(f.size, dtype=bool), Answer(child * (n_here > 0), n_here, "olh", var))
        np.testing.assert_array_equal(none.party_counts(0)[0], child * (n_here > 0))


def test_taps_finds_items_heavy_in_one_small_party():
    """Non-IID: each small party holds its own heavy item; TAPS's evidence-restricted claims keep them."""
    rng = np.random.default_rng(7)
    sizes, items, parties = [30_000, 8_000, 6_000], [], []
    for p, n in enumerate(sizes):
        own = np.full(n // 10, (p + 1) * 1_000_003)
        vals = np.concatenate([own, np.full(n // 20, 424242), rng.integers(0, 1 << 24, n - n // 10 - n // 20)])
        items.append(vals)
        parties.append(np.full(vals.size, p))
    items, parties = np.concatenate(items), np.concatenate(parties)
    pop = LocalPopulation(parties, np.arange(items.size), items, 24, 4.0, seed=4)
    truth = true_top_k(items, 4)
    hh = taps(pop, TAPConfig(k=4, candidate_budget=1024, seed=4))
    assert f1_score(hh.items, truth) == 1.0, (hh.items, truth)
