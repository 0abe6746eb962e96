"""The scoring service's routes and their published OpenAPI 3.1 document.

:data:`ROUTES` is the one table of the HTTP surface: the app (:mod:`recsys.serving.app`) registers
exactly these routes, and :func:`openapi_document` describes each of them — request body, query
parameters, bearer security, the success response and every error response of the contract
(:mod:`recsys.serving.handlers`) — with the JSON schemas of :mod:`recsys.serving.schemas`.  The
routes themselves are plain Starlette routes (no per-request FastAPI machinery); the app serves this
document at ``/openapi.json``.

>>> doc = openapi_document()
>>> sorted(doc["paths"]["/v1/feedback"]["post"]["responses"])
['200', '400', '401', '404', '413', '415', '422', '503']
>>> doc["components"]["schemas"]["EventIn"]["properties"]["reward"]["type"]
'number'
"""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from recsys.serving import schemas as s

_BAD_JSON = {400: "the body is not valid JSON (bad_json)"}
_BODY = {413: "the body exceeds the size limit (body_too_large)",
         415: "the body is declared as something other than JSON in UTF-8 (unsupported_media_type)",
         422: "the request violates the schema (invalid_request)"}
_AUTH = {401: "missing or wrong bearer token (unauthorized)"}
_STORE = {503: "the event store cannot persist or read now (disk full, Redis away): nothing of the request "
               "was acknowledged; retry (store_unavailable)"}


@dataclass(frozen=True)
class Query:
    """A query parameter: name, JSON schema, description."""

    name: str
    schema: dict
    description: str
    required: bool = False


@dataclass(frozen=True)
class Route:
    """One route: its metrics name, method, path, models and documented error statuses."""

    name: str
    method: str
    path: str
    summary: str
    response: type[BaseModel] | None
    errors: dict[int, str]
    request: type[BaseModel] | None = None
    body_required: bool = True
    auth: bool = False
    query: tuple[Query, ...] = ()
    media: str = "application/json"


ROUTES: tuple[Route, ...] = (
    Route("score", "POST", "/v1/score", "Rank items for a user and record the impression", s.ScoreResponse,
          {**_BAD_JSON, 404: "a user the version does not know, and no popular items to fall back on (unknown_user)",
           **_BODY, 503: "the event store is closed (shutting down): the impression cannot be recorded "
                         "(store_unavailable)"}, request=s.ScoreRequest),
    Route("feedback", "POST", "/v1/feedback", "Log rewards durably (deduplicated by event_id) and learn from them",
          s.FeedbackResponse,
          {**_BAD_JSON, **_AUTH, 404: "a score id the service never issued (unknown_score_id)",
           **_BODY, 413: "the body exceeds the size limit (body_too_large) or too many events (too_many_events)",
           422: "the request violates the schema (invalid_request) or an item was not shown under its score id "
                "(item_not_shown)", **_STORE}, request=s.FeedbackRequest, auth=True),
    Route("reload", "POST", "/v1/params/reload", "Serve CURRENT (or the given version) without downtime",
          s.ReloadResponse,
          {**_BAD_JSON, **_AUTH, 404: "the version was never published (unknown_version)",
           409: "the version exists but cannot be loaded (bad_version)", **_BODY, **_STORE},
          request=s.ReloadRequest, body_required=False, auth=True),
    Route("export", "GET", "/v1/events/export", "Logged events after a sequence number, with their impressions",
          s.ExportResponse, {**_AUTH, 422: "a query value out of range (invalid_request)", **_STORE}, auth=True,
          query=(Query("since", {"type": "integer", "minimum": 0, "default": 0}, "events with seq > since"),
                 Query("limit", {"type": "integer", "minimum": 1}, "most events in the page"),
                 Query("format", {"type": "string", "enum": ["json", "parquet"], "default": "json"}, "answer format"),
                 Query("table", {"type": "string", "enum": ["events", "impressions"]}, "the table, with format=parquet"))),
    Route("stats", "GET", "/v1/stats", "Current d and b of one cluster's edges", s.StatsResponse,
          {422: "cluster missing or out of range (invalid_request)"},
          query=(Query("cluster", {"type": "integer", "minimum": 0}, "the cluster", required=True),)),
    Route("healthz", "GET", "/healthz", "Liveness, served version and log position", s.HealthResponse, {}),
    Route("metrics", "GET", "/metrics", "Prometheus metrics", None, {}, media="text/plain"),
)


def _json(ref: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _operation(r: Route) -> dict:
    ok: dict = {"description": "OK"}
    if r.response is not None:
        ok["content"] = _json(r.response.__name__)
    else:
        ok["content"] = {r.media: {"schema": {"type": "string"}}}
    if r.name == "export":
        ok["content"]["application/vnd.apache.parquet"] = {"schema": {"type": "string", "contentMediaType":
                                                                        "application/vnd.apache.parquet"}}
    op: dict = {"operationId": r.name, "summary": r.summary,
                "responses": {"200": ok, **{str(code): {"description": text, "content": _json("ErrorResponse")}
                                            for code, text in sorted(r.errors.items())}}}
    if r.request is not None:
        op["requestBody"] = {"required": r.body_required, "content": _json(r.request.__name__)}
    if r.query:
        op["parameters"] = [{"name": q.name, "in": "query", "required": q.required, "description": q.description,
                             "schema": q.schema} for q in r.query]
    if r.auth:
        op["security"] = [{"bearer": []}]
    return op


def openapi_document(title: str = "graphrec bandit scoring service", version: str = "1") -> dict:
    """The OpenAPI 3.1 document of every route in :data:`ROUTES`."""
    models = {m for r in ROUTES for m in (r.request, r.response) if m is not None} | {s.ErrorResponse}
    _, defs = models_json_schema([(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
                                 ref_template="#/components/schemas/{model}")
    paths: dict = {}
    for r in ROUTES:
        paths.setdefault(r.path, {})[r.method.lower()] = _operation(r)
    return {"openapi": "3.1.0",
            "info": {"title": title, "version": version,
                     "description": "Errors are {\"error\": {\"code\", \"message\"[, \"details\"]}}. Write routes "
                                    "need Authorization: Bearer <token>. Bodies are JSON (Content-Type: "
                                    "application/json; an undeclared body is read as JSON)."},
            "paths": paths,
            "components": {"schemas": defs.get("$defs", {}),
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}
