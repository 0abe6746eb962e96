"""HTTP error contract of the scoring service, through TestClient and over real uvicorn on loopback."""
from __future__ import annotations

import io
import socket

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from recsys.bandits.params import load_params
from recsys.bandits.publish import publish_params
from recsys.serving.app import create_app
from recsys.serving.service import ServiceConfig
from recsys.serving.store_sqlite import SqliteStore
from recsys.serving.synthetic import synthetic_params
from tests.serving_support import AUTH, TOKEN, direct_replay, service_stats, start_service

N_CLUSTERS = 10


@pytest.fixture()
def params_dir(tmp_path):
    publish_params(tmp_path / "params", synthetic_params(N_CLUSTERS, 200, 50, 20, 3, seed=5))
    return tmp_path / "params"


@pytest.fixture()
def client(params_dir, tmp_path):
    app = create_app(params_dir, SqliteStore(tmp_path / "log.db"), ServiceConfig(token=TOKEN, max_body_bytes=64 * 1024, max_events=50))
    with TestClient(app) as c:
        yield c


def _err(r, status, code):
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text
    assert r.json()["error"]["message"]


def _score(client, user=1, **kw):
    r = client.post("/v1/score", json={"user": user, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def test_score_returns_ranked_items_and_records_impression(client):
    j = _score(client, user=4, k=5)
    assert j["version"] == 1 and len(j["items"]) == 5 and len(j["score_id"]) == 32
    scores = [x["score"] for x in j["items"]]
    assert scores == sorted(scores, reverse=True)
    for x in j["items"]:
        assert x["score"] == pytest.approx(x["mean"] + 0.5 * x["uncertainty"])
    c = _score(client, user=4, candidates=[3, 9, 123456789], k=10)
    assert sorted(x["item"] for x in c["items"]) == [3, 9, 123456789]
    ex = client.get("/v1/events/export", headers=AUTH).json()
    assert ex["count"] == 0       # no events yet; impressions are exported with the events that use them


@pytest.mark.parametrize("body,code", [
    ({"user": 1, "k": 0}, "invalid_request"),
    ({"user": 1, "k": 1001}, "invalid_request"),
    ({"user": -1}, "invalid_request"),
    ({"user": "1"}, "invalid_request"),
    ({"user": 1, "candidates": [1, 1]}, "invalid_request"),
    ({"user": 1, "candidates": []}, "invalid_request"),
    ({"user": 1, "candidates": [-5]}, "invalid_request"),
    ({"user": 1, "extra": True}, "invalid_request"),
    ({}, "invalid_request"),
])
def test_score_rejects_bad_requests(client, body, code):
    _err(client.post("/v1/score", json=body), 422, code)


def test_score_error_cases(client):
    _err(client.post("/v1/score", json={"user": 10_000}), 404, "unknown_user")
    _err(client.post("/v1/score", content=b"{not json"), 400, "bad_json")
    _err(client.post("/v1/score", content=b"[" * 70_000), 413, "body_too_large")
    _err(client.post("/v1/score", json={"user": 1, "candidates": list(range(10_001))}), 422, "invalid_request")


def test_feedback_contract(client):
    s = _score(client, user=2, k=3)
    sid, item = s["score_id"], s["items"][0]["item"]
    ev = {"event_id": "e1", "score_id": sid, "item": item, "reward": 1.0}
    _err(client.post("/v1/feedback", json={"events": [ev]}), 401, "unauthorized")
    _err(client.post("/v1/feedback", json={"events": [ev]}, headers={"Authorization": "Bearer wrong-token-xx"}), 401, "unauthorized")
    _err(client.post("/v1/feedback", json={"events": [ev]}, headers={"Authorization": TOKEN}), 401, "unauthorized")
    for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e999", b'"x"', b"null", b"2e6"):
        body = b'{"events": [{"event_id": "e1", "score_id": "%s", "item": %d, "reward": %s}]}' % (sid.encode(), item, raw)
        _err(client.post("/v1/feedback", content=body, headers=AUTH), 422, "invalid_request")
    _err(client.post("/v1/feedback", json={"events": [dict(ev, score_id="nope")]}, headers=AUTH), 404, "unknown_score_id")
    not_shown = next(i for i in range(10_000) if i not in {x["item"] for x in s["items"]})
    _err(client.post("/v1/feedback", json={"events": [dict(ev, item=not_shown)]}, headers=AUTH), 422, "item_not_shown")
    _err(client.post("/v1/feedback", json={"events": [dict(ev, event_id=f"x{i}") for i in range(51)]}, headers=AUTH),
         413, "too_many_events")
    _err(client.post("/v1/feedback", json={"events": []}, headers=AUTH), 422, "invalid_request")
    _err(client.post("/v1/feedback", json={"events": [dict(ev, event_id="")]}, headers=AUTH), 422, "invalid_request")
    _err(client.post("/v1/feedback", json={"events": [dict(ev, event_id="x" * 129)]}, headers=AUTH), 422, "invalid_request")
    # nothing was accepted by the rejected batches
    assert client.get("/healthz").json()["applied_seq"] == 0
    r = client.post("/v1/feedback", json={"events": [ev, dict(ev, event_id="e2", reward=0.0)]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["accepted"] == 2 and r.json()["last_seq"] == 2
    r = client.post("/v1/feedback", json={"events": [ev, dict(ev, event_id="e3")]}, headers=AUTH)
    assert r.json() == {"accepted": 1, "duplicates": 1, "last_seq": 3, "version": 1}


def test_feedback_changes_scores_and_stats_equal_direct_replay(client, params_dir):
    p = load_params(params_dir)
    sent, users = [], {}
    for i in range(30):
        s = _score(client, user=i % 7, k=4)
        users[s["score_id"]] = i % 7
        evs = [{"event_id": f"e{i}-{j}", "score_id": s["score_id"], "item": x["item"], "reward": float((i + j) % 3 == 0)}
               for j, x in enumerate(s["items"])]
        assert client.post("/v1/feedback", json={"events": evs}, headers=AUTH).status_code == 200
        sent += evs
    got = service_stats(client, range(N_CLUSTERS))
    want = direct_replay(p, sent, users)
    assert sorted(got) == sorted(want)
    np.testing.assert_allclose([got[k] for k in sorted(want)], [want[k] for k in sorted(want)], rtol=1e-12)
    m = client.get("/metrics").text
    assert 'graphrec_requests_total{endpoint="feedback",status="200"} 30.0' in m
    assert "graphrec_events_applied_total 120.0" in m
    assert 'graphrec_request_seconds_bucket{endpoint="score"' in m


def test_export_parquet_and_auth(client):
    s = _score(client, user=3, k=2)
    client.post("/v1/feedback", json={"events": [{"event_id": "a", "score_id": s["score_id"], "item": s["items"][1]["item"],
                                                  "reward": 0.5, "ts": 1.7e9}]}, headers=AUTH)
    _err(client.get("/v1/events/export"), 401, "unauthorized")
    _err(client.get("/v1/events/export?since=abc", headers=AUTH), 422, "invalid_request")
    _err(client.get("/v1/events/export?format=parquet", headers=AUTH), 422, "invalid_request")
    ev = pq.read_table(io.BytesIO(client.get("/v1/events/export?format=parquet&table=events", headers=AUTH).content))
    assert ev.column("event_id").to_pylist() == ["a"] and ev.column("reward").to_pylist() == [0.5]
    assert str(ev.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    im = pq.read_table(io.BytesIO(client.get("/v1/events/export?format=parquet&table=impressions", headers=AUTH).content))
    assert im.num_rows == 3 * 2 and set(im.column("score_id").to_pylist()) == {s["score_id"]}
    assert client.get("/v1/events/export?since=1", headers=AUTH).json()["count"] == 0


def test_stats_and_reload_errors(client):
    _err(client.get("/v1/stats"), 422, "invalid_request")
    _err(client.get("/v1/stats?cluster=-3"), 422, "invalid_request")
    _err(client.post("/v1/params/reload", json={}), 401, "unauthorized")
    _err(client.post("/v1/params/reload", json={"version": 7}, headers=AUTH), 404, "unknown_version")
    _err(client.post("/v1/params/reload", json={"version": "x"}, headers=AUTH), 422, "invalid_request")
    r = client.post("/v1/params/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["version"] == 1


def test_real_uvicorn_error_contract_and_survives_garbage(params_dir, tmp_path):
    svc = start_service(params_dir, f"sqlite:///{tmp_path / 'log.db'}", tmp_path, "--max-body-bytes", "4096")
    try:
        with svc.client() as c:
            s = c.post("/v1/score", json={"user": 1, "k": 3})
            assert s.status_code == 200
            assert c.post("/v1/score", json={"user": 999_999}).status_code == 404
            assert c.post("/v1/score", json={"user": 1, "k": 5000}).status_code == 422
            assert c.post("/v1/score", content=b"x" * 5000).status_code == 413
            assert c.post("/v1/feedback", json={"events": [{"event_id": "e", "score_id": "zz", "item": 1, "reward": 1}]},
                          headers=AUTH).status_code == 404
            body = b'{"events":[{"event_id":"e","score_id":"%s","item":%d,"reward":NaN}]}' % (
                s.json()["score_id"].encode(), s.json()["items"][0]["item"])
            assert c.post("/v1/feedback", content=body, headers=AUTH).status_code == 422
            # chunked body without Content-Length over the limit
            r = c.post("/v1/score", content=iter([b"{" * 3000, b" " * 3000]))
            assert r.status_code == 413
        host, port = svc.url.removeprefix("http://").split(":")
        for junk in (b"\x00\xff garbage\r\n\r\n", b"POST /v1/score HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n{",
                     b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"):
            with socket.create_connection((host, int(port)), timeout=5) as sk:
                sk.sendall(junk)
                try:
                    sk.recv(1024)
                except OSError:
                    pass
        assert httpx.get(svc.url + "/healthz").json()["status"] == "ok"
        assert svc.proc.poll() is None
    finally:
        svc.stop()


def test_store_failure_is_503_and_nothing_is_acknowledged(client, monkeypatch):
    import sqlite3

    svc = client.app.state.service
    s = _score(client, user=6, k=2)
    ev = {"event_id": "f1", "score_id": s["score_id"], "item": s["items"][0]["item"], "reward": 1.0}

    async def broken(events):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(svc.store, "append", broken)
    _err(client.post("/v1/feedback", json={"events": [ev]}, headers=AUTH), 503, "store_unavailable")
    assert client.get("/healthz").json()["applied_seq"] == 0
    monkeypatch.undo()
    r = client.post("/v1/feedback", json={"events": [ev]}, headers=AUTH)      # the client's retry
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_skip_mode_from_the_manifest_is_honoured_over_http(tmp_path):
    """off_graph="skip": only the user's clusters with an edge to an item score it, and events off the graph are not applied."""
    p = synthetic_params(N_CLUSTERS, 200, 50, 20, 3, seed=5).replace(extra={"off_graph": "skip"})
    publish_params(tmp_path / "params", p)
    cl, w = p.context(np.array([4]))
    cl, w = cl[0], w[0].astype(np.float64)
    edges = {(int(c), int(i)) for c, i in zip(p.edge_cluster, p.edge_item)}
    only0 = next(i for i in np.unique(p.edge_item).tolist()
                 if (cl[0], i) in edges and all((c, i) not in edges for c in cl[1:].tolist()))
    off = 123_456_789                                   # an edge of none of the user's clusters
    app = create_app(tmp_path / "params", SqliteStore(tmp_path / "log.db"), ServiceConfig(token=TOKEN))
    with TestClient(app) as c:
        n_edges = c.get("/healthz").json()["edges"]
        s = _score(c, user=4, candidates=[only0, off], k=2)
        got = {x["item"]: x for x in s["items"]}
        assert got[off]["mean"] == 0.0 and got[off]["uncertainty"] == 0.0
        assert got[only0]["uncertainty"] == pytest.approx(np.sqrt(w[0] ** 2 / p.lam), rel=1e-12)
        evs = [{"event_id": f"k{j}", "score_id": s["score_id"], "item": it, "reward": 1.0} for j, it in enumerate((only0, off))]
        r = c.post("/v1/feedback", json={"events": evs}, headers=AUTH)
        assert r.status_code == 200 and r.json()["accepted"] == 2       # logged (the batch job sees them) ...
        assert c.get("/healthz").json()["edges"] == n_edges              # ... but no edge is created
        tables = {int(k): c.get(f"/v1/stats?cluster={int(k)}").json() for k in cl}
        i0 = tables[int(cl[0])]["items"].index(only0)
        assert tables[int(cl[0])]["d"][i0] == pytest.approx(p.lam + w[0] ** 2, rel=1e-12)
        assert tables[int(cl[0])]["b"][i0] == pytest.approx(w[0], rel=1e-12)
        assert all(off not in t["items"] for t in tables.values())
        assert all(only0 not in tables[int(k)]["items"] for k in cl[1:])
        again = {x["item"]: x for x in _score(c, user=4, candidates=[only0, off], k=2)["items"]}
        assert again[only0]["mean"] == pytest.approx(w[0] * w[0] / (p.lam + w[0] ** 2), rel=1e-12)
        assert again[off]["mean"] == 0.0
