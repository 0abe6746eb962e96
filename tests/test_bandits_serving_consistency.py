"""Batch and online agree: the batch job over the service's export equals the service's online statistics."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from recsys.bandits.edge_index import edge_keys
from recsys.bandits.params import BanditParams, load_params
from recsys.bandits.publish import publish_params

pytestmark = pytest.mark.spark


def test_batch_update_equals_online_statistics(spark, tmp_path):
    from jobs.bandit_update import main as update_main
    from recsys.serving.log_records import Impression, LoggedEvents, impressions_to_arrow
    from recsys.serving.state import ServingStats

    rng = np.random.default_rng(11)
    C, K = 6, 3
    ec = np.repeat(np.arange(C), 10)
    ei = np.concatenate([rng.choice(40, 10, replace=False) for _ in range(C)])
    users = np.arange(25)
    p = BanditParams.build(lam=1.0, alpha=0.3, k=K, w=10, edge_cluster=ec, edge_item=ei, user=np.repeat(users, K),
                           user_cluster=np.concatenate([rng.choice(C, K, replace=False) for _ in users]),
                           user_weight=rng.dirichlet(np.ones(K), users.size).astype(np.float32).ravel(),
                           centroids=rng.normal(size=(C, 4)).astype(np.float32))
    p = publish_params(tmp_path / "params", p)
    online = ServingStats(p)
    imps, ev_ids, sids, items, rewards = [], [], [], [], []
    for s in range(80):
        u = int(rng.integers(0, users.size))
        cl, w = online.context(u)
        shown = rng.choice(online.candidates(cl), 4, replace=False)
        imps.append(Impression(f"s{s}", u, p.version, 1.7e9 + s, np.asarray(cl, np.int32), np.asarray(w), shown))
        for j in shown[:2]:
            ev_ids.append(f"e{len(ev_ids)}")
            sids.append(f"s{s}")
            items.append(int(j))
            rewards.append(float(rng.choice([0.0, 0.5, 1.0])))
    by_sid = {im.score_id: im for im in imps}
    ev = LoggedEvents.from_impressions(ev_ids, sids, np.array(items), np.array(rewards), np.full(len(items), 1.7e9 + 99),
                                       [by_sid[s] for s in sids]).with_seq(np.arange(1, len(items) + 1))
    online.apply(*ev.terms(), n_events=len(ev))
    for name, table in (("events", ev.to_arrow()), ("impressions", impressions_to_arrow(imps))):
        (tmp_path / name).mkdir()
        pq.write_table(table, tmp_path / name / "part-0.parquet")
    assert update_main(["--events", str(tmp_path / "events"), "--impressions", str(tmp_path / "impressions"),
                        "--params", str(tmp_path / "params"), "--output", str(tmp_path / "params")]) == 0
    batch = load_params(tmp_path / "params")
    assert batch.watermark.seq == len(items) and batch.watermark.events == len(items)
    t = online.edges_table()
    order = np.argsort(edge_keys(t["cluster"], t["item"]))
    np.testing.assert_array_equal(batch.keys, edge_keys(t["cluster"], t["item"])[order])
    np.testing.assert_allclose(batch.d, t["d"][order], rtol=1e-12)
    np.testing.assert_allclose(batch.b, t["b"][order], rtol=1e-12, atol=1e-15)
