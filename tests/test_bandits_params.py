"""Parameter store and typed records: round trip, atomic publishing, validation."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from recsys.bandits.params import (BanditParams, Watermark, current_version, list_versions, load_merged_event_ids,
                                   load_params, new_version_dir, publish_params)
from recsys.bandits.records import EVENT_SCHEMA, FeedbackEvent, ImpressionRecord, events_table, impressions_table


def _params(rng: np.random.Generator, n_clusters: int = 4, items_per: int = 5, users: int = 20, k: int = 3) -> BanditParams:
    ec = np.repeat(np.arange(n_clusters), items_per)
    ei = np.concatenate([rng.choice(1000, items_per, replace=False) for _ in range(n_clusters)])
    u = np.repeat(np.arange(users) * 3 + 1, k)
    uc = np.concatenate([rng.choice(n_clusters, k, replace=False) for _ in range(users)])
    uw = rng.random(u.size).astype(np.float32)
    d = 1.0 + rng.random(ec.size) * 5
    b = rng.normal(size=ec.size)
    return BanditParams.build(lam=1.0, alpha=0.3, k=k, w=items_per, edge_cluster=ec[::-1], edge_item=ei[::-1],
                              d=d[::-1], b=b[::-1], user=u, user_cluster=uc, user_weight=uw,
                              centroids=rng.normal(size=(n_clusters, 8)).astype(np.float32),
                              watermark=Watermark(events=5, ts=1.7e9 + 0.25, seq=42))


def test_round_trip_and_current(tmp_path):
    rng = np.random.default_rng(0)
    p = _params(rng)
    assert publish_params(tmp_path, p).version == 1
    q = load_params(tmp_path)
    assert q.version == 1 and current_version(tmp_path) == 1
    np.testing.assert_array_equal(q.keys, p.keys)
    np.testing.assert_array_equal(q.d, p.d)
    np.testing.assert_array_equal(q.b, p.b)
    np.testing.assert_array_equal(q.centroids, p.centroids)
    assert q.watermark == Watermark(events=5, ts=1.7e9 + 0.25, seq=42)
    # edges are sorted and consistent with the input pairs
    idx = q.edge_index(q.edge_cluster, q.edge_item)
    np.testing.assert_array_equal(idx, np.arange(q.num_edges))
    assert q.edge_index(np.array([0]), np.array([5000]))[0] == -1
    # second publish moves CURRENT; the old version stays readable
    p2 = publish_params(tmp_path, p.replace(d=p.d + 1.0))
    assert p2.version == 2 and list_versions(tmp_path) == [1, 2]
    np.testing.assert_allclose(load_params(tmp_path).d, p.d + 1.0)
    np.testing.assert_allclose(load_params(tmp_path, version=1).d, p.d)


def test_context_top_k_sorted_by_weight(tmp_path):
    rng = np.random.default_rng(1)
    p = _params(rng, users=5)
    cl, wt = p.context([1, 4, 999])
    assert cl.shape == (3, 3)
    assert (np.diff(wt[0]) <= 0).all() and (np.diff(wt[1]) <= 0).all()
    assert (cl[2] == -1).all() and (wt[2] == 0).all()
    assert p.has_user(4) and not p.has_user(999)
    # the clusters returned are the user's rows
    rows = p.user_cluster[p.user == 4]
    assert set(cl[1].tolist()) == set(rows.tolist())
    cand = p.candidates(cl[1])
    expected = np.unique(np.concatenate([p.edge_item[p.edge_cluster == c] for c in cl[1]]))
    np.testing.assert_array_equal(cand, expected)


def test_failed_publish_leaves_nothing(tmp_path):
    publish_params(tmp_path, _params(np.random.default_rng(2)))
    with pytest.raises(RuntimeError):
        with new_version_dir(tmp_path) as (tmp, n):
            (tmp / "edges").mkdir()
            raise RuntimeError("boom")
    assert current_version(tmp_path) == 1 and list_versions(tmp_path) == [1]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".v=")]


def test_merged_events_carried(tmp_path):
    ev = events_table([FeedbackEvent("e1", "s1", 3, 1.0, 1.7e9), FeedbackEvent("e2", "s1", 4, 0.0, 1.7e9 + 1)])
    publish_params(tmp_path, _params(np.random.default_rng(3)), merged_events=ev.select(["event_id", "ts"]))
    ids = load_merged_event_ids(tmp_path)
    assert sorted(ids.column("event_id").to_pylist()) == ["e1", "e2"]


@pytest.mark.parametrize("bad", [
    dict(d=[0.5, 1.0]),  # below lambda
    dict(b=[math.nan, 0.0]),
    dict(edge_cluster=[0, 0], edge_item=[1, 1]),  # duplicate edge
])
def test_params_validation(bad):
    kw = dict(lam=1.0, alpha=0.1, k=1, w=2, edge_cluster=[0, 0], edge_item=[1, 2], user=[0], user_cluster=[0],
              user_weight=[1.0], centroids=np.zeros((1, 2)))
    kw.update(bad)
    with pytest.raises(ValueError):
        BanditParams.build(**kw)


@pytest.mark.parametrize("reward", [math.nan, math.inf, -math.inf, "1"])
def test_event_rejects_bad_reward(reward):
    with pytest.raises(ValueError, match="reward"):
        FeedbackEvent("e", "s", 1, reward, 0.0)


@pytest.mark.parametrize("kw,field", [
    (dict(event_id=""), "event_id"), (dict(item=-1), "item"), (dict(item=True), "item"), (dict(ts=math.nan), "ts"),
])
def test_event_rejects_bad_fields(kw, field):
    base = dict(event_id="e", score_id="s", item=1, reward=1.0, ts=0.0)
    base.update(kw)
    with pytest.raises(ValueError, match=field):
        FeedbackEvent(**base)


def test_impression_rows_and_validation():
    imp = ImpressionRecord("s", 5, (1, 2), (0.6, 0.4), (10, 11, 12), 3, 100.0)
    t = impressions_table([imp, ImpressionRecord("t", 6, (0,), (1.0,), (9,), 3, 101.0)])
    assert t.num_rows == 7
    rows = t.to_pandas()
    s_rows = rows[rows.score_id == "s"]
    assert sorted(zip(s_rows.cluster, s_rows.item)) == sorted((c, i) for c in (1, 2) for i in (10, 11, 12))
    assert np.allclose(s_rows[s_rows.cluster == 2].weight, 0.4)
    with pytest.raises(ValueError, match="weights"):
        ImpressionRecord("s", 5, (1, 2), (0.6,), (10,), 3, 100.0)
    with pytest.raises(ValueError, match="weights"):
        ImpressionRecord("s", 5, (1,), (math.inf,), (10,), 3, 100.0)
    with pytest.raises(ValueError, match="items"):
        ImpressionRecord("s", 5, (1,), (1.0,), (), 3, 100.0)
    assert events_table([]).schema == EVENT_SCHEMA and isinstance(t, pa.Table)


def test_candidate_matrix_rows_equal_candidates():
    p = _params(np.random.default_rng(8), n_clusters=6, items_per=7, users=10)
    cl, _ = p.context(np.arange(10) * 3 + 1)
    cl[0, 1] = -1  # padded context slot
    m = p.candidate_matrix(cl)
    for row, c in zip(m, cl):
        got = row[row >= 0]
        np.testing.assert_array_equal(got, p.candidates(c))
        assert (row[got.size:] == -1).all()


def test_publish_refuses_when_current_moved(tmp_path):
    p = _params(np.random.default_rng(9))
    with pytest.raises(RuntimeError):
        publish_params(tmp_path, p, expect_current=1)  # nothing published yet
    publish_params(tmp_path, p, expect_current=None)
    publish_params(tmp_path, p)  # a concurrent publisher moved CURRENT to v=2
    with pytest.raises(RuntimeError, match="CURRENT is v=2"):
        publish_params(tmp_path, p, expect_current=1)
    assert publish_params(tmp_path, p, expect_current=2).version == 3
    assert list_versions(tmp_path) == [1, 2, 3]
