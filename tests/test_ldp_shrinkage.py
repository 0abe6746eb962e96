"""Empirical-Bayes shrinkage of count estimates (ldp.shrinkage)."""
from __future__ import annotations

import numpy as np

from ldp.shrinkage import posterior_mean


def _sparse(n=3000, seed=0, sd=100.0):
    rng = np.random.default_rng(seed)
    f = np.where(rng.random(n) < 0.03, rng.choice([300.0, 800.0, 2000.0], n), 0.0)
    return f, f + rng.normal(0, sd, n)


def test_posterior_mean_beats_raw_estimates_on_sparse_counts():
    f, x = _sparse()
    post = posterior_mean(x, np.full(x.size, 100.0))
    assert ((post - f) ** 2).mean() < ((x - f) ** 2).mean() / 4
    assert post.min() >= 0  # the prior lives on f >= 0
    big = f == 2000.0  # 20 sd above the noise: not pulled toward 0, but toward the other 2000s
    assert np.all(np.abs(post[big] / x[big] - 1) < 0.15)
    assert np.abs(post[big] - f[big]).mean() < np.abs(x[big] - f[big]).mean()


def test_posterior_mean_is_monotone_with_equal_noise_and_empty_is_empty():
    f, x = _sparse(seed=1)
    post = posterior_mean(x, np.full(x.size, 100.0))
    order = np.argsort(x)
    assert np.all(np.diff(post[order]) >= -1e-9)  # equal noise: a monotone map, ranking kept
    assert posterior_mean(np.array([]), np.array([])).size == 0


def test_noisier_estimates_are_shrunk_more():
    f, x = _sparse(seed=2)
    sd = np.full(x.size, 100.0)
    sd[::2] = 300.0
    post = posterior_mean(np.append(x, [400.0, 400.0]), np.append(sd, [100.0, 300.0]))
    assert post[-2] > post[-1]  # same estimate, the noisier one is trusted less


def test_prior_fitted_on_a_subsample_gives_nearly_the_same_posterior():
    rng = np.random.default_rng(2)
    f = np.where(rng.random(40_000) < 0.03, rng.choice([300.0, 900.0], 40_000), 0.0)
    x = f + rng.normal(0, 100, f.size)
    full = posterior_mean(x, np.full(x.size, 100.0))
    sub = posterior_mean(x, np.full(x.size, 100.0), fit_size=4000)
    assert not np.array_equal(full, sub)  # a different fit ...
    assert np.abs(full - sub).mean() < 5  # ... as good: close on average, the same error
    assert ((sub - f) ** 2).mean() < 1.05 * ((full - f) ** 2).mean() < ((x - f) ** 2).mean() / 10
    np.testing.assert_array_equal(posterior_mean(x[:100], np.full(100, 100.0), fit_size=4000),
                                  posterior_mean(x[:100], np.full(100, 100.0)))  # small inputs: the full fit
