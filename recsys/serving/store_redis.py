"""Shared event store for several service replicas: Redis, with dedup and increments in one Lua script.

Keys (one hash tag, so the whole store maps to one slot):

* ``{p}:seq`` — the log sequence counter (``INCR``).
* ``{p}:ids`` — hash ``event_id → seq`` (dedup across replicas and retries).
* ``{p}:log`` — stream, entry id ``<seq>-0``, field ``p`` = the packed event with its context.
* ``{p}:agg:d`` / ``{p}:agg:b`` — hashes ``"cluster:item" → Σ w²`` / ``Σ w·r`` over every
  acknowledged event (the live aggregate; equals a replay of the log).
* ``{p}:imp:<score_id>`` — packed impression (expires after ``impression_ttl_s``), written by a
  background pipelined flusher so scoring does not wait for Redis.  While Redis is away the
  flusher keeps the impressions queued and retries (backing off to 1 s); a feedback batch first
  writes this replica's queued impressions itself, so no event is logged before its impression,
  and a score id missing in Redis is looked up once more after 50 ms (another replica may still be
  writing it).

Redis unreachable or refusing a command: every call raises
:class:`~recsys.serving.store_base.StoreUnavailable` (the service answers 503; nothing of a failed
``append`` is acknowledged) and scoring goes on from memory; once Redis is back, a retried batch
finds its impressions (none is dropped while queued, up to ``impression_cache`` of them).

URL options: ``redis://HOST:PORT/DB?prefix=NAME&aggregates=0`` (``aggregates=0`` skips the
``agg`` hashes: the log stays the source of truth, the script does a third of the work).

``append`` runs one script per batch: for each event not in ``ids`` it takes the next ``seq``,
records the id, appends to the log and applies the ``HINCRBYFLOAT`` increments — atomically, so two
replicas racing on one ``event_id`` count it once.  Each replica serves from memory and applies
the log in ``seq`` order: its own new events right after the script (from memory when they directly
follow what it has applied, else by reading the log up to them), other replicas' within ``poll_s``.
Run Redis with ``--appendonly yes --appendfsync always`` for "persisted before acknowledged": the
reply to the script (and to any read of its effects) is sent after the AOF fsync.

>>> imp = Impression("s1", 3, 1, 0.0, np.array([0, 5], np.int32), np.array([0.6, 0.4]), np.array([9]))
>>> ev = LoggedEvents.from_impressions(["e1"], ["s1"], np.array([9]), np.array([1.0]), np.array([2.0]), [imp])
>>> back = unpack_entries([(b"7-0", {b"p": pack_event(ev, 0)})])
>>> back.seq.tolist(), back.event_id, back.term_cluster.tolist()
([7], ['e1'], [0, 5])
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from typing import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import numpy as np

from recsys.serving.log_records import Impression, LoggedEvents
from recsys.serving.store_base import EventStore, OnEvents, StoreUnavailable

log = logging.getLogger(__name__)

_EV = struct.Struct("<qddHHH")   # item, reward, ts, len(event_id), len(score_id), n_terms

_APPEND = """
local n = tonumber(ARGV[1])
local i = 2
local out = {}
for e = 1, n do
  local eid = ARGV[i]
  local nt = tonumber(ARGV[i + 2])
  if redis.call('HEXISTS', KEYS[2], eid) == 0 then
    local seq = redis.call('INCR', KEYS[1])
    redis.call('HSET', KEYS[2], eid, seq)
    redis.call('XADD', KEYS[3], tostring(seq) .. '-0', 'p', ARGV[i + 1])
    for t = 0, nt - 1 do
      local o = i + 3 + 3 * t
      redis.call('HINCRBYFLOAT', KEYS[4], ARGV[o], ARGV[o + 1])
      redis.call('HINCRBYFLOAT', KEYS[5], ARGV[o], ARGV[o + 2])
    end
    out[e] = seq
  else
    out[e] = 0
  end
  i = i + 3 + 3 * nt
