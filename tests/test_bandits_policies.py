"""BanditPolicy contract suite over every policy, and the formulas against direct implementations."""
from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.bandits.diag_linucb import DiagLinUCB, EdgeDelta, aggregate_events, merge_deltas
from recsys.bandits.edge_index import edge_keys
from recsys.bandits.egreedy import EpsilonGreedy
from recsys.bandits.linucb import LinUCB
from recsys.bandits.random_policy import RandomPolicy

C, ITEMS, K = 6, 12, 3


def _graph():
    """Every cluster linked to every item (dense graph) so all policies see the same support."""
    cl, it = np.meshgrid(np.arange(C), np.arange(ITEMS) + 100, indexing="ij")
    return cl.ravel(), it.ravel()


FACTORIES = {
    "diag_linucb": lambda: DiagLinUCB.from_edges(*_graph(), lam=1.0, alpha=0.5),
    "linucb": lambda: LinUCB(np.arange(ITEMS) + 100, n_clusters=C, lam=1.0, alpha=0.5),
    "egreedy": lambda: EpsilonGreedy.from_edges(*_graph(), lam=1.0, epsilon=0.0, seed=0),
    "random": lambda: RandomPolicy(seed=0),
}


def _contexts(rng, n):
    cl = np.stack([rng.choice(C, K, replace=False) for _ in range(n)])
    w = rng.random((n, K)) + 0.05
    return cl, w / w.sum(axis=1, keepdims=True)


@pytest.fixture(params=sorted(FACTORIES))
def policy(request):
    return FACTORIES[request.param]()


def test_contract_shapes_and_padding(policy):
    rng = np.random.default_rng(0)
    cl, w = _contexts(rng, 4)
    cl[0, 2], w[0, 2] = -1, 0.0
    items = np.array([100, 101, 102, -1, 103])
    s = policy.score(cl, w, items)
    assert s.score.shape == s.mean.shape == s.bonus.shape == (4, 5)
    assert np.isneginf(s.score[:, 3]).all() and np.isfinite(s.score[:, [0, 1, 2, 4]]).all()
    sel = policy.select(cl, w, items, k=3, rng=rng)
    assert sel.shape == (4, 3) and not (items[sel] < 0).any()
    assert len(set(sel[0].tolist())) == 3
    # per-row candidates
    per_row = np.tile(items, (4, 1))
    per_row[1, 0] = -1
    assert np.isneginf(policy.score(cl, w, per_row).score[1, 0])
    assert isinstance(policy.memory_bytes(), int) and policy.memory_bytes() >= 0


def test_contract_update_validates(policy):
    cl, w = _contexts(np.random.default_rng(1), 2)
    with pytest.raises(ValueError):
        policy.update(cl, w, np.array([100, 101]), np.array([1.0, math.nan]))
    with pytest.raises(ValueError):
        policy.update(cl, w, np.array([100]), np.array([1.0]))
    assert isinstance(policy.update(cl, w, np.array([100, 101]), np.array([1.0, 0.0])), int)


def test_contract_learns_best_item(policy):
    if policy.name == "random":
        pytest.skip("random does not learn")
    rng = np.random.default_rng(2)
    items = np.arange(ITEMS) + 100
    for _ in range(30):
        cl, w = _contexts(rng, 50)
        sel = policy.select(cl, w, items, k=2, rng=rng)
        shown = items[sel]
        reward = (shown == 105).astype(float) * 1.0 + (shown == 107) * 0.2
        ctx_c = np.repeat(cl, 2, axis=0)
        ctx_w = np.repeat(w, 2, axis=0)
        policy.update(ctx_c, ctx_w, shown.ravel(), reward.ravel())
    cl, w = _contexts(rng, 20)
    top = items[policy.select(cl, w, items, k=1, rng=rng)[:, 0]]
    assert (top == 105).mean() >= 0.9


