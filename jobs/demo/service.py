"""The scoring service of a demo run, as a child process: started once the first parameter version is
published, scraped for its Prometheus metrics after each day, stopped by process group.

Standard library only at import time: the DAG tests import it from the Airflow environment.

>>> 1024 <= free_port() < 65536
True
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

log = logging.getLogger("graphrec.demo_service")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """Stop a process started with ``start_new_session=True`` and its children: TERM to its process group,
    KILL after ``timeout`` seconds. Nothing to do when it never started or has exited."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Service:
    """The scoring service, started once ``params/CURRENT`` exists, stopped by process group."""

    def __init__(self, params: Path, store: Path, port: int, token: str, log_path: Path, python: str | None = None):
        self.params, self.store, self.port, self.token, self.log_path = params, store, port, token, log_path
        self.python = python or sys.executable  # the project's interpreter (.venv)
        self.proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._start_when_ready, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_when_ready(self) -> None:
        self._thread.start()

    def _start_when_ready(self) -> None:
        while not self._stop.is_set():
            if (self.params / "CURRENT").exists():
                self.store.parent.mkdir(parents=True, exist_ok=True)
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                cmd = [self.python, "-m", "recsys.serving.cli", "--params", str(self.params),
                       "--store", f"sqlite:///{self.store}", "--host", "127.0.0.1", "--port", str(self.port),
                       "--log-level", "warning"]
                env = {**os.environ, "GRAPHREC_SERVE_TOKEN": self.token, "PYTHONPATH": str(ROOT)}
                self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log_path.open("ab"),
                                             stderr=subprocess.STDOUT, start_new_session=True)
                log.info("scoring service started (pid %d) on 127.0.0.1:%d", self.proc.pid, self.port)
                return
            self._stop.wait(0.5)

    def save_metrics(self, dest: Path, timeout: float = 10.0) -> Path | None:
        """Write the service's ``GET /metrics`` (Prometheus text) to ``dest/metrics.prom``; ``None`` if it
        is not running or does not answer (the run report then leaves the serving figures out)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=timeout) as r:
                body = r.read()
        except OSError as e:
            log.warning("could not read the service's /metrics: %s", e)
            return None
        dest.mkdir(parents=True, exist_ok=True)
        tmp = dest / f".metrics.prom.{os.getpid()}.tmp"
        tmp.write_bytes(body)
        os.replace(tmp, dest / "metrics.prom")
        return dest / "metrics.prom"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_group(self.proc)
        log.info("scoring service stopped")
