"""The scoring service tried as a hostile client would (issue #31 item 5), over real uvicorn on loopback.

Strict numbers, printable ids, a JSON content type, reload with absurd versions and no server path in
any answer, a client that disconnects mid-body, JSON errors for unknown paths and methods, the
published OpenAPI document (every route, every error response) checked against what the service
actually answers, and a seeded fuzz in which no request may get an undocumented status or a 500.
"""
from __future__ import annotations

import json
import re
import socket
import time
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from recsys.bandits.publish import publish_params
from recsys.serving import schemas
from recsys.serving.synthetic import synthetic_params
from tests.serving_support import AUTH, start_service

N_USERS = 50
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    publish_params(root / "params", synthetic_params(10, 200, N_USERS, 20, 3, seed=5))
    svc = start_service(root / "params", f"sqlite:///{root / 'log.db'}", root, "--max-body-bytes", "65536")
    svc.root = root
    yield svc
    svc.stop()


@pytest.fixture()
def c(service):
    with service.client() as client:
        yield client


def _err(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == code and err["message"], r.text
    return err


def _shown(c: httpx.Client, user: int = 1) -> tuple[str, int]:
    r = c.post("/v1/score", json={"user": user, "k": 3})
    assert r.status_code == 200, r.text
    return r.json()["score_id"], r.json()["items"][0]["item"]


def _no_500(c: httpx.Client) -> None:
    assert 'status="500"' not in c.get("/metrics").text


def test_reward_and_time_must_be_json_numbers(c):
    sid, item = _shown(c)
    before = c.get("/healthz").json()["applied_seq"]
    for field, raw in [("reward", '"0.5"'), ("reward", "true"), ("reward", "false"), ("reward", '"1"'), ("reward", "[1]"),
                       ("reward", "{}"), ("ts", '"1.7e9"'), ("ts", "true")]:
        ev = {"event_id": "num-x", "score_id": sid, "item": item, "reward": 1.0}
        body = json.dumps({"events": [ev]}).replace(f'"{field}": ' + json.dumps(ev.get(field, 0)), f'"{field}": {raw}')
        if field == "ts":
            body = body.replace("}]}", f', "ts": {raw}}}]}}')
        err = _err(c.post("/v1/feedback", content=body, headers={**AUTH, **JSON}), 422, "invalid_request")
        assert field in err["message"], err
    assert c.get("/healthz").json()["applied_seq"] == before            # nothing of them was logged
    r = c.post("/v1/feedback", json={"events": [{"event_id": "num-ok", "score_id": sid, "item": item, "reward": 1,
                                                 "ts": 1700000000}]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text     # integers are numbers


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                   "application/xml", "text/json", "application/json; charset=latin-1", ""])
def test_bodies_declared_as_anything_but_json_are_415(c, ctype):
    sid, item = _shown(c)
    ev = json.dumps({"events": [{"event_id": "ct-x", "score_id": sid, "item": item, "reward": 1.0}]})
    h = {"Content-Type": ctype}
    _err(c.post("/v1/score", content='{"user": 1}', headers=h), 415, "unsupported_media_type")
    _err(c.post("/v1/feedback", content=ev, headers={**AUTH, **h}), 415, "unsupported_media_type")
    _err(c.post("/v1/params/reload", content="{}", headers={**AUTH, **h}), 415, "unsupported_media_type")
    _err(c.post("/v1/feedback", content=ev, headers=h), 401, "unauthorized")   # authentication comes first
    assert c.post("/v1/score", content='{"user": 1}', headers={"Content-Type": "application/json; charset=UTF-8"}).status_code == 200
    assert c.post("/v1/score", content='{"user": 1}').status_code == 200        # undeclared: read as JSON


@pytest.mark.parametrize("bad", ["a\x00b", "a\nb", "a\rb", "a\tb", "a b", "a\x7fb", "caf\u00e9", "a\u202eb", "\ud800", "\x1b[31m"])
def test_ids_with_control_or_non_printable_characters_are_refused(c, bad):
    sid, item = _shown(c)
    # a lone surrogate (\\ud800) is no Unicode text: the JSON parser refuses it (400); the rest are 422
    status, code = (400, "bad_json") if bad == "\ud800" else (422, "invalid_request")
    body = json.dumps({"events": [{"event_id": bad, "score_id": sid, "item": item, "reward": 1.0}]})   # \\uXXXX escapes
    _err(c.post("/v1/feedback", content=body, headers={**AUTH, **JSON}), status, code)
    body = json.dumps({"events": [{"event_id": "id-ok", "score_id": sid[:8] + bad, "item": item, "reward": 1.0}]})
    _err(c.post("/v1/feedback", content=body, headers={**AUTH, **JSON}), status, code)
    body = b'{"events": [{"event_id": "a\\u0000b", "score_id": "%s", "item": %d, "reward": 1.0}]}' % (sid.encode(), item)
    _err(c.post("/v1/feedback", content=body, headers={**AUTH, **JSON}), 422, "invalid_request")
    ids = c.get("/v1/events/export", headers=AUTH).json()["events"]["event_id"]
    assert all(re.fullmatch(r"[!-~]{1,128}", i) for i in ids), ids


def test_reload_absurd_versions_and_no_server_path_in_any_answer(c, service):
    root = str(service.root)
    for v in (10**30, 2**63, 10**400):
        r = c.post("/v1/params/reload", content=f'{{"version": {v}}}', headers={**AUTH, **JSON})
        _err(r, 422, "invalid_request")
    for v in (7, 10**18, 2**63 - 1):
        err = _err(c.post("/v1/params/reload", json={"version": v}, headers=AUTH), 404, "unknown_version")
        assert err["message"] == f"parameter version {v} is not published"
    broken = service.root / "params" / "v=5"                  # a version folder without its tables
    broken.mkdir()
    try:
        err = _err(c.post("/v1/params/reload", json={"version": 5}, headers=AUTH), 409, "bad_version")
        assert "version 5" in err["message"] and root not in err["message"] and "/" not in err["message"].split("<params>")[0]
    finally:
        broken.rmdir()
    r = c.post("/v1/params/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["version"] == 1
    for r in (c.post("/v1/params/reload", json={"version": 9}, headers=AUTH), c.get("/healthz"),
              c.post("/v1/score", json={"user": 10**6})):
        assert root not in r.text
    _no_500(c)


def _partial_body(url: str, path: str, headers: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sk:
        sk.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
                   f"Content-Length: 5000\r\n\r\n".encode() + b'{"events": [' + b" " * 200)
        time.sleep(0.3)            # the route is reading the body when the client goes away


def test_client_disconnecting_mid_body_is_no_server_error(c, service):
    _partial_body(service.url, "/v1/score", "")
    _partial_body(service.url, "/v1/feedback", f"Authorization: {AUTH['Authorization']}\r\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = c.get("/metrics").text
        if all(f'graphrec_requests_total{{endpoint="{e}",status="499"}}' in m for e in ("score", "feedback")):
            break
        time.sleep(0.05)
    assert 'graphrec_requests_total{endpoint="score",status="499"} 1.0' in m
    assert 'graphrec_requests_total{endpoint="feedback",status="499"} 1.0' in m
    _no_500(c)
    log = service.log.read_text()
    assert "Traceback" not in log and "internal error" not in log, log[-2000:]


def test_unknown_paths_and_methods_answer_the_json_error_shape(c):
    _err(c.get("/v2/score"), 404, "not_found")
    r = c.get("/v1/score")
    _err(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
    _err(c.delete("/v1/feedback", headers=AUTH), 405, "method_not_allowed")


@pytest.mark.parametrize("value", ["\u0661\u0662", "1_0", " 5", "+5", "0x10", "5.0", "1e3", "9" * 40])
def test_query_integers_are_plain_decimal(c, value):
    _err(c.get("/v1/events/export", params={"since": value}, headers=AUTH), 422, "invalid_request")
    _err(c.get("/v1/stats", params={"cluster": value}), 422, "invalid_request")


# -- the published schema -------------------------------------------------------------------------

def _doc(c: httpx.Client) -> dict:
    r = c.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _refs(node) -> set[str]:
    if isinstance(node, dict):
        return ({node["$ref"]} if "$ref" in node else set()) | set().union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_openapi_lists_every_route_with_its_error_responses(c, service):
    from recsys.serving.app import create_app
    from recsys.serving.store_sqlite import SqliteStore

    doc = _doc(c)
    app = create_app(service.root / "params", SqliteStore(service.root / "other.db"))
    served = {(r.path, m) for r in app.routes for m in getattr(r, "methods", ()) or ()
              if r.path not in ("/openapi.json",) and m != "HEAD"}
    published = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    assert published == served and len(published) == 7
    ops = {(p, m.upper()): op for p, o in doc["paths"].items() for m, op in o.items()}
    want = {"/v1/score": {"200", "400", "404", "413", "415", "422", "503"},
            "/v1/feedback": {"200", "400", "401", "404", "413", "415", "422", "503"},
            "/v1/params/reload": {"200", "400", "401", "404", "409", "413", "415", "422", "503"},
            "/v1/events/export": {"200", "401", "422", "503"}, "/v1/stats": {"200", "422"},
            "/healthz": {"200"}, "/metrics": {"200"}}
    for (path, _), op in ops.items():
        assert set(op["responses"]) == want[path], path
        assert (op.get("security") == [{"bearer": []}]) == (path in ("/v1/feedback", "/v1/params/reload", "/v1/events/export"))
    comps = doc["components"]["schemas"]
    assert {r.split("/")[-1] for r in _refs(doc)} <= set(comps)        # every reference resolves
    ev = comps["EventIn"]
    assert ev["additionalProperties"] is False and ev["properties"]["reward"]["type"] == "number"
    assert ev["properties"]["event_id"]["pattern"] == "^[!-~]+$"
    assert comps["ReloadRequest"]["properties"]["version"]["anyOf"][0]["maximum"] == 2**63 - 1


def _conforms(doc: dict, method: str, path: str, r: httpx.Response) -> None:
    """The status is documented for the operation and the JSON body validates against the documented model."""
    op = doc["paths"].get(path, {}).get(method.lower())
    if op is None:                                    # unknown path or method: the framework-level shape
        assert r.status_code in (404, 405), r.text
        schemas.ErrorResponse.model_validate_json(r.content, strict=True)
        return
    assert str(r.status_code) in op["responses"], f"{method} {path}: undocumented {r.status_code}: {r.text[:300]}"
    content = op["responses"][str(r.status_code)]["content"]
    ctype = r.headers["content-type"].split(";")[0]
    assert ctype in content, (path, ctype)
    ref = content[ctype]["schema"].get("$ref")
    if ref:
        getattr(schemas, ref.split("/")[-1]).model_validate_json(r.content, strict=True)


def test_every_answer_matches_the_published_schema(c):
    doc = _doc(c)
    sid, item = _shown(c, 2)
    calls = [("POST", "/v1/score", {"json": {"user": 3, "k": 4}}), ("POST", "/v1/score", {"json": {"user": 10**9}}),
             ("POST", "/v1/score", {"json": {"user": "3"}}), ("POST", "/v1/score", {"content": b"{"}),
             ("POST", "/v1/score", {"content": b"x" * 70_000}),
             ("POST", "/v1/feedback", {"json": {"events": [{"event_id": "sch-1", "score_id": sid, "item": item,
                                                             "reward": 0.5}]}, "headers": AUTH}),
             ("POST", "/v1/feedback", {"json": {"events": [{"event_id": "sch-1", "score_id": sid, "item": item,
                                                             "reward": 0.5}]}, "headers": AUTH}),
             ("POST", "/v1/feedback", {"json": {"events": []}, "headers": AUTH}),
             ("POST", "/v1/feedback", {"json": {"events": [{"event_id": "e", "score_id": "nope", "item": 1, "reward": 0}]},
                                       "headers": AUTH}),
             ("POST", "/v1/feedback", {"json": {"events": []}}),
             ("POST", "/v1/params/reload", {"headers": AUTH}), ("POST", "/v1/params/reload", {"json": {"version": 3}, "headers": AUTH}),
             ("GET", "/v1/events/export", {"headers": AUTH}), ("GET", "/v1/events/export", {"params": {"limit": 0}, "headers": AUTH}),
             ("GET", "/v1/events/export", {"params": {"format": "parquet", "table": "events"}, "headers": AUTH}),
             ("GET", "/v1/stats", {"params": {"cluster": 2}}), ("GET", "/v1/stats", {}),
             ("GET", "/healthz", {}), ("GET", "/metrics", {}), ("PUT", "/v1/score", {}), ("GET", "/nowhere", {})]
    for method, path, kw in calls:
        _conforms(doc, method, path, c.request(method, path, **kw))


# -- fuzz ----------------------------------------------------------------------------------------

_CHARS = ["a", "Z", "0", " ", "\x00", "\n", "\t", "\x7f", "\u00e9", "\u202e", "\ud800", "\U0001f600", '"', "\\", "{", "]"]


def _value(rng: np.random.Generator, depth: int = 0):
    kind = int(rng.integers(0, 9 if depth < 3 else 6))
    if kind == 0:
        return int(rng.choice([0, 1, -1, 7, 2**31, 2**48, 2**63, -(2**63) - 1, 10**30]))
    if kind == 1:
        return float(rng.choice([0.5, -0.0, 1e308, -1e6 - 1, 1e-320, 3.14]))
    if kind == 2:
        return "".join(rng.choice(_CHARS) for _ in range(int(rng.integers(0, 12)))) * int(rng.choice([1, 1, 20]))
    if kind == 3:
        return bool(rng.integers(0, 2))
    if kind in (4, 5):
        return None
    if kind in (6, 7):
        return [_value(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
    keys = ["user", "k", "candidates", "events", "event_id", "score_id", "item", "reward", "ts", "version", "x"]
    return {str(rng.choice(keys)): _value(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))}


def _mutate(rng: np.random.Generator, body: dict):
    """A valid body with one field replaced, dropped or added, or something else entirely."""
    b = json.loads(json.dumps(body))
    target = b["events"][0] if "events" in b and rng.random() < 0.6 else b
    op = int(rng.integers(0, 5))
    if op == 0 and target:
        target[str(rng.choice(list(target)))] = _value(rng)
    elif op == 1 and target:
        target.pop(str(rng.choice(list(target))))
    elif op == 2:
        target[str(rng.choice(["x", "user", "k", "ts", "version"]))] = _value(rng)
    elif op == 3:
        return _value(rng)
    return b


def test_fuzz_never_500_and_every_status_documented(c):
    doc = _doc(c)
    rng = np.random.default_rng(31)
    sid, item = _shown(c, 4)
    valid = {"/v1/score": {"user": 4, "k": 5, "candidates": [item, item + 1]},
             "/v1/feedback": {"events": [{"event_id": "fz", "score_id": sid, "item": item, "reward": 1.0, "ts": 1.7e9}]},
             "/v1/params/reload": {"version": 1}}
    ctypes = [None, None, None, "application/json", "text/plain", "application/json; charset=utf-16", "application/x+json"]
    for i in range(400):
        path = str(rng.choice(list(valid) + ["/v1/events/export", "/v1/stats"]))
        h = dict(AUTH) if rng.random() < 0.8 else {"Authorization": str(rng.choice(["Bearer x", "Basic abc", "Bearer"]))}
        if path in valid:
            ct = ctypes[int(rng.integers(0, len(ctypes)))]
            if ct:
                h["Content-Type"] = ct
            b = _mutate(rng, valid[path])
            if path == "/v1/feedback" and isinstance(b, dict) and isinstance(b.get("events"), list) and b["events"] \
                    and isinstance(b["events"][0], dict):
                b["events"][0]["event_id"] = f"fz{i}"
            raw = json.dumps(b).encode()
            if rng.random() < 0.1:
                raw = raw[: int(rng.integers(0, len(raw) + 1))]       # truncated
            if rng.random() < 0.05:
                raw = bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
            r = c.post(path, content=raw, headers=h)
            _conforms(doc, "POST", path, r)
        else:
            q = "&".join(f"{rng.choice(['since', 'limit', 'format', 'table', 'cluster', 'x'])}="
                         + quote(str(_value(rng))[:50], safe="", errors="surrogatepass")   # even invalid UTF-8
                         for _ in range(int(rng.integers(0, 3))))
            r = c.get(f"{path}?{q}", headers=h)
            _conforms(doc, "GET", path, r)
        assert r.status_code != 500, (path, r.text)
    assert c.get("/healthz").json()["status"] == "ok"
    _no_500(c)
