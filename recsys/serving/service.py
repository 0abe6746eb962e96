"""Lifecycle of the bandit scoring service: start-up replay, online application, snapshots, reload.

The served statistics are always *parameter version + every logged event the version does not
contain*, where "contains" follows the version's watermark (:class:`recsys.bandits.params.Watermark`):
events with ``seq ≤ watermark.seq`` and events whose id is in the version's ``merged_events``
table.  Batch and online therefore never double count.

* **Start**: load the version named by ``CURRENT``; if the store has a snapshot of that same
  version, start from it; replay the log after it (or after the watermark); then let the store
  deliver newly committed events (``on_events``, in ``seq`` order).
* **Reload without downtime**: the new version is loaded and the log replayed into it in a worker
  thread up to the position ``s0`` the old statistics had reached, while the old statistics keep
  serving; events delivered meanwhile are buffered; then, on the event loop with no ``await``
  in between, the buffered events after ``s0`` are applied to the new statistics and the two are
  swapped.  Each acknowledged event after the watermark is thus applied exactly once.  A version
  that was never published raises :class:`UnknownVersion`, one that cannot be loaded
  :class:`BadVersion`; their messages name the version, never the parameter directory's path.

>>> import asyncio, tempfile, pathlib
>>> from recsys.bandits.params import BanditParams
>>> from recsys.bandits.publish import publish_params
>>> from recsys.serving.store_sqlite import SqliteStore
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = publish_params(root / "params", BanditParams.build(lam=1.0, alpha=0.1, k=1, w=1, edge_cluster=[0],
...     edge_item=[5], user=[1], user_cluster=[0], user_weight=[1.0], centroids=np.zeros((1, 2))))
>>> async def demo():
...     svc = BanditService(root / "params", SqliteStore(root / "log.db"))
...     await svc.start()
...     v = svc.stats.version
...     await svc.close()
...     return v
>>> asyncio.run(demo())
1
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys.bandits.params import BanditParams, load_merged_event_ids, load_params
from recsys.bandits.versions import current_version, version_dir
from recsys.serving.log_records import LoggedEvents
from recsys.serving.metrics import ServiceMetrics
from recsys.serving.state import ServingStats
from recsys.serving.store_base import EventStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceConfig:
    """Runtime limits and security of the service.

    Attributes:
        token: bearer token required for writes (feedback, reload) and exports; None: no check.
        max_body_bytes: larger request bodies get 413.
        max_events: larger feedback batches get 413.
        snapshot_every: write a statistics snapshot after this many applied events (0: never).
        export_limit: most events one export page returns.
    """

    token: str | None = None
    max_body_bytes: int = 1 << 20
    max_events: int = 1000
    snapshot_every: int = 200_000
    export_limit: int = 100_000

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < 8:
            raise ValueError("token must be at least 8 characters")
        if self.max_body_bytes < 1024 or self.max_events < 1 or self.snapshot_every < 0 or self.export_limit < 1:
            raise ValueError("max_body_bytes >= 1024, max_events >= 1, snapshot_every >= 0, export_limit >= 1 required")


class UnknownVersion(LookupError):
    """The requested parameter version (or ``CURRENT``) was never published."""


class BadVersion(ValueError):
    """The parameter version exists but cannot be loaded (the message holds no absolute path)."""


class _Filter:
    """Which logged events a version does not contain yet (seq above the watermark, id not merged)."""

    def __init__(self, p: BanditParams, merged: pa.Array) -> None:
        self.wm_seq = int(p.watermark.seq or 0)
        self.merged = merged if len(merged) else None

    def __call__(self, ev: LoggedEvents) -> LoggedEvents:
        keep = ev.seq > self.wm_seq
        if self.merged is not None and len(ev):
            keep &= ~pc.is_in(pa.array(ev.event_id, pa.string()), value_set=self.merged).to_numpy(zero_copy_only=False)
        return ev if keep.all() else ev.take(np.flatnonzero(keep))


def apply_events(stats: ServingStats, ev: LoggedEvents) -> None:
    """Apply a batch's terms ``d += w²``, ``b += w·r`` to the statistics."""
    if len(ev):
        cl, it, w, r = ev.terms()
        stats.apply(cl, it, w, r, n_events=len(ev))


