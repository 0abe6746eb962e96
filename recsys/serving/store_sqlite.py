"""Embedded event store: SQLite in WAL mode as an append-only log, with group commit.

Durable fast ingest (algorithms.md §5): an append-only event log plus in-memory statistics and
periodic snapshots, replayed on start.  One writer thread owns the write connection; it drains
every queued impression and event batch into **one** transaction and commits with
``synchronous=FULL`` (the WAL is fsynced before ``COMMIT`` returns), then hands the committed
batches back to the event loop in ``seq`` order.  While one fsync runs the next batches queue up,
so the number of fsyncs per second stays bounded however many requests arrive (group commit).

* ``events(seq PK, event_id, score_id, item, reward, ts, clusters BLOB, weights BLOB)`` — each row
  carries its impression's context, so replay needs no join.
* ``impressions(score_id PK, payload BLOB)`` — written on score; FIFO order in the writer means an
  impression is committed no later than any event that refers to it (impression-only commits
  skip the fsync: the next event commit's WAL fsync makes them durable too, and wait up to
  ``impression_linger_s`` for company, so a burst of score calls costs one transaction).
* Dedup: the set of logged ``event_id`` is rebuilt from the log on open and kept in memory; an id
  joins it only once its commit is durable.  A batch carrying an id that another request has
  queued but not committed yet waits for that commit: the id is a duplicate only if it succeeded
  (a client told "duplicate" can rely on the event being durable); if it failed, this batch logs it.
* Failures (disk full, I/O error): the whole group commit is rolled back, every event batch of it
  fails with :class:`~recsys.serving.store_base.StoreUnavailable` naming the cause (nothing of it
  acknowledged), and its impressions go back to the head of the queue, so they are committed with
  the next transaction that succeeds — before any event that refers to them.
* Snapshots: ``<db>.snapshot.npz`` (edges with their statistics, the version and the last
  ``seq`` they include), written atomically; start = snapshot + replay of the log after it.

One process owns a database file (use Redis for several replicas).

>>> import asyncio, tempfile, pathlib
>>> async def demo():
...     st = SqliteStore(pathlib.Path(tempfile.mkdtemp()) / "log.db")
...     got = []
...     await st.start(got.append, after_seq=0)
...     imp = Impression("s1", 1, 1, 0.0, np.array([2], np.int32), np.array([1.0]), np.array([9]))
...     await st.record_impression(imp)
...     ev = LoggedEvents.from_impressions(["e1", "e1"], ["s1", "s1"], np.array([9, 9]), np.ones(2), np.zeros(2), [imp, imp])
...     seqs = await st.append(ev)
...     await st.close()
...     return seqs.tolist(), len(got)
>>> asyncio.run(demo())
([1, 0], 1)
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from recsys.serving.log_records import Impression, LoggedEvents
from recsys.serving.store_base import EventStore, OnEvents, StoreUnavailable

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, score_id TEXT NOT NULL,
    item INTEGER NOT NULL, reward REAL NOT NULL, ts REAL NOT NULL, clusters BLOB NOT NULL, weights BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS impressions(score_id TEXT PRIMARY KEY, payload BLOB NOT NULL) WITHOUT ROWID;
"""


