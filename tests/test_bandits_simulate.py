"""Replay simulator: split loading, candidate filtering, learning on planted data, Open Bandit smoke."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from recsys.bandits.random_policy import RandomPolicy
from recsys.bandits.simulate import (SimConfig, _candidates, load_lightgcn_split, make_policies, open_bandit_replay,
                                     plot_curves, replay, svd_vectors)
from recsys.candidates import CandidateConfig, build_params
from tests.conftest import data_file


def _planted(tmp_path, groups=4, per=40, items_per=15, seed=0):
    """Users in groups; each group's train and test items come from its own item block."""
    rng = np.random.default_rng(seed)
    lines_tr, lines_te = [], []
    for u in range(groups * per):
        g = u // per
        block = np.arange(g * items_per, (g + 1) * items_per)
        pop = 0.7 ** np.arange(items_per)
        pick = rng.choice(block, 8, replace=False, p=pop / pop.sum())  # skewed popularity inside the group
        tr, hot = pick[:5], pick[5:]
        lines_tr.append(" ".join(map(str, [u, *tr])))
        lines_te.append(" ".join(map(str, [u, *hot])))
    with gzip.open(tmp_path / "train.txt.gz", "wt") as f:
        f.write("\n".join(lines_tr) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(lines_te) + "\n")
    return load_lightgcn_split(tmp_path)


def test_load_split_and_candidates(tmp_path):
    split = _planted(tmp_path)
    assert split.train.shape == (160, 60) and split.train.nnz == 160 * 5
    assert split.test_keys.size == 160 * 3 and split.test_users.size == 160
    u, v = svd_vectors(split.train, dim=8)
    p, _ = build_params(np.arange(160), u, np.arange(60), v, CandidateConfig(n_clusters=4, k=3, w=20))
    users = np.arange(0, 160, 7)
    cl, _ = p.context(users)
    cand = _candidates(p, split, users, cl)
    for row, usr, c in zip(cand, users, cl):
        items = row[row >= 0]
        assert len(set(items.tolist())) == items.size
        expected = set(p.candidates(c).tolist()) - set(split.train[usr].indices.tolist())
        assert set(items.tolist()) == expected


def test_replay_learns_planted_preferences(tmp_path):
    split = _planted(tmp_path)
    u, v = svd_vectors(split.train, dim=8)
    p, _ = build_params(np.arange(160), u, np.arange(60), v, CandidateConfig(n_clusters=4, k=3, w=20))
    cfg = SimConfig(steps=40, batch=20, slate=3, alpha=0.3)
    res = replay(p, split, make_policies(p, cfg), cfg)
    tot = res.totals
    for name, curve in res.curves.items():
        assert (np.diff(curve) >= 0).all(), name
    assert tot["diag_linucb"] > 1.5 * tot["random"]
    assert tot["linucb"] > 1.5 * tot["random"]
    assert res.memory_bytes["linucb"] > res.memory_bytes["diag_linucb"] > 0
    # the user sequence does not depend on the other policies in the run
    alone = replay(p, split, {"random": RandomPolicy(seed=cfg.seed + 2)}, cfg)
    np.testing.assert_array_equal(alone.curves["random"], res.curves["random"])
    png = plot_curves(res, tmp_path / "curves.png")
    assert png.stat().st_size > 1000


def test_open_bandit_smoke(shared_data):
    log = data_file(shared_data, "open_bandit_sample", "random_all.csv.gz")
    out = open_bandit_replay(log, n_clusters=6, k=3)
    assert set(out) == {"diag_linucb", "linucb", "egreedy", "random"}
    for name, r in out.items():
        # a uniformly random log over 80 items matches ~1/80 of 10,000 rounds
        assert 60 <= r["matched"] <= 250, (name, r)
        assert 0 <= r["clicks"] <= r["matched"]


def test_sim_config_validation():
    with pytest.raises(ValueError):
        SimConfig(steps=0)
    with pytest.raises(ValueError):
        SimConfig(epsilon=2.0)
