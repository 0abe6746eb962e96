"""Validation, early stopping, tuning, honest reporting and the social inputs of the trainer."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
import torch

from recsys import train as train_cli
from recsys.data import Interactions, load_interactions
from recsys.export import read_sparse_table, read_vectors
from recsys.metrics import evaluate_embeddings, full_report
from recsys.social import SocialConfig, SocialGraph, SocialVectors, align
from recsys.trainer import BPRRecommender, TrainConfig
from recsys.tuning import TuneConfig, successive_halving
from recsys.validation import EarlyStopping, holdout, refit_data, with_validation
from tests.conftest import data_file


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _planted(n_users=120, per_user=14, seed=0):
    """Two taste groups; friends are drawn inside a user's group."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    group = users % 2
    items = np.where(group == 0, rng.integers(0, 40, len(users)), rng.integers(40, 80, len(users)))
    return users, items


def test_holdout_is_seeded_disjoint_from_test_and_keeps_small_users(tmp_path):
    users, items = _planted()
    data = Interactions.from_pairs(users[::2], items[::2], users[1::2], items[1::2])
    a, b = with_validation(data, 0.2, seed=3), with_validation(data, 0.2, seed=3)
    c = with_validation(data, 0.2, seed=4)
    assert (a.valid != b.valid).nnz == 0 and (a.valid != c.valid).nnz > 0
    assert a.valid.multiply(a.test).nnz == 0 and a.valid.multiply(a.train).nnz == 0
    assert a.n_train + a.n_valid == data.n_train
    few = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 1]], np.float32))
    tr, va = holdout(few, 0.5, seed=0, min_items=3)
    assert va[0].nnz == 0 and tr[0].nnz == 2 and va[1].nnz == 2


def test_early_stopping_restores_the_best_epoch():
    users, items = _planted()
    data = with_validation(Interactions.from_pairs(users, items), 0.2, seed=0)
    cfg = TrainConfig(model="mf", epochs=30, dim=8, batch_size=128, lr=0.05, eval_every=1, patience=3,
                      show_progress=False)
    rec = BPRRecommender(cfg).fit(data)
    hist = [(h["epoch"], h["valid_recall@20"]) for h in rec.result.history if "valid_recall@20" in h]
    best_epoch, best = max(hist, key=lambda t: (t[1], -t[0]))
    assert rec.result.best_epoch == best_epoch and rec.result.best_valid == pytest.approx(best)
    U, V = rec.embeddings()
    again = evaluate_embeddings(U, V, data.train, data.valid)["recall@20"]
    assert again == pytest.approx(best)  # the exported model is the best epoch's, not the last one's
    stop = EarlyStopping(patience=2)
    assert [stop.update(e, v) for e, v in [(1, 0.5), (2, 0.4), (3, 0.4)]] == [False, False, True]


def test_successive_halving_spends_at_most_its_budget_and_keeps_the_defaults_in_the_race():
    calls = []

    def fake_train(cfg):
        calls.append(cfg)
        return -abs(np.log10(cfg.lr) + 2.2), cfg.epochs  # best near lr = 10^-2.2

    res = successive_halving(TrainConfig(epochs=40), fake_train, TuneConfig(trials=8, eta=2, rungs=3, seed=1))
    assert calls[0].lr == TrainConfig().lr  # trial 0 = the current settings
    assert res.epochs_spent == sum(c.epochs for c in calls) <= 8 * 40 * 3 / 4
    assert [c.epochs for c in calls].count(40) == 2
    assert abs(np.log10(res.best["lr"]) + 2.2) == pytest.approx(min(abs(np.log10(c.lr) + 2.2) for c in calls))


def _ingest(tmp_path, users, items, offset=5000):
    d = tmp_path / "ing"
    (d / "interactions").mkdir(parents=True)
    pq.write_table(pa.table({"user": users + offset, "item": items + 10}), d / "interactions" / "part-0.parquet")
    return d


