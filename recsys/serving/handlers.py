"""Framework-free request handlers: ``score``, ``feedback``, ``reload``, ``export``, ``health``, ``stats``.

Each takes the raw request pieces (body bytes, headers, query values) and the
:class:`~recsys.serving.service.BanditService`, and returns a JSON-able dict or raises
:class:`ApiError` (status, code, message).  The FastAPI app only reads the request and maps
results and errors to responses, so the whole contract is testable without HTTP.

Error contract: 400 malformed JSON, 401 missing/wrong bearer token, 404 unknown score id, an
unknown user when the version has no popular items to fall back on, or a parameter version that
was never published, 409 a version that cannot be loaded, 413 body too large or too many events
per batch, 415 a body declared as anything but JSON (:func:`check_content_type`), 422 schema
violations (NaN/inf/out-of-range reward, a reward given as a string or a boolean, an id with a
control character, ``k`` out of range, duplicate candidates, an item not shown under the score
id, ...), 503 when the event store cannot persist or read (disk full, Redis away; nothing of the
request is acknowledged, retry).  Messages never hold a server path or a store address.

>>> check_auth("Bearer s3cret-token", "s3cret-token")
>>> check_auth(None, "s3cret-token")
Traceback (most recent call last):
...
recsys.serving.handlers.ApiError: 401 unauthorized: missing bearer token
"""
from __future__ import annotations

import contextlib
import hmac
import logging
import re
import time
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ValidationError

from recsys.bandits.edge_index import MAX_CLUSTER
from recsys.serving.log_records import Impression, LoggedEvents, impressions_to_arrow
from recsys.serving.schemas import FeedbackRequest, ReloadRequest, ScoreRequest
from recsys.serving.service import BadVersion, BanditService, UnknownVersion
from recsys.serving.state import UnknownUser
from recsys.serving.store_base import StoreUnavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with its HTTP status, a short machine code and a human message."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details

    def body(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.details is not None:
            err["details"] = self.details
        return {"error": err}


def check_auth(authorization: str | None, token: str | None) -> None:
    """Require ``Authorization: Bearer <token>`` when a token is configured (constant-time compare)."""
    if token is None:
        return
    if not authorization:
        raise ApiError(401, "unauthorized", "missing bearer token")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", "invalid bearer token")


_JSON_TYPE = re.compile(r"^application/(?:[!#$&^_.+\w-]+\+)?json$", re.ASCII)


def check_content_type(content_type: str | None) -> None:
    """Refuse (415) a body declared as anything but JSON in UTF-8; an undeclared body is read as JSON.

    >>> check_content_type("application/json; charset=UTF-8")
    >>> check_content_type(None)
    >>> check_content_type("text/plain")
    Traceback (most recent call last):
    ...
    recsys.serving.handlers.ApiError: 415 unsupported_media_type: the body must be JSON (Content-Type: application/json), got 'text/plain'
    """
    if content_type is None or content_type == "application/json":      # the usual case, first
        return
    kind, *params = (x.strip() for x in content_type.split(";"))
    charset = next((v.strip('"').lower() for k, _, v in (x.partition("=") for x in params) if k.strip().lower() == "charset"),
                   "utf-8")
    if not _JSON_TYPE.match(kind.lower()) or charset not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_media_type",
                       f"the body must be JSON (Content-Type: application/json), got {content_type[:60]!r}")


@contextlib.contextmanager
def _store(what: str):
    """:class:`StoreUnavailable` from the event store as 503 (retry; nothing was acknowledged)."""
    try:
        yield
    except StoreUnavailable as e:
        raise ApiError(503, "store_unavailable", f"{e}; {what}, retry later") from None


def parse(model: type[BaseModel], body: bytes) -> Any:
    """Validate a JSON body; 400 for malformed JSON, 422 listing the offending fields otherwise."""
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        errs = e.errors(include_url=False, include_input=False)
        if any(x["type"] == "json_invalid" for x in errs):
            raise ApiError(400, "bad_json", "request body is not valid JSON") from None
        details = [{"field": ".".join(str(p) for p in x["loc"]), "error": x["msg"]} for x in errs[:20]]
        msg = "; ".join(f"{d['field'] or 'body'}: {d['error']}" for d in details[:5])
        raise ApiError(422, "invalid_request", msg, details) from None


