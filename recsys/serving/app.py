"""FastAPI app of the bandit scoring service: ``create_app(policy, store)``.

Routes only read the request (body with a size limit and a JSON content type, headers, query
values), delegate to :mod:`recsys.serving.handlers` and turn results or
:class:`~recsys.serving.handlers.ApiError` into JSON responses; any other exception becomes a 500
with a JSON body (the process keeps serving).  Latency and status of every call go to the
Prometheus metrics; a client that disconnects before its body is read is counted as 499 (client
closed request), not as an error of the service.  The routes are those of
:data:`recsys.serving.openapi.ROUTES`, published at ``/openapi.json``; an unknown path or method
gets the same JSON error shape (404 ``not_found``, 405 ``method_not_allowed``).

>>> import tempfile, pathlib
>>> from recsys.serving.store_sqlite import SqliteStore
>>> app = create_app(pathlib.Path(tempfile.mkdtemp()), SqliteStore(pathlib.Path(tempfile.mkdtemp()) / "x.db"))
>>> sorted(r.path for r in app.routes if r.path.startswith("/v1"))
['/v1/events/export', '/v1/feedback', '/v1/params/reload', '/v1/score', '/v1/stats']
"""
from __future__ import annotations

import json
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from recsys.serving import handlers
from recsys.serving.handlers import ApiError
from recsys.serving.metrics import ServiceMetrics
from recsys.serving.openapi import ROUTES, openapi_document
from recsys.serving.service import BanditService, ServiceConfig
from recsys.serving.store_base import EventStore

log = logging.getLogger(__name__)

try:  # orjson is ~5x faster on the score responses; plain json works the same
    import orjson

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - depends on the environment
    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


def _json(obj: object, status: int = 200) -> Response:
    return Response(_dumps(obj), status_code=status, media_type="application/json")


CLIENT_CLOSED = 499        # nginx's "client closed request": counted, never answered


async def read_body(request: Request, limit: int) -> bytes:
    """The JSON request body: 415 if declared otherwise, 413 as soon as it is known to exceed ``limit`` bytes."""
    handlers.check_content_type(request.headers.get("content-type"))
    cl = request.headers.get("content-length")
    if cl is not None:
        if not (cl.isascii() and cl.isdigit()):
            raise ApiError(400, "bad_request", "invalid Content-Length")
        if int(cl) > limit:
            raise ApiError(413, "body_too_large", f"request body of {cl} bytes exceeds {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "body_too_large", f"request body exceeds {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(CLIENT_CLOSED, "client_closed_request", "the client disconnected before sending its body") from None
    return b"".join(chunks)


def create_app(policy: str | os.PathLike, store: EventStore, config: ServiceConfig | None = None) -> FastAPI:
    """Build the service app.

    Args:
        policy: the Diag-LinUCB policy's parameter directory (``PARAMS_DIR`` with ``v=<n>/`` and
            ``CURRENT``); the version named by ``CURRENT`` is served on start.
        store: where impressions and the event log live (:class:`~recsys.serving.store_sqlite.SqliteStore`
            or :class:`~recsys.serving.store_redis.RedisStore`).
        config: limits and the bearer token for writes.
    """
    metrics = ServiceMetrics()
    svc = BanditService(policy, store, config or ServiceConfig(), metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await svc.start()
        try:
            yield
        finally:
            await svc.close()

    app = FastAPI(title="graphrec bandit scoring service", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.openapi_schema = openapi_document(app.title)
    app.state.service = svc

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        resp = _json({"error": {"code": code, "message": str(exc.detail)}}, exc.status_code)
        resp.headers.update(exc.headers or {})
        return resp
    app.add_exception_handler(StarletteHTTPException, http_error)
    limit = svc.config.max_body_bytes

    async def run(endpoint: str, fn: Callable[[], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        try:
            resp = await fn()
        except ApiError as e:
            resp = _json(e.body(), e.status)
            if e.status == CLIENT_CLOSED:
                log.info("%s: client disconnected before sending its body", endpoint)
        except Exception:  # never let bad input (or a bug) take the service down
            log.exception("internal error on %s", endpoint)
            resp = _json({"error": {"code": "internal", "message": "internal server error"}}, 500)
        metrics.observe(endpoint, resp.status_code, time.perf_counter() - t0)
        return resp

    async def score_route(request: Request) -> Response:
        async def go() -> Response:
            return _json(await handlers.score_and_record(await read_body(request, limit), svc))
        return await run("score", go)

    async def feedback_route(request: Request) -> Response:
        async def go() -> Response:
            handlers.check_auth(request.headers.get("authorization"), svc.config.token)
            return _json(await handlers.feedback(await read_body(request, limit), request.headers.get("authorization"), svc))
        return await run("feedback", go)

    async def reload_route(request: Request) -> Response:
        async def go() -> Response:
            handlers.check_auth(request.headers.get("authorization"), svc.config.token)
            return _json(await handlers.reload(await read_body(request, limit), request.headers.get("authorization"), svc))
        return await run("reload", go)

    async def export_route(request: Request) -> Response:
        async def go() -> Response:
            q = request.query_params
            payload, kind = await handlers.export(q.get("since"), q.get("limit"), q.get("table"), q.get("format"),
                                                  request.headers.get("authorization"), svc)
            if kind == "parquet":
                return Response(payload, media_type="application/vnd.apache.parquet")
            return _json(payload)
        return await run("export", go)

    async def stats_route(request: Request) -> Response:
        async def go() -> Response:
            return _json(handlers.stats(request.query_params.get("cluster"), svc))
        return await run("stats", go)

    async def health_route(request: Request) -> Response:
        async def go() -> Response:
            return _json(handlers.health(svc))
        return await run("healthz", go)

    async def metrics_route(request: Request) -> Response:
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    # plain Starlette routes: the handlers read the raw request themselves, so FastAPI's dependency
    # and response-model machinery would only add per-request overhead; the schema is published from
    # the same table (recsys.serving.openapi)
    endpoints = {"score": score_route, "feedback": feedback_route, "reload": reload_route, "export": export_route,
                 "stats": stats_route, "healthz": health_route, "metrics": metrics_route}
    for r in ROUTES:
        app.router.add_route(r.path, endpoints[r.name], methods=[r.method], include_in_schema=False)
    return app
