"""Prometheus metrics of the scoring service (one registry per app, so tests can run several).

>>> m = ServiceMetrics()
>>> m.observe("score", 200, 0.002)
>>> b"graphrec_requests_total" in m.render()[0]
True
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from recsys.bandits.versions import SERVING_PATHS

_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """Request counts, latency histograms, events applied / duplicated, version and log position.

    ``graphrec_score_paths_total{path}`` counts answered score requests per serving path
    (personal | social | fallback): a report divides them by their sum for the share of each path.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("graphrec_requests_total", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r)
        self.latency = Histogram("graphrec_request_seconds", "request latency (handler, seconds)", ["endpoint"],
                                 buckets=_BUCKETS, registry=r)
        self.events_applied = Counter("graphrec_events_applied_total", "feedback events applied to the statistics", registry=r)
        self.events_duplicate = Counter("graphrec_events_duplicate_total", "feedback events ignored as duplicates", registry=r)
        self.impressions = Counter("graphrec_impressions_total", "impressions recorded", registry=r)
        self.version = Gauge("graphrec_params_version", "parameter version served", registry=r)
        self.applied_seq = Gauge("graphrec_applied_seq", "last event-log sequence number applied", registry=r)
        self.reloads = Counter("graphrec_params_reloads_total", "parameter reloads", ["outcome"], registry=r)
        self.score_paths = Counter("graphrec_score_paths_total", "score requests answered, by serving path",
                                   ["path"], registry=r)
        for path in SERVING_PATHS:          # every path is exported from the start (0), so shares are defined
            self.score_paths.labels(path)
        self._lat = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        h = self._lat.get(endpoint)
        if h is None:
            h = self._lat[endpoint] = self.latency.labels(endpoint)
        h.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """``(body, content type)`` in the Prometheus text format."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
