"""Helpers for the scoring-service tests: service subprocesses, a redis-server, a direct replay."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-0123456789"
N_CLUSTERS, N_ITEMS, N_USERS = 16, 300, 60      # the size of the durability / loop tests' versions
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServiceProc:
    """A ``python -m recsys.serving.cli`` child process on an ephemeral loopback port."""

    proc: subprocess.Popen
    url: str
    log: Path

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


def start_service(params: Path, store: str, workdir: Path, *extra: str, token: str = TOKEN,
                  timeout: float = 60.0) -> ServiceProc:
    """Start the service and wait until ``/healthz`` answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / f"port-{time.monotonic_ns()}"
    log = workdir / f"service-{time.monotonic_ns()}.log"
    env = dict(os.environ, GRAPHREC_SERVE_TOKEN=token, PYTHONPATH=str(PROJECT_ROOT))
    cmd = [sys.executable, "-m", "recsys.serving.cli", "--params", str(params), "--store", store,
           "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file), "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if port_file.exists():
            url = f"http://127.0.0.1:{int(port_file.read_text())}"
            try:
                if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                    return ServiceProc(proc, url, log)
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"service did not become healthy:\n{log.read_text()[-3000:]}")


def ensure_redis_server() -> str:
    """Path of ``redis-server``, installing the Debian package when missing (skip if impossible)."""
    exe = shutil.which("redis-server")
    if exe:
        return exe
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("redis-server missing and cannot be installed here")
    cmd = ["apt-get", "install", "-y", "-q", "redis-server"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"could not install redis-server: {r.stderr[-500:]}")
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    return exe


@dataclass
class RedisProc:
    proc: subprocess.Popen
    port: int
    dir: Path

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_redis(workdir: Path, port: int | None = None) -> RedisProc:
    """A private redis-server on a (free) loopback port, AOF with fsync on every write; restarts reuse ``workdir``."""
    exe = ensure_redis_server()
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
                             "--protected-mode", "yes"], stdout=open(workdir / "redis.log", "ab"), stderr=subprocess.STDOUT)
    import redis

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port).ping():
                return RedisProc(proc, port, workdir)
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def direct_replay(params, events: list[dict], users: dict[str, int]) -> dict[tuple[int, int], tuple[float, float]]:
    """Reference: per (cluster, item) ``(d, b)`` = version's values + Σ w², Σ w·r, one event at a time.

    ``events`` are dicts with score_id/item/reward; ``users`` maps score_id → user.  The weights
    come straight from the version's ``user_clusters`` rows (not from the service).
    """
    base = {(int(c), int(i)): (float(d), float(b))
            for c, i, d, b in zip(params.edge_cluster, params.edge_item, params.d, params.b)}
    ctx = defaultdict(list)
    for u, c, w in zip(params.user.tolist(), params.user_cluster.tolist(), params.user_weight.tolist()):
        ctx[u].append((c, w))
    acc = dict(base)
    for e in events:
        for c, w in ctx[users[e["score_id"]]][: params.k]:
            key = (c, int(e["item"]))
            d, b = acc.get(key, (params.lam, 0.0))
            acc[key] = (d + w * w, b + w * float(e["reward"]))
    return acc


def service_stats(client: httpx.Client, clusters) -> dict[tuple[int, int], tuple[float, float]]:
    out = {}
    for c in sorted(set(int(x) for x in clusters)):
        r = client.get("/v1/stats", params={"cluster": c})
        r.raise_for_status()
        j = r.json()
        out.update({(c, i): (d, b) for i, d, b in zip(j["items"], j["d"], j["b"])})
    return out


def assert_stats_equal(got: dict, want: dict, rtol: float = 1e-9) -> None:
    keys = sorted(want)
    assert sorted(got) == keys, f"edge sets differ: {len(set(got) ^ set(want))} edges"
    g = np.array([got[k] for k in keys])
    w = np.array([want[k] for k in keys])
    np.testing.assert_allclose(g, w, rtol=rtol, atol=0)


def export_all(client: httpx.Client) -> tuple[list[dict], dict]:
    """Every logged event (as dicts) and the impressions columns, paging through the export."""
    events, since = [], 0
    imps: dict[str, list] = defaultdict(list)
    while True:
        r = client.get("/v1/events/export", params={"since": since, "limit": 5000}, headers=AUTH)
        r.raise_for_status()
        j = r.json()
        cols = j["events"]
        events += [dict(zip(cols, vals)) for vals in zip(*cols.values())]
        for k, v in j["impressions"].items():
            imps[k] += v
        if j["count"] == 0:
            return events, dict(imps)
        since = j["next_since"]


class Load:
    """Bounded feedback load: each batch = 5 score calls × 10 shown items → 50 events."""

    def __init__(self, score_urls: list[str], feedback_urls: list[str], n_batches: int, seed: int = 0) -> None:
        self.tag = f"s{seed}"
        self.score_urls, self.feedback_urls, self.n = score_urls, feedback_urls, n_batches
        self.rng = np.random.default_rng(seed)
        self.batches: list[list[dict]] = []      # every batch sent (or about to be)
        self.acked: list[int] = []               # indices of acknowledged batches
        self.users: dict[str, int] = {}
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=10) as c:
                for bi in range(self.n):
                    evs = []
                    for s in range(5):
                        u = int(self.rng.integers(0, N_USERS))
                        r = c.post(self.score_urls[(bi + s) % len(self.score_urls)] + "/v1/score", json={"user": u, "k": 10})
                        r.raise_for_status()
                        j = r.json()
                        self.users[j["score_id"]] = u
                        evs += [{"event_id": f"{self.tag}b{bi}-{s}-{x['item']}", "score_id": j["score_id"], "item": x["item"],
                                 "reward": float(self.rng.random() < 0.3)} for x in j["items"]]
                    self.batches.append(evs)
                    r = c.post(self.feedback_urls[bi % len(self.feedback_urls)] + "/v1/feedback", json={"events": evs}, headers=AUTH)
                    r.raise_for_status()
                    assert r.json()["accepted"] == len(evs)
                    self.acked.append(bi)
        except Exception as e:  # the kill ends the load
            self.error = e

    def wait_acked(self, n: int, timeout: float = 60) -> None:
        t = time.monotonic() + timeout
        while len(self.acked) < n and self.thread.is_alive() and time.monotonic() < t:
            time.sleep(0.005)
        assert len(self.acked) >= n, f"load stalled: {self.error!r}"