def score(body: bytes, svc: BanditService) -> tuple[dict, Impression | None]:
    """Rank candidates for a user; returns the response (with its serving ``path``) and the impression to record.

    A fallback impression carries no clusters: feedback on it is logged but updates nothing.
    """
    req: ScoreRequest = parse(ScoreRequest, body)
    st = svc.stats
    try:
        route = st.route(req.user)
    except UnknownUser:
        raise ApiError(404, "unknown_user", f"user {req.user} has no context in parameter version {st.version}, "
                       "which has no popular items to fall back on") from None
    cand = None if req.candidates is None else np.fromiter(req.candidates, np.int64, len(req.candidates))
    r = st.rank(route, cand, req.k)
    sid = uuid.uuid4().hex
    items = [{"item": i, "mean": m, "uncertainty": u, "score": s}
             for i, m, u, s in zip(r.items.tolist(), r.mean.tolist(), r.uncertainty.tolist(), r.score.tolist())]
    resp = {"score_id": sid, "user": req.user, "version": st.version, "path": route.path, "items": items}
    svc.metrics.score_paths.labels(route.path).inc()
    imp = None
    if r.items.size:
        imp = Impression(sid, req.user, st.version, time.time(), route.clusters.astype(np.int32), route.weights, r.items)
    return resp, imp


async def score_and_record(body: bytes, svc: BanditService) -> dict:
    """:func:`score`, then record its impression (queued for the store; 503 if the store is closed)."""
    resp, imp = score(body, svc)
    if imp is not None:
        with _store("nothing was scored"):
            await svc.store.record_impression(imp)
        svc.metrics.impressions.inc()
    return resp


async def feedback(body: bytes, authorization: str | None, svc: BanditService) -> dict:
    """Validate a batch, join it to its impressions, persist (dedup) and apply it."""
    check_auth(authorization, svc.config.token)
    req: FeedbackRequest = parse(FeedbackRequest, body)
    evs = req.events
    if len(evs) > svc.config.max_events:
        raise ApiError(413, "too_many_events", f"{len(evs)} events in one batch; at most {svc.config.max_events}")
    sids = [e.score_id for e in evs]
    with _store("nothing of the batch was acknowledged"):
        imps = await svc.store.get_impressions(sids)
    unknown = sorted({s for s in sids if s not in imps})
    if unknown:
        raise ApiError(404, "unknown_score_id", f"{len(unknown)} unknown score id(s): {', '.join(unknown[:5])}",
                       {"score_ids": unknown[:100]})
    joined = [imps[s] for s in sids]
    items = np.fromiter((e.item for e in evs), np.int64, len(evs))
    shown = np.fromiter((it in im.item_set for im, it in zip(joined, items.tolist())), bool, len(evs))
    if not shown.all():
        bad = [f"{evs[i].event_id} (item {evs[i].item} under {evs[i].score_id})" for i in np.flatnonzero(~shown)[:5]]
        raise ApiError(422, "item_not_shown", f"item not shown under its score id: {', '.join(bad)}")
    now = time.time()
    ev = LoggedEvents.from_impressions(
        # rewards are float32 in the event contract: apply exactly what the batch job will read back
        [e.event_id for e in evs], sids, items, np.fromiter((e.reward for e in evs), np.float64, len(evs)).astype(np.float32).astype(np.float64),
        np.fromiter((now if e.ts is None else e.ts for e in evs), np.float64, len(evs)), joined)
    try:
        seqs = await svc.store.append(ev)
    except StoreUnavailable as e:
        raise ApiError(503, "store_unavailable", f"{e}; nothing of the batch was acknowledged, retry (events are "
                       "deduplicated by event_id)") from None
    except Exception:
        log.exception("event store failed to persist a feedback batch")
        raise ApiError(503, "store_unavailable", "the event log could not persist the batch; nothing of it was "
                       "acknowledged, retry (events are deduplicated by event_id)") from None
    dup = int((seqs == 0).sum())
    svc.metrics.events_duplicate.inc(dup)
    return {"accepted": len(evs) - dup, "duplicates": dup, "last_seq": int(seqs.max()), "version": svc.stats.version}


