"""Bandit scoring service benchmark: ``python -m benchmarks.serving``.

Parameters: C = 1,000 clusters, 100,000 items, W = 200 items per cluster (200k edges), 100,000
users with K = 3 clusters each (generated, :func:`recsys.serving.synthetic.synthetic_params`).

1. In process, scoring one request (ours: vectorised :class:`ServingStats`; baseline: a
   per-candidate dict loop of the same formula) for 50 / 200 / 1,000 candidates.
2. In process, durable ingest of batches of 100 events (ours: :class:`SqliteStore` append-only log
   with group commit, 1 and 8 concurrent batches; baseline: upserting the statistic rows of every
   event in SQLite, WAL + synchronous=FULL, one transaction per batch — the design algorithms.md §5
   measured at ~16k events/s before HTTP).
3. End to end over HTTP on 127.0.0.1: the service (``python -m recsys.serving.cli``, durability on)
   in one process, an open-loop load generator (asyncio, keep-alive connections, latency measured
   from each request's *scheduled* send time, so queueing counts) in this process.  Score requests
   carry 200 candidates (k = 10) at 250 / 500 / 1,000 requests/s; feedback batches of 100 events at
   100 / 200 / 300 batches/s plus closed loops (8 and 32 connections) for the maximum.  Configurations:
   SQLite with the service's own fast stack (uvloop + httptools + orjson, from the project's
   environment), SQLite with ``--http-stack plain`` (asyncio + h11), and Redis (AOF, fsync always,
   hiredis) when redis-server is installed.  Peak RSS of the service process is sampled with psutil.

Writes ``benchmarks/results/serving.json``; the headline ``score``/``feedback`` entries are the SQLite
configuration with the fast stack at 500 requests/s and the last (32-connection) closed loop.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.http_load import Service, fmt_ms, free_port, open_loop, request, summarise
from recsys.candidates import CandidateConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "serving.json"
TOKEN = "bench-token-0123456789"


# --------------------------------------------------------------------------------------------- setup
def make_params(root: Path, n_clusters: int, n_items: int, n_users: int, w: int,
                off_graph: str = CandidateConfig.off_graph):
    from recsys.bandits.publish import publish_params
    from recsys.serving.synthetic import synthetic_params

    p = synthetic_params(n_clusters, n_items, n_users, w, k=3, seed=7).replace(extra={"off_graph": off_graph})
    rng = np.random.default_rng(1)   # some learnt statistics, so scores are not all ties
    p = p.replace(d=p.d + rng.exponential(2.0, p.d.size), b=rng.normal(0, 0.3, p.b.size))
    publish_params(root / "params", p)
    return p


# ------------------------------------------------------------------------------- in-process: scoring
def bench_scoring(p, sizes=(50, 200, 1000), reps=300) -> list[dict]:
    from recsys.serving.state import ServingStats

    st = ServingStats(p)
    skip = st.off_graph == "skip"   # the baseline follows the same off-graph rule
    dmap = {(c, i): (d, b) for c, i, d, b in zip(p.edge_cluster.tolist(), p.edge_item.tolist(), p.d.tolist(), p.b.tolist())}
    rng = np.random.default_rng(0)
    rows = []
    for m in sizes:
        users = rng.integers(0, p.user.size // 3, reps)
        cands = []
        for u in users:
            c, _ = st.context(int(u))
            pool = st.candidates(c)
            cands.append(rng.choice(pool, size=min(m, pool.size), replace=False) if pool.size >= m
                         else np.concatenate([pool, rng.integers(0, 100_000, m - pool.size)]))
        t = []
        for u, cand in zip(users, cands):
            t0 = time.perf_counter()
            c, w = st.context(int(u))
            st.score(c, w, cand, 10)
            t.append(time.perf_counter() - t0)
        tb = []
        for u, cand in zip(users[:100], cands[:100]):
            t0 = time.perf_counter()
            c, w = st.context(int(u))
            cw = list(zip(c.tolist(), w.tolist()))
            sc = []
            for j in cand.tolist():
                mean = var = 0.0
                for ci, wi in cw:
                    if skip and (ci, j) not in dmap:
                        continue
                    d, b = dmap.get((ci, j), (p.lam, 0.0))
                    mean += wi * b / d
                    var += wi * wi / d
                sc.append(mean + p.alpha * var ** 0.5)
            sorted(range(len(sc)), key=sc.__getitem__, reverse=True)[:10]
            tb.append(time.perf_counter() - t0)
        rows.append({"candidates": m, "ours_us": float(np.median(t) * 1e6), "baseline_us": float(np.median(tb) * 1e6)})
    return rows


# ------------------------------------------------------------------------------- in-process: ingest
def bench_ingest(p, tmp: Path, n_batches=150, batch=100) -> list[dict]:
    import sqlite3

    from recsys.serving.log_records import Impression, LoggedEvents
    from recsys.serving.store_sqlite import SqliteStore

    rng = np.random.default_rng(2)
    users = rng.integers(0, p.user.size // 3, n_batches * batch)
    items = rng.choice(p.edge_item, n_batches * batch)
    ptr = np.searchsorted(p.user, users)
    imps = [Impression(f"s{i}", int(u), 1, 0.0, p.user_cluster[a:a + 3], p.user_weight[a:a + 3].astype(np.float64),
                       np.array([it])) for i, (u, a, it) in enumerate(zip(users, ptr, items))]
    batches = [LoggedEvents.from_impressions([f"e{b}-{i}" for i in range(batch)], [im.score_id for im in imps[b * batch:(b + 1) * batch]],
                                             items[b * batch:(b + 1) * batch], np.ones(batch), np.zeros(batch),
                                             imps[b * batch:(b + 1) * batch]) for b in range(n_batches)]
    rows = []
    for conc in (1, 8):
        async def run() -> float:
            st = SqliteStore(tmp / f"ingest-{conc}.db")
            await st.start(lambda ev: None, 0)
            sem = asyncio.Semaphore(conc)

            async def one(b):
                async with sem:
                    await st.append(b)
            t0 = time.perf_counter()
            await asyncio.gather(*(one(b) for b in batches))
            dt = time.perf_counter() - t0
            await st.close()
            return dt
        dt = asyncio.run(run())
        rows.append({"method": f"ours: append-only log, group commit, {conc} concurrent", "events_per_s": n_batches * batch / dt})
    conn = sqlite3.connect(tmp / "naive.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE stats(cluster INTEGER, item INTEGER, d REAL, b REAL, PRIMARY KEY(cluster, item))")
    conn.execute("CREATE TABLE ids(event_id TEXT PRIMARY KEY)")
    t0 = time.perf_counter()
    for ev in batches:
        cl, it, w, r = ev.terms()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO ids VALUES (?)", [(e,) for e in ev.event_id])
        conn.executemany("INSERT INTO stats VALUES (?, ?, ?, ?) ON CONFLICT(cluster, item) DO UPDATE SET d = d + excluded.d - ?, b = b + excluded.b",
                         [(c, i, p.lam + x * x, x * y, p.lam) for c, i, x, y in zip(cl.tolist(), it.tolist(), w.tolist(), r.tolist())])
        conn.execute("COMMIT")
    dt = time.perf_counter() - t0
    conn.close()
    rows.append({"method": "baseline: upsert statistic rows per event (SQLite WAL, FULL)", "events_per_s": n_batches * batch / dt})
    return rows


def _loads(b: bytes):
    return json.loads(b)


def run_http(p, params_dir: Path, store: str, workdir: Path, http_stack: str, duration: float,
             score_rates=(250, 500, 1000), fb_rates=(100, 200, 300), conns: int = 32,
             closed_conns=(8, 32)) -> dict:
    svc = Service(params_dir, store, workdir, http_stack, TOKEN)
    rng = np.random.default_rng(3)
    n_users = int(np.unique(p.user).size)
    from recsys.serving.state import ServingStats

    st = ServingStats(p)
    pool = []
    for u in rng.integers(0, n_users, 2000):
        c, _ = st.context(int(u))
        cand = st.candidates(c)
        cand = rng.choice(cand, 200, replace=False) if cand.size >= 200 else np.concatenate([cand, rng.integers(0, 100_000, 200 - cand.size)])
        pool.append(request("/v1/score", json.dumps({"user": int(u), "candidates": np.unique(cand).tolist(), "k": 10}).encode()))
    out = {"score": [], "feedback": []}
    shown = []
    try:
        asyncio.run(open_loop(svc.port, pool[:300], None, 4))          # warm-up
        for rate in score_rates:
            n = int(rate * duration)
            reqs = [pool[i % len(pool)] for i in range(n)]
            c0 = svc.cpu()
            lat, status, bodies, wall = asyncio.run(open_loop(svc.port, reqs, rate, conns))
            out["score"].append({"target_rps": rate, "candidates": 200, **summarise(lat, status, wall, 1, svc.cpu() - c0)})
            for b in bodies[:: max(1, n // 3000)]:
                j = _loads(b)
                shown += [(j["score_id"], x["item"]) for x in j["items"]]
            print(f"  score  {rate:5d}/s: {out['score'][-1]}", flush=True)
        ev = 0

        def fb_reqs(nb: int) -> list[bytes]:
            nonlocal ev
            reqs = []
            for _ in range(nb):
                idx = rng.integers(0, len(shown), 100)
                evs = [{"event_id": f"ev{ev + i}", "score_id": shown[k][0], "item": shown[k][1], "reward": float(i % 4 == 0)}
                       for i, k in enumerate(idx.tolist())]
                ev += 100
                reqs.append(request("/v1/feedback", json.dumps({"events": evs}).encode(), TOKEN))
            return reqs
        for rate in fb_rates:
            reqs = fb_reqs(int(rate * duration))
            c0 = svc.cpu()
            lat, status, _, wall = asyncio.run(open_loop(svc.port, reqs, rate, conns))
            out["feedback"].append({"target_batches_per_s": rate, "batch": 100, **summarise(lat, status, wall, 100, svc.cpu() - c0)})
            print(f"  feedback {rate:4d} batches/s: {out['feedback'][-1]}", flush=True)
        for nc in closed_conns:     # closed loops: each connection sends its next batch when answered
            reqs = fb_reqs(int(500 * duration))
            c0 = svc.cpu()
            lat, status, _, wall = asyncio.run(open_loop(svc.port, reqs, None, nc, max_s=duration))
            out["feedback"].append({"target_batches_per_s": f"closed loop, {nc} connections", "batch": 100,
                                    **summarise(lat, status, wall, 100, svc.cpu() - c0)})
            print(f"  feedback closed loop {nc}: {out['feedback'][-1]}", flush=True)
    finally:
        svc.stop()
    out["service_peak_rss_mb"] = svc.peak_rss / 2**20
    return out


# ---------------------------------------------------------------------------------------------- main
def _fast_stack() -> dict:
    """Which fast-stack packages the service's interpreter (this one) can import."""
    import importlib.util

    return {m: importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools", "orjson", "hiredis")}


def _stack_name(fast: bool) -> str:
    from recsys.serving.cli import http_stack

    loop, http = http_stack("auto" if fast else "plain")
    return f"{loop}+{http}+{'orjson' if _fast_stack()['orjson'] else 'json'}"


def _redis(workdir: Path):
    exe = shutil.which("redis-server")
    if exe is None:
        return None, None
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--appendonly", "yes",
                             "--appendfsync", "always", "--save", ""], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--w", type=int, default=200)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per load point")
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument("--configs", default="sqlite-fast,sqlite-plain,redis-fast",
                    help="comma list of sqlite-fast, sqlite-plain, redis-fast, redis-fast-noagg")
    ap.add_argument("--score-rates", default="250,500,1000", help="open-loop score request rates")
    ap.add_argument("--feedback-rates", default="100,200,300", help="open-loop feedback batch rates ('' for none)")
    ap.add_argument("--closed-conns", default="8,32", help="closed-loop feedback connection counts (headline: the last)")
    ap.add_argument("--off-graph", default=CandidateConfig.off_graph, choices=["skip", "prior"],
                    help="the version's off-graph rule (skip: what recsys.candidates builds by default)")
    ap.add_argument("--output", default=str(RESULTS))
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:  # the load generator on uvloop too: less of the 2 cores spent on the client side
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is in requirements.txt
        pass
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        t0 = time.perf_counter()
        p = make_params(tmp, a.clusters, a.items, a.users, a.w, a.off_graph)
        print(f"params: C={a.clusters} items={a.items} users={a.users} W={a.w} edges={p.num_edges} ({time.perf_counter() - t0:.1f}s)")
        res = {"setup": {"clusters": a.clusters, "items": a.items, "users": a.users, "W": a.w, "K": 3, "edges": p.num_edges,
                         "off_graph": a.off_graph, "cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(), "duration_s": a.duration,
                         "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "fast_stack": _fast_stack()}}
        res["scoring_in_process"] = bench_scoring(p)
        res["ingest_in_process"] = bench_ingest(p, tmp)
        wanted = a.configs.split(",")
        rproc = None
        if not a.no_redis and any(c.startswith("redis") for c in wanted):
            rproc, rurl = _redis(tmp)
        if rproc is None:
            wanted = [c for c in wanted if not c.startswith("redis")]
        res["http"] = {}
        try:
            for cfg in wanted:
                kind, fast = cfg.split("-")[0], "-fast" in cfg
                name = f"{kind}/{_stack_name(fast)}" + ("/no-aggregates" if "noagg" in cfg else "")
                print(f"HTTP {name}", flush=True)
                store = f"sqlite:///{tmp / (cfg + '.db')}" if kind == "sqlite" else rurl.replace("/0", f"/{len(res['http'])}") + (
                    "?aggregates=0" if "noagg" in cfg else "")
                res["http"][name] = run_http(p, tmp / "params", store, tmp, "auto" if fast else "plain", a.duration,
                                             tuple(int(x) for x in a.score_rates.split(",") if x),
                                             tuple(int(x) for x in a.feedback_rates.split(",") if x),
                                             closed_conns=tuple(int(x) for x in a.closed_conns.split(",") if x))
        finally:
            if rproc is not None:
                rproc.terminate()
                rproc.wait()
        res["setup"]["load_avg_end"] = os.getloadavg()
        head = res["http"][next(iter(res["http"]))]
        s500 = min(head["score"], key=lambda r: abs(r["target_rps"] - 500))   # the 500 requests/s point
        fmax = head["feedback"][-1]
        res["score"] = {"rps": s500["achieved_per_s"], "p50_ms": s500["p50_ms"], "p99_ms": s500["p99_ms"], "config": next(iter(res["http"]))}
        res["feedback"] = {"events_per_s": fmax["achieved_per_s"], "p99_ms": fmax["p99_ms"], "batch": 100,
                           "config": next(iter(res["http"])) + ", " + str(fmax["target_batches_per_s"])}
        res["capacity_from_service_cpu"] = {     # load-independent: what one core of service CPU sustains
            "score_rps_per_core": 1000.0 / s500["service_cpu_ms_per_req"],
            "feedback_events_per_s_per_core": 100 * 1000.0 / fmax["service_cpu_ms_per_req"]}
        res["targets"] = {"score_p99_le_10ms_at_500rps": (s500["p99_ms"] or 1e9) <= 10 and s500["achieved_per_s"] >= 490,
                          "feedback_ge_20k_events_per_s": fmax["achieved_per_s"] >= 20_000}
        Path(a.output).parent.mkdir(parents=True, exist_ok=True)
        Path(a.output).write_text(json.dumps(res, indent=2))
        _print_tables(res)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _print_tables(res: dict) -> None:
    print("\nscoring one request in process (median µs)")
    print("| candidates | ours (vectorised) | baseline (dict loop) | speed-up |\n|---:|---:|---:|---:|")
    for r in res["scoring_in_process"]:
        print(f"| {r['candidates']} | {r['ours_us']:.0f} | {r['baseline_us']:.0f} | {r['baseline_us'] / r['ours_us']:.1f}x |")
    print("\ndurable ingest in process, batches of 100 (SQLite WAL, synchronous=FULL)")
    print("| method | events/s |\n|---|---:|")
    base = res["ingest_in_process"][-1]["events_per_s"]
    for r in res["ingest_in_process"]:
        print(f"| {r['method']} | {r['events_per_s']:,.0f} ({r['events_per_s'] / base:.1f}x) |")
    print("\nHTTP on 127.0.0.1, open loop (latency from scheduled send time)")
    print("| config | load | achieved | p50 ms | p99 ms | errors | service CPU ms/req | service peak RSS MB |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for name, h in res["http"].items():
        for r in h["score"]:
            print(f"| {name} | score {r['target_rps']}/s, 200 cand. | {r['achieved_per_s']:.0f} rps | {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | {r['errors']} | {r['service_cpu_ms_per_req']:.2f} | {h['service_peak_rss_mb']:.0f} |")
        for r in h["feedback"]:
            print(f"| {name} | feedback {r['target_batches_per_s']} ×100 | {r['achieved_per_s']:,.0f} ev/s | {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | {r['errors']} | {r['service_cpu_ms_per_req']:.2f} | |")
    print(f"\nheadline: score {res['score']}\n          feedback {res['feedback']}\n          targets {res['targets']}"
          f"\n          capacity from service CPU {res['capacity_from_service_cpu']}")


if __name__ == "__main__":
    main()
