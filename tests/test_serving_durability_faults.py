"""Durability under races and faults (issue #31 item 5): a client told "duplicate" can rely on it,
a Redis outage is a clean 503 on every endpoint that needs the store and every retry succeeds once
it is back, and a full disk refuses writes with a clear error while acknowledging nothing that is
not durable — each followed by kill -9 and a restart that must hold every acknowledged event.
"""
from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import httpx
import numpy as np
import pytest

from recsys.bandits.params import load_params
from recsys.bandits.publish import publish_params
from recsys.serving.log_records import Impression, LoggedEvents
from recsys.serving.store_base import StoreUnavailable
from recsys.serving.store_sqlite import SqliteStore
from recsys.serving.synthetic import synthetic_params
from tests.serving_support import (AUTH, N_CLUSTERS, N_ITEMS, N_USERS, Load, assert_stats_equal, direct_replay,
                                   export_all, service_stats, start_redis, start_service)


@pytest.fixture()
def params_dir(tmp_path):
    publish_params(tmp_path / "params", synthetic_params(N_CLUSTERS, N_ITEMS, N_USERS, 25, 3, seed=11))
    return tmp_path / "params"


def _scored_events(c: httpx.Client, tag: str, n_scores: int, users: dict[str, int], reward: float = 1.0) -> list[dict]:
    """``n_scores`` score calls (10 items each) and one event per shown item."""
    evs = []
    for s in range(n_scores):
        u = (s * 7) % N_USERS
        r = c.post("/v1/score", json={"user": u, "k": 10})
        assert r.status_code == 200, r.text
        j = r.json()
        users[j["score_id"]] = u
        evs += [{"event_id": f"{tag}-{s}-{x['item']}", "score_id": j["score_id"], "item": x["item"], "reward": reward}
                for x in j["items"]]
    return evs


def _logged_ids(c: httpx.Client) -> list[str]:
    return [e["event_id"] for e in export_all(c)[0]]


# -- the same batch twice at once -----------------------------------------------------------------

def _same_batch_twice(url: str, evs: list[dict], kill) -> list[httpx.Response]:
    """Send one batch on two connections at once; kill -9 the service the moment the first 200 arrives."""
    body = json.dumps({"events": evs}).encode()
    go = threading.Barrier(2)

    def send(_):
        with httpx.Client(base_url=url, timeout=30) as c:
            go.wait()
            return c.post("/v1/feedback", content=body, headers={**AUTH, "Content-Type": "application/json"})

    with ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(send, i) for i in range(2)]
        done, _ = wait(futs, return_when=FIRST_COMPLETED)
        first = next(iter(done))
        if first.exception() is None and first.result().status_code == 200:
            kill()
        wait(futs)
    return [f.result() for f in futs if f.exception() is None]


def test_sqlite_duplicate_while_queued_survives_kill9(params_dir, tmp_path):
    """The copy of a batch still queued for commit is answered only once the original is durable:
    kill -9 right after the first 200 (original or copy) and every event is in the log."""
    p = load_params(params_dir)
    store = f"sqlite:///{tmp_path / 'log.db'}"
    users: dict[str, int] = {}
    acked: set[str] = set()
    svc = start_service(params_dir, store, tmp_path, "--snapshot-every", "0")
    try:
        for attempt in range(3):
            with svc.client() as c:
                evs = _scored_events(c, f"race{attempt}", 100, users)      # 1,000 events
            rs = _same_batch_twice(svc.url, evs, svc.kill9)
            ok = [r for r in rs if r.status_code == 200]
            assert ok, [r.text for r in rs]
            assert sum(r.json()["accepted"] for r in ok) <= len(evs)
            if len(ok) == 2:         # both answered before the kill: one logged them, the other saw them durable
                assert sorted(r.json()["accepted"] for r in ok) == [0, len(evs)]
            acked |= {e["event_id"] for e in evs}
            svc.stop()
            svc = start_service(params_dir, store, tmp_path, "--snapshot-every", "0")
            with svc.client() as c:
                ids = _logged_ids(c)
                assert len(ids) == len(set(ids)), "an event was logged twice"
                assert acked <= set(ids), f"attempt {attempt}: {len(acked - set(ids))} acknowledged events lost"
        with svc.client() as c:
            logged, _ = export_all(c)
            assert_stats_equal(service_stats(c, range(N_CLUSTERS)), direct_replay(p, logged, users))
    finally:
        svc.stop()


