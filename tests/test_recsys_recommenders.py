"""One contract suite for every Recommender, and a short real-data run that must beat popularity."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.base import EmbeddingRecommender, PopularityRecommender, Recommender
from recsys.data import Interactions, load_interactions
from recsys.metrics import evaluate_popularity
from recsys.trainer import BPRRecommender, TrainConfig
from tests.conftest import data_file

GPU = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")]
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one intra-op thread on shared machines


def _small() -> Interactions:
    rng = np.random.default_rng(5)
    return Interactions.from_pairs(rng.integers(0, 40, 600), rng.integers(0, 50, 600))


def _fitted(kind: str, data: Interactions) -> Recommender:
    if kind == "popularity":
        return PopularityRecommender().fit(data)
    if kind == "embedding":
        mf = BPRRecommender(TrainConfig(model="mf", epochs=1, dim=4, show_progress=False)).fit(data)
        U, V = mf.embeddings()
        return EmbeddingRecommender(U, V, data.user_ids, data.item_ids, data.train)
    model, density = kind.split("@")
    return BPRRecommender(TrainConfig(model=model, density=float(density), epochs=2, dim=8, batch_size=64,
                                      show_progress=False)).fit(data)


@pytest.mark.parametrize("kind", ["popularity", "embedding", "mf@1", "mf@0.2", "lightgcn@1", "lightgcn@0.2"])
def test_recommender_contract(kind):
    data = _small()
    rec = _fitted(kind, data)
    users = np.array([0, 3, 7, 39])
    out = rec.recommend(users, k=10)
    assert out.items.shape == (4, 10) and out.scores.shape == (4, 10)
    assert np.array_equal(out.users, users)
    assert np.all(np.diff(out.scores, axis=1) <= 1e-6)  # best first
    for r, u in enumerate(users):
        assert len(set(out.items[r])) == 10
        assert not set(out.items[r]) & set(data.train[u].indices.tolist())  # seen items excluded
    assert rec.recommend(users[:1], k=10_000).items.shape[1] == data.n_items
    with pytest.raises(ValueError, match="unknown user"):
        rec.recommend(np.array([12345]), k=5)


@pytest.fixture(scope="module")
def gowalla(shared_data):
    return load_interactions(data_file(shared_data, "gowalla"))


def _slice(full: Interactions, n_users: int) -> Interactions:
    """The first ``n_users`` Gowalla users with their LightGCN train/test items (items re-indexed)."""
    users = np.arange(n_users)
    tr, te = full.train[users], full.test[users]
    items = np.unique(np.r_[tr.indices, te.indices])
    remap = np.full(full.n_items, -1)
    remap[items] = np.arange(len(items))
    tr_u, tr_i = tr.nonzero()
    te_u, te_i = te.nonzero()
    return Interactions.from_pairs(tr_u, remap[tr_i], te_u, remap[te_i], n_users=n_users, n_items=len(items))


@pytest.mark.parametrize("model,density,users,epochs,batch,device", [
    ("mf", 0.5, 2000, 10, 1024, "cpu"),
    pytest.param("lightgcn", 0.2, 600, 8, 512, "cpu", marks=pytest.mark.slow),  # minutes of CPU propagation
    pytest.param("mf", 0.5, 2000, 10, 1024, "cuda", marks=GPU),
    pytest.param("lightgcn", 0.2, 2000, 20, 1024, "cuda", marks=GPU)])
def test_short_real_run_beats_popularity(gowalla, model, density, users, epochs, batch, device):
    data = _slice(gowalla, users)
    pop = evaluate_popularity(data.train, data.test)
    rec = BPRRecommender(TrainConfig(model=model, density=density, epochs=epochs, batch_size=batch, lr=1e-2,
                                     target_rounds=20, device=device, show_progress=False)).fit(data)
    res = rec.result
    assert res.rounds > 0 and res.params == pytest.approx(density * res.dense_params, rel=1e-3)
    assert res.metrics["recall@20"] > 1.2 * pop["recall@20"], (res.metrics, pop)
    assert res.metrics["ndcg@20"] > pop["ndcg@20"]
