"""Cold start over HTTP: personal, social and fallback serving paths, and the batch job treating them as the service does."""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from recsys.bandits.params import current_version, load_merged_event_ids, load_params
from recsys.bandits.publish import publish_params
from recsys.serving.app import create_app
from recsys.serving.service import ServiceConfig
from recsys.serving.store_sqlite import SqliteStore
from recsys.serving.synthetic import synthetic_params
from tests.serving_support import AUTH, TOKEN, assert_stats_equal, direct_replay, export_all, service_stats, start_service

N_CLUSTERS, N_USERS = 10, 50
SOCIAL = range(40, 50)                       # users placed from the social side
POPULAR = ([3, 5, 17, 99_999], [50, 30, 30, 10])   # count desc, item asc
UNKNOWN = 10_000


def _params(popular=True):
    p = synthetic_params(N_CLUSTERS, 200, N_USERS, 20, 3, seed=5)
    path = np.where(np.isin(p.user, list(SOCIAL)), 1, 0).astype(np.int8)
    kw = {"popular_item": POPULAR[0], "popular_count": POPULAR[1]} if popular else {}
    return p.replace(user_path=path, **kw)


@pytest.fixture()
def params_dir(tmp_path):
    publish_params(tmp_path / "params", _params())
    return tmp_path / "params"


