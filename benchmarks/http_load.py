"""Open-loop HTTP load generation against a service subprocess on 127.0.0.1 (for the serving benchmark).

* :class:`Service` starts ``python -m recsys.serving.cli`` on an ephemeral port, samples its peak
  RSS (psutil) and reports its CPU time.
* :func:`open_loop` sends pre-encoded HTTP/1.1 requests over keep-alive asyncio connections at a
  fixed rate (or closed loop), timing each from its *scheduled* send time (queueing counts; no
  coordinated omission); what is unanswered ``GRACE_S`` after the last send counts as failed.
"""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
GRACE_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """The scoring service in a child process (same interpreter; ``http_stack``: ``auto`` or ``plain``)."""

    def __init__(self, params: Path, store: str, workdir: Path, http_stack: str, token: str) -> None:
        port_file = workdir / f"port-{time.monotonic_ns()}"
        env = dict(os.environ, GRAPHREC_SERVE_TOKEN=token, PYTHONPATH=str(ROOT))
        self.log = open(workdir / f"service-{time.monotonic_ns()}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "recsys.serving.cli", "--params", str(params), "--store", store,
                                      "--port", "0", "--port-file", str(port_file), "--log-level", "warning",
                                      "--snapshot-every", "0", "--http-stack", http_stack], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"service failed to start (see {self.log.name})")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        import urllib.request
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"service failed to start (see {self.log.name})")
                time.sleep(0.1)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        ps = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(True)))
            except psutil.Error:
                return
            time.sleep(0.1)

    def cpu(self) -> float:
        """CPU seconds (user + system) used by the service process so far."""
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self._stop.set()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def request(path: str, body: bytes, token: str | None = None) -> bytes:
    """One pre-encoded HTTP/1.1 POST (with a bearer token when given)."""
    h = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    if token:
        h += f"Authorization: Bearer {token}\r\n"
    return h.encode() + b"\r\n" + body


async def open_loop(port: int, reqs: list[bytes], rate: float | None, conns: int,
                     max_s: float | None = None) -> tuple[np.ndarray, np.ndarray, list[bytes], float]:
    """Send ``reqs`` at ``rate``/s (None: closed loop, for at most ``max_s``); latency from the scheduled send time.

    Status -1: never sent (closed loop ended); 0: not answered within the grace period.
    """
    q: asyncio.Queue = asyncio.Queue()
    lat = np.full(len(reqs), np.nan)
    # open loop: every request counts once scheduled (0 until answered); closed loop: only those sent
    status = np.full(len(reqs), -1 if rate is None else 0, np.int32)
    stop_at = [float("inf")]
    bodies: list[bytes] = [b""] * len(reqs)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            item = await q.get()
            if item is None:
                break
            i, t_sched = item
            if time.perf_counter() > stop_at[0]:
                continue
            t_sched = t_sched if t_sched is not None else time.perf_counter()
            status[i] = 0
            writer.write(reqs[i])
            head = await reader.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    n = int(line[15:])
            bodies[i] = await reader.readexactly(n)
            lat[i] = time.perf_counter() - t_sched
            status[i] = int(head[9:12])
        writer.close()

    # no cyclic-GC pause in the load generator itself while it keeps the schedule (it would show up as
    # service latency): collect now, keep the survivors out of later passes, no collection during the run
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return await _drive(port, reqs, rate, conns, max_s, q, lat, status, stop_at, bodies, worker)
    finally:
        gc.enable()
        gc.unfreeze()


async def _drive(port, reqs, rate, conns, max_s, q, lat, status, stop_at, bodies, worker):
    tasks = [asyncio.create_task(worker()) for _ in range(conns)]
    await asyncio.sleep(0.2)
    t0 = time.perf_counter()
    if max_s is not None:
        stop_at[0] = t0 + max_s
    if rate is None:
        for i in range(len(reqs)):
            q.put_nowait((i, None))
    else:
        for i in range(len(reqs)):
            t = t0 + i / rate
            d = t - time.perf_counter()
            if d > 0:
                await asyncio.sleep(d)
            q.put_nowait((i, t))
    for _ in tasks:
        q.put_nowait(None)
    try:   # bounded: what an overloaded service has not answered GRACE_S after the last send counts as failed
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=GRACE_S)
    except asyncio.TimeoutError:
        pass
    return lat, status, bodies, time.perf_counter() - t0


def summarise(lat: np.ndarray, status: np.ndarray, wall: float, n_per_req: int = 1, cpu: float = 0.0) -> dict:
    sent = status >= 0
    lat, status = lat[sent], status[sent]
    ok = status == 200
    lat = np.where(np.isnan(lat), np.inf, lat)      # unanswered within the grace period: infinitely late
    return {"sent": int(lat.size), "ok": int(ok.sum()), "errors": int((~ok).sum()),
            "achieved_per_s": float(ok.sum() * n_per_req / wall), "service_cpu_ms_per_req": cpu * 1e3 / max(1, int(ok.sum())),
            "p50_ms": _ms(np.percentile(lat, 50, method="higher")), "p99_ms": _ms(np.percentile(lat, 99, method="higher")),
            "max_ms": _ms(np.max(lat))}


def _ms(x: float) -> float | None:
    """Milliseconds, or None for "not answered within the grace period"."""
    return float(x * 1e3) if np.isfinite(x) else None


def fmt_ms(x: float | None) -> str:
    return "timeout" if x is None else f"{x:.2f}"
