"""Columnar records of the service's event log and impressions, and their Arrow export.

An :class:`Impression` is what one ``/v1/score`` call showed and the context it used (clusters and
weights ``w_uc``); a :class:`LoggedEvents` batch holds acknowledged feedback events *with* the
context terms of their impressions, so the log replays on its own:
``d[c, item] += w_c²`` and ``b[c, item] += w_c · reward`` for every cluster ``c`` of the event's
impression (Diag-LinUCB, Yi et al., RecSys 2023).  Export tables follow
:data:`recsys.bandits.records.EVENT_SCHEMA` (plus the log's ``seq``) and
:data:`recsys.bandits.records.IMPRESSION_SCHEMA`.

>>> imp = Impression("s1", user=3, version=1, ts=1.0, clusters=np.array([0, 4], np.int32),
...                  weights=np.array([0.75, 0.25]), items=np.array([7, 8]))
>>> Impression.unpack("s1", imp.pack()).items.tolist()
[7, 8]
>>> ev = LoggedEvents.from_impressions(["e1"], ["s1"], np.array([8]), np.array([1.0]), np.array([2.0]), [imp])
>>> [a.tolist() for a in ev.terms()]
[[0, 4], [8, 8], [0.75, 0.25], [1.0, 1.0]]
"""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa

from recsys.bandits.records import EVENT_SCHEMA, IMPRESSION_SCHEMA, TS_TYPE, flatten_impressions  # noqa: F401 (IMPRESSION_SCHEMA: re-exported)

_HDR = struct.Struct("<qqdII")
EXPORT_EVENT_SCHEMA = EVENT_SCHEMA.append(pa.field("seq", pa.int64()))


@dataclass(frozen=True)
class Impression:
    """One score call: user, parameter version, time, context (clusters, weights) and items shown."""

    score_id: str
    user: int
    version: int
    ts: float
    clusters: np.ndarray
    weights: np.ndarray
    items: np.ndarray

    @functools.cached_property
    def item_set(self) -> frozenset[int]:
        """The items shown, as a set (for validating feedback)."""
        return frozenset(self.items.tolist())

    def pack(self) -> bytes:
        """Compact binary form (header + int32 clusters + float64 weights + int64 items)."""
        c = np.ascontiguousarray(self.clusters, np.int32)
        return (_HDR.pack(int(self.user), int(self.version), float(self.ts), c.size, int(np.size(self.items)))
                + c.tobytes() + np.ascontiguousarray(self.weights, np.float64).tobytes()
                + np.ascontiguousarray(self.items, np.int64).tobytes())

    @classmethod
    def unpack(cls, score_id: str, buf: bytes) -> "Impression":
        user, version, ts, k, n = _HDR.unpack_from(buf)
        o = _HDR.size
        c = np.frombuffer(buf, np.int32, k, o)
        w = np.frombuffer(buf, np.float64, k, o + 4 * k)
        it = np.frombuffer(buf, np.int64, n, o + 12 * k)
        return cls(score_id, user, version, ts, c, w, it)


