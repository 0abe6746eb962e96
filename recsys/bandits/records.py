"""Typed records exchanged between the scoring service, the log and the batch update.

* :class:`ImpressionRecord` — what the service showed for one ``score_id``: the user, the clusters
  and weights ``w_uc`` of its context, the items and the parameter version. It flattens into the
  ``impressions`` table rows ``(score_id, user, cluster, weight, item, version, ts)`` (one row per
  cluster × item), which is the context a Diag-LinUCB update needs (Yi et al., RecSys 2023,
  arXiv 2307.15893: ``d_jc += w_uc²``, ``b_jc += w_uc · r``).
* :class:`FeedbackEvent` — one reward for one shown item, ``(event_id, score_id, item, reward, ts)``;
  ``event_id`` is the idempotency key (an event is applied at most once, online and in batch).

Timestamps are float seconds since the epoch (UTC) in the records and ``timestamp[us, UTC]`` in
Parquet. Bad values raise :class:`ValueError` naming the field.

>>> ev = FeedbackEvent("e1", "s1", item=7, reward=1.0, ts=1.7e9)
>>> ev.reward
1.0
>>> FeedbackEvent("e2", "s1", item=7, reward=float("nan"), ts=1.7e9)
Traceback (most recent call last):
...
ValueError: FeedbackEvent.reward must be finite, got nan
>>> imp = ImpressionRecord("s1", user=3, clusters=(0, 5, 9), weights=(0.5, 0.3, 0.2), items=(7, 8), version=1, ts=1.7e9)
>>> impressions_table([imp]).num_rows
6
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa

__all__ = [
    "EVENT_SCHEMA",
    "IMPRESSION_SCHEMA",
    "FeedbackEvent",
    "ImpressionRecord",
    "events_table",
    "impressions_table",
    "flatten_impressions",
    "MAX_ID_LEN",
]

MAX_ID_LEN = 128
TS_TYPE = pa.timestamp("us", tz="UTC")

IMPRESSION_SCHEMA = pa.schema([
    ("score_id", pa.string()),
    ("user", pa.int64()),
    ("cluster", pa.int32()),
    ("weight", pa.float32()),
    ("item", pa.int64()),
    ("version", pa.int64()),
    ("ts", TS_TYPE),
])

EVENT_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("score_id", pa.string()),
    ("item", pa.int64()),
    ("reward", pa.float32()),
    ("ts", TS_TYPE),
])

_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_LEN:
        raise ValueError(f"{name} longer than {MAX_ID_LEN} characters")


def _check_int(name: str, value: object, hi: int = _INT64_MAX) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not 0 <= int(value) <= hi:
        raise ValueError(f"{name} must be in [0, {hi}], got {value}")


def _check_finite(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {float(value)}")


@dataclass(frozen=True)
class FeedbackEvent:
    """One reward for an item shown under ``score_id``.

    Attributes:
        event_id: unique id of the event (dedup key; at most 128 characters).
        score_id: the impression it refers to.
        item: the item id (int64 ≥ 0) that was shown under ``score_id``.
        reward: finite reward (clicks: 0/1; NaN and ±inf are rejected).
        ts: event time, seconds since the epoch (UTC).
    """

    event_id: str
    score_id: str
    item: int
    reward: float
    ts: float

    def __post_init__(self) -> None:
        _check_id("FeedbackEvent.event_id", self.event_id)
        _check_id("FeedbackEvent.score_id", self.score_id)
        _check_int("FeedbackEvent.item", self.item)
        _check_finite("FeedbackEvent.reward", self.reward)
        _check_finite("FeedbackEvent.ts", self.ts)
        if self.ts < 0:
            raise ValueError(f"FeedbackEvent.ts must be >= 0, got {self.ts}")
        object.__setattr__(self, "item", int(self.item))
        object.__setattr__(self, "reward", float(self.reward))
        object.__setattr__(self, "ts", float(self.ts))


@dataclass(frozen=True)
class ImpressionRecord:
    """What was shown for one ``score_id`` and the context used to score it.

    Attributes:
        score_id: unique id returned by the score call.
        user: user id (int64 ≥ 0).
        clusters: the user's context clusters (distinct int32 ids, usually K of them).
        weights: the weights ``w_uc`` of those clusters (finite, ≥ 0), same length.
        items: the items shown (distinct int64 ids, at least one).
        version: the parameter version that scored them.
        ts: time of the impression, seconds since the epoch (UTC).
    """

    score_id: str
    user: int
    clusters: tuple[int, ...]
    weights: tuple[float, ...]
    items: tuple[int, ...]
    version: int
    ts: float

    def __post_init__(self) -> None:
        _check_id("ImpressionRecord.score_id", self.score_id)
        _check_int("ImpressionRecord.user", self.user)
        _check_int("ImpressionRecord.version", self.version)
        _check_finite("ImpressionRecord.ts", self.ts)
        clusters = tuple(int(c) for c in self.clusters)
        weights = tuple(float(w) for w in self.weights)
        items = tuple(int(i) for i in self.items)
        if len(clusters) != len(weights):
            raise ValueError(f"ImpressionRecord.clusters ({len(clusters)}) and weights ({len(weights)}) differ in length")
        if not items:
            raise ValueError("ImpressionRecord.items must not be empty")
        for c in clusters:
            _check_int("ImpressionRecord.clusters[]", c, _INT32_MAX)
        for i in items:
            _check_int("ImpressionRecord.items[]", i)
        for w in weights:
            _check_finite("ImpressionRecord.weights[]", w)
            if w < 0:
                raise ValueError(f"ImpressionRecord.weights[] must be >= 0, got {w}")
        if len(set(clusters)) != len(clusters):
            raise ValueError("ImpressionRecord.clusters must be distinct")
        if len(set(items)) != len(items):
            raise ValueError("ImpressionRecord.items must be distinct")
        object.__setattr__(self, "clusters", clusters)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "items", items)


def _ts_array(seconds: np.ndarray) -> pa.Array:
    micros = np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)
    return pa.array(micros, type=pa.int64()).cast(TS_TYPE)


def flatten_impressions(score_id: Sequence[str], user: Sequence[int], version: Sequence[int], ts: Sequence[float],
                        clusters: Sequence[np.ndarray], weights: Sequence[np.ndarray],
                        items: Sequence[np.ndarray]) -> pa.Table:
    """``IMPRESSION_SCHEMA`` rows of impressions given column-wise (one row per cluster × item).

    An impression without clusters (the scoring service's ``fallback`` path) gets one row per item
    with ``cluster = -1, weight = 0``: the batch job then matches its events (and merges them) but
    adds no term, exactly as the service does online.
    """
    nc = np.fromiter((max(np.size(c), 1) for c in clusters), np.int64, len(clusters))
    ni = np.fromiter((np.size(i) for i in items), np.int64, len(items))
    n = nc * ni
    cl = [np.asarray(c, np.int32) if np.size(c) else np.array([-1], np.int32) for c in clusters]
    wt = [np.asarray(w, np.float32) if np.size(w) else np.zeros(1, np.float32) for w in weights]
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt, copy=False) if xs else np.zeros(0, dt))
    return pa.table({
        "score_id": pa.array(np.repeat(np.array(list(score_id), dtype=object), n), type=pa.string()),
        "user": np.repeat(np.asarray(user, np.int64), n),
        "cluster": cat([np.repeat(c, k) for c, k in zip(cl, ni)], np.int32),
        "weight": cat([np.repeat(w, k) for w, k in zip(wt, ni)], np.float32),
        "item": cat([np.tile(np.asarray(i, np.int64), k) for i, k in zip(items, nc)], np.int64),
        "version": np.repeat(np.asarray(version, np.int64), n),
        "ts": _ts_array(np.repeat(np.asarray(ts, np.float64), n)),
    }, schema=IMPRESSION_SCHEMA)


def impressions_table(records: Iterable[ImpressionRecord]) -> pa.Table:
    """Flatten impressions into ``IMPRESSION_SCHEMA`` rows (:func:`flatten_impressions`)."""
    recs: Sequence[ImpressionRecord] = list(records)
    return flatten_impressions([r.score_id for r in recs], [r.user for r in recs], [r.version for r in recs],
                               [r.ts for r in recs], [np.asarray(r.clusters) for r in recs],
                               [np.asarray(r.weights) for r in recs], [np.asarray(r.items) for r in recs])


def events_table(events: Iterable[FeedbackEvent]) -> pa.Table:
    """Events as an ``EVENT_SCHEMA`` table."""
    evs = list(events)
    return pa.table({
        "event_id": pa.array([e.event_id for e in evs], type=pa.string()),
        "score_id": pa.array([e.score_id for e in evs], type=pa.string()),
        "item": np.array([e.item for e in evs], dtype=np.int64),
        "reward": np.array([e.reward for e in evs], dtype=np.float32),
        "ts": _ts_array(np.array([e.ts for e in evs], dtype=np.float64)),
    }, schema=EVENT_SCHEMA)