def _score(c, user, **kw):
    r = c.post("/v1/score", json={"user": user, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def _metric(text: str, path: str) -> float:
    return float(re.search(rf'graphrec_score_paths_total{{path="{path}"}} (\S+)', text).group(1))


def test_three_paths_over_http(params_dir, tmp_path):
    p = load_params(params_dir)
    svc = start_service(params_dir, f"sqlite:///{tmp_path / 'log.db'}", tmp_path)
    try:
        with svc.client() as c:
            m0 = c.get("/metrics").text
            assert [_metric(m0, x) for x in ("personal", "social", "fallback")] == [0.0, 0.0, 0.0]
            per, soc = _score(c, 1, k=5), _score(c, 45, k=5)
            assert (per["path"], soc["path"]) == ("personal", "social")
            assert len(per["items"]) == len(soc["items"]) == 5
            fb = _score(c, UNKNOWN, k=10)
            total = sum(POPULAR[1])
            assert fb["path"] == "fallback" and fb["user"] == UNKNOWN and len(fb["score_id"]) == 32
            assert [x["item"] for x in fb["items"]] == POPULAR[0]
            assert [x["score"] for x in fb["items"]] == pytest.approx([n / total for n in POPULAR[1]], rel=1e-12)
            assert all(x["uncertainty"] == 0.0 and x["mean"] == x["score"] for x in fb["items"])
            ranked = _score(c, UNKNOWN + 1, candidates=[17, 424_242, 3], k=2)
            assert [x["item"] for x in ranked["items"]] == [3, 17] and ranked["path"] == "fallback"
            before = service_stats(c, range(N_CLUSTERS))
            # feedback on fallback items is logged and acknowledged, and learns nothing
            evs = [{"event_id": f"f{x['item']}", "score_id": fb["score_id"], "item": x["item"], "reward": 1.0}
                   for x in fb["items"]]
            r = c.post("/v1/feedback", json={"events": evs}, headers=AUTH)
            assert r.status_code == 200 and r.json()["accepted"] == 4
            assert c.get("/healthz").json()["applied_seq"] == 4
            assert service_stats(c, range(N_CLUSTERS)) == before
            # feedback on personal and social impressions learns, as a direct replay of the version says
            users = {fb["score_id"]: UNKNOWN, per["score_id"]: 1, soc["score_id"]: 45}
            more = [{"event_id": f"{s['path']}{x['item']}", "score_id": s["score_id"], "item": x["item"], "reward": 1.0}
                    for s in (per, soc) for x in s["items"][:3]]
            assert c.post("/v1/feedback", json={"events": more}, headers=AUTH).json()["accepted"] == 6
            after = service_stats(c, range(N_CLUSTERS))
            assert after != before
            assert_stats_equal(after, direct_replay(p, evs + more, users))
            m = c.get("/metrics").text
            assert [_metric(m, x) for x in ("personal", "social", "fallback")] == [1.0, 1.0, 2.0]
            # the exported impressions of a fallback score id have no cluster context
            _, imps = export_all(c)
            rows = [(cl, w) for s, cl, w in zip(imps["score_id"], imps["cluster"], imps["weight"]) if s == fb["score_id"]]
            assert rows == [(-1, 0.0)] * 4
    finally:
        svc.stop()


def test_unknown_user_without_popular_items_keeps_the_404(tmp_path):
    publish_params(tmp_path / "params", _params(popular=False))
    app = create_app(tmp_path / "params", SqliteStore(tmp_path / "log.db"), ServiceConfig(token=TOKEN))
    with TestClient(app) as c:
        r = c.post("/v1/score", json={"user": UNKNOWN})
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_user"
        assert "popular" in r.json()["error"]["message"]
        assert _score(c, 45)["path"] == "social"
        assert _metric(c.get("/metrics").text, "fallback") == 0.0


@pytest.mark.spark
def test_batch_update_treats_fallback_and_social_impressions_as_the_service_does(spark, params_dir, tmp_path):
    from jobs import bandit_update, export_events

    svc = start_service(params_dir, f"sqlite:///{tmp_path / 'log.db'}", tmp_path)
    try:
        with svc.client() as c:
            sent, fallback_ids = [], set()
            for i, user in enumerate([2, 41, UNKNOWN, 7, 48, UNKNOWN + 3]):
                s = _score(c, user, k=4)
                evs = [{"event_id": f"e{i}-{x['item']}", "score_id": s["score_id"], "item": x["item"],
                        "reward": float(j % 2)} for j, x in enumerate(s["items"])]
                assert c.post("/v1/feedback", json={"events": evs}, headers=AUTH).status_code == 200
                sent += evs
                if s["path"] == "fallback":
                    fallback_ids |= {e["event_id"] for e in evs}
            assert len(fallback_ids) == 8
            online = service_stats(c, range(N_CLUSTERS))
            export_events.run(export_events.ExportConfig(url=svc.url, output=str(tmp_path / "export")), TOKEN)
            report = bandit_update.run(spark, bandit_update.BanditUpdateConfig(
                str(tmp_path / "export" / "events"), str(tmp_path / "export" / "impressions"), str(params_dir),
                str(params_dir)))
            # every event is merged (fallback ones too: they are not left over as unmatched) ...
            assert report["published"] == 2 and report["new_events"] == len(sent)
            batch = load_params(params_dir)
            assert batch.watermark.events == len(sent) and batch.watermark.seq == len(sent)
            assert fallback_ids <= set(load_merged_event_ids(params_dir).column("event_id").to_pylist())
            # ... and the statistics equal the service's online ones exactly (fallback adds nothing)
            got = {(int(cl), int(it)): (d, b) for cl, it, d, b in zip(batch.edge_cluster, batch.edge_item, batch.d, batch.b)}
            assert_stats_equal(got, online, rtol=1e-12)
            assert (batch.user_path == load_params(params_dir, 1).user_path).all() and batch.num_popular == 4
            r = c.post("/v1/params/reload", headers=AUTH)
            assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["replayed_events"] == 0
            assert_stats_equal(service_stats(c, range(N_CLUSTERS)), online, rtol=1e-12)
            assert _score(c, UNKNOWN, k=2)["path"] == "fallback"
        assert current_version(params_dir) == 2
        # an impression row with cluster -1 must carry weight 0: anything else is refused
        t = pq.read_table(tmp_path / "export" / "impressions")
        w = t.column("weight").to_numpy().copy()
        w[np.asarray(t.column("cluster")) == -1] = 0.5
        (tmp_path / "bad").mkdir()
        pq.write_table(t.set_column(t.schema.get_field_index("weight"), "weight", pa.array(w, pa.float32())),
                       tmp_path / "bad" / "p.parquet")
        with pytest.raises(ValueError, match="weight"):
            bandit_update.run(spark, bandit_update.BanditUpdateConfig(
                str(tmp_path / "export" / "events"), str(tmp_path / "bad"), str(params_dir), str(params_dir)))
        assert current_version(params_dir) == 2
    finally:
        svc.stop()
