"""Batch update job: equals the direct Diag-LinUCB update, dedups by event_id, re-running changes nothing."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.bandits.diag_linucb import DiagLinUCB
from recsys.bandits.params import BanditParams, current_version, list_versions, load_merged_event_ids, load_params, publish_params
from recsys.bandits.records import FeedbackEvent, ImpressionRecord, events_table, impressions_table

pytestmark = pytest.mark.spark


def _world(tmp_path, off_graph="prior"):
    rng = np.random.default_rng(0)
    C, K = 5, 3
    ec = np.repeat(np.arange(C), 8)
    ei = np.concatenate([rng.choice(25, 8, replace=False) for _ in range(C)])
    users = np.arange(30)
    uc = np.concatenate([rng.choice(C, K, replace=False) for _ in users])
    uw = rng.random(users.size * K).astype(np.float32) + 0.1
    p = BanditParams.build(lam=1.0, alpha=0.5, k=K, w=8, edge_cluster=ec, edge_item=ei, user=np.repeat(users, K),
                           user_cluster=uc, user_weight=uw, centroids=rng.normal(size=(C, 4)).astype(np.float32),
                           extra={"off_graph": off_graph})
    publish_params(tmp_path / "params", p)
    p = load_params(tmp_path / "params")
    imps, events = [], []
    for s in range(120):
        u = int(rng.integers(0, 30))
        cl, wt = p.context([u])
        cand = p.candidates(cl[0])
        shown = rng.choice(cand, 3, replace=False)
        sid = f"s{s}"
        imps.append(ImpressionRecord(sid, u, tuple(cl[0]), tuple(wt[0]), tuple(shown), 1, 1.7e9 + s))
        for j in shown[: rng.integers(1, 4)]:
            events.append(FeedbackEvent(f"e{len(events)}", sid, int(j), float(rng.random() < 0.4), 1.7e9 + s + 0.5))
    events.append(FeedbackEvent("orphan", "no-such-score", 3, 1.0, 1.7e9))  # never matches an impression
    return p, imps, events


def _write(path, table):
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path / f"part-{len(list(path.iterdir()))}.parquet")


def _expected(p, imps, events):
    """Direct single-pass Diag-LinUCB over the unique, matched events."""
    by_sid = {i.score_id: i for i in imps}
    seen, rows = set(), []
    for e in events:
        if e.event_id in seen or e.score_id not in by_sid or e.item not in by_sid[e.score_id].items:
            continue
        seen.add(e.event_id)
        i = by_sid[e.score_id]
        rows.append((list(i.clusters), [float(np.float32(w)) for w in i.weights], e.item, e.reward))
    pol = DiagLinUCB.from_params(p)
    cl, w, it, r = (np.array(x) for x in zip(*rows))
    pol.update(cl, w, it, r)
    return pol, seen


def _run(tmp_path, day):
    from jobs.bandit_update import main

    return main(["--events", str(tmp_path / day), "--impressions", str(tmp_path / "imps"),
                 "--params", str(tmp_path / "params"), "--output", str(tmp_path / "params")])


def test_update_matches_direct_and_is_idempotent(spark, tmp_path):
    p, imps, events = _world(tmp_path)
    _write(tmp_path / "imps", impressions_table(imps))
    n = len(events)
    day1 = events[: int(n * 0.6)]
    day1 = day1 + day1[:10]  # the log delivered some events twice
    _write(tmp_path / "day1", events_table(day1))
    assert _run(tmp_path, "day1") == 0
    assert current_version(tmp_path / "params") == 2
    q = load_params(tmp_path / "params")
    pol, seen = _expected(p, imps, day1)
    assert q.num_edges == pol.keys.size > p.num_edges  # events on pairs off the graph created edges
    np.testing.assert_allclose(q.d, pol.d, rtol=1e-12)
    np.testing.assert_allclose(q.b, pol.b, rtol=1e-12, atol=1e-12)
    assert q.watermark.events == len(seen)
    assert q.watermark.ts == pytest.approx(max(e.ts for e in day1 if e.event_id in seen))
    assert set(load_merged_event_ids(tmp_path / "params").column("event_id").to_pylist()) == seen
    np.testing.assert_array_equal(q.user_cluster, p.user_cluster)
    # re-running the same day changes nothing
    assert _run(tmp_path, "day1") == 0
    assert list_versions(tmp_path / "params") == [1, 2]
    # the next day overlaps the previous one: only unseen ids are merged; equals one pass over all
    _write(tmp_path / "day2", events_table(events[int(n * 0.4):]))
    assert _run(tmp_path, "day2") == 0
    r = load_params(tmp_path / "params")
    assert r.version == 3
    pol_all, seen_all = _expected(p, imps, events)
    np.testing.assert_allclose(r.d, pol_all.d, rtol=1e-12)
    np.testing.assert_allclose(r.b, pol_all.b, rtol=1e-12, atol=1e-12)
    assert r.watermark.events == len(seen_all) and "orphan" not in seen_all
    assert _run(tmp_path, "day2") == 0 and current_version(tmp_path / "params") == 3


def test_update_skip_mode_only_graph_edges_learn(spark, tmp_path):
    p, imps, events = _world(tmp_path, off_graph="skip")
    _write(tmp_path / "imps", impressions_table(imps))
    _write(tmp_path / "day1", events_table(events))
    assert _run(tmp_path, "day1") == 0
    q = load_params(tmp_path / "params")
    pol, _ = _expected(p, imps, events)
    assert q.num_edges == p.num_edges == pol.keys.size
    np.testing.assert_allclose(q.d, pol.d, rtol=1e-12)
    np.testing.assert_allclose(q.b, pol.b, rtol=1e-12, atol=1e-12)


def test_dedup_horizon_prunes_ids_and_refuses_late_events(spark, tmp_path):
    from jobs.bandit_update import main

    p, imps, events = _world(tmp_path)
    _write(tmp_path / "imps", impressions_table(imps))
    _write(tmp_path / "day1", events_table(events))
    assert _run(tmp_path, "day1") == 0
    wm = load_params(tmp_path / "params").watermark
    late = [FeedbackEvent(f"late{i}", e.score_id, e.item, 1.0, e.ts - 100.0) for i, e in enumerate(events[:2])]
    fresh = [FeedbackEvent(f"new{i}", e.score_id, e.item, 1.0, wm.ts - 5.0) for i, e in enumerate(events[-4:-1])]  # events[-1] is the orphan
    _write(tmp_path / "day2", events_table(events[-20:] + late + fresh))  # re-sent, late and new events
    horizon_days = 30.0 / 86400
    assert main(["--events", str(tmp_path / "day2"), "--impressions", str(tmp_path / "imps"), "--params",
                 str(tmp_path / "params"), "--output", str(tmp_path / "params"),
                 "--dedup-horizon-days", str(horizon_days)]) == 0
    q = load_params(tmp_path / "params")
    pol, seen = _expected(p, imps, events + fresh)
    assert q.watermark.events == len(seen)
    np.testing.assert_allclose(q.d, pol.d, rtol=1e-12)
    np.testing.assert_allclose(q.b, pol.b, rtol=1e-12, atol=1e-12)
    ids = load_merged_event_ids(tmp_path / "params")
    ts = ids.column("ts").cast(pa.int64()).to_numpy() / 1e6
    assert ts.min() >= wm.ts - 30.0 - 1e-6 and {"new0", "new1", "new2"} <= set(ids.column("event_id").to_pylist())


def test_bad_events_rejected_nothing_written(spark, tmp_path):
    p, imps, events = _world(tmp_path)
    _write(tmp_path / "imps", impressions_table(imps))
    t = events_table(events[:5])
    rewards = t.column("reward").to_numpy().copy()
    rewards[2] = math.nan
    _write(tmp_path / "bad", t.set_column(3, "reward", pa.array(rewards, pa.float32())))
    with pytest.raises(ValueError, match="reward"):
        _run(tmp_path, "bad")
    _write(tmp_path / "nocol", events_table(events[:5]).drop(["score_id"]))
    with pytest.raises(ValueError, match="score_id"):
        _run(tmp_path, "nocol")
    assert list_versions(tmp_path / "params") == [1]
