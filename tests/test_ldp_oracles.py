"""Privacy and accuracy of the frequency oracles (GRR, OLH, OUE)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ldp.oracles import GRR, OLH, OUE, choose_oracle, make_oracle
from ldp.randomness import batch_rng

EPS = [0.5, 1.0, 4.0]


def _all_reports(o):
    """Every possible report of a small oracle."""
    if isinstance(o, GRR):
        return np.arange(o.d)
    if isinstance(o, OLH):
        return np.arange(o.pool_size * o.g)
    bits = np.array(list(itertools.product([0, 1], repeat=o.d)), dtype=bool)
    return np.packbits(bits, axis=1)


def _small(name, eps):
    cands = np.array([3, 10, 11, 40])
    return OLH(eps, cands, salt=5, pool_size=8) if name == "olh" else make_oracle(name, eps, cands)


@pytest.mark.parametrize("name", ["grr", "olh", "oue"])
@pytest.mark.parametrize("eps", EPS)
def test_exact_privacy_ratio(name, eps):
    """max over reports and value pairs of P[r|v]/P[r|v'] ≤ e^ε, and each P[.|v] sums to 1."""
    o = _small(name, eps)
    reports = _all_reports(o)
    domain = [3, 10, 11, 40, 99, 2**47 + 1]  # candidates plus two values outside them (⊥ / hashed)
    logp = np.stack([o.report_log_prob(v, reports) for v in domain])
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-9)
    worst = (logp.max(axis=0) - logp.min(axis=0)).max()
    assert worst <= eps + 1e-9
    assert worst >= eps - 1e-9  # the bound is tight: the oracle uses its whole budget


@pytest.mark.parametrize("name", ["grr", "olh", "oue"])
def test_perturb_follows_the_exact_distribution(name):
    """Empirical report frequencies of perturb() match report_log_prob (chi-square, fixed seed)."""
    o = _small(name, 1.0)
    n = 60_000
    for v in (10, 99):
        reps = o.perturb(np.full(n, v), batch_rng(123, v))
        if reps.ndim == 2:  # OUE: compare per-bit marginals
            bits = np.unpackbits(reps, axis=1, count=o.d).mean(axis=0)
            want = np.full(o.d, o.q)
            want[o._index(np.array([v]))[0]] = 0.5
            assert np.all(np.abs(bits - want) < 5 * np.sqrt(want * (1 - want) / n))
            continue
        obs = np.bincount(reps, minlength=len(_all_reports(o)))
        exp = np.exp(o.report_log_prob(v, _all_reports(o))) * n
        chi2 = ((obs - exp) ** 2 / exp).sum()
        dof = exp.size - 1
        assert chi2 < dof + 5 * math.sqrt(2 * dof)


@pytest.mark.parametrize("name", ["grr", "olh", "oue"])
def test_estimates_unbiased_within_variance(name):
    """Mean of R independent estimates is within 4 standard errors of the truth (variance formula)."""
    cands = np.arange(0, 40, 2)  # even values are candidates; odd ones are outside
    counts = np.array([3000, 1500, 800] + [100] * 17)
    values = np.concatenate([np.repeat(cands, counts), np.full(2000, 7)])
    R = 30
    ests = []
    for r in range(R):
        o = make_oracle(name, 2.0, cands, salt=r)
        ests.append(o.estimate(o.perturb(values, batch_rng(7, r))))
    ests = np.array(ests)
    se = np.sqrt(o.variance(values.size, counts) / R)
    assert np.all(np.abs(ests.mean(axis=0) - counts) < 4 * se + 1e-9)
    # the variance formula itself is right to within sampling error
    emp = ests.var(axis=0, ddof=1).mean()
    assert 0.5 < emp / o.variance(values.size, counts).mean() < 1.6


def test_olh_48_bit_values_never_materialise_the_domain():
    rng = batch_rng(1)
    vals = np.concatenate([np.full(5000, 2**47 + 12345), rng.integers(0, 2**48, 20000)])
    o = OLH(4.0, np.array([2**47 + 12345, 2**48 - 1]), salt=9)
    est = o.estimate(o.perturb(vals, rng))
    sd = math.sqrt(o.variance(vals.size))
    assert abs(est[0] - 5000) < 5 * sd and abs(est[1]) < 5 * sd


def test_support_is_additive_over_batches():
    o = OLH(2.0, np.arange(50), salt=3, pool_size=64)
    reps = o.perturb(np.arange(10000) % 70, batch_rng(2))
    np.testing.assert_array_equal(o.support(reps), o.support(reps[:3000]) + o.support(reps[3000:]))


def test_choose_oracle_and_validation():
    assert choose_oracle(4.0, 100) == "grr" and choose_oracle(4.0, 1000) == "olh"
    assert choose_oracle(1.0, 8) == "grr" and choose_oracle(1.0, 12) == "olh"
    with pytest.raises(ValueError, match="sorted"):
        GRR(1.0, np.array([3, 1]))
    with pytest.raises(ValueError, match="epsilon"):
        OUE(0.0, np.array([1]))
    with pytest.raises(ValueError, match="unknown oracle"):
        make_oracle("rappor", 1.0, np.array([1]))


def test_unseeded_perturbation_uses_fresh_csprng_randomness():
    o = GRR(0.1, np.arange(100))
    a = o.perturb(np.zeros(1000, int), batch_rng(None))
    b = o.perturb(np.zeros(1000, int), batch_rng(None))
    assert not np.array_equal(a, b)


def test_shared_gather_equals_per_tally_support_and_pool_is_adaptive():
    """OLH aggregates several parties' tallies in one pass; the default pool is sized per round."""
    from ldp.oracles import MIN_POOL, POOL_CELLS, TALLY_CELLS, adaptive_pool

    o = OLH(2.0, np.arange(0, 300, 3), salt=4)
    assert o.pool_size == adaptive_pool(o.m, o.g) == min(POOL_CELLS // o.m, TALLY_CELLS // o.g)
    assert adaptive_pool(1 << 20, o.g) == MIN_POOL
    tallies = [o.tally(o.perturb(np.arange(5000) % (50 + 40 * i), batch_rng(5, i))) for i in range(3)]
    stacked = o.supports_from_tallies(tallies)
    np.testing.assert_array_equal(stacked, np.stack([o.support_from_tally(t) for t in tallies]))
    small = OLH(2.0, np.arange(0, 300, 3), salt=4, pool_size=16)
    reps = small.perturb(np.arange(5000) % 90, batch_rng(6))
    naive = np.array([(small._bucket(np.full(reps.size, c), reps // small.g) == reps % small.g).sum()
                      for c in small.candidates])
    np.testing.assert_array_equal(small.support(reps), naive)