def _events(imp: Impression, ids: list[str]) -> LoggedEvents:
    n = len(ids)
    return LoggedEvents.from_impressions(ids, [imp.score_id] * n, np.full(n, int(imp.items[0])), np.ones(n),
                                         np.zeros(n), [imp] * n)


class _FailFirstCommit:
    """A write connection whose first ``COMMIT`` fails as on a full disk."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.failed = conn, False

    def execute(self, sql: str, *args):
        if sql == "COMMIT" and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, rows):
        return self.conn.executemany(sql, rows)


@pytest.mark.parametrize("original_fails", [False, True])
def test_sqlite_store_copy_waits_for_the_original(tmp_path, original_fails):
    """Store level, with the writer held: the copy is not answered while the original is queued;
    if the original's commit fails, the copy logs the events itself (they were never durable)."""
    async def main() -> None:
        st = SqliteStore(tmp_path / "log.db")
        delivered: list[LoggedEvents] = []
        await st.start(delivered.append, 0)
        gate = threading.Event()
        commit = st._commit
        wrapped: dict = {}

        def held_commit(conn, jobs):
            gate.wait(20)
            if original_fails:
                conn = wrapped.setdefault("c", _FailFirstCommit(conn))
            commit(conn, jobs)
        st._commit = held_commit
        imp = Impression("s1", 1, 1, 0.0, np.array([2], np.int32), np.array([1.0]), np.array([9]))
        await st.record_impression(imp)
        ev = _events(imp, [f"e{i}" for i in range(50)])
        original = asyncio.ensure_future(st.append(ev))
        await asyncio.sleep(0.05)
        copy = asyncio.ensure_future(st.append(ev))
        await asyncio.sleep(0.3)
        assert not copy.done(), "the copy was answered while the original was still queued"
        gate.set()
        if original_fails:
            with pytest.raises(StoreUnavailable, match="disk is full"):
                await original
            assert (await copy > 0).all()            # logged by the copy
        else:
            assert (await original > 0).all()
            assert (await copy == 0).all()
        logged = [e for b in st.read_events(0) for e in b.event_id]
        assert sorted(logged) == sorted(ev.event_id)
        assert sum(len(b) for b in delivered) == 50
        await st.close()
    asyncio.run(main())


# -- Redis outage -------------------------------------------------------------------------------

@pytest.fixture()
def redis_server(tmp_path):
    r = start_redis(tmp_path / "redis")
    yield r
    r.stop()


def _restart_redis(server) -> None:
    restarted = start_redis(server.dir, server.port)
    server.proc = restarted.proc            # the fixture stops this one


