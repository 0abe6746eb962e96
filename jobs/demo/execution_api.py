"""Airflow's Execution API for ``airflow dags test --use-executor``: the demo runs independent tasks side by side.

``airflow dags test`` without an executor runs a DAG's tasks one after another in its own process. With
``--use-executor`` it hands them to the configured executor (the ``LocalExecutor``, ``parallelism`` task
processes), whose task processes report their state to the Execution API of an ``airflow api-server``
(Airflow 3's Task SDK). This module starts that server (``--apps execution`` only) on a free loopback port
of the private ``AIRFLOW_HOME``'s SQLite database, and stops it by process group.
"""
from __future__ import annotations

import logging
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path

from jobs.demo.service import stop_group

log = logging.getLogger("graphrec.execution_api")


def executor_env(port: int, parallelism: int) -> dict[str, str]:
    """The settings that make ``dags test --use-executor`` run up to ``parallelism`` tasks at once.

    A task's supervisor waits in ``select`` for at most ``[workers] min_heartbeat_interval`` (default 5 s)
    before it looks again whether its task process has exited; at the default, a task's successor started
    up to 5 s after the task ended (9 chained transitions of the daily DAG: 26.5 s of gaps, 12.2 s at 1 s).
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),  # shared by the server and the executor
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    }


class ExecutionApi:
    """``airflow api-server --apps execution`` on ``127.0.0.1:port``, logging to ``log_path``."""

    def __init__(self, airflow: str, env: dict[str, str], port: int, log_path: Path, start_timeout_s: float = 120.0):
        self.airflow, self.env, self.port, self.log_path = airflow, env, port, log_path
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "ExecutionApi":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [self.airflow, "api-server", "--apps", "execution", "-H", "127.0.0.1", "-p", str(self.port),
               "--workers", "1"]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        log.info("Airflow Execution API up (pid %d) on 127.0.0.1:%d", self.proc.pid, self.port)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"airflow api-server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/execution/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"airflow api-server not healthy after {self.start_timeout_s:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        stop_group(self.proc)
