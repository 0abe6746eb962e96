"""Cold start in the candidate graph: each user's path (personal | social) and the popular items kept per version."""
from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.bandits.params import load_params, publish_params
from recsys.bandits.versions import USER_CLUSTER_SCHEMA
from recsys.candidates import main


def _vectors(path, ids, vecs, source=None):
    path.mkdir(parents=True)
    cols = {"id": pa.array(ids, pa.int64()),
            "vector": pa.array([v.tolist() for v in vecs.astype(np.float32)], pa.list_(pa.float32()))}
    if source is not None:
        cols["source"] = pa.array(source, pa.string())
    pq.write_table(pa.table(cols), path / "part-0.parquet")


def _recommender_output(root, rng, source=True, seen=True):
    """A recommender output folder: 60 personal + 20 social users, 40 items, a seen table."""
    users = np.arange(80) + 500
    src = ["personal"] * 60 + ["social"] * 20 if source else None
    _vectors(root / "user_vectors", users, rng.normal(size=(80, 6)), src)
    _vectors(root / "item_vectors", np.arange(40) * 11, rng.normal(size=(40, 6)))
    if seen:
        (root / "seen").mkdir()
        su = rng.choice(users[:60], 300)
        si = (rng.zipf(1.6, 300) % 40) * 11
        pq.write_table(pa.table({"user": pa.array(su, pa.int64()), "item": pa.array(si, pa.int64())}),
                       root / "seen" / "part-0.parquet")
    return users


def _args(rec, params, *extra):
    return ["--user-vectors", str(rec / "user_vectors"), "--item-vectors", str(rec / "item_vectors"),
            "--params", str(params), "--clusters", "5", "--k", "3", "--w", "8", *extra]


def test_cli_keeps_each_users_path_and_the_popular_items(tmp_path):
    rng = np.random.default_rng(0)
    rec = tmp_path / "rec"
    users = _recommender_output(rec, rng)
    assert main(_args(rec, tmp_path / "params", "--popular", "6")) == 0     # seen found beside user_vectors
    p = load_params(tmp_path / "params")
    assert p.user_paths(users[:60]).tolist() == [0] * 60 and p.user_paths(users[60:]).tolist() == [1] * 20
    assert p.user_paths([1]).tolist() == [-1]
    stored = pq.read_table(tmp_path / "params" / "v=1" / "user_clusters").to_pandas()
    assert set(stored.groupby("user").path.nunique()) == {1}
    assert (stored.set_index("user").path.groupby(level=0).first().reindex(users).tolist()
            == ["personal"] * 60 + ["social"] * 20)
    seen = pq.read_table(rec / "seen").column("item").to_pylist()
    want = sorted(Counter(seen).items(), key=lambda kv: (-kv[1], kv[0]))[:6]
    assert list(zip(p.popular_item.tolist(), p.popular_count.tolist())) == want
    # the social users are served from clusters like everyone else
    cl, w = p.context(users[60:])
    assert (cl >= 0).all() and np.allclose(w.sum(axis=1), 1.0, atol=1e-5)


def test_older_inputs_mean_personal_and_no_fallback(tmp_path):
    rng = np.random.default_rng(1)
    rec = tmp_path / "rec"
    users = _recommender_output(rec, rng, source=False, seen=False)
    assert main(_args(rec, tmp_path / "params")) == 0
    p = load_params(tmp_path / "params")
    assert (p.user_paths(users) == 0).all() and p.num_popular == 0
    # a version written before the path column / popular table existed reads the same way
    vdir = tmp_path / "params" / "v=1"
    t = pq.read_table(vdir / "user_clusters").select(["user", "cluster", "weight"])
    shutil.rmtree(vdir / "user_clusters")
    shutil.rmtree(vdir / "popular")
    (vdir / "user_clusters").mkdir()
    pq.write_table(t, vdir / "user_clusters" / "part-0.parquet")
    q = load_params(tmp_path / "params")
    assert (q.user_paths(users) == 0).all() and q.num_popular == 0 and q.user.size == p.user.size
    # and it republishes with the column
    publish_params(tmp_path / "params", q)
    assert pq.read_table(tmp_path / "params" / "v=2" / "user_clusters").schema == USER_CLUSTER_SCHEMA


def test_bad_source_fails_naming_the_file_and_writes_nothing(tmp_path):
    rng = np.random.default_rng(2)
    rec = tmp_path / "rec"
    _vectors(rec / "user_vectors", np.arange(30), rng.normal(size=(30, 4)), ["personal"] * 29 + ["friends"])
    _vectors(rec / "item_vectors", np.arange(20), rng.normal(size=(20, 4)))
    with pytest.raises(ValueError, match=r"user_vectors.*column source.*'friends'"):
        main(_args(rec, tmp_path / "params"))
    assert not (tmp_path / "params").exists() or not any((tmp_path / "params").glob("v=*"))


def test_explicit_seen_and_no_popular(tmp_path):
    rng = np.random.default_rng(3)
    rec = tmp_path / "rec"
    _recommender_output(rec, rng, seen=False)
    other = tmp_path / "elsewhere"
    other.mkdir()
    pq.write_table(pa.table({"user": pa.array([1, 2, 3], pa.int64()), "item": pa.array([22, 22, 33], pa.int64())}),
                   other / "seen.parquet")
    assert main(_args(rec, tmp_path / "params", "--seen", str(other))) == 0
    p = load_params(tmp_path / "params")
    assert p.popular_item.tolist() == [22, 33] and p.popular_count.tolist() == [2, 1]
    assert main(_args(rec, tmp_path / "params", "--seen", str(other), "--popular", "0")) == 0
    assert load_params(tmp_path / "params").num_popular == 0