async def reload(body: bytes, authorization: str | None, svc: BanditService) -> dict:
    """Load ``CURRENT`` (or the requested version) and replay the events it does not contain."""
    check_auth(authorization, svc.config.token)
    req: ReloadRequest = parse(ReloadRequest, body or b"{}")
    try:
        with _store("the served version is unchanged"):
            return await svc.reload(req.version)
    except UnknownVersion as e:
        raise ApiError(404, "unknown_version", str(e)) from None
    except BadVersion as e:
        raise ApiError(409, "bad_version", str(e)) from None


_INT = re.compile(r"^-?[0-9]{1,19}$")


def _int_arg(name: str, value: str | None, default: int, lo: int, hi: int) -> int:
    """A decimal integer query value in ``[lo, hi]`` (ASCII digits only); 422 otherwise."""
    if value is None:
        return default
    if not _INT.match(value):
        raise ApiError(422, "invalid_request", f"{name} must be a decimal integer, got {value[:40]!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise ApiError(422, "invalid_request", f"{name} must be in [{lo}, {hi}], got {v}")
    return v


async def export(since: str | None, limit: str | None, table: str | None, fmt: str | None,
                 authorization: str | None, svc: BanditService) -> tuple[Any, str]:
    """Events with ``seq > since`` and their impressions: JSON columns, or one table as Parquet.

    Returns ``(payload, media type)``; JSON payload has ``events`` and ``impressions`` as column
    dicts (``ts`` in seconds since the epoch) and ``next_since`` for the next page.
    """
    check_auth(authorization, svc.config.token)
    s = _int_arg("since", since, 0, 0, 2**62)
    n = _int_arg("limit", limit, svc.config.export_limit, 1, svc.config.export_limit)
    fmt = fmt or "json"
    if fmt not in ("json", "parquet"):
        raise ApiError(422, "invalid_request", f"format must be json or parquet, got {fmt[:20]!r}")
    if fmt == "parquet" and table not in ("events", "impressions"):
        raise ApiError(422, "invalid_request", "format=parquet needs table=events or table=impressions")
    with _store("nothing was exported"):
        ev, imps = await svc.store.export(s, n)
    next_since = int(ev.seq[-1]) if len(ev) else s
    if fmt == "json":
        et, it = ev.to_arrow(), impressions_to_arrow(imps)
        return {"events": _columns(et), "impressions": _columns(it), "next_since": next_since, "count": len(ev)}, "json"
    t = ev.to_arrow() if table == "events" else impressions_to_arrow(imps)
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(t, sink)
    return sink.getvalue().to_pybytes(), "parquet"


def _columns(t: pa.Table) -> dict:
    out = {}
    for name in t.column_names:
        col = t.column(name)
        if pa.types.is_timestamp(col.type):
            out[name] = (col.cast(pa.int64()).to_numpy() / 1e6).tolist()
        else:
            out[name] = col.to_pylist()
    return out


def health(svc: BanditService) -> dict:
    st = svc.stats
    return {"status": "ok", "version": st.version, "applied_seq": st.applied_seq, "events_applied": st.events_applied,
            "users": st.n_users, "edges": st.n_edges, "store": svc.store.describe(),
            "uptime_s": round(time.time() - svc.started_at, 1)}


def stats(cluster: str | None, svc: BanditService) -> dict:
    """Current ``d``/``b`` of one cluster's edges (read-only inspection)."""
    if cluster is None:
        raise ApiError(422, "invalid_request", "query parameter cluster is required")
    c = _int_arg("cluster", cluster, 0, 0, MAX_CLUSTER)
    items, d, b = svc.stats.cluster_table(c)
    return {"cluster": c, "version": svc.stats.version, "items": items.tolist(), "d": d.tolist(), "b": b.tolist()}
