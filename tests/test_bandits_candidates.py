"""Candidate graph: k-means clusters, stable ids across rebuilds, the moved-cluster rule, fresh items, CLI."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.bandits.params import Watermark, current_version, load_merged_event_ids, load_params, publish_params
from recsys.candidates import (CandidateConfig, add_fresh_items, build_params, centroid_shift, decay_factor, main,
                               match_clusters, user_context)

G, DIM = 8, 6


def _mixture(rng, centers, per=60, noise=0.15):
    lab = np.repeat(np.arange(len(centers)), per)
    return centers[lab] + noise * rng.normal(size=(lab.size, centers.shape[1])), lab


def _centers(rng):
    return (rng.normal(size=(G, DIM)) * 3).astype(np.float32)


def _items(rng, n=80):
    return np.arange(n) * 7 + 1000, rng.normal(size=(n, DIM)).astype(np.float32)


def _top1(params, users):
    cl, _ = params.context(users)
    return cl[:, 0]


def _day_one(seed: int):
    """Users of planted communities, items, and the first day's graph, every edge with some statistics (so we can
    see them carried); ``rng`` goes on with the test."""
    rng = np.random.default_rng(seed)
    centers = _centers(rng)
    x1, lab = _mixture(rng, centers)
    iid, ivec = _items(rng)
    cfg = CandidateConfig(n_clusters=G, k=3, w=10, seed=1)
    uid = np.arange(lab.size)
    p1, _ = build_params(uid, x1, iid, ivec, cfg)
    return rng, x1, lab, iid, ivec, cfg, uid, p1.replace(d=p1.d + 2.0, b=p1.b + 0.5)


def test_cluster_ids_stable_across_rebuilds():
    rng, x1, lab, iid, ivec, cfg, uid, p1 = _day_one(0)
    x2 = x1 + 0.02 * rng.normal(size=x1.shape)  # tomorrow: the same users, slightly moved
    cfg2 = CandidateConfig(n_clusters=G, k=3, w=10, seed=7)  # other seed: k-means alone would permute ids
    p2, rep = build_params(uid, x2, iid, ivec, cfg2, prev=p1)
    a, b = _top1(p1, uid), _top1(p2, uid)
    assert (a == b).mean() > 0.99
    assert rep["kept"] == G and rep["reset"] == 0 and rep["new_ids"] == 0
    idx = p1.edge_index(p2.edge_cluster, p2.edge_item)
    common = idx >= 0
    assert common.mean() > 0.9
    np.testing.assert_allclose(p2.d[common], p1.d[idx[common]])
    np.testing.assert_allclose(p2.b[common], p1.b[idx[common]])
    np.testing.assert_allclose(p2.d[~common], 1.0)


def test_moved_cluster_is_reset_others_kept():
    _, x1, lab, iid, ivec, cfg, uid, p1 = _day_one(1)
    moved_group = 3
    old_id = np.bincount(_top1(p1, uid[lab == moved_group])).argmax()
    x2 = x1.copy()
    x2[lab == moved_group] += 20.0  # that community's taste changed completely
    p2, rep = build_params(uid, x2, iid, ivec, cfg, prev=p1)
    assert rep["reset"] >= 1 and rep["kept"] >= G - 3
    shift = centroid_shift(p1.centroids, p1.centroid_ids, p2.centroids, p2.centroid_ids)
    gamma = decay_factor(shift)
    for cid, g in zip(p2.centroid_ids, gamma):
        rows = p2.edge_cluster == cid
        if g == 0:
            np.testing.assert_allclose(p2.d[rows], 1.0)
            np.testing.assert_allclose(p2.b[rows], 0.0)
        elif g == 1:
            idx = p1.edge_index(p2.edge_cluster[rows], p2.edge_item[rows])
            np.testing.assert_allclose(p2.b[rows][idx >= 0], 0.5)
    # the users of the moved community are in a reset cluster now
    new_top = _top1(p2, uid[lab == moved_group])
    major = np.bincount(new_top).argmax()
    assert gamma[list(p2.centroid_ids).index(major)] == 0.0
    rows = p2.edge_cluster == major
    np.testing.assert_allclose(p2.b[rows], 0.0)
    assert old_id in p1.centroid_ids


def test_decay_factor_rule():
    g = decay_factor(np.array([0.0, 0.25, 0.625, 1.0, 3.0, np.inf]), 0.25, 1.0)
    np.testing.assert_allclose(g, [1.0, 1.0, 0.5, 0.0, 0.0, 0.0])


def test_match_clusters_hungarian_and_fresh_ids():
    rng = np.random.default_rng(2)
    old = rng.normal(size=(5, 3)) * 5
    perm = rng.permutation(5)
    new = np.vstack([old[perm] + 0.01, [[100.0, 100.0, 100.0]]])
    ids = match_clusters(old, np.array([3, 4, 5, 6, 9]), new)
    np.testing.assert_array_equal(ids[:5], np.array([3, 4, 5, 6, 9])[perm])
    assert ids[5] == 10


@pytest.mark.parametrize("weighting,power", [("inverse_distance", 1.0), ("inverse_distance", 2.0), ("softmax", 1.0)])
def test_user_context_weights(weighting, power):
    rng = np.random.default_rng(3)
    cen = rng.normal(size=(10, 4)).astype(np.float32)
    u = rng.normal(size=(50, 4)).astype(np.float32)
    rows, w = user_context(u, cen, 3, weighting, power=power)
    assert rows.shape == w.shape == (50, 3)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)
    assert (np.diff(w, axis=1) <= 1e-7).all()  # best cluster first, largest weight
    assert all(len(set(r)) == 3 for r in rows.tolist())
    if weighting == "inverse_distance":
        dist = np.linalg.norm(u[:, None] - cen[None], axis=2)
        np.testing.assert_array_equal(rows[:, 0], dist.argmin(axis=1))
        inv = 1 / (np.take_along_axis(dist, rows, 1) + 1e-6) ** power
        np.testing.assert_allclose(w, inv / inv.sum(1, keepdims=True), rtol=1e-4)
    else:
        np.testing.assert_array_equal(rows[:, 0], (u @ cen.T).argmax(axis=1))


def test_sharper_power_concentrates_weight_on_the_nearest_cluster():
    rng = np.random.default_rng(5)
    cen = rng.normal(size=(12, 4)).astype(np.float32)
    u = rng.normal(size=(80, 4)).astype(np.float32)
    r1, w1 = user_context(u, cen, 3, power=1.0)
    r2, w2 = user_context(u, cen, 3, power=2.0)
    np.testing.assert_array_equal(r1, r2)            # same clusters, only the weights change
    assert (w2[:, 0] >= w1[:, 0] - 1e-6).all() and ((w2 ** 2).sum(1) >= (w1 ** 2).sum(1) - 1e-6).all()
    p, _ = build_params(np.arange(80), u, np.arange(30), rng.normal(size=(30, 4)).astype(np.float32),
                        CandidateConfig(n_clusters=12, k=3, w=5))
    assert p.extra["power"] == CandidateConfig.power and p.extra["weighting"] == "inverse_distance"
    _, wd = user_context(u, p.centroids, 3)            # the default rule is the one the builder stores
    np.testing.assert_allclose(np.sort(p.user_weight.reshape(80, 3), axis=1), np.sort(wd, axis=1), rtol=1e-5)


def test_fresh_items_join_without_rebuild():
    rng = np.random.default_rng(4)
    x, lab = _mixture(rng, _centers(rng), per=20)
    iid, ivec = _items(rng)
    p, _ = build_params(np.arange(lab.size), x, iid, ivec, CandidateConfig(n_clusters=G, k=3, w=5))
    p = p.replace(b=p.b + 0.3, d=p.d + 1.0)
    q = add_fresh_items(p, [1, 2])  # no vectors: every cluster
    assert q.num_edges == p.num_edges + 2 * G
    fresh = np.isin(q.edge_item, [1, 2])
    np.testing.assert_allclose(q.d[fresh], q.lam)
    np.testing.assert_allclose(q.b[fresh], 0.0)
    idx = q.edge_index(p.edge_cluster, p.edge_item)
    np.testing.assert_allclose(q.b[idx], p.b)
    r = add_fresh_items(p, [5, 6, 7], vectors=rng.normal(size=(3, DIM)), fresh_clusters=2)
    assert r.num_edges == p.num_edges + 6
    for c in p.centroid_ids:  # the item is a candidate of the clusters it joined
        assert set(r.cluster_items(int(c)).tolist()) >= set(p.cluster_items(int(c)).tolist())


def _write_vectors(path, ids, vecs):
    path.mkdir(parents=True)
    t = pa.table({"id": pa.array(ids, pa.int64()),
                  "vector": pa.array([v.tolist() for v in vecs.astype(np.float32)], pa.list_(pa.float32()))})
    pq.write_table(t, path / "part-0.parquet")


def test_cli_publishes_and_carries(tmp_path):
    rng = np.random.default_rng(5)
    x, lab = _mixture(rng, _centers(rng), per=15)
    iid, ivec = _items(rng)
    _write_vectors(tmp_path / "u" / "vectors", np.arange(lab.size) + 50, x)
    _write_vectors(tmp_path / "i" / "vectors", iid, ivec)
    params = tmp_path / "params"
    args = ["--user-vectors", str(tmp_path / "u"), "--item-vectors", str(tmp_path / "i"), "--params", str(params),
            "--clusters", str(G), "--k", "3", "--w", "6"]
    assert main(args) == 0
    p1 = load_params(params)
    assert p1.version == 1 and p1.num_clusters == G and p1.has_user(50) and p1.k == 3
    # pretend a batch update merged events, then rebuild: statistics, watermark and ids carry over
    ev = pa.table({"event_id": ["a", "b"], "ts": pa.array([0, 1], pa.timestamp("us", tz="UTC"))})
    publish_params(params, p1.replace(b=p1.b + 1.0, d=p1.d + 1.0, watermark=Watermark(events=2, ts=1.0)), merged_events=ev)
    assert main(args) == 0
    p3 = load_params(params)
    assert p3.version == 3 and p3.watermark.events == 2
    assert sorted(load_merged_event_ids(params).column("event_id").to_pylist()) == ["a", "b"]
    idx = p3.edge_index(p1.edge_cluster, p1.edge_item)
    assert (idx >= 0).mean() > 0.9 and np.allclose(p3.b[idx[idx >= 0]], 1.0)
    # fresh items only
    (tmp_path / "fresh").mkdir()
    pq.write_table(pa.table({"item": pa.array([424242], pa.int64())}), tmp_path / "fresh" / "p.parquet")
    assert main(["--fresh-items", str(tmp_path / "fresh"), "--params", str(params)]) == 0
    p4 = load_params(params)
    assert current_version(params) == 4 and (p4.edge_item == 424242).sum() == G
