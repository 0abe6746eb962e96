"""Interactions loading (LightGCN folders, ingest output) and the vectorised BPR sampler."""
from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.data import BPRSampler, Interactions, load_interactions, split_per_user
from tests.conftest import data_file


def _write_lightgcn(folder, train_lines, test_lines):
    folder.mkdir()
    with gzip.open(folder / "train.txt.gz", "wt") as f:
        f.write("\n".join(train_lines) + "\n")
    (folder / "test.txt").write_text("\n".join(test_lines) + "\n")
    return folder


def test_lightgcn_folder(tmp_path):
    d = load_interactions(_write_lightgcn(tmp_path / "lg", ["0 1 2", "1 0", "2 3 1 0"], ["0 3", "1 2", "2 2"]))
    assert (d.n_users, d.n_items, d.n_train, d.n_test) == (3, 4, 6, 3)
    assert d.train[2].indices.tolist() == [0, 1, 3] and d.test[1].indices.tolist() == [2]


def test_lightgcn_bad_line_names_file(tmp_path):
    folder = _write_lightgcn(tmp_path / "bad", ["0 1 x"], ["0 1"])
    with pytest.raises(ValueError, match=r"train.txt.gz:1"):
        load_interactions(folder)


def test_ingest_output_split_and_id_maps(tmp_path):
    rng = np.random.default_rng(0)
    users = rng.integers(100, 140, 2000) * 7  # sparse external ids
    items = rng.integers(0, 90, 2000) + 1000
    (tmp_path / "ing" / "interactions").mkdir(parents=True)
    pq.write_table(pa.table({"user": users, "item": items}), tmp_path / "ing" / "interactions" / "part-0.parquet")
    d = load_interactions(tmp_path / "ing", test_fraction=0.2, seed=1)
    pairs = set(zip(users.tolist(), items.tolist()))
    assert d.n_train + d.n_test == len(pairs)
    assert d.train.multiply(d.test).nnz == 0
    assert set(d.user_ids.tolist()) == set(users.tolist()) and set(d.item_ids.tolist()) == set(items.tolist())
    coo = d.test.tocoo()
    assert all((d.user_ids[u], d.item_ids[i]) in pairs for u, i in zip(coo.row, coo.col))
    per_user = np.diff(d.test.indptr) / (np.diff(d.test.indptr) + np.diff(d.train.indptr))
    assert 0.1 < per_user.mean() < 0.3


def test_ingest_missing_column(tmp_path):
    (tmp_path / "ing" / "interactions").mkdir(parents=True)
    pq.write_table(pa.table({"user": [1], "thing": [2]}), tmp_path / "ing" / "interactions" / "p.parquet")
    with pytest.raises(ValueError, match="missing column 'item'"):
        load_interactions(tmp_path / "ing")


def test_split_keeps_single_interaction_users_in_train():
    is_test, _ = split_per_user(np.array([0, 1, 1, 1, 1, 1]), np.arange(6), 0.4, seed=0)
    assert not is_test[0] and is_test[1:].sum() == 2


def test_sampler_epoch_covers_positives_and_excludes_them():
    rng = np.random.default_rng(3)
    d = Interactions.from_pairs(rng.integers(0, 50, 3000), rng.integers(0, 40, 3000))
    s = BPRSampler(d.train, seed=0)
    u, i, j = s.epoch()
    assert len(u) == d.n_train
    assert set(zip(u.tolist(), i.tolist())) == set(zip(*d.train.nonzero()))
    assert not np.asarray(d.train[u, j]).any()
    assert np.asarray(d.train[u, i]).all()
    batches = list(s.batches(1000))
    assert [len(b[0]) for b in batches] == [1000] * (d.n_train // 1000) + ([d.n_train % 1000] if d.n_train % 1000 else [])


def test_sampler_on_real_gowalla(shared_data):
    d = load_interactions(data_file(shared_data, "gowalla"))
    assert (d.n_users, d.n_items, d.n_train, d.n_test) == (29858, 40981, 810128, 217242)
    s = BPRSampler(d.train, seed=0)
    u = s.users[:200000]
    j = s.negatives(u)
    assert not s.is_positive(u, j).any()
