"""The live Diag-LinUCB scoring service (FastAPI + uvicorn): score, learn from feedback, lose no event.

Run it with ``graphrec-serve --params PARAMS_DIR --store sqlite:///PATH|redis://127.0.0.1:PORT
--host 127.0.0.1 --port N`` (bearer token for writes in ``$GRAPHREC_SERVE_TOKEN``).

Endpoints (JSON bodies: a body declared as anything else is 415; errors are
``{"error": {"code", "message"[, "details"]}}``, unknown paths and methods included; the OpenAPI
3.1 document of every route and its error responses is ``GET /openapi.json``):

* ``POST /v1/score`` ``{"user", "candidates"?, "k"?}`` → ``{"score_id", "user", "version", "path",
  "items": [{"item", "mean", "uncertainty", "score"}]}``, best first; the impression (user,
  clusters, weights, items, version) is recorded.  Without ``candidates`` the user's clusters'
  linked items are ranked.  ``path`` says what served the request: ``personal`` or ``social``
  (Diag-LinUCB on the user's clusters, whose vector came from its interactions or from the social
  side) or ``fallback`` (a user the version does not know: the version's most popular items,
  ``score = count / Σ counts``; its impression has no clusters, so feedback on it is logged but
  learns nothing, online and in the batch job).  Without a popular table an unknown user is 404.
* ``POST /v1/feedback`` ``{"events": [{"event_id", "score_id", "item", "reward", "ts"?}]}`` (token)
  → ``{"accepted", "duplicates", "last_seq", "version"}``: persisted (durably) and applied before
  the reply; ``event_id`` makes retries idempotent; a batch is all-or-nothing.  An event is a
  duplicate only once an earlier or concurrent copy of it is durable (a copy of a batch still
  queued for commit waits for it).  503 when the store cannot persist (disk full, Redis away):
  nothing acknowledged, retry — the score records it refers to are kept and written first.
* ``POST /v1/params/reload`` ``{"version"?}`` (token): serve ``CURRENT`` (or that version) without
  downtime, re-applying only the logged events the version does not contain (its watermark).
* ``GET /v1/events/export?since=SEQ&limit=N[&format=parquet&table=events|impressions]`` (token):
  events with ``seq > SEQ`` and their impressions, in the Parquet contract of the batch job.
* ``GET /v1/stats?cluster=C`` (read-only ``d``/``b`` of one cluster's edges), ``GET /healthz``,
  ``GET /metrics`` (Prometheus; ``graphrec_score_paths_total{path}`` counts score requests per path).

Modules: :mod:`~recsys.serving.state` (user contexts and ranking over the one Diag-LinUCB state,
:class:`recsys.bandits.state.EdgeStats`, with its edge index :mod:`recsys.bandits.edge_index`), :mod:`~recsys.serving.log_records`
(impressions, logged events, Arrow export), :mod:`~recsys.serving.store_base` (the store
contract), :mod:`~recsys.serving.store_sqlite`, :mod:`~recsys.serving.store_redis`,
:mod:`~recsys.serving.service` (start-up replay, live application, snapshots, reload),
:mod:`~recsys.serving.schemas`, :mod:`~recsys.serving.handlers` (framework-free),
:mod:`~recsys.serving.openapi` (the route table and its published schema),
:mod:`~recsys.serving.app` (``create_app(policy, store)``), :mod:`~recsys.serving.metrics`,
:mod:`~recsys.serving.cli`, :mod:`~recsys.serving.synthetic` (generated versions for tests and
benchmarks).
"""