def _direct_diag(events, lam, alpha, ctx, items):
    """Dict-of-edges reference implementation of Diag-LinUCB."""
    d, b = {}, {}
    for cl, w, j, r in events:
        for c, wc in zip(cl, w):
            if c < 0:
                continue
            d[(c, j)] = d.get((c, j), lam) + wc * wc
            b[(c, j)] = b.get((c, j), 0.0) + wc * r
    out = []
    for cl, w in zip(*ctx):
        row = []
        for j in items:
            mean = sum(wc * b.get((c, j), 0.0) / d.get((c, j), lam) for c, wc in zip(cl, w) if c >= 0)
            var = sum(wc * wc / d.get((c, j), lam) for c, wc in zip(cl, w) if c >= 0)
            row.append(mean + alpha * math.sqrt(var))
        out.append(row)
    return d, b, np.array(out)


def test_diag_linucb_matches_direct_formula():
    rng = np.random.default_rng(3)
    pol = DiagLinUCB.from_edges(*_graph(), lam=0.7, alpha=0.9)
    cl, w = _contexts(rng, 200)
    items = rng.integers(100, 100 + ITEMS, 200)
    r = rng.normal(size=200)
    pol.update(cl, w, items, r)
    events = list(zip(cl.tolist(), w.tolist(), items.tolist(), r.tolist()))
    qc, qw = _contexts(rng, 5)
    cand = np.arange(ITEMS) + 100
    d, b, ref = _direct_diag(events, 0.7, 0.9, (qc.tolist(), qw.tolist()), cand.tolist())
    np.testing.assert_allclose(pol.score(qc, qw, cand).score, ref, rtol=1e-12)
    for (c, j), v in d.items():
        i = np.searchsorted(pol.keys, edge_keys(np.array([c]), np.array([j])))[0]
        assert pol.d[i] == pytest.approx(v, rel=1e-12) and pol.b[i] == pytest.approx(b[(c, j)], rel=1e-12, abs=1e-12)


def test_diag_prior_mode_on_sparse_graph_matches_direct():
    rng = np.random.default_rng(7)
    cl_all, it_all = _graph()
    keep = rng.random(cl_all.size) < 0.4  # a sparse candidate graph
    pol = DiagLinUCB.from_edges(cl_all[keep], it_all[keep], lam=0.5, alpha=0.7, off_graph="prior")
    cl, w = _contexts(rng, 150)
    items = rng.integers(100, 100 + ITEMS, 150)
    r = rng.random(150)
    n_before = pol.keys.size
    pol.update(cl, w, items, r)
    assert pol.keys.size > n_before  # events on pairs off the graph created edges
    qc, qw = _contexts(rng, 4)
    cand = np.arange(ITEMS) + 100
    _, _, ref = _direct_diag(list(zip(cl.tolist(), w.tolist(), items.tolist(), r.tolist())), 0.5, 0.7,
                             (qc.tolist(), qw.tolist()), cand.tolist())
    np.testing.assert_allclose(pol.score(qc, qw, cand).score, ref, rtol=1e-12)


def test_diag_skip_mode_ignores_off_graph_pairs_and_adds_fresh_edges():
    pol = DiagLinUCB.from_edges([0, 1], [5, 5], lam=1.0, alpha=1.0, off_graph="skip")
    applied = pol.update(np.array([[0, 2]]), np.array([[0.5, 0.5]]), np.array([5]), np.array([1.0]))
    assert applied == 1  # (2, 5) is not an edge
    s = pol.score(np.array([[2, -1]]), np.array([[1.0, 0.0]]), np.array([5, 9]))
    assert s.mean[0, 0] == 0.0 and s.bonus[0, 0] == 0.0  # no edge: no contribution
    assert pol.add_edges([2, 0], [9, 5]) == 1  # (0, 5) already exists and keeps its statistics
    s = pol.score(np.array([[2, 0]]), np.array([[1.0, 0.0]]), np.array([9]))
    assert s.bonus[0, 0] == pytest.approx(1.0)  # fresh edge: d = λ
    i = np.searchsorted(pol.keys, edge_keys(np.array([0]), np.array([5])))[0]
    assert pol.d[i] == pytest.approx(1.25) and pol.b[i] == pytest.approx(0.5)