class SqliteStore(EventStore):
    """SQLite (WAL, full sync) event log with group commit; see the module docstring."""

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike, impression_cache: int = 500_000, synchronous: str = "FULL",
                 impression_linger_s: float = 0.02) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if synchronous.upper() not in ("FULL", "EXTRA", "NORMAL"):
            raise ValueError(f"synchronous must be FULL, EXTRA or NORMAL, got {synchronous!r}")
        self._sync = synchronous.upper()
        self._cache_cap = int(impression_cache)
        self._cache: dict[str, Impression] = {}
        self._pending: dict[str, asyncio.Future] = {}     # event_id -> the queued commit that carries it
        self._q: list[tuple] = []
        self._q_since = 0.0
        self._n_ev = 0
        self._linger = float(impression_linger_s)
        self._failing = False          # the last commit failed (logged once until one succeeds)
        self._cv = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_events: OnEvents | None = None
        self._rconn = self._connect()
        self._rconn.executescript(_SCHEMA)
        self._seen: set[str] = {r[0] for r in self._rconn.execute("SELECT event_id FROM events")}
        self._next_seq = int(self._rconn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]) + 1
        self.commits = 0

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._sync}")
        return conn

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    def describe(self) -> dict:
        return {"kind": self.kind, "path": self.path.name, "last_seq": self.last_seq, "synchronous": self._sync}

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, on_events: OnEvents, after_seq: int) -> None:
        if after_seq != self.last_seq:
            raise RuntimeError(f"service state is at seq {after_seq} but the log ends at {self.last_seq}; replay first")
        self._loop = asyncio.get_running_loop()
        self._on_events = on_events
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        with self._cv:
            self._closing = True
            self._cv.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        self._rconn.close()

    # -- writes -----------------------------------------------------------------------------
    async def record_impression(self, imp: Impression) -> None:
        self._cache[imp.score_id] = imp
        if len(self._cache) > self._cache_cap:
            self._cache.pop(next(iter(self._cache)))
        self._submit(("imp", imp))

    async def append(self, events: LoggedEvents) -> np.ndarray:
        seen, pend = self._seen, self._pending
        while True:
            batch: set[str] = set()
            keep, queued = [], set()
            for i, e in enumerate(events.event_id):
                if e in seen or e in batch:
                    continue
                other = pend.get(e)
                if other is not None and not other.done():
                    queued.add(other)
                else:
                    batch.add(e)
                    keep.append(i)
            if not queued:
                break
            # another request's queued commit carries some of these ids: they are duplicates only once it
            # is durable, and ours to log if it fails; decide again when it has settled
            await asyncio.wait(queued)
        out = np.zeros(len(events), np.int64)
        if not keep:
            return out
        new = events if len(keep) == len(events) else events.take(np.asarray(keep))
        fut = self._loop.create_future()
        for e in batch:
            pend[e] = fut
        try:
            self._submit(("ev", new, fut))
            seqs = await fut
        finally:
            for e in batch:
                if pend.get(e) is fut:
                    del pend[e]
        out[np.asarray(keep)] = seqs
        return out

    def _submit(self, job: tuple) -> None:
        if self._thread is None or self._closing:
            raise StoreUnavailable("the event log is not running")
        with self._cv:
            if not self._q:
                self._q_since = time.monotonic()
            self._q.append(job)
            if job[0] == "ev":           # impressions alone wait for the linger (nobody waits on them)
                self._n_ev += 1
                self._cv.notify()

    def _run(self) -> None:
        conn = self._connect()
        self._cur_sync = self._sync
        while True:
            with self._cv:
                while not self._closing and not self._n_ev:
                    if not self._q:
                        self._cv.wait()
                        continue
                    left = self._q_since + self._linger - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
                jobs, self._q, self._n_ev = self._q, [], 0
            if not jobs:
                break
            if not self._commit(conn, jobs) and self._closing:
                log.error("sqlite event log closed with %d impressions unwritten", len(self._q))
                break
        conn.close()

    def _commit(self, conn: sqlite3.Connection, jobs: list[tuple]) -> bool:
        """Commit one group; False when it failed (its event batches are failed, impressions re-queued)."""
        imps = [j[1] for j in jobs if j[0] == "imp"]
        evs = [(j[1], j[2]) for j in jobs if j[0] == "ev"]
        groups, seq0 = [], self._next_seq
        try:
            # impressions alone need no fsync of their own: in WAL mode the next FULL commit (the first
            # event batch, which may refer to them) syncs the WAL file and every frame before it
            sync = self._sync if evs else "NORMAL"
            if sync != self._cur_sync:
                conn.execute(f"PRAGMA synchronous={sync}")
                self._cur_sync = sync
            conn.execute("BEGIN")
            if imps:
                conn.executemany("INSERT OR REPLACE INTO impressions VALUES (?, ?)", [(im.score_id, im.pack()) for im in imps])
            nxt = seq0
            for ev, fut in evs:
                seqs = np.arange(nxt, nxt + len(ev), dtype=np.int64)
                nxt += len(ev)
                p = ev.term_ptr.tolist()
                cl, w = ev.term_cluster, ev.term_weight
                rows = zip(seqs.tolist(), ev.event_id, ev.score_id, ev.item.tolist(), ev.reward.tolist(), ev.ts.tolist(),
                           [cl[p[i]:p[i + 1]].tobytes() for i in range(len(ev))],
                           [w[p[i]:p[i + 1]].tobytes() for i in range(len(ev))])
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                groups.append((ev.with_seq(seqs), fut))
            conn.execute("COMMIT")
            self._next_seq = nxt
            self.commits += 1
        except Exception as exc:  # disk full, I/O error: nothing of this group is acknowledged
            self._failed(conn, exc, imps, [f for _, f in evs])
            return False
        if self._failing:
            self._failing = False
            log.warning("sqlite event log: commits succeed again")
        if groups:
            self._loop.call_soon_threadsafe(self._deliver, groups)
        return True

    def _failed(self, conn: sqlite3.Connection, exc: Exception, imps: list[Impression], futs: list) -> None:
        """Roll back, re-queue the group's impressions, fail its event batches with the cause."""
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        reason = str(exc) if isinstance(exc, sqlite3.Error) else type(exc).__name__
        if not self._failing:
            self._failing = True
            log.error("sqlite event log refuses writes (%s); answering 503 until a commit succeeds", reason,
                      exc_info=not isinstance(exc, sqlite3.Error))
        with self._cv:
            # impressions are retried with the next commit (after a pause when nobody waits on them);
            # beyond the cache's capacity the oldest are given up, and forgotten so no event is
            # acknowledged against an impression that is not durable
            keep = max(0, self._cache_cap - (len(self._q) - self._n_ev))
            dropped = [im.score_id for im in imps[:max(0, len(imps) - keep)]]
            self._q[:0] = [("imp", im) for im in imps[len(dropped):]]
            self._q_since = time.monotonic() + 0.5
        err = StoreUnavailable(f"the event log refused the write: {reason}")
        self._loop.call_soon_threadsafe(self._fail, futs, err, dropped)

    def _deliver(self, groups: list) -> None:
        for ev, fut in groups:
            self._seen.update(ev.event_id)      # durable now: a copy of these ids is a duplicate from here on
            try:
                self._on_events(ev)
            except Exception as exc:  # never lose the ack path; the event is durable already
                log.exception("applying committed events failed")
                if not fut.done():
                    fut.set_exception(exc)
                continue
            if not fut.done():
                fut.set_result(ev.seq)

    def _fail(self, futs: list, exc: Exception, dropped: list[str]) -> None:
        for sid in dropped:
            self._cache.pop(sid, None)
        if dropped:
            log.error("sqlite event log: gave up %d impressions that could not be written", len(dropped))
        for f in futs:
            if not f.done():
                f.set_exception(exc)

    # -- reads ------------------------------------------------------------------------------
    async def get_impressions(self, score_ids: list[str]) -> dict[str, Impression]:
        out, miss = self._split_cached(score_ids)
        if miss:
            with _unavailable_on_error("read impressions"):
                out.update(self._db_impressions(self._rconn, miss))
        return out

    @staticmethod
    def _db_impressions(conn: sqlite3.Connection, ids: list[str]) -> dict[str, Impression]:
        out = {}
        uniq = list(dict.fromkeys(ids))
        for i in range(0, len(uniq), 500):
            part = uniq[i:i + 500]
            q = f"SELECT score_id, payload FROM impressions WHERE score_id IN ({','.join('?' * len(part))})"
            for sid, payload in conn.execute(q, part):
                out[sid] = Impression.unpack(sid, payload)
        return out

    def read_events(self, after_seq: int, upto_seq: int | None = None, chunk: int = 50_000) -> Iterator[LoggedEvents]:
        with _unavailable_on_error("read the event log"):
            yield from self._read_events(after_seq, upto_seq, chunk)

    def _read_events(self, after_seq: int, upto_seq: int | None, chunk: int) -> Iterator[LoggedEvents]:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            hi = upto_seq if upto_seq is not None else 2**62
            cur = after_seq
            while True:
                rows = conn.execute("SELECT seq, event_id, score_id, item, reward, ts, clusters, weights FROM events "
                                    "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?", (cur, hi, chunk)).fetchall()
                if not rows:
                    return
                yield _rows_to_events(rows)
                cur = rows[-1][0]
                if len(rows) < chunk:
                    return
        finally:
            conn.close()

    async def export(self, since: int, limit: int) -> tuple[LoggedEvents, list[Impression]]:
        def work() -> tuple[LoggedEvents, list[Impression]]:
            ev = next(self.read_events(since, None, limit), LoggedEvents.empty())
            with _unavailable_on_error("read impressions"):
                conn = sqlite3.connect(self.path, timeout=30)
                try:
                    imps = self._db_impressions(conn, ev.score_id)
                finally:
                    conn.close()
            return ev, list(imps.values())
        return await asyncio.to_thread(work)

    # -- snapshots --------------------------------------------------------------------------
    @property
    def snapshot_path(self) -> Path:
        return self.path.with_name(self.path.name + ".snapshot.npz")

    def save_snapshot(self, table: dict[str, np.ndarray], version: int, seq: int, params_created: str) -> None:
        """Write the serving statistics atomically (temporary file, fsync, rename)."""
        tmp = self.path.with_name(f".{self.path.name}.snapshot.{os.getpid()}.tmp.npz")
        t0 = time.perf_counter()
        try:
            with open(tmp, "wb") as f:
                np.savez(f, version=np.int64(version), seq=np.int64(seq), params_created=np.str_(params_created), **table)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.snapshot_path)
        except BaseException:          # disk full, say: leave no partial file taking the space
            tmp.unlink(missing_ok=True)
            raise
        log.info("snapshot at seq %d (%d edges) in %.3fs", seq, table["d"].size, time.perf_counter() - t0)

    def load_snapshot(self) -> dict | None:
        """The last snapshot as a dict of arrays (``version``, ``seq``, ``params_created``, edge columns)."""
        if not self.snapshot_path.exists():
            return None
        try:
            with np.load(self.snapshot_path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:  # a torn snapshot is ignored: the log alone is enough
            log.warning("ignoring unreadable snapshot %s: %s", self.snapshot_path, e)
            return None


@contextlib.contextmanager
def _unavailable_on_error(what: str) -> Iterator[None]:
    """SQLite errors as :class:`StoreUnavailable` (the cause in the message, no path)."""
    try:
        yield
    except sqlite3.Error as e:
        log.warning("sqlite event log: could not %s: %s", what, e)
        raise StoreUnavailable(f"the event log could not {what}: {e}") from e


def _rows_to_events(rows: list[tuple]) -> LoggedEvents:
    seq, eid, sid, item, reward, ts, cl, w = zip(*rows)
    counts = np.fromiter((len(c) // 4 for c in cl), np.int64, len(cl))
    ptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    return LoggedEvents(np.array(seq, np.int64), list(eid), list(sid), np.array(item, np.int64),
                        np.array(reward, np.float64), np.array(ts, np.float64), ptr,
                        np.frombuffer(b"".join(cl), np.int32).copy(), np.frombuffer(b"".join(w), np.float64).copy())