@pytest.mark.redis
def test_redis_outage_is_503_everywhere_and_retries_succeed(params_dir, tmp_path, redis_server):
    """Redis killed: scoring goes on from memory; feedback, export and reload answer 503 (never 500);
    once Redis is back every retried batch is accepted (no 404: no score record was dropped), and the
    acknowledged events survive a kill -9 of the service and of Redis."""
    p = load_params(params_dir)
    store = redis_server.url(3)
    users: dict[str, int] = {}
    svc = start_service(params_dir, store, tmp_path / "a")
    try:
        with svc.client() as c:
            before = [_scored_events(c, f"pre{i}", 1, users) for i in range(10)]   # scored, not yet fed back
            redis_server.proc.kill()
            redis_server.proc.wait()
            during = [_scored_events(c, f"out{i}", 1, users) for i in range(10)]   # scored during the outage
            batches = before + during
            for evs in batches:
                r = c.post("/v1/feedback", json={"events": evs}, headers=AUTH)
                assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable", r.text
            r = c.get("/v1/events/export", params={"since": 0}, headers=AUTH)
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable", r.text
            r = c.post("/v1/params/reload", json={}, headers=AUTH)
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable", r.text
            assert c.get("/healthz").status_code == 200
            assert c.get("/healthz").json()["applied_seq"] == 0
            _restart_redis(redis_server)
            for evs in batches:                                    # the client's retries
                r = c.post("/v1/feedback", json={"events": evs}, headers=AUTH)
                assert r.status_code == 200, r.text
                assert r.json()["accepted"] == len(evs)
            r = c.post("/v1/params/reload", json={}, headers=AUTH)
            assert r.status_code == 200, r.text
            logged, imps = export_all(c)
            assert sorted(e["event_id"] for e in logged) == sorted(e["event_id"] for b in batches for e in b)
            assert set(imps["score_id"]) == {b[0]["score_id"] for b in batches}
            assert 'status="500"' not in c.get("/metrics").text
        svc.kill9()
        redis_server.proc.kill()
        redis_server.proc.wait()
        _restart_redis(redis_server)
        svc = start_service(params_dir, store, tmp_path / "b")
        with svc.client() as c:
            again, _ = export_all(c)
            assert [e["event_id"] for e in again] == [e["event_id"] for e in logged]
            assert_stats_equal(service_stats(c, range(N_CLUSTERS)), direct_replay(p, again, users))
    finally:
        svc.stop()


# -- a full disk under the SQLite store ----------------------------------------------------------

@pytest.fixture()
def small_disk(tmp_path):
    """A 4 MiB tmpfs (root only; skipped where mounting is not permitted), unmounted afterwards."""
    d = tmp_path / "disk"
    d.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()[:200]}")
    try:
        yield d
    finally:
        if subprocess.run(["umount", str(d)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _fill(path) -> None:
    """Write zeros into ``path`` until the file system is full."""
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


def test_sqlite_disk_full_refuses_clearly_and_acknowledges_only_durable(params_dir, tmp_path, small_disk):
    p = load_params(params_dir)
    store = f"sqlite:///{small_disk / 'log.db'}"
    svc = start_service(params_dir, store, tmp_path, "--snapshot-every", "0")
    try:
        load = Load([svc.url], [svc.url], n_batches=4, seed=5)
        load._run()
        assert load.error is None and len(load.acked) == 4
        _fill(small_disk / "filler")
        with svc.client() as c:
            refused = _scored_events(c, "full", 3, load.users, reward=0.0)    # scoring goes on
            r = c.post("/v1/feedback", json={"events": refused}, headers=AUTH)
            assert r.status_code == 503, r.text
            err = r.json()["error"]
            assert err["code"] == "store_unavailable" and "disk is full" in err["message"], err
            assert str(small_disk) not in r.text
            assert c.get("/healthz").json()["applied_seq"] == 200          # nothing of it applied
            (small_disk / "filler").unlink()                               # space again: the retry is accepted
            r = c.post("/v1/feedback", json={"events": refused}, headers=AUTH)
            assert r.status_code == 200 and r.json()["accepted"] == len(refused), r.text
            load.batches.append(refused)
            load.acked.append(len(load.batches) - 1)
            _fill(small_disk / "filler")                                   # full again, then kill -9
            r = c.post("/v1/feedback", json={"events": [dict(e, event_id="x" + e["event_id"]) for e in refused]},
                       headers=AUTH)
            assert r.status_code == 503, r.text
        svc.kill9()
        (small_disk / "filler").unlink()
        svc = start_service(params_dir, store, tmp_path, "--snapshot-every", "0")
        with svc.client() as c:
            logged, imps = export_all(c)
            ids = [e["event_id"] for e in logged]
            acked = [e["event_id"] for i in load.acked for e in load.batches[i]]
            assert sorted(ids) == sorted(acked)                # every acknowledged event, nothing refused
            assert {e["score_id"] for e in refused} <= set(imps["score_id"])   # with their impressions
            assert_stats_equal(service_stats(c, range(N_CLUSTERS)), direct_replay(p, logged, load.users))
    finally:
        svc.stop()