class BanditService:
    """The served policy (statistics of one parameter version + the live log) and its store."""

    def __init__(self, params_dir: str | os.PathLike, store: EventStore, config: ServiceConfig | None = None,
                 metrics: ServiceMetrics | None = None) -> None:
        self.params_dir = Path(params_dir)
        self.store = store
        self.config = config or ServiceConfig()
        self.metrics = metrics or ServiceMetrics()
        self.stats: ServingStats | None = None
        self._filter: _Filter | None = None
        self._buffer: list[LoggedEvents] | None = None
        self._reload_lock = asyncio.Lock()
        self._snap_seq = 0
        self._snap_task: asyncio.Future | None = None
        self.started_at = time.time()

    # -- building statistics ----------------------------------------------------------------
    def _build(self, version: int | None, upto: int | None, snapshot: dict | None) -> tuple[ServingStats, _Filter, int]:
        """Load a version, start from a matching snapshot if any, replay the log up to ``upto``."""
        p = load_params(self.params_dir, version)
        merged = load_merged_event_ids(self.params_dir, p.version).column("event_id").combine_chunks()
        flt = _Filter(p, merged)
        start = flt.wm_seq
        if snapshot is not None and int(snapshot["version"]) == p.version and str(snapshot["params_created"]) == p.created_at \
                and int(snapshot["seq"]) >= start and (upto is None or int(snapshot["seq"]) <= upto):
            p = p.with_edges(snapshot["cluster"], snapshot["item"], snapshot["d"], snapshot["b"])
            start = int(snapshot["seq"])
            log.info("starting from the snapshot at seq %d", start)
        stats = ServingStats(p)
        stats.applied_seq = start
        n = 0
        for ev in self.store.read_events(start, upto):
            kept = flt(ev)
            apply_events(stats, kept)
            n += len(kept)
            stats.applied_seq = int(ev.seq[-1])
        if upto is not None:
            stats.applied_seq = max(stats.applied_seq, upto)
        return stats, flt, n

    async def start(self) -> None:
        """Load ``CURRENT``, recover from snapshot + log, and begin taking live events."""
        loader = getattr(self.store, "load_snapshot", None)
        snap = await asyncio.to_thread(loader) if loader else None
        t0 = time.perf_counter()
        stats, flt, n = await asyncio.to_thread(self._build, None, None, snap)
        self.stats, self._filter, self._snap_seq = stats, flt, stats.applied_seq
        await self.store.start(self._on_events, stats.applied_seq)
        gc.collect()
        gc.freeze()   # the loaded version and the replayed state are long-lived: keep them out of GC passes
        self.metrics.version.set(stats.version)
        self.metrics.applied_seq.set(stats.applied_seq)
        log.info("serving version %d: replayed %d events in %.2fs, log at seq %d",
                 stats.version, n, time.perf_counter() - t0, stats.applied_seq)

    async def close(self) -> None:
        if self._snap_task is not None:
            await asyncio.gather(self._snap_task, return_exceptions=True)
        await self.store.close()

    # -- live events (event loop, in seq order) -----------------------------------------------
    def _on_events(self, ev: LoggedEvents) -> None:
        stats = self.stats
        new = ev.seq > stats.applied_seq
        if not new.any():
            return
        if not new.all():
            ev = ev.take(np.flatnonzero(new))
        kept = self._filter(ev)
        apply_events(stats, kept)
        stats.applied_seq = int(ev.seq[-1])
        if self._buffer is not None:
            self._buffer.append(ev)
        self.metrics.events_applied.inc(len(kept))
        self.metrics.applied_seq.set(stats.applied_seq)
        self._maybe_snapshot()

    def _maybe_snapshot(self) -> None:
        save = getattr(self.store, "save_snapshot", None)
        every = self.config.snapshot_every
        if save is None or every <= 0 or self._buffer is not None:
            return
        if self.stats.applied_seq - self._snap_seq < every or (self._snap_task is not None and not self._snap_task.done()):
            return
        st = self.stats
        t = st.edges_table()      # sorted by (cluster, item)
        self._snap_seq = st.applied_seq
        self._snap_task = asyncio.ensure_future(
            asyncio.to_thread(self._save_snapshot, save, t, st.version, st.applied_seq, st.params.created_at))

    def _save_snapshot(self, save, table: dict, version: int, seq: int, created: str) -> None:
        try:
            save(table, version, seq, created)
        except OSError as e:      # disk full, say: the log alone is enough to recover
            log.warning("could not write a snapshot at seq %d: %s", seq, e)

    # -- reload -------------------------------------------------------------------------------
    def _private(self, msg: str) -> str:
        """``msg`` with the parameter directory's path replaced by ``<params>``."""
        for root in sorted({str(self.params_dir.resolve()), str(self.params_dir)}, key=len, reverse=True):
            msg = msg.replace(root, "<params>")
        return msg

    def _resolve(self, version: int | None) -> int:
        """The version to load: ``version`` or ``CURRENT``'s; :class:`UnknownVersion` if never published."""
        try:
            v = current_version(self.params_dir) if version is None else int(version)
        except ValueError as e:                   # a garbled CURRENT
            raise BadVersion(self._private(str(e))) from None
        try:
            exists = v is not None and version_dir(self.params_dir, v).is_dir()
        except OSError:                           # e.g. a name too long for the file system: never published
            exists = False
        if not exists:
            raise UnknownVersion("no parameter version is published (no CURRENT)" if v is None
                                 else f"parameter version {v} is not published")
        return v

    def _load(self, version: int, upto: int) -> tuple[ServingStats, _Filter, int]:
        try:
            return self._build(version, upto, None)
        except (OSError, ValueError) as e:         # a missing table, a bad manifest, a wrong schema
            raise BadVersion(f"version {version} could not be loaded: {self._private(str(e))}") from None

    async def reload(self, version: int | None = None) -> dict:
        """Serve another parameter version without downtime (see the module docstring)."""
        async with self._reload_lock:
            t0 = time.perf_counter()
            old = self.stats
            self._buffer = []
            try:
                s0 = old.applied_seq
                v = self._resolve(version)
                new, flt, n = await asyncio.to_thread(self._load, v, s0)
                for ev in self._buffer:       # delivered while building: apply those after s0
                    ev = ev.take(np.flatnonzero(ev.seq > s0)) if (ev.seq <= s0).any() else ev
                    kept = flt(ev)
                    apply_events(new, kept)
                    n += len(kept)
                new.applied_seq = old.applied_seq
                self.stats, self._filter = new, flt
            except Exception:
                self.metrics.reloads.labels("error").inc()
                raise
            finally:
                self._buffer = None
            self._snap_seq = 0
            self.metrics.reloads.labels("ok").inc()
            self.metrics.version.set(new.version)
            return {"version": new.version, "previous_version": old.version, "replayed_events": n,
                    "watermark_seq": flt.wm_seq, "applied_seq": new.applied_seq,
                    "seconds": round(time.perf_counter() - t0, 4)}
