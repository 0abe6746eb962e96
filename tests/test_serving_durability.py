"""Durability: kill -9 during a bounded feedback load (SQLite, Redis), two Redis replicas, reload.

After a restart the statistics must equal a direct replay of the logged events, every acknowledged
event must be logged exactly once (none lost, none twice), and re-sending everything (at-least-once
clients) must change nothing for events already logged.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pyarrow as pa
import pytest

from recsys.bandits.params import Watermark, load_params
from recsys.bandits.publish import publish_params
from recsys.serving.synthetic import synthetic_params
from tests.serving_support import (AUTH, N_CLUSTERS, N_ITEMS, N_USERS, Load, assert_stats_equal, direct_replay,
                                   export_all, service_stats, start_redis, start_service)


@pytest.fixture()
def params_dir(tmp_path):
    publish_params(tmp_path / "params", synthetic_params(N_CLUSTERS, N_ITEMS, N_USERS, 25, 3, seed=11))
    return tmp_path / "params"


def _check_after_restart(client: httpx.Client, p, load: Load) -> list[dict]:
    logged, _ = export_all(client)
    ids = [e["event_id"] for e in logged]
    assert len(ids) == len(set(ids)), "an event was logged twice"
    sent = {e["event_id"] for b in load.batches for e in b}
    acked = {e["event_id"] for i in load.acked for e in load.batches[i]}
    assert acked <= set(ids), f"{len(acked - set(ids))} acknowledged events lost"
    assert set(ids) <= sent
    assert [e["seq"] for e in logged] == list(range(1, len(logged) + 1))
    assert_stats_equal(service_stats(client, range(N_CLUSTERS)), direct_replay(p, logged, load.users))
    return logged


def _resend_all(client: httpx.Client, load: Load, logged_before: set[str]) -> None:
    """At-least-once client: re-send every batch; logged events are duplicates, the rest are new."""
    for i, evs in enumerate(load.batches):
        r = client.post("/v1/feedback", json={"events": evs}, headers=AUTH)
        if r.status_code == 404:   # its impressions were not committed before the kill: never acknowledged
            assert i not in load.acked
            continue
        assert r.status_code == 200, r.text
        dup = sum(e["event_id"] in logged_before for e in evs)
        assert r.json()["duplicates"] == dup and r.json()["accepted"] == len(evs) - dup


@pytest.mark.parametrize("snapshot_every", [0, 150])
def test_sqlite_kill9_during_feedback_load(params_dir, tmp_path, snapshot_every):
    p = load_params(params_dir)
    store = f"sqlite:///{tmp_path / 'log.db'}"
    svc = start_service(params_dir, store, tmp_path, "--snapshot-every", str(snapshot_every))
    load = Load([svc.url], [svc.url], n_batches=400)
    load.thread.start()
    try:
        load.wait_acked(25)
        svc.kill9()                                   # mid-load: requests are in flight
    finally:
        svc.stop()
    load.thread.join(timeout=20)
    assert load.error is not None and len(load.acked) < 400, "the kill did not interrupt the load"
    if snapshot_every:
        assert (tmp_path / "log.db.snapshot.npz").exists()
    svc = start_service(params_dir, store, tmp_path, "--snapshot-every", str(snapshot_every))
    try:
        with svc.client() as c:
            logged = _check_after_restart(c, p, load)
            _resend_all(c, load, {e["event_id"] for e in logged})
            final, _ = export_all(c)
            assert_stats_equal(service_stats(c, range(N_CLUSTERS)), direct_replay(p, final, load.users))
    finally:
        svc.stop()


@pytest.fixture()
def redis_server(tmp_path):
    r = start_redis(tmp_path / "redis")
    yield r
    r.stop()


@pytest.mark.redis
def test_redis_kill9_and_two_replicas(params_dir, tmp_path, redis_server):
    p = load_params(params_dir)
    store = redis_server.url(1)
    a = start_service(params_dir, store, tmp_path / "a")
    b = start_service(params_dir, store, tmp_path / "b")
    try:
        # scores on one replica, feedback on the other: impressions are shared through Redis
        load = Load([a.url, b.url], [b.url, a.url], n_batches=400, seed=1)
        load.thread.start()
        load.wait_acked(25)
        a.kill9()
        load.thread.join(timeout=20)
        assert load.error is not None
        a = start_service(params_dir, store, tmp_path / "a")
        # the same batch sent to both replicas at once counts once
        with httpx.Client(timeout=10) as c:
            s = c.post(a.url + "/v1/score", json={"user": 3, "k": 10}).json()
            load.users[s["score_id"]] = 3
            race = [{"event_id": f"race-{x['item']}", "score_id": s["score_id"], "item": x["item"], "reward": 1.0}
                    for x in s["items"]]
            with ThreadPoolExecutor(2) as ex:
                rs = list(ex.map(lambda u: c.post(u + "/v1/feedback", json={"events": race}, headers=AUTH), [a.url, b.url]))
            assert all(r.status_code == 200 for r in rs)
            assert sum(r.json()["accepted"] for r in rs) == len(race)
            load.batches.append(race)
            load.acked.append(len(load.batches) - 1)
        for svc in (a, b):      # each replica tails the shared log: both converge to the same statistics
            with svc.client() as c:
                n_logged = len(export_all(c)[0])
                deadline = time.monotonic() + 10
                while c.get("/healthz").json()["applied_seq"] < n_logged and time.monotonic() < deadline:
                    time.sleep(0.02)
                logged = _check_after_restart(c, p, load)
        # Redis's own atomic aggregates equal the replay too (base version: d = λ, b = 0)
        import redis as redis_lib

        agg_d = redis_lib.Redis(port=redis_server.port, db=1).hgetall("{graphrec}:agg:d")
        agg_b = redis_lib.Redis(port=redis_server.port, db=1).hgetall("{graphrec}:agg:b")
        want = direct_replay(p.replace(d=np.zeros_like(p.d) + p.lam, b=np.zeros_like(p.b)), logged, load.users)
        got = {tuple(int(x) for x in k.decode().split(":")): (float(v) + p.lam, float(agg_b[k])) for k, v in agg_d.items()}
        assert_stats_equal(got, {k: v for k, v in want.items() if k in got})
        assert all(v == (p.lam, 0.0) for k, v in want.items() if k not in got)
        with b.client() as c:
            _resend_all(c, load, {e["event_id"] for e in logged})
    finally:
        a.stop()
        b.stop()


@pytest.mark.redis
def test_redis_server_kill9_loses_no_acknowledged_event(params_dir, tmp_path, redis_server):
    """kill -9 of redis-server itself (AOF, fsync always): acknowledged events survive its restart."""
    p = load_params(params_dir)
    svc = start_service(params_dir, redis_server.url(2), tmp_path / "a")
    try:
        load = Load([svc.url], [svc.url], n_batches=400, seed=4)
        load.thread.start()
        load.wait_acked(20)
        redis_server.proc.kill()
        redis_server.proc.wait()
        load.thread.join(timeout=30)
        assert load.error is not None
        restarted = start_redis(redis_server.dir, redis_server.port)
        redis_server.proc = restarted.proc              # the fixture stops this one
        with svc.client() as c:
            assert c.get("/healthz").status_code == 200     # scored from memory all along
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:              # the replica reconnects (pool, tail)
                if c.get("/v1/events/export", params={"since": 0, "limit": 1}, headers=AUTH).status_code == 200:
                    break
                time.sleep(0.2)
            logged = _check_after_restart(c, p, load)
            assert {e["event_id"] for e in logged} >= {e["event_id"] for i in load.acked for e in load.batches[i]}
        fresh = start_service(params_dir, redis_server.url(2), tmp_path / "b")   # a new replica replays the log
        try:
            with fresh.client() as c:
                _check_after_restart(c, p, load)
        finally:
            fresh.stop()
    finally:
        svc.stop()


def test_reload_replays_only_events_after_the_watermark(params_dir, tmp_path):
    """A batch version that contains the first events (watermark + merged ids): no double count."""
    p1 = load_params(params_dir)
    store = f"sqlite:///{tmp_path / 'log.db'}"
    svc = start_service(params_dir, store, tmp_path)
    try:
        load = Load([svc.url], [svc.url], n_batches=12, seed=2)
        load._run()
        assert load.error is None
        with svc.client() as c:
            logged, _ = export_all(c)
            # the "batch job": merge the first 300 events into v2 (watermark seq 300, merged ids), as published
            first = logged[:300]
            merged = direct_replay(p1, first, load.users)
            keys = sorted(merged)
            p2 = p1.replace(edge_cluster=np.array([k[0] for k in keys]), edge_item=np.array([k[1] for k in keys]),
                            d=np.array([merged[k][0] for k in keys]), b=np.array([merged[k][1] for k in keys]),
                            watermark=Watermark(events=300, seq=300))
            ids = pa.table({"event_id": [e["event_id"] for e in first],
                            "ts": pa.array([int(e["ts"] * 1e6) for e in first], pa.int64()).cast(pa.timestamp("us", tz="UTC"))})
            publish_params(params_dir, p2, merged_events=ids)
            # more feedback while the reload runs
            more = Load([svc.url], [svc.url], n_batches=6, seed=3)
            more.thread.start()
            r = c.post("/v1/params/reload", headers=AUTH)
            more.thread.join(timeout=60)
            assert more.error is None
            assert r.status_code == 200 and r.json()["version"] == 2, r.text
            users = {**load.users, **more.users}
            allev, _ = export_all(c)
            want = direct_replay(load_params(params_dir), allev[300:], users)
            assert_stats_equal(service_stats(c, range(N_CLUSTERS)), want)
            assert c.post("/v1/score", json={"user": 1}).json()["version"] == 2
    finally:
        svc.stop()
    # a restart on v2 gives the same statistics (replay after the watermark only)
    svc = start_service(params_dir, store, tmp_path)
    try:
        with svc.client() as c:
            assert_stats_equal(service_stats(c, range(N_CLUSTERS)), want)
    finally:
        svc.stop()
