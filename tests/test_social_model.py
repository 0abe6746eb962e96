"""The social designs inside the recommender: friend edges in LightGCN's layers (SocialLGN-style)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
import torch

from recsys import train as train_cli
from recsys.data import Interactions
from recsys.lightgcn import LightGCN
from recsys.social import SocialConfig, SocialGraph, SocialLightGCN, align, cold_user_vectors, social_adjacency
from recsys.trainer import TrainConfig, build_model
from tests.test_recsys_validation import _ingest, _planted, _social_dirs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _small():
    data = Interactions.from_pairs(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
    graph = SocialGraph(np.array([0, 1, 2, 9]), np.array([[0, 1], [9, 0], [9, 2]]), directed=False)
    return align(data, graph, None)


def test_social_adjacency_is_symmetric_normalised():
    _, s = _small()
    a = social_adjacency(s.friends).toarray()
    np.testing.assert_allclose(a, a.T)
    # user 0 (orig 0) has friends 1 and 9 (deg 2); user 9 (row 3) has friends 0 and 2 (deg 2)
    assert a[0, 3] == pytest.approx(1 / 2) and a[0, 1] == pytest.approx(1 / np.sqrt(2))
    assert np.count_nonzero(a) == 6


def test_layers_weight_zero_is_plain_lightgcn_and_cold_users_get_vectors():
    data, s = _small()
    plain = LightGCN(data.train, dim=4, layers=2, seed=3)
    zero = SocialLightGCN(data.train, s, 0.0, dim=4, layers=2, seed=3)
    for a, b in zip(plain.propagate(), zero.propagate()):
        torch.testing.assert_close(a, b)
    cold = torch.tensor([3])  # orig 9: friends, no interactions
    m = SocialLightGCN(data.train, s, 0.5, dim=4, layers=1, seed=3, zero_users=cold)
    u, _ = m.propagate()
    ego = m.user.detach().numpy()
    assert not ego[3].any()
    # one layer, no items: u = (0 + γ · (Ŝ E_U^{(0)})_u) / 2, its friends' ego vectors, normalised
    expect = 0.5 * (social_adjacency(s.friends)[3] @ ego) / 2
    np.testing.assert_allclose(u[3].detach().numpy(), np.asarray(expect).ravel(), rtol=1e-5)
    m.loss(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 2]), reg=1e-4).backward()
    assert m.user.grad is not None and float(m.user.grad[3].abs().sum()) > 0  # friends' loss reaches it


def test_build_model_picks_the_design():
    data, s = _small()
    cfg = TrainConfig(model="lightgcn", dim=4, layers=1)
    assert type(build_model(cfg, data, s, SocialConfig(map=False, mode="layers"))) is SocialLightGCN
    assert type(build_model(cfg, data, s, SocialConfig(map=False))) is LightGCN
    with pytest.raises(ValueError, match="LightGCN"):
        build_model(TrainConfig(model="mf", dim=4), data, s, SocialConfig(mode="layers"))
    with pytest.raises(ValueError):
        SocialConfig(mode="both")


def test_cli_social_mode_layers(tmp_path):
    users, items = _planted()
    ing = _ingest(tmp_path, users, items)
    g, e = _social_dirs(tmp_path, 120)
    out = tmp_path / "out"
    assert train_cli.main(["--data", str(ing), "--output", str(out), "--epochs", "2", "--dim", "8",
                           "--batch-size", "128", "--no-progress", "--model", "lightgcn", "--eval-every", "2",
                           "--social-graph", str(g), "--social-vectors", str(e), "--social-mode", "layers"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["social"]["mode"] == "layers" and m["recall@20"] is not None
    t = pq.read_table(out / "user_vectors").to_pandas()
    cold = np.stack(t.loc[t.id.isin([9000, 9001]), "vector"].to_numpy())
    assert (np.linalg.norm(cold, axis=1) > 0).all()  # social-only users scored through their friends
    assert set(t.loc[t.id.isin([9000, 9001]), "source"]) == {"social"}


def test_cold_user_vectors_blend_friends_items():
    train = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 0]], np.float32))
    friends = sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0, 0]], np.float32))
    users = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.1, 0.1], [0.0, 0.0]])
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    torch.testing.assert_close(cold_user_vectors(users, items, friends, train, 1.0), users)
    out = cold_user_vectors(users, items, friends, train, 0.0)
    # user 2: c = (F R)_2 = [.5, .5, .5], w = .5 (v0 + v1 + v2) = (1, 1); scaled to the personal users' mean norm 1.5
    torch.testing.assert_close(out[2], torch.tensor([1.5, 1.5]) / np.sqrt(2))
    torch.testing.assert_close(out[[0, 1, 3]], users[[0, 1, 3]])  # personal users and a friendless cold user unchanged
    half = cold_user_vectors(users, items, friends, train, 0.5)[2]
    torch.testing.assert_close(half, 1.5 * torch.tensor([1.0, 1.0]) / np.sqrt(2))  # both halves point the same way here
    with pytest.raises(ValueError):
        cold_user_vectors(users, items, friends, train, 1.5)