def test_diag_one_hot_equals_disjoint_linucb():
    rng = np.random.default_rng(4)
    diag = DiagLinUCB.from_edges(*_graph(), lam=1.0, alpha=0.8)
    lin = LinUCB(np.arange(ITEMS) + 100, n_clusters=C, lam=1.0, alpha=0.8)
    cl = rng.integers(0, C, (300, 1))
    w = np.ones((300, 1)) * 0.7
    it = rng.integers(100, 100 + ITEMS, 300)
    r = rng.random(300)
    diag.update(cl, w, it, r)
    lin.update(cl, w, it, r)
    q = rng.integers(0, C, (7, 1))
    a, b = diag.score(q, np.ones((7, 1)), np.arange(ITEMS) + 100), lin.score(q, np.ones((7, 1)), np.arange(ITEMS) + 100)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-10)
    np.testing.assert_allclose(a.bonus, b.bonus, rtol=1e-10)


def test_linucb_matches_direct_solve():
    rng = np.random.default_rng(5)
    lin = LinUCB(np.arange(ITEMS) + 100, n_clusters=C, lam=0.5, alpha=1.3)
    cl, w = _contexts(rng, 400)
    it = rng.integers(100, 100 + ITEMS, 400)
    r = rng.normal(size=400)
    for s in range(0, 400, 37):  # several batches
        lin.update(cl[s:s + 37], w[s:s + 37], it[s:s + 37], r[s:s + 37])
    X = np.zeros((400, C))
    np.put_along_axis(X, cl, w, axis=1)
    qc, qw = _contexts(rng, 3)
    xq = np.zeros((3, C))
    np.put_along_axis(xq, qc, qw, axis=1)
    got = lin.score(qc, qw, np.arange(ITEMS) + 100)
    for j in range(ITEMS):
        m = it == 100 + j
        A = 0.5 * np.eye(C) + X[m].T @ X[m]
        theta = np.linalg.solve(A, X[m].T @ r[m])
        np.testing.assert_allclose(got.mean[:, j], xq @ theta, rtol=1e-9, atol=1e-12)
        var = np.einsum("ni,ni->n", xq, np.linalg.solve(A, xq.T).T)
        np.testing.assert_allclose(got.bonus[:, j], 1.3 * np.sqrt(var), rtol=1e-9)


def test_partial_sums_merge_in_any_order():
    rng = np.random.default_rng(6)
    cl, w = _contexts(rng, 1000)
    it = rng.integers(100, 100 + ITEMS, 1000)
    r = (rng.random(1000) < 0.3).astype(float)
    single = DiagLinUCB.from_edges(*_graph(), lam=1.0, alpha=1.0)
    single.update(cl, w, it, r)
    cuts = np.sort(rng.choice(np.arange(1, 1000), 6, replace=False))
    parts = [aggregate_events(c, ww, i, rr) for c, ww, i, rr in
             zip(np.split(cl, cuts), np.split(w, cuts), np.split(it, cuts), np.split(r, cuts))]
    for trial in range(3):
        order = rng.permutation(len(parts))
        # (a) tree merge in a random order, then one apply
        merged = merge_deltas([merge_deltas([parts[i] for i in order[:3]]), merge_deltas([parts[i] for i in order[3:]])])
        a = DiagLinUCB.from_edges(*_graph(), lam=1.0, alpha=1.0)
        a.apply(merged)
        # (b) apply partial sums one by one in a random order
        b = DiagLinUCB.from_edges(*_graph(), lam=1.0, alpha=1.0)
        for i in order:
            b.apply(parts[i])
        for pol in (a, b):
            np.testing.assert_allclose(pol.d, single.d, rtol=1e-12)
            np.testing.assert_allclose(pol.b, single.b, rtol=1e-12, atol=1e-12)
    assert merge_deltas([]).keys.size == 0 and isinstance(EdgeDelta.empty(), EdgeDelta)