def _social_dirs(tmp_path, n_users, offset=5000, extra=(9000, 9001), vec_missing=(3,), seed=0):
    """An ingest_graph-shaped user graph (friends inside a taste group, plus social-only users
    ``extra`` befriending group 0) and an embed_graph-shaped vectors table with some users missing."""
    rng = np.random.default_rng(seed)
    orig = np.r_[np.arange(n_users) + offset, extra]
    src = rng.integers(0, n_users, 400)
    dst = (src + 2 * rng.integers(1, 10, 400)) % n_users  # same parity = same group
    src = np.r_[src, n_users, n_users + 1]
    dst = np.r_[dst, 0, 2]
    g = tmp_path / "graph"
    (g / "edges").mkdir(parents=True)
    (g / "vertices").mkdir()
    pq.write_table(pa.table({"src": src, "dst": dst, "weight": np.ones(len(src), np.float32)}), g / "edges" / "p.parquet")
    pq.write_table(pa.table({"id": np.arange(len(orig)), "orig_id": orig}), g / "vertices" / "p.parquet")
    (g / "stats.json").write_text(json.dumps({"directed": False}))
    keep = np.setdiff1d(np.arange(len(orig)), vec_missing)
    vec = rng.normal(size=(len(keep), 6)).astype(np.float32)
    e = tmp_path / "emb" / "vectors"
    e.mkdir(parents=True)
    flat = pa.ListArray.from_arrays(pa.array(np.arange(len(keep) + 1, dtype=np.int32) * 6), pa.array(vec.ravel()))
    pq.write_table(pa.table({"id": keep.astype(np.int64), "vector": flat}), e / "p.parquet")
    return g, tmp_path / "emb"


@pytest.mark.parametrize("model", ["mf", "lightgcn"])
@pytest.mark.parametrize("density", [1.0, 0.25])
def test_cli_social_inputs_cold_users_and_honest_metrics(tmp_path, model, density):
    users, items = _planted()
    ing = _ingest(tmp_path, users, items)
    g, e = _social_dirs(tmp_path, 120)
    out = tmp_path / "out"
    args = ["--data", str(ing), "--output", str(out), "--epochs", "4", "--dim", "8", "--batch-size", "128",
            "--no-progress", "--model", model, "--density", str(density), "--eval-every", "2",
            "--social-graph", str(g), "--social-vectors", str(e)]
    assert train_cli.main(args) == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("recall@20", "ndcg@20", "recall@20_cold", "ndcg@20_cold", "users_cold", "popularity_recall@20",
                "popularity_ndcg@20", "vs_popularity", "settings", "best_epoch"):
        assert key in m, key
    assert m["social"]["users_without_interactions"] == 2
    assert m["social"]["social_vector_share"] == pytest.approx(121 / 122)
    t = pq.read_table(out / "user_vectors").to_pandas()
    assert len(t) == 122
    assert set(t.loc[t.id.isin([9000, 9001]), "source"]) == {"social"}
    assert set(t.loc[~t.id.isin([9000, 9001]), "source"]) == {"personal"}
    # a social-only user's vector is γ times its friends' mean: user 9000's only friend is user 5000
    ids, U = read_vectors(out / "user_vectors")
    u9000 = U[ids == 9000][0]
    assert np.linalg.norm(u9000) > 0
    if model == "mf":  # MF: h = e (no map), so u_9000 = 0.5 · e_5000 exactly
        base_ids, base = read_sparse_table(out / "user_base", 8)
        np.testing.assert_allclose(u9000, 0.5 * base[np.flatnonzero(base_ids == 5000)[0]].toarray()[0], rtol=1e-5)


