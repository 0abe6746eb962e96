"""The ``EventStore`` contract of the scoring service: impressions, an append-only event log, dedup.

Every store gives each acknowledged event a log sequence number ``seq`` (1, 2, … without gaps,
in commit order) and delivers committed events to the service *in ``seq`` order* through the
``on_events`` callback (running on the event loop), whichever replica wrote them.  ``append``
returns only after the events are durable **and** delivered, so an acknowledged event is both
persisted and visible in the served statistics.  Duplicates (an ``event_id`` already logged) get
``seq`` 0 and are neither logged nor delivered again.

Stores raise :class:`StoreUnavailable` when their backend cannot serve a call (the service answers
503); an ``append`` that raises acknowledged nothing.

>>> sorted(EventStore.__abstractmethods__)[:3]
['append', 'close', 'export']
"""
from __future__ import annotations

import abc
from typing import Callable, Iterator

import numpy as np

from recsys.serving.log_records import Impression, LoggedEvents

OnEvents = Callable[[LoggedEvents], None]


class StoreUnavailable(RuntimeError):
    """The store cannot persist or read right now (disk full, I/O error, backend unreachable).

    The message says why in terms safe to show a client (no host names, no paths); the service
    answers 503 and nothing of the request was acknowledged.
    """


class EventStore(abc.ABC):
    """Durable impressions + event log behind the scoring service."""

    kind: str = "abstract"

    @abc.abstractmethod
    async def start(self, on_events: OnEvents, after_seq: int) -> None:
        """Begin delivering committed events with ``seq > after_seq`` to ``on_events``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush pending writes and release connections."""

    @abc.abstractmethod
    async def record_impression(self, imp: Impression) -> None:
        """Record an impression; it is durable before any event on it is acknowledged."""

    @abc.abstractmethod
    async def get_impressions(self, score_ids: list[str]) -> dict[str, Impression]:
        """Impressions by score id (unknown ids are absent from the result)."""

    def _split_cached(self, score_ids: list[str]) -> tuple[dict[str, Impression], list[str]]:
        """Impressions found in this replica's ``_cache``, and the score ids still to look up."""
        out, miss = {}, []
        for s in score_ids:
            im = self._cache.get(s)
            if im is None:
                miss.append(s)
            else:
                out[s] = im
        return out, miss

    @abc.abstractmethod
    async def append(self, events: LoggedEvents) -> np.ndarray:
        """Persist new events (dedup by ``event_id``); ``seq`` per event, 0 for duplicates."""

    @abc.abstractmethod
    def read_events(self, after_seq: int, upto_seq: int | None = None, chunk: int = 50_000) -> Iterator[LoggedEvents]:
        """Logged events with ``after_seq < seq ≤ upto_seq`` in order (blocking; call from a thread)."""

    @abc.abstractmethod
    async def export(self, since: int, limit: int) -> tuple[LoggedEvents, list[Impression]]:
        """Events with ``seq > since`` (at most ``limit``) and the impressions they refer to."""

    def describe(self) -> dict:
        """Short description for ``/healthz``."""
        return {"kind": self.kind}
