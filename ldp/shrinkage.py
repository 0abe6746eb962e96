"""Empirical-Bayes shrinkage of count estimates (nonparametric maximum likelihood prior).

Each estimate is ``x_c = f_c + e_c`` with ``e_c ~ N(0, σ_c²)`` and true counts ``f_c ≥ 0`` drawn
from an unknown prior ``G``. ``G`` is fitted on a grid by EM (Kiefer & Wolfowitz's NPMLE, as in
Jiang & Zhang 2009, "General maximum likelihood empirical Bayes estimation of normal means"; Koenker
& Mizera 2014), and each estimate is replaced by its posterior mean

    E[f_c | x_c] = Σ_j g_j φ((x_c − t_j)/σ_c) t_j / Σ_j g_j φ((x_c − t_j)/σ_c),

where ``t_j`` are the grid points and ``g_j`` the fitted weights. With sparse counts (most
candidates near 0, a few large) this pulls noise toward 0 and moves strong estimates little (toward
the prior's mass near them), without a hand-set threshold.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> f = np.where(rng.random(2000) < 0.05, 500.0, 0.0)
>>> x = f + rng.normal(0, 100, f.size)
>>> post = posterior_mean(x, np.full(f.size, 100.0))
>>> bool(((post - f) ** 2).mean() < ((x - f) ** 2).mean() / 4)
True
"""
from __future__ import annotations

import numpy as np


def posterior_mean(x: np.ndarray, sd: np.ndarray, grid_points: int = 80, iters: int = 200,
                   fit_size: int | None = None) -> np.ndarray:
    """Posterior means ``E[f | x]`` under the NPMLE prior on ``f ≥ 0`` (grid: 0 and log-spaced up to max x).

    ``fit_size``: fit the prior on at most that many estimates (evenly spaced), then apply it to all;
    a floor of 10⁻⁶ on its weights keeps estimates outside the sample's range defined.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    sd = np.maximum(np.asarray(sd, dtype=np.float64), 1e-9)
    hi = max(float(x.max()), 2.0 * float(sd.min()))
    grid = np.concatenate([[0.0], np.geomspace(sd.min() / 8, hi, grid_points)])
    loglik = -0.5 * ((x[:, None] - grid[None, :]) / sd[:, None]) ** 2
    lik = np.exp(loglik - loglik.max(axis=1, keepdims=True))  # rows scaled: the posterior is unchanged
    fit = lik if fit_size is None or x.size <= fit_size else lik[:: -(-x.size // fit_size)]
    w = np.full(grid.size, 1.0 / grid.size)
    for _ in range(iters):  # EM on the mixing weights: w_j ← w_j · mean_c lik_cj / Σ_i lik_ci w_i
        w = w * (fit.T @ (1.0 / (fit @ w))) / fit.shape[0]
    if fit is not lik:
        w = np.maximum(w, 1e-6)
    return (lik @ (w * grid)) / (lik @ w)