def test_settings_reproduce_a_tuned_run_exactly(tmp_path):
    users, items = _planted()
    ing = _ingest(tmp_path, users, items)
    base = ["--data", str(ing), "--epochs", "4", "--dim", "8", "--batch-size", "128", "--no-progress",
            "--eval-every", "2", "--model", "mf"]
    assert train_cli.main([*base, "--output", str(tmp_path / "tuned"), "--tune", "3"]) == 0
    tuned = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert tuned["tuning"]["trials"] and set(tuned["settings"]) == {"lr", "reg", "init_std", "lr_min"}
    assert train_cli.main([*base, "--output", str(tmp_path / "again"), "--settings",
                           str(tmp_path / "tuned" / "metrics.json")]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["settings"] == tuned["settings"]
    np.testing.assert_array_equal(read_vectors(tmp_path / "tuned" / "user_vectors")[1],
                                  read_vectors(tmp_path / "again" / "user_vectors")[1])


def test_refit_data_is_train_with_the_carved_share_only():
    users, items = _planted()
    data = Interactions.from_pairs(users, items)
    held = with_validation(data, 0.2, seed=3)
    full = refit_data(held)
    assert held.n_valid > 0 and full.n_valid == 0 and "valid_fraction" not in full.extra
    assert (full.train != data.train).nnz == 0  # exactly the original training interactions, values 1
    given = Interactions(held.train, held.test, held.user_ids, held.item_ids, valid=held.valid)  # a data set's own split
    assert refit_data(given) is None and refit_data(data) is None


def test_cli_refits_on_the_carved_share_for_the_selected_epochs(tmp_path):
    users, items = _planted()
    ing = _ingest(tmp_path, users, items)
    base = ["--data", str(ing), "--epochs", "6", "--dim", "8", "--batch-size", "128", "--no-progress",
            "--eval-every", "2", "--model", "mf"]
    assert train_cli.main([*base, "--output", str(tmp_path / "refit")]) == 0
    assert train_cli.main([*base, "--output", str(tmp_path / "kept"), "--no-refit"]) == 0
    refit = json.loads((tmp_path / "refit" / "metrics.json").read_text())
    kept = json.loads((tmp_path / "kept" / "metrics.json").read_text())
    assert kept["refit"] is None and refit["best_epoch"] == kept["best_epoch"] > 0
    assert refit["refit"]["epochs"] == refit["best_epoch"]
    rows = [json.loads((tmp_path / d / "_meta.json").read_text())["rows"] for d in ("refit", "kept")]
    assert rows[0]["valid"] == rows[1]["valid"] > 0  # the rows that selected the epochs, refit or not
    assert rows[0]["train"] == rows[1]["train"] + rows[1]["valid"]  # the refit learnt from them too
    assert not np.array_equal(read_vectors(tmp_path / "refit" / "user_vectors")[1],
                              read_vectors(tmp_path / "kept" / "user_vectors")[1])


def test_align_with_missing_sides():
    data = Interactions.from_pairs(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]))
    g = SocialGraph(np.array([1, 2, 5]), np.array([[1, 5], [2, 5]]), directed=True)
    full, s = align(data, g, None)
    assert full.user_ids.tolist() == [0, 1, 2, 5] and full.train[3].nnz == 0
    assert s.vectors.shape == (4, 0) and not s.has_vector.any()
    assert s.friends[1].toarray().tolist() == [[0, 0, 0, 1.0]] and s.friends[3].nnz == 0  # directed: out-edges
    full, s = align(data, None, SocialVectors(np.array([2, 7]), np.ones((2, 3), np.float32)))
    assert full.user_ids.tolist() == [0, 1, 2, 7] and s.has_vector.tolist() == [False, False, True, True]
    np.testing.assert_allclose(np.linalg.norm(s.vectors[2]), 1.0, rtol=1e-6)
    with pytest.raises(ValueError):
        SocialConfig(propagate=-1)


def test_full_report_has_cold_and_popularity_on_the_same_users():
    train = sp.csr_matrix(np.array([[1, 1, 1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]], np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 0, 0, 0]], np.float32))
    U = torch.tensor([[1.0], [-1.0]])
    V = torch.tensor([[0.0], [-1.0], [0.0], [0.0], [0.0], [0.0], [1.0], [0.5]])
    r = full_report(U, V, train, test, k=1)
    assert r["users"] == 2 and r["users_cold"] == 1
    assert r["recall@1"] == 1.0 and r["recall@1_cold"] == 1.0
    assert r["popularity_recall@1_cold"] == 1.0 and r["vs_popularity"] == 2.0  # popularity ranks item 1 first


def test_split_layouts(tmp_path):
    d = tmp_path / "rd"
    d.mkdir()
    (d / "recdiff_train.txt").write_text("0 0\n0 1\n1 2\n")
    (d / "recdiff_val.txt").write_text("0 2\n")
    (d / "recdiff_test.txt").write_text("1 0\n")
    data = load_interactions(d)
    assert (data.n_train, data.n_valid, data.n_test) == (3, 1, 1)
    (d / "train_set.txt").write_text("user,item\n0,1\n")
    with pytest.raises(ValueError, match="several split layouts"):
        load_interactions(d)
    assert load_interactions(d, split="sociallgn").n_train == 1
    (d / "recdiff_val.txt").write_text("0 2\nuser item\n")
    with pytest.raises(ValueError, match="recdiff_val.txt:2"):
        load_interactions(d, split="recdiff")


def test_real_social_splits(shared_data):
    ciao = data_file(shared_data, "ciao_social")
    real = load_interactions(ciao, split="recdiff")
    assert (real.n_users, real.n_items, real.n_train, real.n_valid, real.n_test) == (1925, 15053, 23223, 3317, 6635)
    lastfm = load_interactions(data_file(shared_data, "lastfm_social"), split="sociallgn")
    assert (lastfm.n_users, lastfm.n_train, lastfm.n_test) == (1892, 74267, 18567)
