"""``airflow standalone`` (LocalExecutor, SQLite, parallelism 4) picks up both DAGs without import
errors; bounded in time and stopped by signalling its process group."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request

from tests.dags.support import DAGS, airflow_bin

DAG_IDS = {"graphrec_daily", "graphrec_heavy_hitters"}
DEADLINE_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(db, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not created yet, or the DB is busy
        return []


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _stop(proc: subprocess.Popen, grace_s: float = 60) -> None:
    """SIGTERM the whole process group (standalone and the scheduler, dag-processor, api-server and
    triggerer it spawned), wait until every member is gone, SIGKILL what is left after ``grace_s``."""
    pgid = proc.pid
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    t0 = time.monotonic()
    while _group_alive(pgid) and time.monotonic() - t0 < grace_s:
        proc.poll()
        time.sleep(0.5)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=15)
    t0 = time.monotonic()
    while _group_alive(pgid) and time.monotonic() - t0 < 15:
        time.sleep(0.2)
    assert not _group_alive(pgid), "processes of airflow standalone survived SIGKILL"


def test_standalone_picks_up_both_dags(tmp_path):
    home, port = tmp_path / "airflow", _free_port()
    home.mkdir()
    env = {
        **os.environ,
        "PATH": f"{airflow_bin().parent}{os.pathsep}{os.environ.get('PATH', '')}",  # it spawns `airflow ...`
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
    }
    log = (tmp_path / "standalone.log").open("wb")
    proc = subprocess.Popen([str(airflow_bin()), "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    db = home / "airflow.db"
    found: set[str] = set()
    errors: list[tuple] = []
    healthy = False
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < DEADLINE_S:
            assert proc.poll() is None, "airflow standalone exited: " + (tmp_path / "standalone.log").read_text()[-3000:]
            found = {r[0] for r in _query(db, "SELECT dag_id FROM dag WHERE is_stale = 0")}
            errors = _query(db, "SELECT filename, stacktrace FROM import_error")
            if not healthy:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as r:
                        healthy = r.status == 200
                except OSError:
                    pass
            if DAG_IDS <= found and healthy or errors:
                break
            time.sleep(3)
        elapsed = time.monotonic() - t0
    finally:
        _stop(proc)
        log.close()
    assert not errors, f"import errors: {errors}"
    assert DAG_IDS <= found, f"after {elapsed:.0f} s only {sorted(found)} were parsed; log tail: " \
                             + (tmp_path / "standalone.log").read_text()[-3000:]
    assert healthy, "the API server never answered /api/v2/monitor/health"
    assert proc.returncode is not None