@dataclass(frozen=True)
class LoggedEvents:
    """A batch of feedback events in log order, with their impressions' context terms (CSR)."""

    seq: np.ndarray
    event_id: list[str]
    score_id: list[str]
    item: np.ndarray
    reward: np.ndarray
    ts: np.ndarray
    term_ptr: np.ndarray
    term_cluster: np.ndarray
    term_weight: np.ndarray

    def __len__(self) -> int:
        return len(self.event_id)

    @classmethod
    def empty(cls) -> "LoggedEvents":
        z = np.zeros(0, np.int64)
        return cls(z, [], [], z, np.zeros(0), np.zeros(0), np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0))

    @classmethod
    def from_impressions(cls, event_id: list[str], score_id: list[str], item: np.ndarray, reward: np.ndarray,
                         ts: np.ndarray, impressions: Sequence[Impression]) -> "LoggedEvents":
        """Events (not yet sequenced: ``seq`` 0) joined to the impression of each one."""
        counts = np.fromiter((im.clusters.size for im in impressions), np.int64, len(impressions))
        ptr = np.zeros(len(impressions) + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        cl = np.concatenate([im.clusters for im in impressions]) if impressions else np.zeros(0, np.int32)
        w = np.concatenate([im.weights for im in impressions]) if impressions else np.zeros(0)
        return cls(np.zeros(len(event_id), np.int64), list(event_id), list(score_id), np.asarray(item, np.int64),
                   np.asarray(reward, np.float64), np.asarray(ts, np.float64), ptr,
                   cl.astype(np.int32, copy=False), w.astype(np.float64, copy=False))

    def with_seq(self, seq: np.ndarray) -> "LoggedEvents":
        return LoggedEvents(np.asarray(seq, np.int64), self.event_id, self.score_id, self.item, self.reward, self.ts,
                            self.term_ptr, self.term_cluster, self.term_weight)

    def take(self, idx: np.ndarray) -> "LoggedEvents":
        """The events at positions ``idx`` (in that order)."""
        idx = np.asarray(idx, np.int64)
        counts = np.diff(self.term_ptr)[idx]
        ptr = np.zeros(idx.size + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        starts = self.term_ptr[idx]
        tix = np.repeat(starts - ptr[:-1], counts) + np.arange(ptr[-1])
        return LoggedEvents(self.seq[idx], [self.event_id[i] for i in idx], [self.score_id[i] for i in idx],
                            self.item[idx], self.reward[idx], self.ts[idx], ptr,
                            self.term_cluster[tix], self.term_weight[tix])

    def terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Flat ``(cluster, item, weight, reward)`` terms, one per event × context cluster."""
        counts = np.diff(self.term_ptr)
        return (self.term_cluster.astype(np.int64), np.repeat(self.item, counts), self.term_weight,
                np.repeat(self.reward, counts))

    @staticmethod
    def concat(parts: Sequence["LoggedEvents"]) -> "LoggedEvents":
        parts = [p for p in parts if len(p)]
        if not parts:
            return LoggedEvents.empty()
        if len(parts) == 1:
            return parts[0]
        offs = np.cumsum([0] + [int(p.term_ptr[-1]) for p in parts[:-1]])
        ptr = np.concatenate([[0]] + [p.term_ptr[1:] + o for p, o in zip(parts, offs)])
        return LoggedEvents(np.concatenate([p.seq for p in parts]), sum((p.event_id for p in parts), []),
                            sum((p.score_id for p in parts), []), np.concatenate([p.item for p in parts]),
                            np.concatenate([p.reward for p in parts]), np.concatenate([p.ts for p in parts]),
                            ptr.astype(np.int64), np.concatenate([p.term_cluster for p in parts]),
                            np.concatenate([p.term_weight for p in parts]))

    def to_arrow(self) -> pa.Table:
        """The events in the feedback-event contract, plus ``seq`` (the log order / watermark)."""
        return pa.table({
            "event_id": pa.array(self.event_id, pa.string()),
            "score_id": pa.array(self.score_id, pa.string()),
            "item": pa.array(self.item, pa.int64()),
            "reward": pa.array(self.reward.astype(np.float32), pa.float32()),
            "ts": _ts(self.ts),
            "seq": pa.array(self.seq, pa.int64()),
        }, schema=EXPORT_EVENT_SCHEMA)


def _ts(seconds: np.ndarray) -> pa.Array:
    micros = np.round(np.asarray(seconds, np.float64) * 1e6).astype(np.int64)
    return pa.array(micros, pa.int64()).cast(TS_TYPE)


def impressions_to_arrow(imps: Sequence[Impression]) -> pa.Table:
    """Impression rows ``(score_id, user, cluster, weight, item, version, ts)``, one per cluster × item
    (a fallback impression, without clusters: one row per item with cluster -1, weight 0)."""
    return flatten_impressions([im.score_id for im in imps], [im.user for im in imps], [im.version for im in imps],
                               [im.ts for im in imps], [im.clusters for im in imps], [im.weights for im in imps],
                               [im.items for im in imps])