end
return out
"""


def pack_event(ev: LoggedEvents, i: int) -> bytes:
    """One event with its context terms as bytes (the log entry payload)."""
    a, b = int(ev.term_ptr[i]), int(ev.term_ptr[i + 1])
    e, s = ev.event_id[i].encode(), ev.score_id[i].encode()
    return (_EV.pack(int(ev.item[i]), float(ev.reward[i]), float(ev.ts[i]), len(e), len(s), b - a) + e + s
            + ev.term_cluster[a:b].astype(np.int32).tobytes() + ev.term_weight[a:b].astype(np.float64).tobytes())


def unpack_entries(entries: list) -> LoggedEvents:
    """Stream entries ``(b"<seq>-0", {b"p": payload})`` → a :class:`LoggedEvents` batch."""
    n = len(entries)
    seq = np.empty(n, np.int64)
    item = np.empty(n, np.int64)
    reward = np.empty(n)
    ts = np.empty(n)
    counts = np.empty(n, np.int64)
    eids, sids, cls, ws = [], [], [], []
    for j, (eid_b, fields) in enumerate(entries):
        p = fields[b"p"]
        seq[j] = int(eid_b.split(b"-", 1)[0])
        item[j], reward[j], ts[j], le, ls, nt = _EV.unpack_from(p)
        o = _EV.size
        eids.append(p[o:o + le].decode())
        sids.append(p[o + le:o + le + ls].decode())
        o += le + ls
        cls.append(p[o:o + 4 * nt])
        ws.append(p[o + 4 * nt:o + 12 * nt])
        counts[j] = nt
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    return LoggedEvents(seq, eids, sids, item, reward, ts, ptr, np.frombuffer(b"".join(cls), np.int32).copy(),
                        np.frombuffer(b"".join(ws), np.float64).copy())


class RedisStore(EventStore):
    """Redis-backed store for one or more replicas; see the module docstring."""

    kind = "redis"

    def __init__(self, url: str, prefix: str = "{graphrec}", impression_ttl_s: int = 7 * 86400,
                 poll_s: float = 0.02, impression_cache: int = 200_000, aggregates: bool = True,
                 max_connections: int = 64) -> None:
        import redis
        import redis.asyncio as aredis

        self._errors = (redis.RedisError, OSError)

        u = urlparse(url)
        if u.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"not a redis URL: {url!r}")
        q = parse_qs(u.query)
        prefix = q.pop("prefix", [prefix])[0]
        aggregates = q.pop("aggregates", ["1" if aggregates else "0"])[0] not in ("0", "false", "no")
        url = urlunparse(u._replace(query=urlencode({k: v[0] for k, v in q.items()})))
        self.url, self.prefix, self.aggregates = url, prefix, aggregates
        self._safe_url = f"{u.scheme}://{u.hostname}:{u.port}{u.path}"
        self._r = aredis.Redis(connection_pool=aredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=30))
        self._sync_client = lambda: redis.from_url(url)
        self.k_seq, self.k_ids, self.k_log = f"{prefix}:seq", f"{prefix}:ids", f"{prefix}:log"
        self.k_aggd, self.k_aggb = f"{prefix}:agg:d", f"{prefix}:agg:b"
        self._ttl, self._poll = int(impression_ttl_s), float(poll_s)
        self._cache: dict[str, Impression] = {}
        self._cache_cap = int(impression_cache)
        self._lock = asyncio.Lock()
        self._delivered = 0
        self._on_events: OnEvents | None = None
        self._task: asyncio.Task | None = None
        self._script = self._r.register_script(_APPEND)
        self._imp_q: list[tuple[str, bytes]] = []
        self._imp_lock = asyncio.Lock()
        self._flusher: asyncio.Task | None = None
        self._away = False             # the last call failed (logged once until one succeeds)

    def imp_key(self, score_id: str) -> str:
        return f"{self.prefix}:imp:{score_id}"

    def describe(self) -> dict:
        return {"kind": self.kind, "url": self._safe_url, "delivered_seq": self._delivered}

    def last_seq_sync(self) -> int:
        """Current end of the shared log (blocking)."""
        r = self._sync_client()
        try:
            return int(r.get(self.k_seq) or 0)
        finally:
            r.close()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, on_events: OnEvents, after_seq: int) -> None:
        await self._r.ping()
        self._on_events = on_events
        self._delivered = int(after_seq)
        await self.sync()
        self._task = asyncio.create_task(self._tail(), name="redis-tail")

    def _down(self, what: str, exc: BaseException) -> StoreUnavailable:
        if not self._away:
            self._away = True
            log.warning("redis unavailable (%s: %s); answering 503 until it is back", what, exc)
        return StoreUnavailable(f"the shared event store (redis) is unavailable: could not {what}")

    def _up(self) -> None:
        if self._away:
            self._away = False
            log.warning("redis is back")

    @contextlib.asynccontextmanager
    async def _call(self, what: str) -> AsyncIterator[None]:
        """Redis errors as :class:`StoreUnavailable` (no host or port in the message)."""
        try:
            yield
        except self._errors as e:
            raise self._down(what, e) from e
        self._up()

    async def close(self) -> None:
        if self._flusher is not None:
            try:       # one last round while Redis answers; what cannot be written is given up
                await asyncio.wait_for(asyncio.shield(self._flusher), 5)
            except (asyncio.TimeoutError, *self._errors):
                self._flusher.cancel()
                await asyncio.gather(self._flusher, return_exceptions=True)
                if self._imp_q:
                    log.warning("closing with %d impressions not written to redis", len(self._imp_q))
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self._r.aclose()

    async def _tail(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self.sync()
                self._up()
            except asyncio.CancelledError:
                raise
            except self._errors as e:  # Redis away: keep serving from memory, retry
                self._down("read the log", e)
                await asyncio.sleep(0.5)
            except Exception:
                log.exception("redis tail failed; retrying")
                await asyncio.sleep(0.5)

    async def sync(self, upto: int | None = None) -> None:
        """Deliver every logged event after the last delivered one (at least up to ``upto``)."""
        async with self._lock:
            while upto is None or self._delivered < upto:
                entries = await self._r.xrange(self.k_log, min=f"{self._delivered + 1}-0", max="+", count=10_000)
                if not entries:
                    if upto is not None:
                        raise RuntimeError(f"log ends before seq {upto}")
                    return
                ev = unpack_entries(entries)
                self._on_events(ev)
                self._delivered = int(ev.seq[-1])

    # -- writes -----------------------------------------------------------------------------
    async def record_impression(self, imp: Impression) -> None:
        self._cache[imp.score_id] = imp
        if len(self._cache) > self._cache_cap:
            self._cache.pop(next(iter(self._cache)))
        self._imp_q.append((self.imp_key(imp.score_id), imp.pack()))
        if len(self._imp_q) > self._cache_cap:     # Redis away for long: give up the oldest, and forget
            key, _ = self._imp_q.pop(0)           # them, so no event is acknowledged against them
            self._cache.pop(key[len(self.prefix) + 5:], None)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_impressions())

    async def _write_impressions(self) -> None:
        """Write every queued impression (pipelined rounds, one writer at a time); on failure they stay queued."""
        async with self._imp_lock:
            while self._imp_q:
                batch, self._imp_q = self._imp_q, []
                pipe = self._r.pipeline(transaction=False)
                for k, v in batch:
                    pipe.set(k, v, ex=self._ttl)
                try:
                    await pipe.execute()
                except BaseException:
                    self._imp_q[:0] = batch
                    raise

    async def _flush_impressions(self) -> None:
        """Background writer: retries while Redis is away (50 ms doubling to 1 s)."""
        delay = 0.05
        while self._imp_q:
            try:
                await self._write_impressions()
                self._up()
            except self._errors as e:
                self._down("record impressions", e)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 1.0)

    async def append(self, events: LoggedEvents) -> np.ndarray:
        async with self._call("log the events"):
            return await self._append(events)

    async def _append(self, events: LoggedEvents) -> np.ndarray:
        args: list = [len(events)]
        if self._imp_q or self._imp_lock.locked():
            await self._write_impressions()          # impressions this replica showed are written first
        cl, it, w, r = events.terms()
        keys = [f"{c}:{i}" for c, i in zip(cl.tolist(), it.tolist())]
        w2 = (w * w).tolist()
        wr = (w * r).tolist()
        p = events.term_ptr.tolist()
        for i in range(len(events)):
            if not self.aggregates:
                args += [events.event_id[i], pack_event(events, i), 0]
                continue
            args += [events.event_id[i], pack_event(events, i), p[i + 1] - p[i]]
            for t in range(p[i], p[i + 1]):
                args += [keys[t], repr(w2[t]), repr(wr[t])]
        res = await self._script(keys=[self.k_seq, self.k_ids, self.k_log, self.k_aggd, self.k_aggb], args=args)
        seqs = np.asarray(res, np.int64)
        new = np.flatnonzero(seqs > 0)
        if new.size:
            # the script gives a batch's new events consecutive seqs; when nothing from another replica
            # sits between the last delivered event and them, deliver them from memory (no read-back)
            async with self._lock:
                first, last = int(seqs[new[0]]), int(seqs[new[-1]])
                if self._delivered == first - 1:
                    ev = events if new.size == len(events) else events.take(new)
                    self._on_events(ev.with_seq(seqs[new]))
                    self._delivered = last
            await self.sync(upto=last)
        return seqs

    # -- reads ------------------------------------------------------------------------------
    async def get_impressions(self, score_ids: list[str]) -> dict[str, Impression]:
        out, miss = self._split_cached(score_ids)
        if miss:
            async with self._call("read impressions"):
                out.update(await self._lookup(miss))
        return out

    async def _lookup(self, miss: list[str]) -> dict[str, Impression]:
        out: dict[str, Impression] = {}
        for attempt in range(2):       # another replica may still be writing a fresh impression
            if not miss:
                break
            if attempt:
                await asyncio.sleep(0.05)
            miss = list(dict.fromkeys(miss))
            vals = await self._r.mget([self.imp_key(s) for s in miss])
            out.update({s: Impression.unpack(s, v) for s, v in zip(miss, vals) if v is not None})
            miss = [s for s in miss if s not in out]
        return out

    def read_events(self, after_seq: int, upto_seq: int | None = None, chunk: int = 50_000) -> Iterator[LoggedEvents]:
        try:
            yield from self._read_events(after_seq, upto_seq, chunk)
        except self._errors as e:
            raise self._down("read the log", e) from e

    def _read_events(self, after_seq: int, upto_seq: int | None, chunk: int) -> Iterator[LoggedEvents]:
        r = self._sync_client()
        try:
            cur = after_seq
            hi = "+" if upto_seq is None else f"{upto_seq}-0"
            while True:
                entries = r.xrange(self.k_log, min=f"{cur + 1}-0", max=hi, count=chunk)
                if not entries:
                    return
                ev = unpack_entries(entries)
                yield ev
                cur = int(ev.seq[-1])
        finally:
            r.close()

    async def export(self, since: int, limit: int) -> tuple[LoggedEvents, list[Impression]]:
        async with self._call("read the log"):
            entries = await self._r.xrange(self.k_log, min=f"{since + 1}-0", max="+", count=limit)
        ev = unpack_entries(entries) if entries else LoggedEvents.empty()
        imps = await self.get_impressions(ev.score_id)
        return ev, list(imps.values())

    async def aggregates(self) -> dict[tuple[int, int], tuple[float, float]]:
        """The live ``(Σw², Σw·r)`` per ``(cluster, item)`` kept by the script (for checks and monitoring)."""
        d = await self._r.hgetall(self.k_aggd)
        b = await self._r.hgetall(self.k_aggb)
        out = {}
        for k, v in d.items():
            c, i = k.decode().split(":")
            out[(int(c), int(i))] = (float(v), float(b.get(k, 0.0)))
        return out
