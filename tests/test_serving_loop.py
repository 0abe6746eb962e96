"""The closed loop: serve → feedback → export → batch update (Spark) → reload, without double counting.

After the batch job merged the first events into ``v=2`` and the service reloaded it, the served
statistics must equal ``v=1`` plus a direct replay of *every* logged event (batch part + online
part), within 1e-9 relative.
"""
from __future__ import annotations

import pytest

from recsys.bandits.params import current_version, load_params
from recsys.bandits.publish import publish_params
from recsys.serving.synthetic import synthetic_params
from tests.serving_support import (AUTH, N_CLUSTERS, N_ITEMS, N_USERS, TOKEN, Load, assert_stats_equal, direct_replay,
                                   export_all, service_stats, start_service)


@pytest.mark.spark
def test_serve_export_batch_update_reload(spark, tmp_path):
    from jobs import bandit_update, export_events

    params = tmp_path / "params"
    publish_params(params, synthetic_params(N_CLUSTERS, N_ITEMS, N_USERS, 25, 3, seed=21))
    v1 = load_params(params)
    svc = start_service(params, f"sqlite:///{tmp_path / 'log.db'}", tmp_path)
    try:
        first = Load([svc.url], [svc.url], n_batches=8, seed=7)
        first._run()
        assert first.error is None
        export_events.run(export_events.ExportConfig(url=svc.url, output=str(tmp_path / "export")), TOKEN)
        report = bandit_update.run(spark, bandit_update.BanditUpdateConfig(
            str(tmp_path / "export" / "events"), str(tmp_path / "export" / "impressions"), str(params), str(params)))
        assert report["published"] == 2 and report["new_events"] == 400
        assert current_version(params) == 2 and load_params(params).watermark.seq == 400
        later = Load([svc.url], [svc.url], n_batches=4, seed=8)
        later._run()
        assert later.error is None
        with svc.client() as c:
            r = c.post("/v1/params/reload", headers=AUTH)
            assert r.status_code == 200, r.text
            assert r.json()["version"] == 2 and r.json()["replayed_events"] == 200
            logged, _ = export_all(c)
            users = {**first.users, **later.users}
            assert_stats_equal(service_stats(c, range(N_CLUSTERS)), direct_replay(v1, logged, users))
    finally:
        svc.stop()
